// `ufs run`: create the container, then own it in the foreground (we are its monitor) or
// hand it to a detached monitor (-d).
import { UfsError } from '../common/errors.js';
import { UnionHost } from '../fuse/host.js';
import type { Store } from '../store/index.js';
import type { TerminalIoSource } from './attach.js';
import { createContainer, type CreateOptions } from './create.js';
import { SignalRelay } from './launch.js';
import { runMonitor } from './monitor.js';
import { removeContainerFiles } from './remove.js';

export interface RunOptions extends CreateOptions {
  detach: boolean;
  warn?: (message: string) => void; // a foreground run's teardown problem (the exit status stands)
  io: TerminalIoSource;             // the terminal of a foreground run (see attach.ts)
}

export type RunResult = { detached: true; id: string } | { detached: false; status: number };

export async function runContainer(store: Store, opts: RunOptions): Promise<RunResult> {
  if (opts.tty && opts.interactive && !opts.detach && !process.stdin.isTTY) {
    throw new UfsError('the input device is not a TTY', 1);
  }
  if (opts.detach) {
    const { spawnMonitor } = await import('./detach.js');
    const rec = await createContainer(store, opts);
    try {
      await spawnMonitor(store.root, store.containersDir(), rec.Id, opts.interactive ? 'hold' : 'none');
    } catch (err) {
      if (opts.autoRemove) await removeContainerFiles(store, rec.Id).catch(() => {});
      throw err;
    }
    return { detached: true, id: rec.Id };
  }
  if (opts.tty) {
    // A terminal container runs under a monitor of its own even in the foreground: we
    // attach to it, and can detach (Ctrl-P Ctrl-Q) leaving it running, as in Docker.
    const [{ spawnMonitor }, { attachForeground }] = await Promise.all([import('./detach.js'), import('./lifecycle.js')]);
    const rec = await createContainer(store, opts);
    try {
      await spawnMonitor(store.root, store.containersDir(), rec.Id, 'none', true);
    } catch (err) {
      if (opts.autoRemove) await removeContainerFiles(store, rec.Id).catch(() => {});
      throw err;
    }
    return { detached: false, status: await attachForeground(store, rec.Id, opts.interactive, opts.io) };
  }
  // From here on Ctrl-C and friends belong to the container, or abort its start.
  const relay = new SignalRelay().install();
  const host = UnionHost.start();
  try {
    const rec = await createContainer(store, opts, true);
    const status = await runMonitor(store, rec.Id, { attach: true, io: opts.io, stdin: opts.interactive ? 'inherit' : 'none', relay, host, created: rec, ...(opts.warn ? { warn: opts.warn } : {}) });
    return { detached: false, status };
  } finally {
    relay.dispose();
    await host.close();
  }
}

// start, stop, kill and rm of containers by reference.
import type { Store } from '../store/index.js';
import { UfsError } from '../common/errors.js';
import { findRecord, readRecord, updateState, type ContainerRecord } from './container.js';
import { attachTerminal, type TerminalIoSource } from './attach.js';
import { spawnMonitor } from './detach.js';
import { SignalRelay } from './launch.js';
import { runMonitor } from './monitor.js';
import { runtimeBinary, runtimeCommand } from './ociruntime.js';
import { isAlive, sleep } from './proc.js';
import { monitorAlive, reconcile } from './reconcile.js';
import { removeContainerFiles } from './remove.js';
import { parseSignal } from './signals.js';

export async function findContainer(store: Store, ref: string): Promise<ContainerRecord> {
  return reconcile(store, findRecord(store.containersDir(), ref));
}

export function isRunning(rec: ContainerRecord): boolean {
  return rec.State.Status === 'running' && monitorAlive(rec);
}

// Waits until the container's monitor has recorded its end (or is gone). True if it did.
export async function waitForExit(store: Store, id: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    const rec = readRecord(store.containersDir(), id);
    if (!rec) return true;
    if (!monitorAlive(rec)) {
      await reconcile(store, rec);
      return true;
    }
    if (rec.State.Status !== 'running' && rec.State.MonitorPid === 0) return true;
    if (Date.now() >= end) return false;
    await sleep(50);
  }
}

// A frozen container takes its signals only once thawed (a SIGKILL must not wait for unpause).
async function thaw(store: Store, rec: ContainerRecord): Promise<void> {
  if (!rec.State.Paused) return;
  await runtimeCommand(runtimeBinary(rec.HostConfig.Runtime), ['resume', rec.Id]);
  updateState(store.containersDir(), rec.Id, { Paused: undefined });
}

// Signals pid 1 (the command itself, or our init with --init). Before pid 1 is known the
// runtime gets it and forwards it; SIGKILL waits for pid 1, as it cannot be forwarded.
export async function signalContainer(store: Store, id: string, sig: NodeJS.Signals): Promise<void> {
  const end = Date.now() + 5000;
  for (;;) {
    const rec = readRecord(store.containersDir(), id);
    if (!rec || !isRunning(rec)) return;
    if (isAlive(rec.State.Pid, rec.State.PidStartTime)) {
      process.kill(rec.State.Pid, sig);
      if (sig === 'SIGKILL' || sig === 'SIGTERM' || sig === 'SIGINT') await thaw(store, rec);
      return;
    }
    if (sig !== 'SIGKILL' && rec.State.InitPid && isAlive(rec.State.InitPid)) {
      process.kill(rec.State.InitPid, sig);
      return;
    }
    if (Date.now() >= end) {
      if (rec.State.InitPid && isAlive(rec.State.InitPid)) process.kill(rec.State.InitPid, sig);
      return;
    }
    await sleep(20);
  }
}

export interface StartOptions { attach: boolean; interactive: boolean; io?: TerminalIoSource; warn?: (message: string) => void }

// Runs an existing container again on the same writable layer. Returns the exit status
// when attached, undefined when started in the background.
export async function startContainer(store: Store, ref: string, opts: StartOptions): Promise<number | undefined> {
  const rec = await findContainer(store, ref);
  // Docker's rule for run, start and exec alike: a terminal container's stdin must be one.
  if (opts.interactive && rec.Config.Tty && !process.stdin.isTTY) throw new UfsError('the input device is not a TTY');
  if (isRunning(rec)) {
    if (opts.attach) throw new UfsError(`container ${ref} is already running: ufs cannot attach to it (use ufs exec or ufs logs)`);
    return undefined;
  }
  if (rec.State.MonitorPid && monitorAlive(rec)) throw new UfsError(`container ${ref} is being started`);
  if (opts.attach && rec.Config.Tty) {
    // The monitor holds the terminal; we attach to it (so Ctrl-P Ctrl-Q can detach).
    await spawnMonitor(store.root, store.containersDir(), rec.Id, 'none', true);
    return attachForeground(store, rec.Id, opts.interactive, needIo(opts.io));
  }
  if (opts.attach) {
    const relay = new SignalRelay().install();
    try {
      return await runMonitor(store, rec.Id, { attach: true, io: needIo(opts.io), stdin: opts.interactive ? 'inherit' : 'none', relay, ...(opts.warn ? { warn: opts.warn } : {}) });
    } finally {
      relay.dispose();
    }
  }
  await spawnMonitor(store.root, store.containersDir(), rec.Id, rec.Config.OpenStdin ? 'hold' : 'none');
  return undefined;
}

// seconds: -t, else the container's --stop-timeout, else Docker's 10.
export async function stopContainer(store: Store, ref: string, time?: number): Promise<void> {
  const rec = await findContainer(store, ref);
  if (!isRunning(rec)) return;
  const seconds = time ?? rec.Config.StopTimeout ?? 10;
  const sig = rec.Config.StopSignal ? parseSignal(rec.Config.StopSignal) : 'SIGTERM';
  await signalContainer(store, rec.Id, sig);
  if (await waitForExit(store, rec.Id, Math.max(0, seconds) * 1000)) return;
  await signalContainer(store, rec.Id, 'SIGKILL');
  if (!(await waitForExit(store, rec.Id, 30_000))) throw new UfsError(`container ${ref} did not stop`);
}

export async function killContainer(store: Store, ref: string, signal: string): Promise<void> {
  const sig = parseSignal(signal);
  const rec = await findContainer(store, ref);
  if (!isRunning(rec)) throw new UfsError(`cannot kill container ${ref}: container ${rec.Id} is not running`);
  await signalContainer(store, rec.Id, sig);
}

export async function removeContainer(store: Store, ref: string, force: boolean): Promise<void> {
  const rec = await findContainer(store, ref);
  if (isRunning(rec)) {
    if (!force) {
      throw new UfsError(`cannot remove container "${ref}": container is running: stop the container before removing or force remove`);
    }
    await signalContainer(store, rec.Id, 'SIGKILL');
    if (!(await waitForExit(store, rec.Id, 30_000))) throw new UfsError(`cannot remove container "${ref}": it did not stop`);
  } else if (rec.State.MonitorPid && monitorAlive(rec)) {
    // created and starting right now
    if (!force) throw new UfsError(`cannot remove container "${ref}": it is starting`);
    await waitForExit(store, rec.Id, 30_000);
  }
  await removeContainerFiles(store, rec.Id);
}

// Attaching needs the caller's terminal (the CLI's stdio).
function needIo(io: TerminalIoSource | undefined): TerminalIoSource {
  if (!io) throw new UfsError('attaching needs a terminal to attach to', 125);
  return io;
}

// A foreground client of a terminal container: its exit status, or 0 once detached.
export async function attachForeground(store: Store, id: string, interactive: boolean, io: TerminalIoSource): Promise<number> {
  const r = await attachTerminal(id, {
    io,
    stdin: interactive,
    onSignal: (sig) => void signalContainer(store, id, sig).catch(() => undefined),
  });
  if (r.detached) return 0;
  if (r.error) throw new UfsError(r.error, r.code || 125);
  return r.code;
}

// `ufs attach`: the terminal of a running container started with -t.
export async function attachContainer(store: Store, ref: string, noStdin: boolean, io: TerminalIoSource): Promise<number> {
  const rec = await findContainer(store, ref);
  if (!isRunning(rec)) throw new UfsError(`You cannot attach to a stopped container, start it first`);
  if (!rec.Config.Tty) throw new UfsError(`container ${ref} has no terminal (-t): use ufs logs -f to follow its output`);
  if (!noStdin && !process.stdin.isTTY) throw new UfsError('the input device is not a TTY');
  return attachForeground(store, rec.Id, !noStdin, io);
}

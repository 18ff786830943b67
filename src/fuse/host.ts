// An in-process union host: one union served on the calling thread's own event loop, by the
// process that holds the container (a foreground `ufs run`, a detached monitor), instead of
// a serving process of its own or a worker thread. That saves a Node start (a process) or a
// second isolate (a worker, about 90 ms to start here and 10 MB to keep) on the way to the
// container.
// The price: this thread answers the mount's requests, so it must never touch the mount
// with a synchronous call (it would wait on itself); asynchronous calls are fine (libuv's
// pool waits, this loop serves). The monitor reads the container's root asynchronously only
// (runtime/bundle.ts). The mount lives as long as this process: when it dies, the mount
// answers ENOTCONN and the next command that meets it detaches it (its record names this
// process).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { errnoCode, UfsError } from '../common/errors.js';
import { MNT_DETACH, sys } from '../sys/index.js';
import { processStartTime, serverSpecFor } from './mount.js';
import type { MountSpec, ServerSpec } from './spec.js';

function fusermount(args: string[]): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    execFile('fusermount', args, (err, _stdout, stderr) => {
      resolve({ ok: !err, message: (stderr || (err ? err.message : '')).trim().split('\n')[0] ?? '' });
    });
  });
}

// The union's own log (spec.log, never our stdout/stderr, which are a user's terminal): kept
// when the mount goes only if a problem was logged.
class HostLog {
  private fd: number | undefined;
  noteworthy = false;

  open(file: string): void {
    try {
      this.fd = fs.openSync(file, 'w', 0o600);
    } catch {
      // no log: serve anyway
    }
  }

  write(message: string): void {
    if (this.fd === undefined) return;
    try {
      fs.writeSync(this.fd, `${new Date().toISOString()} ufs-fuse[${process.pid} host] ${message}\n`);
    } catch {
      // a full disk: the union goes on
    }
  }

  problem(message: string): void {
    this.noteworthy = true;
    this.write(message);
  }

  close(file: string, always = false): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    if (always || !this.noteworthy) fs.rmSync(file, { force: true });
  }
}

export class UnionHost {
  private spec: ServerSpec | undefined;
  private served = false;
  private ended = false;
  private onGone: (() => void) | undefined;
  private readonly gone = new Promise<void>((resolve) => (this.onGone = resolve));
  private readonly log = new HostLog();

  static start(): UnionHost {
    return new UnionHost();
  }

  get mountpoint(): string | undefined {
    return this.spec?.mountpoint;
  }

  // Mounts the union and returns once it serves (the kernel's INIT was answered).
  async mount(spec: MountSpec): Promise<void> {
    if (this.spec) throw new Error('a union host serves one mount');
    const [serverSpec, served] = await Promise.all([serverSpecFor(spec), import('./serve.js')]);
    this.spec = serverSpec;
    const log = this.log;
    log.open(serverSpec.log);
    log.write(`starting: ${JSON.stringify(serverSpec)}`);
    let options: string[];
    try {
      ({ options } = await served.serveUnion(serverSpec, {
        log: (m) => log.write(m),
        problem: (m) => log.problem(m),
        unmounted: () => {
          log.write('exiting: unmounted');
          this.ended = true;
          fs.rmSync(serverSpec.recordFile, { force: true });
          log.close(serverSpec.log);
          this.onGone?.();
        },
      }));
    } catch (err) {
      const message = served.firstLine(err);
      log.write(`mount failed: ${message}`);
      log.close(serverSpec.log, true);
      throw new UfsError(`cannot mount ${spec.mountpoint}: ${message}`);
    }
    this.served = true;
    log.write(`mounted ${serverSpec.mountpoint} (${options.join(',')})`);
    const startTime = await processStartTime(process.pid);
    try {
      await served.writeRecord(serverSpec, { hosted: true, ...(startTime ? { startTime } : {}) });
    } catch (err) {
      log.write(`cannot write the mount record ${serverSpec.recordFile}: ${served.firstLine(err)}`);
    }
  }

  // Unmounts and waits until the FUSE loop has let go. A mount something still uses (a
  // process of the container that outlived pid 1) is detached lazily instead: it is served
  // until that lets go or this process exits.
  async unmount(): Promise<void> {
    if (!this.served || this.ended || !this.spec) return;
    const mp = this.spec.mountpoint;
    // As root, umount2(2) directly (no fusermount process); fusermount otherwise. Neither
    // waits on this thread: the kernel sends a plain FUSE mount no request at unmount.
    let detached = false;
    try {
      try {
        sys.umount2(mp, 0);
      } catch (err) {
        if (errnoCode(err) !== 'EBUSY') throw err;
        sys.umount2(mp, MNT_DETACH);
        detached = true;
      }
    } catch {
      const r = await fusermount(['-u', mp]);
      if (!r.ok) {
        await fusermount(['-uz', mp]);
        detached = true;
      }
    }
    if (detached) return;
    await Promise.race([this.gone, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  }

  // Nothing to end: the loop's handle goes with the session.
  async close(): Promise<void> {}
}

// An in-process union host: one union served from a worker thread of this process, instead
// of a serving process of its own. A container's monitor (foreground `ufs run`, a detached
// monitor) holds its root this way: no second Node start on the way to the container, and
// the worker loads the union's modules while the main thread prepares everything else.
// The main thread may use the mount freely (synchronous calls too): the worker has its own
// event loop. The mount lives as long as this process: when it dies, the mount answers
// ENOTCONN and the next command that meets it detaches it (its record names this process).
import { execFile } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { errnoCode, UfsError } from '../common/errors.js';
import { MNT_DETACH, sys } from '../sys/index.js';
import type { HostReply, HostRequest } from './hostworker.js';
import { processStartTime, serverSpecFor } from './mount.js';
import type { MountSpec, ServerSpec } from './spec.js';

const WORKER = new URL('./hostworker.js', import.meta.url);

function fusermount(args: string[]): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    execFile('fusermount', args, (err, _stdout, stderr) => {
      resolve({ ok: !err, message: (stderr || (err ? err.message : '')).trim().split('\n')[0] ?? '' });
    });
  });
}

export class UnionHost {
  private readonly worker: Worker;
  private readonly replies: HostReply[] = [];
  private waiting: ((r: HostReply) => void) | undefined;
  private readonly gone: Promise<void>;
  private spec: ServerSpec | undefined;
  private served = false;
  private ended = false;

  // Starts the worker now; mount() later hands it the union.
  private constructor() {
    // --no-warnings: Node warns when a number it saw opened is opened again, which the
    // union's fds (closed in C) do all the time; the worker logs its problems itself.
    this.worker = new Worker(WORKER, { execArgv: ['--no-warnings'] });
    this.worker.on('message', (r: HostReply) => this.deliver(r));
    this.worker.on('error', (err) => this.deliver({ type: 'error', message: err.message }));
    this.worker.once('exit', () => this.deliver({ type: 'exit' }));
    this.gone = new Promise((resolve) => {
      this.worker.on('message', (r: HostReply) => r.type === 'exit' && resolve());
      this.worker.once('exit', () => resolve());
    });
  }

  static start(): UnionHost {
    return new UnionHost();
  }

  private deliver(r: HostReply): void {
    if (r.type === 'exit') {
      // Unmounted: the thread idles until the process exits (hostworker.ts says why).
      this.ended = true;
      this.worker.unref();
    }
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w(r);
    } else this.replies.push(r);
  }

  private next(): Promise<HostReply> {
    const r = this.replies.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  get mountpoint(): string | undefined {
    return this.spec?.mountpoint;
  }

  // Mounts the union and returns once it serves (the kernel's INIT reached the worker).
  async mount(spec: MountSpec): Promise<void> {
    if (this.spec) throw new Error('a union host serves one mount');
    const serverSpec = await serverSpecFor(spec);
    this.spec = serverSpec;
    const startTime = await processStartTime(process.pid);
    this.worker.postMessage({ type: 'mount', spec: serverSpec, ...(startTime ? { startTime } : {}) } satisfies HostRequest);
    const r = await this.next();
    if (r.type !== 'ready') {
      await this.close();
      throw new UfsError(`cannot mount ${spec.mountpoint}: ${r.type === 'error' ? r.message : 'the union host ended'}`);
    }
    this.served = true;
  }

  // Unmounts and waits until the worker has let go. A mount something still uses (a
  // process of the container that outlived pid 1) is detached lazily instead.
  async unmount(): Promise<void> {
    if (!this.served || this.ended || !this.spec) return this.close();
    const mp = this.spec.mountpoint;
    // As root, umount2(2) directly (no fusermount process); fusermount otherwise.
    try {
      try {
        sys.umount2(mp, 0);
      } catch (err) {
        if (errnoCode(err) !== 'EBUSY') throw err;
        sys.umount2(mp, MNT_DETACH);
      }
    } catch {
      const r = await fusermount(['-u', mp]);
      if (!r.ok) await fusermount(['-uz', mp]);
    }
    await Promise.race([this.gone, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    await this.close();
  }

  // Ends the worker when nothing was mounted; after unmount() it idles, unreferenced.
  async close(): Promise<void> {
    if (!this.served) await this.worker.terminate();
  }
}

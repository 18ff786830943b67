// The worker thread of an in-process union host (host.ts): serves one union on this thread's
// own event loop, so the process's main thread may do anything on the mount, synchronous
// calls included, without waiting on itself. Messages: in { type: 'mount', spec }, out
// { type: 'ready' } or { type: 'error', message }, then { type: 'exit' } once unmounted.
// It never ends before the process does (see unmounted below); the host unrefs it.
// Its log goes to spec.log (never to the process's stdout/stderr, which are a user's
// terminal); the log and the record go when the mount does, the log unless a problem was logged.
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { ServerSpec } from './spec.js';

export type HostRequest = { type: 'mount'; spec: ServerSpec; startTime?: number };
export type HostReply = { type: 'ready' } | { type: 'error'; message: string } | { type: 'exit' };

if (!parentPort) throw new Error('hostworker.js runs as a worker thread of host.ts');
const port = parentPort;

// A worker may read the process's umask but not set it (unionfs reads it by setting it):
// reading is enough here, the union then sets new objects' modes itself.
const umask = process.umask.bind(process) as () => number;
(process as { umask: (mask?: number) => number }).umask = () => umask();

let logFd: number | undefined;
let noteworthy = false;
function log(message: string): void {
  if (logFd === undefined) return;
  try {
    fs.writeSync(logFd, `${new Date().toISOString()} ufs-fuse[${process.pid} host] ${message}\n`);
  } catch {
    // a full disk: the union goes on
  }
}
function problem(message: string): void {
  noteworthy = true;
  log(message);
}

process.on('uncaughtException', (err) => problem(`uncaught exception: ${err.stack ?? err}`));
process.on('unhandledRejection', (err) => problem(`unhandled rejection: ${err instanceof Error ? err.stack : String(err)}`));

// Loaded while the main thread works on other things (resolving the image, the bundle).
const served = import('./serve.js');
// The FUSE binding (and libfuse) too: loaded once, kept by require's cache.
void served.then(() => import('./lowlevel/binding.js')).then((m) => m.loadLowLevel()).catch(() => undefined);

port.once('message', (msg: HostRequest) => void mount(msg));

async function mount({ spec, startTime }: HostRequest): Promise<void> {
  try {
    logFd = fs.openSync(spec.log, 'w', 0o600);
  } catch {
    // no log: serve anyway
  }
  log(`starting: ${JSON.stringify(spec)}`);
  const { firstLine, serveUnion, writeRecord } = await served;
  let options: string[];
  try {
    // Keep the loop alive while we serve: the FUSE session's handles may be unreferenced.
    const keep = setInterval(() => {}, 1 << 30);
    options = await serveUnion(spec, {
      log,
      problem,
      unmounted: () => {
        log('exiting: unmounted');
        clearInterval(keep);
        fs.rmSync(spec.recordFile, { force: true });
        if (!noteworthy) fs.rmSync(spec.log, { force: true });
        if (logFd !== undefined) fs.closeSync(logFd);
        port.postMessage({ type: 'exit' } satisfies HostReply);
        // This thread stays until the process exits: Node closes every fd a worker opened
        // through node:fs when the worker ends, and the union's fds are closed by the FUSE
        // binding behind node:fs's back, so their numbers may belong to the main thread by then.
        setInterval(() => {}, 1 << 30);
      },
    });
  } catch (err) {
    log(`mount failed: ${firstLine(err)}`);
    if (logFd !== undefined) fs.closeSync(logFd);
    fs.rmSync(spec.log, { force: true });
    port.postMessage({ type: 'error', message: firstLine(err) } satisfies HostReply);
    return;
  }
  log(`mounted ${spec.mountpoint} (${options.join(',')})`);
  try {
    await writeRecord(spec, { hosted: true, ...(startTime ? { startTime } : {}) });
  } catch (err) {
    log(`cannot write the mount record ${spec.recordFile}: ${firstLine(err)}`);
  }
  port.postMessage({ type: 'ready' } satisfies HostReply);
}

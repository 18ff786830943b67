// The serving process of one ufs mount (dist/src/fuse/server.js), started one of two ways:
// - by mountUnion, detached, with the spec as JSON in argv[2], stdout/stderr on its log file,
//   and an IPC channel on which it reports `ready` (the kernel's INIT arrived: the FUSE loop
//   serves) or one `error` line, then disconnects;
// - by the C mount helper (native/sys/ufs_mount_helper.c) as `server.js --mount-helper
//   ARGS...` with mount(8)'s arguments, stdio on /dev/null and a pipe on fd 3: it checks the
//   request itself, logs to the mount's log file, and writes "ok" or "error CODE MESSAGE" there.
// It exits when the mount goes away (umount from anywhere), or unmounts itself on SIGTERM/SIGINT.
import { execFile } from 'node:child_process';
import fsSync, { promises as fs } from 'node:fs';
import { UfsError } from '../common/errors.js';
import { shedAfterBursts, shedStartupMemory } from '../common/memory.js';
import { MOUNT_FAILURE, parseHelperArgs } from './helperargs.js';
import { serverSpecFor } from './mount.js';
import { firstLine, serveUnion, writeRecord } from './serve.js';
import type { ServerMessage, ServerSpec } from './spec.js';
import { warmReads, warmWrites } from './warmup.js';

// libuv's pool serves the union's copy-ups of file data and fsyncs (metadata calls are
// synchronous): a few threads so that one slow copy-up does not hold up the rest. Read by
// libuv at the pool's first use, which is after this line.
process.env.UV_THREADPOOL_SIZE ??= '8';

const HELPER_READY_FD = 3;
const helperMode = process.argv[2] === '--mount-helper';
let logFd: number | undefined; // helper mode: the mount's log file (stderr is /dev/null)

function log(message: string): void {
  const line = `${new Date().toISOString()} ufs-fuse[${process.pid}] ${message}\n`;
  if (logFd === undefined) process.stderr.write(line);
  else {
    try {
      fsSync.writeSync(logFd, line);
    } catch {
      // a full disk: serve anyway
    }
  }
}

// Set once anything unexpected was logged: such a log outlives the mount.
let noteworthy = false;
function logProblem(message: string): void {
  noteworthy = true;
  log(message);
}

// Helper mode: one line on fd 3, then close it so that the C helper (and mount(8)) can go.
let reported = false;
function reportHelper(line: string): void {
  if (reported) return;
  reported = true;
  try {
    fsSync.writeSync(HELPER_READY_FD, `${line.replace(/\n/g, ' ')}\n`);
    fsSync.closeSync(HELPER_READY_FD);
  } catch {
    // the helper is gone: nothing to tell
  }
}

function send(msg: ServerMessage): Promise<void> {
  if (helperMode) {
    reportHelper(msg.type === 'ready' ? 'ok' : `error ${MOUNT_FAILURE} ${msg.message}`);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

async function fail(message: string): Promise<never> {
  log(`mount failed: ${message}`);
  await send({ type: 'error', message });
  process.exit(1);
}

let exiting: Promise<never> | undefined;
// Gone for good: drop our record and log (both describe a mount that no longer exists).
// Whoever comes first (unmount, signal) does it; later callers wait for the same exit.
function exitClean(code: number, why: string): Promise<never> {
  exiting ??= (async () => {
    log(`exiting: ${why}`);
    await fs.rm(spec.recordFile, { force: true }).catch(() => {});
    // The log goes too, unless it tells of something that went wrong.
    if (code === 0 && !noteworthy) {
      if (logFd !== undefined) fsSync.closeSync(logFd);
      await fs.rm(spec.log, { force: true }).catch(() => {});
    }
    process.exit(code);
  })();
  return exiting;
}

// A lazy unmount (detach now, finish when the last user lets go) that does not wait on us.
function detach(mountpoint: string): Promise<void> {
  return new Promise((resolve) => {
    execFile('fusermount', ['-uz', mountpoint], (err, _out, stderr) => {
      if (err) log(`fusermount -uz: ${stderr.trim() || err.message}`);
      resolve();
    });
  });
}

// The spec: given by mountUnion, or made here from mount(8)'s arguments.
async function helperSpec(argv: string[]): Promise<ServerSpec> {
  const failed = (code: number, err: unknown): never => {
    reportHelper(`error ${code} ${firstLine(err)}`);
    process.exit(code);
  };
  // As the Node helper (cli/mount-fuse.ts): bad arguments keep their status, a mount that
  // cannot be made is mount(8)'s "mount failure".
  const request = await parseHelperArgs(argv).catch((err) => failed(err instanceof UfsError ? err.exitCode : MOUNT_FAILURE, err));
  if (request.fake) {
    reportHelper('ok');
    process.exit(0);
  }
  const serverSpec = await serverSpecFor(request.spec).catch((err) => failed(MOUNT_FAILURE, err));
  try {
    logFd = fsSync.openSync(serverSpec.log, 'w', 0o600);
  } catch {
    // no log: serve anyway
  }
  return serverSpec;
}

const spec = helperMode ? await helperSpec(process.argv.slice(3)) : (JSON.parse(process.argv[2] ?? '{}') as ServerSpec);
if (!spec.mountpoint || !Array.isArray(spec.lowers)) {
  process.stderr.write('usage: server.js SPEC-JSON (spawned by ufs mount) | server.js --mount-helper MOUNT-ARGS...\n');
  process.exit(2);
}

// A filesystem serving a container must not die of one bad request: log and carry on.
process.on('uncaughtException', (err) => logProblem(`uncaught exception: ${err.stack ?? err}`));
process.on('unhandledRejection', (err) => logProblem(`unhandled rejection: ${err instanceof Error ? err.stack : String(err)}`));
process.on('disconnect', () => {}); // the mounting process is done with us; keep serving
process.on('SIGHUP', () => {});

log(`starting: ${JSON.stringify(spec)} UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'default'}`);

// New files in upper get exactly the mode the kernel asks for (it has applied the caller's
// umask already); with our own umask at 0 the union can create a file with its final mode in
// one step (unionfs.ts). Whatever else this process writes gives its mode explicitly.
process.umask(0);

let mounted = false;
async function terminate(signal: string): Promise<void> {
  if (exiting) return;
  log(`${signal}: unmounting`);
  if (mounted) await detach(spec.mountpoint);
  await exitClean(0, signal);
}
process.on('SIGTERM', () => void terminate('SIGTERM'));
process.on('SIGINT', () => void terminate('SIGINT'));

// The FUSE session may leave its handles unreferenced; we decide when to exit, not the event loop.
setInterval(() => {}, 1 << 30);

// The FUSE loop ending means unmounted from anywhere (ufs umount, fusermount -u, umount).
// libfuse prints why a mount fails ("fuse: ...") on our stderr, the log, which the parent reads.
const { options, union } = await serveUnion(spec, { log, problem: logProblem, unmounted: () => void exitClean(0, 'unmounted') }).catch(
  (err: unknown) => fail(firstLine(err)),
);
mounted = true;
log(`mounted ${spec.mountpoint} (${options.join(',')}) ${performance.now().toFixed(0)} ms after the process started`);
// Start-up memory goes, then the warm-up (src/fuse/warmup.ts) maps back what serving runs: its
// reading part before the mount is reported ready, its writing part after.
const warmStarted = performance.now();
try {
  log(`start-up memory released: ${shedStartupMemory()} kB of the node binary unmapped`);
} catch (err) {
  log(`releasing start-up memory: ${firstLine(err)}`);
}
let warmFailed = false;
const warmFailure = (err: unknown): void => {
  warmFailed = true;
  log(`warming up: ${firstLine(err)}`); // serving goes on: only the first requests are slower
};
await warmReads(spec.mountpoint).catch(warmFailure);
try {
  await writeRecord(spec);
} catch (err) {
  log(`cannot write the mount record ${spec.recordFile}: ${firstLine(err)}`);
}
await send({ type: 'ready', pid: process.pid });
if (process.connected) process.disconnect();
await warmWrites(union, () => exiting !== undefined).catch(warmFailure);
if (!warmFailed) log(`warmed up in ${(performance.now() - warmStarted).toFixed(0)} ms`);
shedAfterBursts(log, log);

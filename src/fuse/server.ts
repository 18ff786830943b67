// The serving process of one ufs mount (dist/src/fuse/server.js), spawned detached by
// mountUnion with the spec as JSON in argv[2], stdout/stderr on its log file, and an IPC
// channel on which it reports `ready` (the kernel's INIT arrived: the FUSE loop serves) or
// one `error` line, then disconnects. It exits when the mount goes away (umount from anywhere), or unmounts itself on
// SIGTERM/SIGINT. It never touches its own mountpoint: every path it uses is a layer path, so
// no request of ours can wait on our own FUSE loop.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { UnionFs } from '../unionfs/index.js';
import { readMountInfo } from './mountinfo.js';
import { withLowLevelOpStats } from './opstats.js';
import { makeLowLevelOps } from './lowlevel/ops.js';
import { loadLowLevel } from './lowlevel/binding.js';
import { CACHE_TIMEOUT_S, cacheTimeoutFromEnv, lowLevelMountOptions, passthroughFromEnv, spinUsFromEnv } from './options.js';
import type { MountRecord, ServerMessage, ServerSpec } from './spec.js';

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} ufs-fuse[${process.pid}] ${message}\n`);
}

// Set once anything unexpected was logged: such a log outlives the mount.
let noteworthy = false;
function logProblem(message: string): void {
  noteworthy = true;
  log(message);
}

function send(msg: ServerMessage): Promise<void> {
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

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

async function writeRecord(spec: ServerSpec): Promise<void> {
  const record: MountRecord = {
    mountpoint: spec.mountpoint,
    pid: process.pid,
    lowers: spec.lowers,
    ...(spec.upper ? { upper: spec.upper } : {}),
    fsname: spec.fsname,
    started: new Date().toISOString(),
    log: spec.log,
  };
  const tmp = `${spec.recordFile}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
  await fs.rename(tmp, spec.recordFile);
}

let exiting: Promise<never> | undefined;
// Gone for good: drop our record and log (both describe a mount that no longer exists).
// Whoever comes first (unmount, signal) does it; later callers wait for the same exit.
function exitClean(code: number, why: string): Promise<never> {
  exiting ??= (async () => {
    log(`exiting: ${why}`);
    await fs.rm(spec.recordFile, { force: true }).catch(() => {});
    // The log goes too, unless it tells of something that went wrong.
    if (code === 0 && !noteworthy) await fs.rm(spec.log, { force: true }).catch(() => {});
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

const spec = JSON.parse(process.argv[2] ?? '{}') as ServerSpec;
if (!spec.mountpoint || !Array.isArray(spec.lowers)) {
  process.stderr.write('usage: server.js SPEC-JSON (spawned by ufs mount)\n');
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
const union = new UnionFs({ lowers: spec.lowers, ...(spec.upper ? { upper: spec.upper } : {}), ...(spec.redirectDir ? { redirectDir: true } : {}) });
try {
  await union.init();
} catch (err) {
  await fail(firstLine(err));
}

// Last check before mounting, against a concurrent mount of the same mountpoint.
if ((await readMountInfo()).some((m) => m.mountpoint === spec.mountpoint)) {
  await fail(`${spec.mountpoint} is busy: something is already mounted there`);
}

let mounted = false;
const timeout = cacheTimeoutFromEnv() ?? CACHE_TIMEOUT_S;
// The FUSE loop ended: unmounted from anywhere (ufs umount, fusermount -u, umount).
const onUnmount = () => void exitClean(0, 'unmounted');
const options = lowLevelMountOptions(spec);

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

let passthroughState = (): string => 'unknown';
try {
  const ll = loadLowLevel();
  passthroughState = () => JSON.stringify(ll.passthroughState());
  const rootAttr = await union.getattr('/');
  await new Promise<void>((resolve) => {
    const ops = makeLowLevelOps(union, rootAttr, ll, timeout, { ready: resolve, exit: onUnmount }, logProblem);
    ll.start(spec.mountpoint, ['-o', options.join(',')], withLowLevelOpStats(ops, process.env.UFS_FUSE_OPSTATS), timeout, spinUsFromEnv(), passthroughFromEnv());
  });
} catch (err) {
  // libfuse prints its reason ("fuse: ...") on our stderr, the log, which the parent reads.
  await fail(firstLine(err));
}
mounted = true;
log(`mounted ${spec.mountpoint} (${options.join(',')})`);
// INIT is answered (and passthrough settled) just after the ready event.
setImmediate(() => log(`passthrough: ${passthroughState()}`));
try {
  await writeRecord(spec);
} catch (err) {
  log(`cannot write the mount record ${spec.recordFile}: ${firstLine(err)}`);
}
await send({ type: 'ready', pid: process.pid });
if (process.connected) process.disconnect();

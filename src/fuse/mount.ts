// Mounting and unmounting ufs unions (Contract 4). Each mount is served by its own detached
// process (server.js); mountUnion returns once that process reports the mount ready and the
// mountpoint answers. The server records itself in <run dir>/mounts/<id>.json (run dir
// /run/ufs, or $UFS_RUN_DIR), and listMounts checks those records against the kernel's
// mount table. A container's monitor serves its union on its own event loop (host.ts); its
// record says `hosted`, and unmounting it never stops that process.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsc, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UfsError, errnoCode } from '../common/errors.js';
import { SERVING_NODE_ARGS } from '../common/serving.js';
import { isUfsMount, readMountInfo, UFS_FSTYPE, type MountInfo } from './mountinfo.js';
import { fsnameOption } from './options.js';
import { mountsDir, type MountRecord, type MountSpec, type ServerMessage, type ServerSpec } from './spec.js';

export type { MountRecord, MountSpec } from './spec.js';

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'server.js');
// Node's thread pool serves every union call: sized so that slow ones (a copy-up of a big
// file, an fsync) never starve the rest. Must be in the environment before the pool starts.
const SERVER_THREADS = '8';
const READY_TIMEOUT_MS = 120_000;
const ANSWER_TIMEOUT_MS = 30_000;
const EXIT_WAIT_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Extra Node flags for the server, for profiling only (NODE_OPTIONS refuses --cpu-prof):
// UFS_SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. See also UFS_FUSE_OPSTATS (opstats.ts).
function serverNodeArgs(): string[] {
  return (process.env.UFS_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

function recordId(mountpoint: string): string {
  return createHash('sha256').update(mountpoint).digest('hex').slice(0, 16);
}

function recordFile(mountpoint: string): string {
  return path.join(mountsDir(), `${recordId(mountpoint)}.json`);
}

// A directory that must exist, canonical. `what` names it in the error.
async function existingDir(dir: string, what: string): Promise<string> {
  let real: string;
  try {
    real = await fs.realpath(dir);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw new UfsError(`${what} ${dir} does not exist`);
    if (code === 'ENOTCONN') throw new UfsError(`${what} ${dir} is a dead mount (its server is gone): run ufs umount ${dir}`);
    throw new UfsError(`${what} ${dir}: ${code ?? String(err)}`);
  }
  const st = await fs.stat(real);
  if (!st.isDirectory()) throw new UfsError(`${what} ${dir} is not a directory`);
  return real;
}

// The absolute path of a mountpoint without touching it (stat on a dead FUSE mount fails
// with ENOTCONN): canonicalize the parent only.
async function mountpointPath(mountpoint: string): Promise<string> {
  const abs = path.resolve(mountpoint);
  if (abs === '/') return abs;
  try {
    return path.join(await fs.realpath(path.dirname(abs)), path.basename(abs));
  } catch {
    return abs;
  }
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

// A process's start time (field 22 of /proc/PID/stat), undefined when it is gone or a zombie.
export async function processStartTime(pid: number): Promise<number | undefined> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

// Whether a record's server still serves: a hosting process is named by its start time;
// a serving process of its own by running server.js.
async function recordAlive(rec: MountRecord): Promise<boolean> {
  if (rec.startTime !== undefined) return (await processStartTime(rec.pid)) === rec.startTime;
  return isAlive(rec.pid);
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesized command: a zombie has exited.
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8');
    // The pid is ours only if it still runs our server (pids get reused).
    return cmdline.includes('server.js');
  } catch {
    return false;
  }
}

async function waitExit(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await isAlive(pid))) return true;
    await sleep(25);
  }
  return !(await isAlive(pid));
}

// Ends a server we recorded: it should already be exiting; else TERM, then KILL.
async function stopServer(pid: number): Promise<void> {
  if (await waitExit(pid, EXIT_WAIT_MS)) return;
  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    try {
      process.kill(pid, sig);
    } catch {
      return;
    }
    if (await waitExit(pid, 5000)) return;
  }
}

function fusermount(args: string[]): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    execFile('fusermount', args, (err, _stdout, stderr) => {
      resolve({ ok: !err, message: (stderr || (err ? err.message : '')).trim().split('\n')[0] ?? '' });
    });
  });
}

async function readRecord(file: string): Promise<MountRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as MountRecord;
  } catch {
    return undefined;
  }
}

// A server removes its own record and (unless it logged a problem) its log when it exits
// cleanly; these remove what a dead one left. Logs of dead servers are kept: they say why.
async function removeRecord(rec: { mountpoint: string }): Promise<void> {
  await fs.rm(recordFile(rec.mountpoint), { force: true });
}

// libfuse explains a failed mount on stderr ("fuse: ..."), which is the server's log.
async function reasonFromLog(log: string): Promise<string | undefined> {
  const text = await fs.readFile(log, 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => /^(fuse|fusermount3?):/.test(l));
  return line?.replace(/^(fuse|fusermount3?):\s*/, '');
}

// Checks a mount request and makes the server's spec of it: canonical paths, its record
// and log files. Shared by mountUnion (a serving process) and UnionHost (in-process).
export async function serverSpecFor(spec: MountSpec): Promise<ServerSpec> {
  if (spec.lowers.length === 0) throw new UfsError('at least one lower directory is needed');
  const lowers: string[] = [];
  for (const l of spec.lowers) lowers.push(await existingDir(l, 'lower'));
  // The upper must exist, as overlayfs and Docker's drivers require: a typo must not
  // silently create a fresh, empty writable layer somewhere.
  const upper = spec.upper === undefined ? undefined : await existingDir(spec.upper, 'upper');
  if (upper) {
    try {
      await fs.access(upper, fsc.W_OK);
    } catch {
      throw new UfsError(`upper ${spec.upper} is not writable`);
    }
  }
  const mountpoint = await existingDir(await mountpointPath(spec.mountpoint), 'mountpoint');
  if ((await readMountInfo()).some((m) => m.mountpoint === mountpoint)) {
    throw new UfsError(`${spec.mountpoint} is busy: something is already mounted there`);
  }

  const layers = upper ? [upper, ...lowers] : lowers;
  if (upper && lowers.includes(upper)) throw new UfsError(`upper ${spec.upper} is also a lower`);
  for (const dir of layers) {
    // The server reads its layers by path: were a layer under the mount (or the mount under a
    // layer), it would serve requests through itself.
    if (inside(dir, mountpoint) || inside(mountpoint, dir)) {
      throw new UfsError(`mountpoint ${spec.mountpoint} and layer ${dir} overlap`);
    }
  }

  await fs.mkdir(mountsDir(), { recursive: true, mode: 0o755 });
  const recFile = recordFile(mountpoint);
  return {
    lowers,
    ...(upper ? { upper } : {}),
    mountpoint,
    fsname: fsnameOption(spec.fsname || path.basename(mountpoint) || 'root'),
    ...(spec.suid ? { suid: true } : {}),
    ...(spec.redirectDir ? { redirectDir: true } : {}),
    recordFile: recFile,
    log: recFile.replace(/\.json$/, '.log'),
  };
}

export async function mountUnion(spec: MountSpec): Promise<{ pid: number }> {
  const serverSpec = await serverSpecFor(spec);
  const { mountpoint, log } = serverSpec;

  const logFd = await fs.open(log, 'w', 0o600);
  let child;
  try {
    child = spawn(process.execPath, [...SERVING_NODE_ARGS, ...serverNodeArgs(), SERVER, JSON.stringify(serverSpec)], {
      detached: true, // its own session: it outlives us and our terminal
      cwd: '/', // holding no directory (a cwd on some other mount would keep that one busy)
      stdio: ['ignore', logFd.fd, logFd.fd, 'ipc'],
      env: { ...process.env, UV_THREADPOOL_SIZE: SERVER_THREADS },
    });
  } finally {
    await logFd.close();
  }
  const pid = child.pid;
  if (pid === undefined) throw new UfsError(`cannot start the mount server for ${spec.mountpoint}`);

  const outcome = await new Promise<ServerMessage | { type: 'exit'; code: number | null }>((resolve) => {
    const timer = setTimeout(() => resolve({ type: 'error', message: 'the mount server did not become ready' }), READY_TIMEOUT_MS);
    child.on('message', (msg: ServerMessage) => {
      clearTimeout(timer);
      resolve(msg);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ type: 'exit', code });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ type: 'error', message: err.message });
    });
  });
  child.removeAllListeners('message');
  if (child.connected) child.disconnect();
  child.unref();

  if (outcome.type !== 'ready') {
    const raw = outcome.type === 'error' ? outcome.message : `the mount server exited (${outcome.code})`;
    const detail = (await reasonFromLog(log)) ?? raw;
    await abandon(mountpoint, pid, log);
    throw new UfsError(`cannot mount ${spec.mountpoint}: ${detail}`);
  }

  // Ready means the FUSE loop runs; make sure the kernel has the mount where we asked.
  const ours = await isUfsMount(mountpoint);
  try {
    if (!ours) throw new Error('not in the mount table');
    await answers(mountpoint, ANSWER_TIMEOUT_MS);
  } catch (err) {
    await abandon(mountpoint, pid, log);
    throw new UfsError(`cannot mount ${spec.mountpoint}: the mount does not answer (${err instanceof Error ? err.message : err})`);
  }
  return { pid };
}

// The mount answers a stat; a server that never replies must not hang us: after `ms` we give
// up (abandon() then aborts the mount, which also ends the pending stat).
async function answers(mountpoint: string, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms / 1000} s`)), ms);
  });
  try {
    await Promise.race([fs.stat(mountpoint), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// A failed mount leaves nothing behind: no server, no mount, no record, no log.
async function abandon(mountpoint: string, pid: number, log: string): Promise<void> {
  if (await isAlive(pid)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    if (!(await waitExit(pid, 5000))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await waitExit(pid, 5000);
    }
  }
  if (await isUfsMount(mountpoint)) await fusermount(['-uz', mountpoint]);
  await removeRecord({ mountpoint });
  await fs.rm(log, { force: true });
}

export async function unmountUnion(mountpoint: string): Promise<void> {
  const mp = await mountpointPath(mountpoint);
  const rec = await readRecord(recordFile(mp));
  const entry: MountInfo | undefined = (await readMountInfo()).filter((m) => m.mountpoint === mp).pop();
  if (!entry) {
    if (rec) await removeRecord(rec);
    throw new UfsError(`${mountpoint} is not mounted`);
  }
  if (entry.fstype !== UFS_FSTYPE) throw new UfsError(`${mountpoint} is not a ufs mount (${entry.fstype})`);

  const alive = rec ? await recordAlive(rec) : true;
  if (!alive) {
    // The server died: the mount only answers ENOTCONN. Detach it; nothing can be lost.
    const r = await fusermount(['-uz', mp]);
    if (!r.ok) throw new UfsError(`cannot unmount ${mountpoint}: ${r.message}`);
    if (rec) await removeRecord(rec);
    return;
  }

  const r = await fusermount(['-u', mp]);
  if (!r.ok) {
    if (/busy/i.test(r.message)) throw new UfsError(`${mountpoint} is busy`);
    throw new UfsError(`cannot unmount ${mountpoint}: ${r.message}`);
  }
  if (rec?.hosted) {
    // Its host process has other work (a container's monitor): it drops the record itself
    // once its FUSE loop ends; it is not ours to stop.
    const end = Date.now() + EXIT_WAIT_MS;
    while (Date.now() < end && (await readRecord(recordFile(mp))) && (await recordAlive(rec))) await sleep(10);
    await removeRecord(rec);
  } else if (rec) {
    await stopServer(rec.pid);
    await removeRecord(rec);
  }
}

// The mounts ufs has made, as this mount namespace sees them. Records whose mount is gone
// are dropped; a mount whose server died is listed with `stale: true` (ufs umount cleans it).
export async function listMounts(): Promise<MountRecord[]> {
  let files: string[];
  try {
    files = (await fs.readdir(mountsDir())).filter((f) => f.endsWith('.json'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const mounted = new Set((await readMountInfo()).filter((m) => m.fstype === UFS_FSTYPE).map((m) => m.mountpoint));
  const out: MountRecord[] = [];
  for (const f of files.sort()) {
    const rec = await readRecord(path.join(mountsDir(), f));
    if (!rec) continue;
    const alive = await recordAlive(rec);
    if (!mounted.has(rec.mountpoint)) {
      // Unmounted: a live server is on its way out and removes its own record.
      if (!alive) await removeRecord(rec);
      continue;
    }
    out.push(alive ? rec : { ...rec, stale: true });
  }
  return out.sort((a, b) => a.mountpoint.localeCompare(b.mountpoint));
}

// Host file system primitives of the union, wrapped so that every failure is an Error with
// an errno `code`. Nothing here follows a symlink in the last component.
//
// Metadata calls are synchronous on purpose: on a local file system an lstat, open or rename
// takes microseconds, while a trip through libuv's thread pool costs two thread switches and
// often more than the call itself; each FUSE request is one such trip already. A synchronous
// call also cannot interleave with another request, which keeps resolutions consistent.
// What can take long stays asynchronous: copying a big file's data and fsync.
//
// Host paths and names are byte strings: one JS character per byte (latin1), as the FUSE
// binding hands names over, so that every name round-trips byte for byte whatever its
// encoding. Node's fs takes them as Buffers (hostArg); `hfs` below is the subset of node:fs the
// union uses, speaking byte strings. Layer roots come in as UTF-8 and are turned into byte
// strings once (toBytes).
//
// Any path the kernel accepts works: a merged path may be PATH_MAX long, and the layer's root
// comes on top. A host path longer than LONG_PATH is reached through an fd of one of its
// directories (/proc/self/fd/N/rest: the kernel's limit applies to each string, not to the
// depth). Those directory fds are kept until something could move a directory (forgetDirFds).
import fs, { type BigIntStats } from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import { sys, UTIME_NOW, UTIME_OMIT } from '../sys/index.js';
import { fsError, hasCode } from './errors.js';
import type { TimeSpec } from './types.js';

const C = fs.constants;

export function toBytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

export function fromBytes(s: string): string {
  return Buffer.from(s, 'latin1').toString('utf8');
}

const LONG_PATH = 3800;
const dirFds = new Map<string, number>();

function dirFd(dir: string): number {
  let fd = dirFds.get(dir);
  if (fd === undefined) {
    fd = fs.openSync(Buffer.from(dir, 'latin1'), C.O_RDONLY | C.O_DIRECTORY);
    dirFds.set(dir, fd);
  }
  return fd;
}

// A path no longer than LONG_PATH bytes naming the same file (byte string in, byte string out).
export function shortPath(p: string): string {
  while (p.length > LONG_PATH) {
    const cut = p.lastIndexOf('/', LONG_PATH);
    if (cut <= 0) throw fsError('ENAMETOOLONG');
    p = `/proc/self/fd/${dirFd(p.slice(0, cut))}${p.slice(cut)}`;
  }
  return p;
}

// Directories may have moved or gone: the fds kept for long paths are dropped (closed a little
// later, in case a call still in the thread pool uses one).
export function forgetDirFds(): void {
  if (dirFds.size === 0) return;
  const fds = [...dirFds.values()];
  dirFds.clear();
  setTimeout(() => {
    for (const fd of fds) fs.close(fd, () => {});
  }, 60_000).unref();
}

export function hostArg(p: string): Buffer {
  return Buffer.from(shortPath(p), 'latin1');
}

const names = (list: Buffer[]): string[] => list.map((b) => b.toString('latin1'));

// node:fs for byte-string paths (see above). Only what the union calls.
export const hfs = {
  constants: C,
  statSync: (p: string): fs.Stats => fs.statSync(hostArg(p)),
  realpathSync: (p: string): string => fs.realpathSync(hostArg(p), { encoding: 'buffer' }).toString('latin1'),
  readdirSync: (p: string): string[] => readdirNames(p),
  readdirTypes: (p: string): { name: string; isDirectory(): boolean }[] =>
    fs.readdirSync(hostArg(p), { encoding: 'buffer', withFileTypes: true }).map((d) => ({ name: (d.name as unknown as Buffer).toString('latin1'), isDirectory: () => d.isDirectory() })),
  readlinkSync: (p: string): string => fs.readlinkSync(hostArg(p), { encoding: 'buffer' }).toString('latin1'),
  symlinkSync: (target: string, p: string): void => fs.symlinkSync(Buffer.from(target, 'latin1'), hostArg(p)),
  mkdirSync: (p: string, mode: number): void => void fs.mkdirSync(hostArg(p), mode),
  rmdirSync: (p: string): void => fs.rmdirSync(hostArg(p)),
  unlinkSync: (p: string): void => fs.unlinkSync(hostArg(p)),
  renameSync: (a: string, b: string): void => {
    fs.renameSync(hostArg(a), hostArg(b));
    forgetDirFds();
  },
  linkSync: (a: string, b: string): void => fs.linkSync(hostArg(a), hostArg(b)),
  chmodSync: (p: string, mode: number): void => fs.chmodSync(hostArg(p), mode),
  chownSync: (p: string, uid: number, gid: number): void => fs.chownSync(hostArg(p), uid, gid),
  lchownSync: (p: string, uid: number, gid: number): void => fs.lchownSync(hostArg(p), uid, gid),
  openSync: (p: string, flags: number, mode?: number): number => fs.openSync(hostArg(p), flags, mode),
  closeSync: (fd: number): void => fs.closeSync(fd),
  statfsSync: (p: string): fs.StatsFs => fs.statfsSync(hostArg(p)),
};

export const openFd = (file: string, flags: number, mode = 0o600): number => fs.openSync(hostArg(file), flags, mode);
export const closeFd = (fd: number): void => fs.closeSync(fd);
export function fstatFd(fd: number): HostStat {
  if (typeof sys.fstatInto !== 'function') return HostStat.of(fs.fstatSync(fd, { bigint: true }));
  const e = sys.fstatInto(fd, statNums, statBigs);
  if (e !== 0) throw fsError(ERRNO_CODES.get(e) ?? 'EIO', `fstat of fd ${fd}`);
  return statAt(statNums, statBigs, 0);
}
// Through a read-only fd (open(O_RDONLY|O_TRUNC) hands one over) ftruncate says EINVAL: the
// size changes through a second, writable open of the same file (permission was the kernel's).
export function ftruncateFd(fd: number, size: number): void {
  try {
    fs.ftruncateSync(fd, size);
  } catch (err) {
    if (!hasCode(err, 'EINVAL', 'EBADF')) throw err;
    const wfd = fs.openSync(`/proc/self/fd/${fd}`, C.O_WRONLY | C.O_NONBLOCK | C.O_NOCTTY);
    try {
      fs.ftruncateSync(wfd, size);
    } finally {
      fs.closeSync(wfd);
    }
  }
}
export const fchownFd = (fd: number, uid: number, gid: number): void => fs.fchownSync(fd, uid, gid);
export const fchmodFd = (fd: number, mode: number): void => fs.fchmodSync(fd, mode);

// These may wait on the disk: off the JS thread.
function cb(run: (done: (err: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => run((err) => (err ? reject(err) : resolve())));
}
export const fsyncFd = (fd: number): Promise<void> => cb((done) => fs.fsync(fd, done));
export const fdatasyncFd = (fd: number): Promise<void> => cb((done) => fs.fdatasync(fd, done));

// What the union reads of a host object's metadata: the small fields as numbers, the 64-bit
// ones (inode number, size, blocks, times in ns) as bigints. Lighter than Node's BigIntStats
// (eighteen bigints and an object per call): the union lstats every entry of every listing.
export class HostStat {
  constructor(
    readonly dev: number,
    readonly mode: number,
    readonly nlink: number,
    readonly uid: number,
    readonly gid: number,
    readonly rdev: number,
    readonly blksize: number,
    readonly ino: bigint,
    readonly size: bigint,
    readonly blocks: bigint,
    readonly atimeNs: bigint,
    readonly mtimeNs: bigint,
    readonly ctimeNs: bigint,
  ) {}

  isDirectory(): boolean {
    return (this.mode & C.S_IFMT) === C.S_IFDIR;
  }

  isFile(): boolean {
    return (this.mode & C.S_IFMT) === C.S_IFREG;
  }

  isSymbolicLink(): boolean {
    return (this.mode & C.S_IFMT) === C.S_IFLNK;
  }

  static of(st: BigIntStats): HostStat {
    return new HostStat(Number(st.dev), Number(st.mode), Number(st.nlink), Number(st.uid), Number(st.gid), Number(st.rdev),
      Number(st.blksize), st.ino, st.size, st.blocks, st.atimeNs, st.mtimeNs, st.ctimeNs);
  }
}

const statNums = new Float64Array(7);
const statBigs = new BigInt64Array(6);
// Stat i of the arrays lstatInto, fstatInto or lstatNamesInto wrote.
function statAt(nums: Float64Array, bigs: BigInt64Array, i: number): HostStat {
  const a = i * 7;
  const b = i * 6;
  return new HostStat(nums[a]!, nums[a + 1]!, nums[a + 2]!, nums[a + 3]!, nums[a + 4]!, nums[a + 5]!, nums[a + 6]!,
    bigs[b]!, bigs[b + 1]!, bigs[b + 2]!, bigs[b + 3]!, bigs[b + 4]!, bigs[b + 5]!);
}
const LSTAT_OPTS = { bigint: true, throwIfNoEntry: false } as const;
const ERRNO_CODES = new Map(Object.entries(os.constants.errno).map(([code, n]) => [n, code]));
const { ENOENT, ENOTDIR, ENAMETOOLONG } = os.constants.errno;

// lstat; null when the name is not there (or cannot be: too long, parent not a dir), which
// costs no exception.
export function lstatOrNull(file: string): HostStat | null {
  if (typeof sys.lstatInto !== 'function') {
    try {
      const st = fs.lstatSync(hostArg(file), LSTAT_OPTS);
      return st ? HostStat.of(st) : null;
    } catch (err) {
      if (hasCode(err, 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG')) return null;
      throw err;
    }
  }
  const e = sys.lstatInto(shortPath(file), statNums, statBigs);
  if (e === 0) return statAt(statNums, statBigs, 0);
  if (e === ENOENT || e === ENOTDIR || e === ENAMETOOLONG) return null;
  throw fsError(ERRNO_CODES.get(e) ?? 'EIO', `lstat ${fromBytes(file)}`);
}

// While set, listings leave the directories' atimes alone (the serving process's own warm-up
// reads through its mount: src/fuse/warmup.ts).
let quietListings = false;

export function setQuietListings(on: boolean): void {
  quietListings = on;
}

// The names in a directory (without "." and "..", sorted as node:fs sorts them), as byte
// strings: one native call per directory where node:fs makes a Buffer per name.
function readdirNames(dir: string): string[] {
  if (typeof sys.readdirNames !== 'function') return names(fs.readdirSync(hostArg(dir), { encoding: 'buffer' }));
  const r = sys.readdirNames(shortPath(dir), quietListings);
  if (typeof r === 'number') throw fsError(ERRNO_CODES.get(r) ?? 'EIO', `scandir ${fromBytes(dir)}`);
  return r === '' ? [] : r.split('\0');
}

let batchNums = new Float64Array(7 * 256);
let batchBigs = new BigInt64Array(6 * 256);
let batchErrs = new Int32Array(256);

// lstat of each of `names` in the directory `dir` (a listing's entries, for a readdirplus),
// with one native call: per name its HostStat, null where lstatOrNull says null, undefined
// where it would throw (the caller asks lstatOrNull for those). Undefined for all when the
// directory cannot be opened or the native module is missing.
export function lstatNames(dir: string, list: readonly string[]): (HostStat | null | undefined)[] | undefined {
  if (typeof sys.lstatNamesInto !== 'function') return undefined;
  const n = list.length;
  if (n > batchErrs.length) {
    const room = Math.max(n, batchErrs.length * 2);
    batchNums = new Float64Array(7 * room);
    batchBigs = new BigInt64Array(6 * room);
    batchErrs = new Int32Array(room);
  }
  let short: string;
  try {
    short = shortPath(dir);
  } catch {
    return undefined;
  }
  if (sys.lstatNamesInto(short, list.join('\0'), batchNums, batchBigs, batchErrs) !== 0) return undefined;
  const out: (HostStat | null | undefined)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const e = batchErrs[i]!;
    if (e === 0) out[i] = statAt(batchNums, batchBigs, i);
    else out[i] = e === ENOENT || e === ENOTDIR || e === ENAMETOOLONG ? null : undefined;
  }
  return out;
}

// lstat that throws (ENOENT included).
export function lstatStrict(file: string): HostStat {
  const st = lstatOrNull(file);
  if (!st) return HostStat.of(fs.lstatSync(hostArg(file), { bigint: true })); // throws the real error
  return st;
}

export function fmtOf(mode: number): number {
  return mode & C.S_IFMT;
}

// Removes a tree (rm -rf; never follows symlinks), quietly if it is already gone.
// Our own walk, not fs.rmSync: it works at any depth (shortPath), which Node's would not.
export function removeTree(file: string): void {
  const st = lstatOrNull(file);
  if (!st) return;
  if (st.isDirectory()) {
    for (const name of hfs.readdirSync(file)) removeTree(`${file}/${name}`);
    hfs.rmdirSync(file);
    forgetDirFds();
  } else {
    hfs.unlinkSync(file);
  }
}

// Files up to this size are copied synchronously: one copy_file_range costs less than a trip
// through the thread pool. Bigger ones are copied in the pool, so that the JS thread keeps
// serving while gigabytes move.
const SYNC_COPY_MAX = 1 << 20;

// Copies a regular file's data to `dst`, which must not exist (reflink where possible).
// Returns a promise only when the copy runs in the pool.
export function copyData(src: string, dst: string, size: bigint): Promise<void> | undefined {
  const flags = C.COPYFILE_EXCL | C.COPYFILE_FICLONE;
  if (size > BigInt(SYNC_COPY_MAX)) return fsp.copyFile(hostArg(src), hostArg(dst), flags);
  fs.copyFileSync(hostArg(src), hostArg(dst), flags);
  return undefined;
}

// ---- src/sys wrappers -------------------------------------------------------------------

type SysFn = 'lgetxattr' | 'lsetxattr' | 'llistxattr' | 'lremovexattr' | 'mknod' | 'utimensat';

function native<K extends SysFn>(name: K): (typeof sys)[K] {
  const fn = (sys as unknown as Record<string, unknown>)[name];
  if (typeof fn !== 'function') throw fsError('ENOTSUP', `native ${name} is not built (native/build/Release/ufs_native.node)`);
  return (fn as (...args: unknown[]) => unknown).bind(sys) as (typeof sys)[K];
}

// Directories a walk is likely to list soon (see warmDirs in src/sys/index.ts). Only a hint:
// nothing happens without the native module.
export function warmDirs(dirs: string[]): void {
  if (dirs.length > 0 && typeof sys.warmDirs === 'function') sys.warmDirs(dirs);
}

export function hasNative(name: SysFn): boolean {
  return typeof (sys as unknown as Record<string, unknown>)[name] === 'function';
}

// The value, or undefined when the file has no such attribute.
export function getXattr(file: string, name: string): Buffer | undefined {
  try {
    return native('lgetxattr')(hostArg(file), name);
  } catch (err) {
    if (hasCode(err, 'ENODATA')) return undefined;
    throw err;
  }
}

export function getXattrStrict(file: string, name: string): Buffer {
  return native('lgetxattr')(hostArg(file), name);
}

export function listXattrs(file: string): string[] {
  return native('llistxattr')(hostArg(file));
}

export function setXattr(file: string, name: string, value: Buffer, flags = 0): void {
  native('lsetxattr')(hostArg(file), name, value, flags);
}

export function removeXattr(file: string, name: string): void {
  native('lremovexattr')(hostArg(file), name);
}

export function mknod(file: string, mode: number, dev: number): void {
  native('mknod')(hostArg(file), mode, dev);
}

const NS = 1_000_000_000n;

function timespec(t: TimeSpec): [number, number] {
  if (t === 'now') return [0, UTIME_NOW];
  if (t === 'omit') return [0, UTIME_OMIT];
  let sec = t / NS;
  let nsec = t % NS;
  if (nsec < 0n) {
    nsec += NS;
    sec -= 1n;
  }
  return [Number(sec), Number(nsec)];
}

// utimensat(AT_SYMLINK_NOFOLLOW): sets the times of `file` itself, link or not.
export function setTimes(file: string, atime: TimeSpec, mtime: TimeSpec): void {
  const [as, an] = timespec(atime);
  const [ms, mn] = timespec(mtime);
  native('utimensat')(hostArg(file), as, an, ms, mn);
}

// Host file system primitives of the union, wrapped so that every failure is an Error with
// an errno `code`. Nothing here follows a symlink in the last component.
//
// Metadata calls are synchronous on purpose: on a local file system an lstat, open or rename
// takes microseconds, while a trip through libuv's thread pool costs two thread switches and
// often more than the call itself; each FUSE request is one such trip already. A synchronous
// call also cannot interleave with another request, which keeps resolutions consistent.
// What can take long stays asynchronous: copying a big file's data and fsync.
import fs, { type BigIntStats } from 'node:fs';
import fsp from 'node:fs/promises';
import { sys, UTIME_NOW, UTIME_OMIT } from '../sys/index.js';
import { fsError, hasCode } from './errors.js';
import type { TimeSpec } from './types.js';

const C = fs.constants;

export const openFd = (file: string, flags: number, mode = 0o600): number => fs.openSync(file, flags, mode);
export const closeFd = (fd: number): void => fs.closeSync(fd);
export const fstatFd = (fd: number): BigIntStats => fs.fstatSync(fd, { bigint: true });
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

const LSTAT_OPTS = { bigint: true, throwIfNoEntry: false } as const;

// lstat; null when the name is not there (or cannot be: too long, parent not a dir).
// ENOENT costs no exception (throwIfNoEntry: false).
export function lstatOrNull(file: string): BigIntStats | null {
  try {
    return fs.lstatSync(file, LSTAT_OPTS) ?? null;
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG')) return null;
    throw err;
  }
}

export function fmtOf(mode: number | bigint): number {
  return Number(mode) & C.S_IFMT;
}

// Removes a tree (rm -rf; never follows symlinks), quietly if it is already gone.
export function removeTree(file: string): void {
  fs.rmSync(file, { recursive: true, force: true });
}

// Files up to this size are copied synchronously: one copy_file_range costs less than a trip
// through the thread pool. Bigger ones are copied in the pool, so that the JS thread keeps
// serving while gigabytes move.
const SYNC_COPY_MAX = 1 << 20;

// Copies a regular file's data to `dst`, which must not exist (reflink where possible).
// Returns a promise only when the copy runs in the pool.
export function copyData(src: string, dst: string, size: bigint): Promise<void> | undefined {
  const flags = C.COPYFILE_EXCL | C.COPYFILE_FICLONE;
  if (size > BigInt(SYNC_COPY_MAX)) return fsp.copyFile(src, dst, flags);
  fs.copyFileSync(src, dst, flags);
  return undefined;
}

// ---- src/sys wrappers -------------------------------------------------------------------

type SysFn = 'lgetxattr' | 'lsetxattr' | 'llistxattr' | 'lremovexattr' | 'mknod' | 'utimensat';

function native<K extends SysFn>(name: K): (typeof sys)[K] {
  const fn = (sys as unknown as Record<string, unknown>)[name];
  if (typeof fn !== 'function') throw fsError('ENOTSUP', `native ${name} is not built (native/build/Release/ufs_native.node)`);
  return (fn as (...args: unknown[]) => unknown).bind(sys) as (typeof sys)[K];
}

export function hasNative(name: SysFn): boolean {
  return typeof (sys as unknown as Record<string, unknown>)[name] === 'function';
}

// The value, or undefined when the file has no such attribute.
export function getXattr(file: string, name: string): Buffer | undefined {
  try {
    return native('lgetxattr')(file, name);
  } catch (err) {
    if (hasCode(err, 'ENODATA')) return undefined;
    throw err;
  }
}

export function getXattrStrict(file: string, name: string): Buffer {
  return native('lgetxattr')(file, name);
}

export function listXattrs(file: string): string[] {
  return native('llistxattr')(file);
}

export function setXattr(file: string, name: string, value: Buffer, flags = 0): void {
  native('lsetxattr')(file, name, value, flags);
}

export function removeXattr(file: string, name: string): void {
  native('lremovexattr')(file, name);
}

export function mknod(file: string, mode: number, dev: number): void {
  native('mknod')(file, mode, dev);
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
  native('utimensat')(file, as, an, ms, mn);
}

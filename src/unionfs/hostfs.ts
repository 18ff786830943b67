// Host file system primitives the union needs and Node's promise API lacks: calls on raw
// numeric fds (FUSE handles are real fds) and the system calls of src/sys (xattrs with
// l* semantics, mknod, utimensat with nanoseconds), wrapped so that every failure is an
// Error with an errno `code`. Nothing here follows a symlink in the last component.
import fs, { type BigIntStats } from 'node:fs';
import fsp from 'node:fs/promises';
import { sys, UTIME_NOW, UTIME_OMIT } from '../sys/index.js';
import { fsError, hasCode } from './errors.js';
import type { TimeSpec } from './types.js';

const C = fs.constants;

function cb<T>(run: (done: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => run((err, value) => (err ? reject(err) : resolve(value as T))));
}

export const openFd = (file: string, flags: number, mode = 0o600): Promise<number> =>
  cb<number>((done) => fs.open(file, flags, mode, done));
export const closeFd = (fd: number): Promise<void> => cb<void>((done) => fs.close(fd, done));
export const fstatFd = (fd: number): Promise<BigIntStats> =>
  cb<BigIntStats>((done) => fs.fstat(fd, { bigint: true }, done as (e: NodeJS.ErrnoException | null, s: BigIntStats) => void));
export const ftruncateFd = (fd: number, size: number): Promise<void> => cb<void>((done) => fs.ftruncate(fd, size, done));
export const fsyncFd = (fd: number): Promise<void> => cb<void>((done) => fs.fsync(fd, done));
export const fdatasyncFd = (fd: number): Promise<void> => cb<void>((done) => fs.fdatasync(fd, done));
export const fchownFd = (fd: number, uid: number, gid: number): Promise<void> => cb<void>((done) => fs.fchown(fd, uid, gid, done));
export const fchmodFd = (fd: number, mode: number): Promise<void> => cb<void>((done) => fs.fchmod(fd, mode, done));

// lstat; null when the name is not there (or cannot be: too long, parent not a dir).
export async function lstatOrNull(file: string): Promise<BigIntStats | null> {
  try {
    return await fsp.lstat(file, { bigint: true });
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG')) return null;
    throw err;
  }
}

export function fmtOf(mode: number | bigint): number {
  return Number(mode) & C.S_IFMT;
}

// Removes a tree (rm -rf; never follows symlinks), quietly if it is already gone.
export async function removeTree(file: string): Promise<void> {
  await fsp.rm(file, { recursive: true, force: true });
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

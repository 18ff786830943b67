// Typed access to native/sys/ufs_native.c: the system calls Node lacks.
// Every call is synchronous and, on failure, throws an Error whose `code` is the errno
// name (ENOENT, ENODATA, ...) and `errno` the negative number, as Node's fs errors do.
// All path-taking calls act on the link itself (no symlink is followed).
import { createRequire } from 'node:module';
import path from 'node:path';
import { PROJECT_ROOT } from '../common/paths.js';

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

// utimensat(2) special nanosecond values.
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;

// renameat2(2) flags.
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;
export const RENAME_WHITEOUT = 4;

// flock(2) operations.
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

// umount2(2) flags.
export const MNT_DETACH = 2;

// Paths as strings (UTF-8) or Buffers (bytes as they are).
interface NativeSys {
  lgetxattr(file: string | Buffer, name: string): Buffer;
  lsetxattr(file: string | Buffer, name: string, value: Buffer, flags: number): void;
  llistxattr(file: string | Buffer): string[];
  lremovexattr(file: string | Buffer, name: string): void;
  mknod(file: string | Buffer, mode: number, dev: number): void;
  // Times as (seconds, nanoseconds); nsec may be UTIME_NOW or UTIME_OMIT. Never follows a link.
  utimensat(file: string | Buffer, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void;
  renameat2(from: string | Buffer, to: string | Buffer, flags: number): void;
  // flock(2); with LOCK_NB, false when the lock is held elsewhere.
  flock(fd: number, op: number): boolean;
  // flock(2) that waits (on one of libuv's pool threads), without blocking the event loop.
  flockWait(fd: number, op: number): Promise<void>;
  // Reaps a child libuv does not know (one reparented to a subreaper), waiting on a pool thread.
  waitpid(pid: number): Promise<{ code: number | null; signal: number | null }>;
  // umount2(2); flags MNT_DETACH for a lazy unmount.
  umount2(target: string, flags: number): void;
  // open_tree(2) with OPEN_TREE_CLONE: an fd on a detached copy of the mount at `path`,
  // reached through /proc/self/fd/FD without keeping the mount itself busy.
  openTreeClone(path: string): number;
  // prctl(PR_SET_CHILD_SUBREAPER).
  setChildSubreaper(on: boolean): void;
  // posix_spawn(3) of `file` (a path) with our stdout/stderr, stdin ours or /dev/null, in a
  // new session if asked, every signal at its default: no fork of this process (Node's spawn
  // forks it, which costs milliseconds per start). Reaped here once it ends (a pidfd polled
  // on the event loop).
  // `stdio` names files in place of ours: stdin read from one, stdout/stderr written anew (0600).
  spawnWait(
    file: string,
    argv: string[],
    env: string[],
    stdinNull: boolean,
    setsid: boolean,
    stdio?: [string | null, string | null, string | null],
  ): { pid: number; exited: Promise<{ code: number | null; signal: number | null }> };
  // A new network namespace held by a bind mount on `file` (an existing empty file), as
  // `ip netns add` makes one; the file's directory becomes a shared mount.
  bindNetns(file: string): void;
  // Unmaps the pages of `file`'s read-only private mappings that hold no anonymous page (they
  // stay in the page cache) and trims malloc's free memory; returns the kB unmapped.
  unmapCleanCode(file: string): number;
  // Reads these directories and lstats their entries on a background thread, newest request
  // first, to fill the kernel's caches ahead of a walk (paths as byte strings: one character
  // per byte). Returns at once; a full queue drops its oldest requests.
  warmDirs(paths: string[]): void;
  // lstat(2) of a byte-string path into the caller's arrays: nums = dev, mode, nlink, uid,
  // gid, rdev, blksize; bigs = ino, size, blocks, atime, mtime, ctime (ns). Returns 0 or the
  // errno (positive); throws only for bad arguments.
  lstatInto(path: string, nums: Float64Array, bigs: BigInt64Array): number;
  // The same for fstat(2) of an open fd.
  fstatInto(fd: number, nums: Float64Array, bigs: BigInt64Array): number;
  // The names in a directory but "." and "..", sorted by strcmp as node's readdirSync sorts
  // them, joined by NUL into one byte string; or the errno (positive) when it cannot be read.
  // noAtime: read it with O_NOATIME where the kernel allows (the owner or CAP_FOWNER).
  readdirNames(dir: string, noAtime?: boolean): string | number;
  // lstat of each NUL-joined name in `dir`, one open of `dir` for all: entry i into
  // nums[7i..] and bigs[6i..] as lstatInto writes them, its errno (0: ok) into errs[i].
  // Returns 0, or the errno of opening `dir` (then nothing is written).
  lstatNamesInto(dir: string, names: string, nums: Float64Array, bigs: BigInt64Array, errs: Int32Array): number;
}

const require = createRequire(import.meta.url);
export const sys: NativeSys = require(path.join(PROJECT_ROOT, 'native', 'build', 'Release', 'ufs_native.node')) as NativeSys;

// An environment as spawnWait takes it: NAME=value strings.
export function envList(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`);
}

// Typed access to our patched fuse-native (Contract 1 of the brief). The package ships no
// types; this module is the only one that loads it, and only the serving process imports it.
import { createRequire } from 'node:module';

export interface FuseContext { uid: number; gid: number; pid: number; umask: number }

export type FuseTime = bigint | 'now' | 'omit';

export interface FuseStat {
  mode: number; uid: number; gid: number; size: number | bigint; dev: number; nlink: number;
  ino: number | bigint; rdev: number; blksize: number; blocks: number | bigint;
  atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint;
}

export interface FuseStatFs {
  bsize: number; frsize: number; blocks: number; bfree: number; bavail: number; files: number;
  ffree: number; favail: number; fsid: number; flag: number; namemax: number;
}

// Every callback takes 0 or a negative errno first.
export type Done = (err: number) => void;
export type Reply<T> = (err: number, value?: T) => void;

// What the C side may answer alone (fuse-native.c, "Answers without JS"):
// - an object whose attributes only change through our own operations (and, with `host`,
//   that C may open read-only itself; `noSecurityXattrs`: getxattr of security.* is ENODATA);
export interface FuseStable { host?: string; noSecurityXattrs?: boolean }
// - an object given as an fd (the C side owns and closes it), whose fstat is its attributes
//   from then on (reported with the inode number of this answer; st_nlink 1 with nlink1);
export interface FusePin { fd: number; nlink1: boolean }
// - an open handle: the inode number to report for it, whether it is the very object its
//   path names while open (then getattr, getxattr, chmod, chown, utimens, truncate of that
//   path may use the handle), and whether release may just close it.
export interface FuseHandleInfo { ino: bigint | number; upper: boolean; closeHere?: boolean }
export type OpenReply = (err: number, fh?: number, info?: FuseHandleInfo) => void;

export interface FuseOps {
  init?(cb: Done): void;
  getattr?(path: string, cb: (err: number, stat?: FuseStat, stable?: FuseStable, pin?: FusePin) => void): void;
  fgetattr?(path: string | null, fh: number, cb: Reply<FuseStat>): void;
  readdir?(path: string, cb: (err: number, names?: string[], stats?: FuseStat[], stables?: (FuseStable | undefined)[]) => void): void;
  open?(path: string, flags: number, cb: OpenReply): void;
  create?(path: string, mode: number, flags: number, ctx: FuseContext, cb: OpenReply): void;
  release?(path: string | null, fh: number, cb: Done): void;
  truncate?(path: string, size: number, cb: Done): void;
  ftruncate?(path: string | null, fh: number, size: number, cb: Done): void;
  fsync?(path: string | null, datasync: boolean | number, fh: number, cb: Done): void;
  utimens?(path: string, atime: FuseTime, mtime: FuseTime, cb: Done): void;
  mkdir?(path: string, mode: number, ctx: FuseContext, cb: Done): void;
  mknod?(path: string, mode: number, dev: number, ctx: FuseContext, cb: Done): void;
  symlink?(target: string, linkPath: string, ctx: FuseContext, cb: Done): void;
  link?(existing: string, newPath: string, cb: Done): void;
  rename?(from: string, to: string, cb: Done): void;
  unlink?(path: string, cb: Done): void;
  rmdir?(path: string, cb: Done): void;
  readlink?(path: string, cb: Reply<string>): void;
  chmod?(path: string, mode: number, cb: Done): void;
  chown?(path: string, uid: number, gid: number, cb: Done): void;
  setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
  getxattr?(path: string, name: string, position: number, cb: Reply<Buffer>): void;
  listxattr?(path: string, cb: Reply<string[]>): void;
  removexattr?(path: string, name: string, cb: Done): void;
  statfs?(path: string, cb: Reply<FuseStatFs>): void;
  access?(path: string, mode: number, cb: Done): void;
}

export interface FuseOpts {
  options: string[];
  passthrough?: boolean;
  timeout?: number | false;
  onUnmount?: () => void;
}

export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

export type FuseConstructor = new (mountpoint: string, ops: FuseOps, opts: FuseOpts) => FuseInstance;

export function loadFuse(): FuseConstructor {
  const require = createRequire(import.meta.url);
  return require('fuse-native') as FuseConstructor;
}

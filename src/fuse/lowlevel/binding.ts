// Typed access to native/fuse/ufs_fuse.c, our binding to libfuse3's low-level API. Only the
// serving process loads it (one session per process).
//
// The C side calls a handler per request with a request id first; the handler answers, now
// or later, with exactly one reply* call for that id (a second one throws). Node ids are the
// kernel's handles for inodes (1 is the root); `fh` is what open/opendir answered (-1: none).
import { createRequire } from 'node:module';
import path from 'node:path';
import { PROJECT_ROOT } from '../../common/paths.js';
import type { Attr, StatFs, TimeSpec } from '../../unionfs/index.js';

export type ReqId = number;

// A directory entry for replyDir: a full Attr, or just the number and type.
export type EntryAttr = Attr | { ino: bigint | number; mode: number };

// The calling process of a request that creates something.
export interface ReqCaller { uid: number; gid: number; pid: number; umask: number }

export interface LowLevelHandlers {
  init(maxWrite: number, protoMinor: number): void; // the kernel's INIT arrived: serving
  exit(): void; // unmounted (from anywhere) or the connection was aborted
  lookup(id: ReqId, parent: number, name: string): void;
  forget(node: number, nlookup: number): void; // no reply
  forgets(pairs: Float64Array): void; // many forgets at once: node, nlookup, node, nlookup, ...; no reply
  getattr(id: ReqId, node: number, fh: number): void;
  // Fields not to change are undefined (times: 'omit').
  setattr(id: ReqId, node: number, fh: number, mode: number | undefined, uid: number | undefined, gid: number | undefined, size: bigint | undefined, atime: TimeSpec, mtime: TimeSpec, toSet: number): void;
  readlink(id: ReqId, node: number): void;
  mknod(id: ReqId, parent: number, name: string, mode: number, rdev: number, uid: number, gid: number, pid: number, umask: number): void;
  mkdir(id: ReqId, parent: number, name: string, mode: number, uid: number, gid: number, pid: number, umask: number): void;
  unlink(id: ReqId, parent: number, name: string): void;
  rmdir(id: ReqId, parent: number, name: string): void;
  symlink(id: ReqId, target: string, parent: number, name: string, uid: number, gid: number, pid: number, umask: number): void;
  rename(id: ReqId, parent: number, name: string, newParent: number, newName: string, flags: number): void;
  link(id: ReqId, node: number, newParent: number, newName: string): void;
  open(id: ReqId, node: number, flags: number): void;
  release(id: ReqId, node: number, fh: number): void; // id -1: C closed it already
  readdir(id: ReqId, node: number, fh: number, offset: number, plus: boolean, size: number): void;
  releasedir(id: ReqId, node: number, fh: number): void; // a notice (id -1), for listed handles
  statfs(id: ReqId, node: number): void;
  setxattr(id: ReqId, node: number, name: string, value: Buffer, flags: number): void;
  getxattr(id: ReqId, node: number, name: string): void;
  listxattr(id: ReqId, node: number): void;
  removexattr(id: ReqId, node: number, name: string): void;
  access(id: ReqId, node: number, mask: number): void;
  create(id: ReqId, parent: number, name: string, mode: number, flags: number, uid: number, gid: number, pid: number, umask: number): void;
  // A notice (id -1): the node's data is being read through kernel passthrough from its lower
  // file and a request would change it; the next lookup of any of its names must give a new
  // node (C answers that request ESTALE, and the kernel looks the name up again).
  detach(id: ReqId, node: number): void;
  // A create C served up to the answer (create_here in ufs_fuse.c): it made the file `name`
  // in the upper directory of `parent`, open as `fd`, of this mode and host inode number. JS
  // takes the node and answers with replyCreated (or replyErr).
  created(id: ReqId, parent: number, name: string, fd: number, mode: number, hostIno: bigint): void;
  // A notice (id -1): the background copy of the file with union inode number `ino` ended
  // (errno 0) or failed (its reads and writes now fail with EIO; the journal stays).
  copied(id: ReqId, ino: bigint, errno: number): void;
}

// replyOpen/replyCreate bits.
export const OPEN_KEEP_CACHE = 1;
export const OPEN_DIRECT_IO = 2;
export const OPEN_CACHE_DIR = 4;
export const OPEN_UPPER = 16; // the fd is the node's upper object itself

export interface LowLevelBinding {
  // Mounts `mountpoint` with libfuse arguments (['-o', 'a,b']) and serves it on this event loop.
  // attrTimeout: for the attributes C answers alone (getattr/setattr through an upper handle);
  // spinUs: after a request, keep polling this long for the next before sleeping (0: off);
  // passthrough: let the kernel read lower files itself (FUSE passthrough) where it can.
  start(mountpoint: string, args: string[], handlers: LowLevelHandlers, attrTimeout: number, spinUs: number, passthrough?: boolean): void;
  replyErr(id: ReqId, errno: number): void; // 0: success without data
  // `lowerFile`: the node is a lower layer's regular file at that host path (see lowerFileOf
  // in unionfs.ts); C then answers its read-only opens alone until something changes it. For
  // a directory: its host path (dirPathOf; with a '/' at the end for a lower one), from which
  // C answers getattr, and negative lookups when it is not merged, until a rename or rmdir
  // (a lower one: until any request that may change the union).
  replyEntry(id: ReqId, node: number, attr: Attr | null, entryTimeout: number, attrTimeout: number, lowerFile?: string): void;
  replyCreate(id: ReqId, node: number, attr: Attr, entryTimeout: number, attrTimeout: number, fh: number, bits: number): void;
  // The answer to a `created`: C sends the attributes it has, under the union's number `ino`.
  replyCreated(id: ReqId, node: number, ino: bigint): void;
  replyAttr(id: ReqId, attr: Attr, timeout: number): void;
  replyReadlink(id: ReqId, target: string | Buffer): void;
  // With `ino` (a file's fd and the inode number it reports), C serves the handle's release
  // alone (then calls release with id -1), and with OPEN_UPPER its getattr and setattr too.
  replyOpen(id: ReqId, fh: number, bits: number, ino?: bigint): void;
  replyXattr(id: ReqId, value: Buffer): void; // size query and ERANGE handled in C
  replyXattrList(id: ReqId, names: string[]): void;
  replyStatfs(id: ReqId, st: StatFs): void;
  // The first `count` entries of a DirPack (dirpack.ts): names and lower files ('' for none)
  // NUL-separated, the numbers in nums and bigs; `atEnd`: the last of them ends the listing
  // (C then answers the closing readdir itself while nothing changes). Returns how many
  // fitted; for readdirplus, each one sent with a node id counts as a lookup of that node.
  replyDir(id: ReqId, names: string, nums: Float64Array, bigs: BigInt64Array, count: number, entryTimeout: number, attrTimeout: number, lowerFiles: string, atEnd: boolean): number;
  // The node is gone from the node table (forgotten by the kernel): C drops what it keeps.
  dropNode(node: number): void;
  // What INIT negotiated about kernel passthrough, whether it is in use, and the errno that
  // turned it off after INIT (0: none; EPERM without CAP_SYS_ADMIN, ELOOP on a stacked fs).
  passthroughState(): { offered: boolean; on: boolean; failedErrno: number };
  // Copies `size` bytes from fd `src` to fd `dst` on a thread of its own and takes both fds
  // (closed when done); reads and writes of the file `ino` wait for their range meanwhile, and
  // fsync, fallocate, lseek and a setattr of size or times for the end (ufs_fuse.c, "Background
  // copy-up"). `mtimeNs`: the lower's, which the file keeps until it is written. At the end it
  // removes the journal's xattrs and entry `journal` (copyjournal.ts) and calls copied. False
  // (fds still the caller's) when it cannot start.
  copyInBackground(ino: bigint, src: number, dst: number, size: number, mtimeNs: bigint, journal: Buffer): boolean;
}

export function loadLowLevel(): LowLevelBinding {
  const require = createRequire(import.meta.url);
  return require(path.join(PROJECT_ROOT, 'native', 'build', 'Release', 'ufs_fuse.node')) as LowLevelBinding;
}

// The shapes of Contract 3 (BRIEF.md): what the union hands to the FUSE glue and to callers.

// The process behind a FUSE request (fuse_get_context).
export interface Caller {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
}

// A time to set: nanoseconds since the epoch, or utimensat's UTIME_NOW / UTIME_OMIT.
export type TimeSpec = bigint | 'now' | 'omit';

export interface Attr {
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  dev: number;
  nlink: number;
  ino: bigint;
  rdev: number;
  blksize: number;
  blocks: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

// One merged directory entry. `mode` carries the file type bits (S_IFMT) only.
export interface DirEntry {
  name: string;
  ino: bigint;
  mode: number;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

// One line of `docker diff`: A added, C changed (exists below), D deleted. Path absolute.
export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string;
}

export interface UnionOptions {
  lowers: string[]; // top first
  upper?: string; // absent: read-only union, every mutation is EROFS
  // A renamed directory with lower contents keeps them where they are and records where
  // (trusted.ufs.redirect), as overlayfs's redirect_dir=on, instead of copying its whole tree
  // into upper. Off by default: an upper must stay a complete OCI changeset for commit.
  // Redirects already in the layers are followed either way.
  redirectDir?: boolean;
}

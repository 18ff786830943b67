// The union file system's rules in plain TypeScript (no FUSE): see unionfs.ts.
export { UnionFs, type HandleInfo } from './unionfs.js';
export { listChanges } from './changes.js';
export { settleCopies } from './copyjournal.js';
export type { Attr, Caller, Change, DirEntry, StatFs, TimeSpec, UnionOptions } from './types.js';
export { FsError } from './errors.js';
export { toBytes } from './hostfs.js';
export { ORIGIN_XATTR, PRIVATE_XATTR_PREFIX, isPrivateXattr } from './inode.js';
export { OPAQUE_MARKER, TEMP_PREFIX, WH_PREFIX, isReservedName, isTempName } from './whiteout.js';

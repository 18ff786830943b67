// What the FUSE glue (lowlevel/) answers without the union:
// errno values for errors, the xattrs refused at the mount, and ids that mean "unchanged".
import os from 'node:os';
import { isPrivateXattr } from '../unionfs/index.js';

export const ERRNO = os.constants.errno as Record<string, number>;
const EIO = ERRNO.EIO!;

// Errors a filesystem hands back in ordinary use; any other is logged.
const EXPECTED = new Set([
  'ENOENT', 'EEXIST', 'ENOTEMPTY', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EROFS', 'ENODATA',
  'ERANGE', 'EINVAL', 'ENAMETOOLONG', 'ELOOP', 'EMLINK', 'ENOSPC', 'EDQUOT', 'EFBIG', 'EBUSY',
  'ETXTBSY', 'EOPNOTSUPP', 'ENOTSUP', 'E2BIG', 'EXDEV', 'ENOSYS', 'EAGAIN',
]);

export type Log = (message: string) => void;

// Union errors carry an errno name in `code`; it goes back to the kernel as a negative errno.
// Anything else is a bug: it becomes EIO and is logged.
export function toErrno(err: unknown, op: string, args: unknown[], log: Log): number {
  const code = err && typeof err === 'object' && 'code' in err ? (err as { code: unknown }).code : undefined;
  if (typeof code === 'string' && ERRNO[code] !== undefined) {
    if (!EXPECTED.has(code)) log(`${op}(${describe(args)}): ${code}: ${message(err)}`);
    return -ERRNO[code]!;
  }
  const stack = err instanceof Error && err.stack ? err.stack : String(err);
  log(`${op}(${describe(args)}): unexpected error -> EIO: ${stack}`);
  return -EIO;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function describe(args: unknown[]): string {
  return args.map((a) => (typeof a === 'string' ? JSON.stringify(a) : Buffer.isBuffer(a) ? `<${a.length} bytes>` : String(a))).join(', ');
}

// POSIX ACLs are not supported through the mount, as on a filesystem mounted `noacl`: the
// kernel would not enforce them (ufs does not ask for FUSE_POSIX_ACL), and setting one changes
// the file's mode behind the kernel's attribute cache (ext4 folds a mode-equivalent ACL into
// the mode bits), which then shows a stale mode for as long as the cache lives. With
// EOPNOTSUPP, cp -p, tar and setfacl fall back to chmod, which the kernel sees.
const ACL_XATTRS = new Set(['system.posix_acl_access', 'system.posix_acl_default']);

// Names listxattr leaves out: ACLs and the union's private metadata (origin inode, ...).
export function hiddenXattr(name: string): boolean {
  return isPrivateXattr(name) || ACL_XATTRS.has(name);
}

// The errno (positive) with which the mount refuses to get, set or remove xattr `name`
// without asking the union, or 0.
export function refusedXattr(op: 'get' | 'set' | 'remove', name: string): number {
  if (ACL_XATTRS.has(name)) return ERRNO.EOPNOTSUPP!;
  if (isPrivateXattr(name)) return op === 'get' ? ERRNO.ENODATA! : ERRNO.EPERM!;
  return 0;
}

// uid_t/gid_t -1 ("leave unchanged") may cross as 0xffffffff.
export function idArg(id: number | undefined): number {
  return id === undefined || id === 0xffffffff || id < 0 ? -1 : id;
}

// Stable inode numbers.
//
// Scheme: st_ino = tag << 48 | (underlying st_ino & (2^48 - 1)), where the tag names the layer
// the number comes from: the upper layer has tag 1, lower layer i (0 = topmost lower) has
// tag i + 2. Tags do not depend on whether an upper exists, so a read-only view of the same
// lowers reports the same numbers. Layers are assumed to each live on one file system with
// inode numbers below 2^48 (ext4, xfs, tmpfs without inode64 all qualify).
//
// Which number a path reports:
//   - a non-directory in a lower layer: that lower object's tagged number;
//   - an upper object made by copy-up (or by making a merged directory self-contained for a
//     rename) carries the number it reported before in the xattr `trusted.ufs.origin`
//     (decimal) and keeps reporting it, so st_ino does not change across copy-up; rename(2)
//     inside upper keeps the xattr with the inode, and hard links share it;
//   - a directory without origin whose contents merge with lower layers reports the number of
//     the topmost lower directory it merges with (what it reported before it reached upper);
//   - any other upper object (fresh file, fresh or opaque directory): upper's tagged number.
// The origin xattr is never listed, read, set or removed through the union.
import { getXattr, hasNative, listXattrs, removeXattr, setXattr } from './hostfs.js';

export const ORIGIN_XATTR = 'trusted.ufs.origin';
export const PRIVATE_XATTR_PREFIX = 'trusted.ufs.';

const SHIFT = 48n;
const MASK = (1n << SHIFT) - 1n;

export const UPPER_TAG = 1n;
export function lowerTag(lowerIndex: number): bigint {
  return BigInt(lowerIndex + 2);
}

export function composeIno(tag: bigint, rawIno: bigint | number): bigint {
  return (tag << SHIFT) | (BigInt(rawIno) & MASK);
}

// POSIX ACLs are not served (see unionfs.ts); the kernel would otherwise cache a stale mode.
export function isAclXattr(name: string): boolean {
  return name === 'system.posix_acl_access' || name === 'system.posix_acl_default';
}

// The union's own xattrs and overlayfs's (trusted.overlay.*, and user.overlay.* of its
// userxattr mode): what a layer directory or upper holds under those names decides what the
// union, or a kernel overlay mount of the same directories, believes (origins, opaque
// directories, redirects). They never come from an image nor pass through the mount.
export function isPrivateXattr(name: string): boolean {
  return name.startsWith(PRIVATE_XATTR_PREFIX) || name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

// Listing first: most upper files have no xattrs at all, and a failed lgetxattr (ENODATA)
// costs an exception; an empty list costs nothing.
export function readOrigin(file: string): bigint | undefined {
  if (!hasNative('llistxattr')) return undefined;
  let names: string[];
  try {
    names = listXattrs(file);
  } catch {
    return undefined; // a file system without xattrs keeps no origin
  }
  if (!names.includes(ORIGIN_XATTR)) return undefined;
  const value = getXattr(file, ORIGIN_XATTR);
  if (!value) return undefined;
  const text = value.toString('latin1');
  return /^[0-9]{1,20}$/.test(text) ? BigInt(text) : undefined;
}

// A directory renamed away from where its lower contents lie (UnionOptions.redirectDir) names
// that place: the merged path, as a byte string, at which the layers below the one holding the
// xattr are looked up for it, as overlayfs's redirect_dir does.
export const REDIRECT_XATTR = 'trusted.ufs.redirect';

export function readRedirect(dir: string): string | undefined {
  let value: Buffer | undefined;
  try {
    // Listing first, as readOrigin: a missing attribute would cost an exception.
    if (!hasNative('llistxattr') || !listXattrs(dir).includes(REDIRECT_XATTR)) return undefined;
    value = getXattr(dir, REDIRECT_XATTR);
  } catch {
    return undefined; // no xattrs here: no redirects either
  }
  const text = value?.toString('latin1');
  return text !== undefined && text.startsWith('/') ? text : undefined;
}

export function writeRedirect(dir: string, to: string): void {
  setXattr(dir, REDIRECT_XATTR, Buffer.from(to, 'latin1'), 0);
}

export function writeOrigin(file: string, ino: bigint): void {
  setXattr(file, ORIGIN_XATTR, Buffer.from(ino.toString(), 'latin1'), 0);
}

// True when the upper file system keeps trusted.* xattrs (it must, for stable inodes).
export function probeOriginSupport(upperRoot: string): boolean {
  if (!hasNative('lsetxattr')) return false;
  const probe = `${PRIVATE_XATTR_PREFIX}probe`;
  try {
    setXattr(upperRoot, probe, Buffer.from('1'), 0);
    removeXattr(upperRoot, probe);
    return true;
  } catch {
    return false;
  }
}

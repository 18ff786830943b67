// The libfuse mount options of a ufs mount.
//
// Lower layers never change and the mount is the only writer of its upper, so every change
// passes through the kernel and the kernel may cache as long as it likes: entries, attributes,
// negative lookups and file pages (kernel_cache). use_ino + readdir_ino report our own stable
// inode numbers (same path, same st_ino across copy-up; hard links share one). Requests are as
// large as libfuse2 allows (protocol 7.19: 128 KiB). Permission checks are the kernel's, from the
// mode bits (default_permissions), for every user (allow_other), as on ext4.

// A day: the kernel never needs to ask again within any realistic container lifetime that
// matters, and invalidation is implicit because all writes go through this mount.
export const CACHE_TIMEOUT_S = 86400;
export const MAX_IO = 131072;

export interface MountOptionsInput {
  upper?: string;
  fsname: string;
  suid?: boolean;
  cacheTimeoutS?: number; // default CACHE_TIMEOUT_S
}

// UFS_FUSE_CACHE_TIMEOUT (seconds, for tests and debugging): with 0 the kernel asks the server
// again on every path walk and stat, so whatever the server answers from its own caches (the
// C side of fuse-native) shows at once; test/fuse-cache.test.ts relies on it.
export function cacheTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.UFS_FUSE_CACHE_TIMEOUT;
  return v !== undefined && /^[0-9]{1,9}$/.test(v) ? Number(v) : undefined;
}

export function mountOptions(spec: MountOptionsInput): string[] {
  const timeout = spec.cacheTimeoutS ?? CACHE_TIMEOUT_S;
  return [
    'use_ino',
    'readdir_ino',
    'big_writes',
    `max_write=${MAX_IO}`,
    `max_read=${MAX_IO}`,
    'kernel_cache',
    `entry_timeout=${timeout}`,
    `attr_timeout=${timeout}`,
    `negative_timeout=${timeout}`,
    // No hard_remove: with it libfuse answers fstat(2) on an unlinked open file with ENOENT.
    // Without it, the patched fuse-native hides such files natively: the union sees a plain
    // unlink, handles keep working (path null), and no .fuse_hidden* name reaches upper.
    // Like mount(8) and overlayfs: a non-empty mountpoint is simply covered.
    'nonempty',
    ...commonOptions(spec),
  ];
}

// What both backends pass alike: permission checks by the kernel for every user, the names in
// /proc/self/mountinfo, read-only without an upper, and setuid bits only when asked for.
// Device nodes never work through the mount (nodev, libfuse's default): a container has
// CAP_MKNOD and no device cgroup here; its /dev is ufs-init's own.
function commonOptions(spec: MountOptionsInput): string[] {
  const options = ['allow_other', 'default_permissions', `fsname=${fsnameOption(spec.fsname)}`, 'subtype=ufs'];
  if (!spec.upper) options.push('ro');
  if (spec.suid) options.push('suid');
  return options;
}

// fsname ends up in /proc/self/mountinfo and inside a comma-separated option string:
// keep it short and free of separators and whitespace.
export function fsnameOption(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_.:@+-]/g, '_').slice(0, 64);
  return clean.startsWith('ufs:') ? clean : `ufs:${clean}`;
}

// Which binding serves the mount: our own on libfuse3's low-level API (the default: one kernel
// inode per union inode, readdirplus, cached listings, 1 MiB requests), or the patched
// fuse-native on libfuse2's high-level API (UFS_FUSE_BACKEND=fuse-native).
export type FuseBackend = 'lowlevel' | 'fuse-native';

export function fuseBackend(env: NodeJS.ProcessEnv = process.env): FuseBackend {
  return env.UFS_FUSE_BACKEND === 'fuse-native' ? 'fuse-native' : 'lowlevel';
}

// libfuse3's mount options for the low-level binding: caching is not a mount option there
// (every reply carries its own timeouts, every open its keep_cache), nor are inode numbers.
export function lowLevelMountOptions(spec: MountOptionsInput): string[] {
  return commonOptions(spec);
}

// How long the low-level binding keeps polling for the next request after one (see
// spin_for_request in native/fuse/ufs_fuse.c): UFS_FUSE_SPIN_US, 0 turns it off.
export const SPIN_US = 50;

export function spinUsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.UFS_FUSE_SPIN_US;
  return v !== undefined && /^[0-9]{1,6}$/.test(v) ? Number(v) : SPIN_US;
}

// The libfuse3 mount options of a ufs mount (our low-level binding, native/fuse).
//
// Caching is not a mount option with the low-level API: every reply carries its own timeouts
// (a day: lower layers never change and the mount is the only writer of its upper, so every
// change passes through the kernel), every open its keep_cache; inode numbers are ours.
// Permission checks are the kernel's, from the mode bits (default_permissions), for every user
// (allow_other), as on ext4.

export const CACHE_TIMEOUT_S = 86400;

export interface MountOptionsInput {
  upper?: string;
  fsname: string;
  suid?: boolean;
}

// UFS_FUSE_CACHE_TIMEOUT (seconds, for tests and debugging): with 0 the kernel asks the server
// again on every path walk and stat, so whatever the server answers from its own caches (the
// C side of the binding) shows at once; test/fuse-cache.test.ts relies on it.
export function cacheTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.UFS_FUSE_CACHE_TIMEOUT;
  return v !== undefined && /^[0-9]{1,9}$/.test(v) ? Number(v) : undefined;
}

// The names in /proc/self/mountinfo, read-only without an upper, and setuid bits only when
// asked for. Device nodes never work through the mount (nodev, libfuse's default): a
// container has CAP_MKNOD and no device cgroup here; its /dev is ufs-init's own.
export function lowLevelMountOptions(spec: MountOptionsInput): string[] {
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

// How long the binding keeps polling for the next request after one (see spin_for_request in
// native/fuse/ufs_fuse.c): UFS_FUSE_SPIN_US, 0 for off. A caller that just got its answer
// usually sends the next request within a few microseconds (an untar: create, write, three
// setattrs, release), and a sleep between them costs more than that: the wake-up of the
// server is an interrupt to its CPU and two context switches. 10 µs caught nearly all of
// them (untarring 20,000 files: 5.3-5.4 s with 10, 20 or 50 µs, 5.5 with 5, 6.1 with 2,
// 7.1-7.9 with none, and less server CPU than without) and bounds what a mount with sparse
// requests spends: at most 10 µs of polling per request, about what the sleep and wake-up
// it replaces cost here.
export const SPIN_US = 10;

export function spinUsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.UFS_FUSE_SPIN_US;
  return v !== undefined && /^[0-9]{1,6}$/.test(v) ? Number(v) : SPIN_US;
}

// Kernel FUSE passthrough for reads of lower files (native/fuse/ufs_fuse.c, "Passthrough"):
// on unless UFS_FUSE_PASSTHROUGH=0; used only where the kernel offers it and lets us.
export function passthroughFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.UFS_FUSE_PASSTHROUGH !== '0';
}

// Node flags for a process that serves a union: a mount's server (src/fuse/mount.ts) and a
// container's monitor (src/runtime/detach.ts); the mount.fuse helper
// (native/sys/ufs_mount_helper.c) passes the same. Peak RSS of a server while a walk of
// scripts/bench's Debian stack goes through it: 66-69 MiB without them, 54-57 with.
// - No TurboFan: its compiler's code pages and zones were most of what a walk added beyond
//   the heap, and the serving code, short calls into C, runs about as fast as baseline code
//   (a cold walk took the same time, and less CPU time).
// - A young generation of 1 MiB, and an old one allowed to grow 20% past what survived the
//   last full collection (V8's default is about double): more, smaller collections.
export const SERVING_NODE_ARGS: readonly string[] = ['--no-opt', '--max-semi-space-size=1', '--heap-growing-percent=20'];

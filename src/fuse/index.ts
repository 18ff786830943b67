// Mounting ufs unions: the API for the CLI and the runtime. Loads no native code; the
// serving process (server.ts) is the only one that loads a FUSE binding (lowlevel/ or
// fuse-native).
export { listMounts, mountUnion, unmountUnion } from './mount.js';
export type { MountRecord, MountSpec } from './spec.js';

// Mounting ufs unions: the API for the CLI and the runtime. Loads no native code; the
// serving process (server.ts) is the only one that loads the FUSE binding (lowlevel/).
export { listMounts, mountUnion, unmountUnion } from './mount.js';
export type { MountRecord, MountSpec } from './spec.js';

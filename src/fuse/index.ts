// Mounting ufs unions: the API for the CLI and the runtime. Loads no native code; only a
// serving process (server.ts) or a union host's worker thread (host.ts, hostworker.ts)
// loads the FUSE binding (lowlevel/).
export { listMounts, mountUnion, unmountUnion } from './mount.js';
export type { MountRecord, MountSpec } from './spec.js';

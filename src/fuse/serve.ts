// Serving one union over FUSE in the calling thread's event loop: the part shared by the
// serving process (server.ts) and the in-process host (host.ts).
// It never touches its own mountpoint: every path it uses is a layer path, so no request of
// ours can wait on our own FUSE loop.
import { promises as fs } from 'node:fs';
import { UnionFs } from '../unionfs/index.js';
import { readMountInfo } from './mountinfo.js';
import { withLowLevelOpStats } from './opstats.js';
import { makeLowLevelOps } from './lowlevel/ops.js';
import { loadLowLevel } from './lowlevel/binding.js';
import { CACHE_TIMEOUT_S, cacheTimeoutFromEnv, lowLevelMountOptions, passthroughFromEnv, spinUsFromEnv } from './options.js';
import type { MountRecord, ServerSpec } from './spec.js';

export interface ServeHooks {
  log(message: string): void; // what happened, for the log
  problem(message: string): void; // something went wrong: the log outlives the mount
  unmounted(): void; // the FUSE loop ended: unmounted from anywhere, or the connection aborted
}

export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

// Mounts and serves `spec`; resolves once the kernel's INIT arrived (the loop serves), with
// the libfuse options used. Rejects with a one-line reason when it cannot mount.
export async function serveUnion(spec: ServerSpec, hooks: ServeHooks): Promise<{ options: string[]; union: UnionFs }> {
  const union = new UnionFs({ lowers: spec.lowers, ...(spec.upper ? { upper: spec.upper } : {}), ...(spec.redirectDir ? { redirectDir: true } : {}) });
  await union.init();
  // Last check before mounting, against a concurrent mount of the same mountpoint.
  if ((await readMountInfo()).some((m) => m.mountpoint === spec.mountpoint)) {
    throw new Error(`${spec.mountpoint} is busy: something is already mounted there`);
  }
  const timeout = cacheTimeoutFromEnv() ?? CACHE_TIMEOUT_S;
  const options = lowLevelMountOptions(spec);
  const ll = loadLowLevel();
  const rootAttr = await union.getattr('/');
  await new Promise<void>((resolve) => {
    const ops = makeLowLevelOps(union, rootAttr, ll, timeout, { ready: resolve, exit: hooks.unmounted, note: hooks.log }, hooks.problem);
    ll.start(spec.mountpoint, ['-o', options.join(',')], withLowLevelOpStats(ops, process.env.UFS_FUSE_OPSTATS), timeout, spinUsFromEnv(), passthroughFromEnv());
  });
  // INIT is answered (and passthrough settled) just after the ready event.
  setImmediate(() => hooks.log(`passthrough: ${JSON.stringify(ll.passthroughState())}`));
  return { options, union };
}

// The mount's record (<run dir>/mounts/<id>.json), written atomically once it serves.
// `pid` is the serving process; `startTime` names it for good (pid reuse), and `hosted`
// says it serves from a thread of a process that has other work (see host.ts).
export async function writeRecord(spec: ServerSpec, extra: Pick<MountRecord, 'startTime' | 'hosted'> = {}): Promise<void> {
  const record: MountRecord = {
    mountpoint: spec.mountpoint,
    pid: process.pid,
    ...extra,
    lowers: spec.lowers,
    ...(spec.upper ? { upper: spec.upper } : {}),
    fsname: spec.fsname,
    started: new Date().toISOString(),
    log: spec.log,
  };
  const tmp = `${spec.recordFile}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
  await fs.rename(tmp, spec.recordFile);
}

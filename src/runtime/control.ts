// pause, unpause, top, stats and wait: what the OCI runtime and the container's cgroup tell
// about a running container, and the freezer.
import type { Store } from '../store/index.js';
import { UfsError } from '../common/errors.js';
import { listRecords, readRecord, updateState, type ContainerRecord } from './container.js';
import { findContainer, isRunning } from './lifecycle.js';
import { runtimeBinary, runtimeCommand, runtimeOk } from './ociruntime.js';
import { sleep } from './proc.js';
import { monitorAlive, reconcile } from './reconcile.js';

function mustRun(rec: ContainerRecord, ref: string): void {
  if (!isRunning(rec)) throw new UfsError(`container ${ref} is not running`);
}

export async function pauseContainer(store: Store, ref: string): Promise<void> {
  const rec = await findContainer(store, ref);
  mustRun(rec, ref);
  if (rec.State.Paused) throw new UfsError(`container ${ref} is already paused`);
  await runtimeOk(runtimeBinary(rec.HostConfig.Runtime), ['pause', rec.Id], `cannot pause container ${ref}`);
  updateState(store.containersDir(), rec.Id, { Paused: true });
}

export async function unpauseContainer(store: Store, ref: string): Promise<void> {
  const rec = await findContainer(store, ref);
  mustRun(rec, ref);
  if (!rec.State.Paused) throw new UfsError(`container ${ref} is not paused`);
  await runtimeOk(runtimeBinary(rec.HostConfig.Runtime), ['resume', rec.Id], `cannot unpause container ${ref}`);
  updateState(store.containersDir(), rec.Id, { Paused: undefined });
}

// Runs `fn` with the container frozen (a consistent view of its files), when it runs.
export async function whilePaused<T>(store: Store, rec: ContainerRecord, fn: () => Promise<T>): Promise<T> {
  if (!isRunning(rec) || rec.State.Paused) return fn();
  const binary = runtimeBinary(rec.HostConfig.Runtime);
  const paused = await runtimeCommand(binary, ['pause', rec.Id]);
  // A container that ended meanwhile has nothing to freeze.
  if (paused.code !== 0) {
    const now = readRecord(store.containersDir(), rec.Id);
    if (now && isRunning(now)) throw new UfsError(`cannot pause container ${rec.Name}: ${paused.stderr.trim()}`);
    return fn();
  }
  try {
    return await fn();
  } finally {
    await runtimeCommand(binary, ['resume', rec.Id]);
  }
}

// `ufs top`: the runtime's ps of the container's processes (ps -ef columns).
export async function topContainer(store: Store, ref: string, psArgs: string[]): Promise<string> {
  const rec = await findContainer(store, ref);
  mustRun(rec, ref);
  return runtimeOk(runtimeBinary(rec.HostConfig.Runtime), ['ps', rec.Id, ...(psArgs.length ? psArgs : ['-ef'])], `cannot list the processes of ${ref}`);
}

export interface ContainerStats {
  id: string;
  name: string;
  cpuPercent: number;
  memUsage: number;
  memLimit: number;
  pids: number;
  blkRead: number;
  blkWrite: number;
}

interface RuntimeStats {
  cpu?: { usage?: { total?: number } };
  memory?: { usage?: { usage?: number; limit?: number }; stats?: Record<string, number> };
  pids?: { current?: number };
  blkio?: { ioServiceBytesRecursive?: { op: string; value: number }[] };
}

async function sample(rec: ContainerRecord): Promise<RuntimeStats | undefined> {
  const r = await runtimeCommand(runtimeBinary(rec.HostConfig.Runtime), ['events', '--stats', rec.Id]);
  if (r.code !== 0) return undefined;
  try {
    return (JSON.parse(r.stdout) as { data?: RuntimeStats }).data;
  } catch {
    return undefined;
  }
}

function cpuTotal(s: RuntimeStats | undefined): number {
  return s?.cpu?.usage?.total ?? 0;
}

// One reading of each container, from its cgroup through the runtime; CPU % over a short
// interval, relative to one CPU as Docker reports it (100% = one CPU busy).
export async function statsContainers(store: Store, refs: string[]): Promise<ContainerStats[]> {
  const recs: ContainerRecord[] = [];
  if (refs.length === 0) {
    for (const r of listRecords(store.containersDir())) {
      const now = await reconcile(store, r);
      if (isRunning(now)) recs.push(now);
    }
  } else {
    for (const ref of refs) {
      const rec = await findContainer(store, ref);
      mustRun(rec, ref);
      recs.push(rec);
    }
  }
  const first = await Promise.all(recs.map(sample));
  const t0 = process.hrtime.bigint();
  await sleep(500);
  const second = await Promise.all(recs.map(sample));
  const ns = Number(process.hrtime.bigint() - t0);
  return recs.map((rec, i) => {
    const s = second[i] ?? first[i];
    const mem = s?.memory;
    // Docker subtracts the page cache (v1: total_inactive_file) from the usage.
    const cache = mem?.stats?.total_inactive_file ?? mem?.stats?.inactive_file ?? 0;
    const usage = Math.max(0, (mem?.usage?.usage ?? 0) - cache);
    const io = s?.blkio?.ioServiceBytesRecursive ?? [];
    const sum = (op: string) => io.filter((e) => e.op.toLowerCase() === op).reduce((a, e) => a + e.value, 0);
    return {
      id: rec.Id,
      name: rec.Name,
      cpuPercent: ns > 0 ? (Math.max(0, cpuTotal(second[i]) - cpuTotal(first[i])) / ns) * 100 : 0,
      memUsage: usage,
      memLimit: mem?.usage?.limit ?? 0,
      pids: s?.pids?.current ?? 0,
      blkRead: sum('read'),
      blkWrite: sum('write'),
    };
  });
}

// `ufs wait`: blocks until the container stops; its exit code.
export async function waitContainer(store: Store, ref: string): Promise<number> {
  const rec = await findContainer(store, ref);
  for (;;) {
    const now = readRecord(store.containersDir(), rec.Id);
    if (!now) return rec.State.ExitCode;
    if (!monitorAlive(now)) return (await reconcile(store, now)).State.ExitCode;
    if (now.State.Status !== 'running' && now.State.MonitorPid === 0) return now.State.ExitCode;
    await sleep(100);
  }
}

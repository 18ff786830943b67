// A container whose monitor died (the ufs process was killed, the machine crashed) still
// says "running" in its record. The next command that meets it settles it: pid 1 (if it
// somehow lives on) is killed, the stale mount detached, and the record marked exited.
import type { Store } from '../store/index.js';
import { unmountUnion } from '../fuse/index.js';
import { containerPaths, isNoSpace, readRecord, sweepTempRecords, updateState, type ContainerRecord, type ContainerState } from './container.js';
import { isAlive, isMountPoint, sleep } from './proc.js';
import { stopNetwork } from './network.js';

// Docker reports 255 for a container its daemon lost track of.
export const LOST_EXIT_CODE = 255;

export function monitorAlive(rec: ContainerRecord): boolean {
  return isAlive(rec.State.MonitorPid, rec.State.MonitorStartTime);
}

export async function reconcile(store: Store, rec: ContainerRecord): Promise<ContainerRecord> {
  if (monitorAlive(rec)) return rec;
  const dir = store.containersDir();
  const paths = containerPaths(dir, rec.Id);
  const wasRunning = rec.State.Status === 'running';
  if (wasRunning && isAlive(rec.State.Pid, rec.State.PidStartTime)) {
    try {
      process.kill(rec.State.Pid, 'SIGKILL'); // ends the whole pid namespace
    } catch {
      // gone meanwhile
    }
    // Its mount namespace holds the union until the last process in it is gone.
    for (let i = 0; i < 100 && isAlive(rec.State.Pid, rec.State.PidStartTime); i++) await sleep(20);
  }
  if (isMountPoint(paths.merged)) {
    try {
      await unmountUnion(paths.merged);
    } catch {
      // busy or already gone: the next command tries again
    }
  }
  sweepTempRecords(dir, rec.Id);
  await stopNetwork(store, rec.Id).catch(() => {}); // the next command tries again
  if (!wasRunning && !rec.State.MonitorPid) return rec;
  // Another process may have settled it meanwhile: re-read before writing.
  const now = readRecord(dir, rec.Id);
  if (!now || monitorAlive(now)) return now ?? rec;
  if (now.State.Status !== 'running' && !now.State.MonitorPid) return now;
  const settled: Partial<ContainerState> = {
    Status: now.State.Status === 'running' ? 'exited' : now.State.Status,
    ExitCode: now.State.Status === 'running' ? LOST_EXIT_CODE : now.State.ExitCode,
    Pid: 0,
    PidStartTime: undefined,
    InitPid: undefined,
    Paused: undefined,
    MonitorPid: 0,
    MonitorStartTime: undefined,
    FinishedAt: now.State.Status === 'running' ? new Date().toISOString() : now.State.FinishedAt,
    Error: now.State.Status === 'running' ? 'the ufs process that ran the container died' : now.State.Error,
  };
  try {
    return updateState(dir, rec.Id, settled) ?? now;
  } catch (err) {
    // Settling is only a cache of what the pids say: a full disk must not stop ps, stop or rm.
    if (!isNoSpace(err)) throw err;
    return { ...now, State: { ...now.State, ...settled } };
  }
}

// The monitor: the process that owns a running container. It mounts the union (writable
// layer over the init layer over the image), starts ufs-init, records the state, waits,
// records the exit, unmounts, and removes the container if asked (--rm). A foreground
// `ufs run` / `ufs start -a` is its own monitor; a detached one runs `ufs container-monitor`.
import fs from 'node:fs';
import os from 'node:os';
import { UfsError, errnoCode } from '../common/errors.js';
import { mountUnion, unmountUnion } from '../fuse/index.js';
import { resolveImage } from '../image/index.js';
import type { Store } from '../store/index.js';
import { processEnv, commandOf } from './config.js';
import { containerPaths, readRecord, shortId, updateState, type ContainerRecord, type ContainerState } from './container.js';
import { etcMounts } from './etcfiles.js';
import { JsonLogWriter } from './logs.js';
import { launch, type SignalRelay } from './launch.js';
import { isAlive, isMountPoint, processStartTime } from './proc.js';
import { mkdirInRoot } from './rootfs.js';
import { writeSpec, type InitSpec } from './spec.js';
import { resolveUser } from './user.js';
import { removeContainerFiles } from './remove.js';

export interface MonitorOptions {
  attach: boolean;                       // our stdio; else the json log
  stdin: 'inherit' | 'none' | 'hold';
  relay?: SignalRelay;
  // Called once: when the container runs (pid 1 is known, or it already ended), or with
  // the error that kept it from starting.
  onReady?: (err?: Error) => void;
}

function safeUpdate(containersDir: string, id: string, change: Partial<ContainerState>): ContainerRecord | undefined {
  try {
    return updateState(containersDir, id, change);
  } catch (err) {
    // `ufs rm -f` may have removed the container meanwhile
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function mountRootfs(store: Store, rec: ContainerRecord): Promise<string> {
  const paths = containerPaths(store.containersDir(), rec.Id);
  if (isMountPoint(paths.merged)) await unmountUnion(paths.merged).catch(() => {}); // a crash's leftover
  const image = await resolveImage(store, rec.Image);
  await mountUnion({
    lowers: [paths.init, ...image.layerDirs],
    upper: paths.upper,
    mountpoint: paths.merged,
    fsname: `ufs-${shortId(rec.Id)}`,
    suid: true, // setuid programs of the image work in the container, as in Docker
  });
  return paths.merged;
}

// The Contract 6 spec for the container's first process.
function runSpec(rec: ContainerRecord, rootfs: string): InitSpec {
  const user = resolveUser(rootfs, rec.Config.User);
  const cwd = rec.Config.WorkingDir || '/';
  if (rec.Config.WorkingDir) {
    try {
      mkdirInRoot(rootfs, cwd); // Docker creates a missing working directory
    } catch (err) {
      throw new UfsError(`cannot create the working directory ${cwd}: ${(err as Error).message}`, 125);
    }
  }
  return {
    rootfs,
    args: commandOf(rec.Config),
    env: processEnv(rec.Config, rec.Config.Tty, user.home),
    cwd,
    uid: user.uid,
    gid: user.gid,
    groups: user.groups,
    hostname: rec.Config.Hostname,
    network: rec.HostConfig.NetworkMode,
    tty: rec.Config.Tty,
    mounts: [],
  };
}

export async function runMonitor(store: Store, id: string, opts: MonitorOptions): Promise<number> {
  const dir = store.containersDir();
  const paths = containerPaths(dir, id);
  let ready = false;
  const signalReady = (err?: Error) => {
    if (ready) return;
    ready = true;
    opts.onReady?.(err);
  };

  // Claim the container under the store lock: two `ufs start` at once must not both run it.
  const rec = await store.withLock(async () => {
    const now = readRecord(dir, id);
    if (!now) throw new UfsError(`No such container: ${id}`, 125);
    if (now.State.MonitorPid !== process.pid && isAlive(now.State.MonitorPid, now.State.MonitorStartTime)) {
      throw new UfsError(`container ${now.Name} is already running`, 125);
    }
    return safeUpdate(dir, id, {
      MonitorPid: process.pid,
      MonitorStartTime: processStartTime(process.pid),
      Error: undefined,
    });
  });
  if (!rec) throw new UfsError(`No such container: ${id}`, 125);

  let status = 125;
  let setupError: Error | undefined;
  let mounted = false;
  let log: JsonLogWriter | undefined;
  try {
    const rootfs = await mountRootfs(store, rec);
    mounted = true;
    const spec = runSpec(rec, rootfs);
    spec.mounts = [...etcMounts(paths), ...rec.HostConfig.Mounts];
    writeSpec(paths.spec, spec);
    if (opts.relay?.early) {
      status = 128 + (os.constants.signals[opts.relay.early] ?? 0);
    } else {
      if (!opts.attach) log = new JsonLogWriter(paths.log(id));
      fs.rmSync(paths.pidFile, { force: true });
      status = await launch({
        args: ['run', paths.spec],
        tty: rec.Config.Tty,
        stdin: opts.stdin,
        log,
        pidFile: paths.pidFile,
        wantPid: true,
        relay: opts.relay,
        onStart: (initPid) => {
          safeUpdate(dir, id, {
            Status: 'running',
            InitPid: initPid,
            Pid: 0,
            ExitCode: 0,
            StartedAt: new Date().toISOString(),
            FinishedAt: '',
          });
        },
        onPid: (pid) => {
          safeUpdate(dir, id, { Pid: pid, PidStartTime: processStartTime(pid) });
          signalReady();
        },
      });
    }
  } catch (err) {
    setupError = err instanceof Error ? err : new Error(String(err));
  } finally {
    log?.close();
    if (mounted) {
      try {
        await unmountUnion(paths.merged);
      } catch (err) {
        // Leave it to the next command that meets it (reconcile), but say so.
        process.stderr.write(`ufs: unmounting ${paths.merged}: ${(err as Error).message}\n`);
      }
    }
    safeUpdate(dir, id, {
      Status: setupError && !readRecord(dir, id)?.State.StartedAt ? 'created' : 'exited',
      Pid: 0,
      PidStartTime: undefined,
      InitPid: undefined,
      MonitorPid: 0,
      MonitorStartTime: undefined,
      ExitCode: setupError ? 125 : status,
      FinishedAt: new Date().toISOString(),
      Error: setupError?.message,
    });
  }
  signalReady(setupError);
  const after = readRecord(dir, id);
  if (after?.HostConfig.AutoRemove) await removeContainerFiles(store, id);
  if (setupError) throw setupError instanceof UfsError ? setupError : new UfsError(setupError.message, 125);
  return status;
}

// The monitor: the process that owns a running container. It mounts the union (writable
// layer over the init layer over the image), writes the OCI bundle, runs the OCI runtime in
// the foreground, records the state, waits, records the exit, unmounts, and removes the
// container if asked (--rm). A foreground
// `ufs run` / `ufs start -a` is its own monitor; a detached one is monitormain.js. Either way
// the union is served on the monitor's own event loop (fuse/host.ts), so nothing here touches
// the mounted root with a synchronous call.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UfsError, errnoCode } from '../common/errors.js';
import { unmountUnion } from '../fuse/index.js';
import { UnionHost } from '../fuse/host.js';
import { resolveImage } from '../image/resolve.js';
import type { Store } from '../store/index.js';
import { containerSpec } from './bundle.js';
import { containerPaths, isNoSpace, readRecord, shortId, updateState, type ContainerRecord, type ContainerState } from './container.js';
import { JsonLogWriter } from './logs.js';
import type { TerminalIoSource } from './attach.js';
import { AttachServer } from './attach.js';
import { launch, launchCreated, type SignalRelay } from './launch.js';
import { isAlive, isMountPoint, processStartTime } from './proc.js';
import { deleteState, globalArgs, runtimeBinary, runtimeError, startFailureStatus, writeJson } from './ociruntime.js';
import { removeContainerFiles } from './remove.js';
import { startNetwork, stopNetwork } from './network.js';

export interface MonitorOptions {
  attach: boolean;                       // our stdio; else the json log
  io?: TerminalIoSource;                 // with attach: the CLI's stdio
  stdin: 'inherit' | 'none' | 'hold';
  relay?: SignalRelay;
  // Called once: when the container runs (pid 1 is known, or it already ended), or with
  // the error that kept it from starting.
  onReady?: (err?: Error) => void;
  // A terminal container in the background: start only once a client attached (foreground
  // `ufs run -t` / `ufs start -a` through the monitor), ready as soon as it can attach.
  waitAttach?: boolean;
  // The union host for the root, made by the caller; one of our own otherwise.
  host?: UnionHost;
  // The record as the caller just created it, naming this process as its monitor
  // (createContainer's `monitor`): already claimed.
  created?: ContainerRecord;
  // A teardown step that failed after the container ended (told, not thrown: the exit
  // status stands). The CLI prints it; the detached monitor's entry logs it.
  warn?: (message: string) => void;
}

// UFS_RUNTIME_RESIDENT=1: detached containers keep the runtime's `run` as their parent, as
// before create/start (for runtimes whose create/start differ; for comparisons).
function createStart(): boolean {
  return process.env.UFS_RUNTIME_RESIDENT !== '1';
}

function safeUpdate(containersDir: string, id: string, change: Partial<ContainerState>): ContainerRecord | undefined {
  try {
    return updateState(containersDir, id, change);
  } catch (err) {
    // `ufs rm -f` may have removed the container meanwhile
    if (errnoCode(err) === 'ENOENT') return undefined;
    // A full disk: the container goes on; the next reader settles its state from the pids.
    if (isNoSpace(err)) return undefined;
    throw err;
  }
}

async function mountRootfs(store: Store, rec: ContainerRecord, host: UnionHost): Promise<string> {
  const paths = containerPaths(store.containersDir(), rec.Id);
  if (isMountPoint(paths.merged)) await unmountUnion(paths.merged).catch(() => {}); // a crash's leftover
  const image = await resolveImage(store, rec.Image);
  await host.mount({
    lowers: [paths.init, ...image.layerDirs],
    upper: paths.upper,
    mountpoint: paths.merged,
    fsname: `ufs-${shortId(rec.Id)}`,
    suid: true, // setuid programs of the image work in the container, as in Docker
  });
  return paths.merged;
}

export async function runMonitor(store: Store, id: string, opts: MonitorOptions): Promise<number> {
  const host = opts.host ?? UnionHost.start();
  try {
    return await monitorWith(store, id, opts, host);
  } finally {
    await host.unmount();
  }
}

async function monitorWith(store: Store, id: string, opts: MonitorOptions, host: UnionHost): Promise<number> {
  const dir = store.containersDir();
  const paths = containerPaths(dir, id);
  let ready = false;
  const signalReady = (err?: Error) => {
    if (ready) return;
    ready = true;
    opts.onReady?.(err);
  };

  // Claim the container under the store lock: two `ufs start` at once must not both run it.
  const claimed = opts.created?.Id === id && opts.created.State.MonitorPid === process.pid ? opts.created : undefined;
  const rec = claimed ?? await store.withLock(async () => {
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
  let networked = false;
  let log: JsonLogWriter | undefined;
  let server: AttachServer | undefined;
  try {
    const binary = runtimeBinary(rec.HostConfig.Runtime);
    // The union's server and the network's namespace and rules start side by side (as
    // podman mounts storage while its netns is set up); each is undone below if it came up.
    networked = true;
    const [mount, started] = await Promise.allSettled([mountRootfs(store, rec, host), startNetwork(store, rec)]);
    mounted = mount.status === 'fulfilled';
    if (mount.status === 'rejected') throw mount.reason;
    if (started.status === 'rejected') throw started.reason;
    const rootfs = mount.value;
    const net = started.value;
    const spec = await containerSpec(rec, paths, rootfs, net.spec);
    fs.mkdirSync(paths.bundle, { recursive: true, mode: 0o700 });
    fs.rmSync(paths.runtimeLog, { force: true });
    writeJson(path.join(paths.bundle, 'config.json'), spec);
    // A crash's leftover state under the same id would make the runtime refuse.
    await deleteState(binary, id);
    if (opts.relay?.early) {
      status = 128 + (os.constants.signals[opts.relay.early] ?? 0);
    } else {
      // Docker logs every container, a foreground one too (its output also goes to our
      // stdio); a --rm one's log would go with it, so that one keeps the direct path.
      const tee = opts.attach && !rec.Config.Tty && !rec.HostConfig.AutoRemove;
      if (!opts.attach || tee) log = new JsonLogWriter(paths.log(id));
      let size: { cols: number; rows: number } | undefined;
      if (rec.Config.Tty && !opts.attach) {
        server = await AttachServer.listen(id);
        if (opts.waitAttach) {
          signalReady();
          size = await server.waitForClient(30_000);
        }
      }
      const running = (runtimePid: number | undefined, pid = 0) => {
        safeUpdate(dir, id, {
          Status: 'running',
          InitPid: runtimePid,
          Pid: pid,
          ...(pid ? { PidStartTime: processStartTime(pid) } : {}),
          ExitCode: 0,
          Paused: undefined,
          StartedAt: new Date().toISOString(),
          FinishedAt: '',
        });
      };
      if (log && !opts.attach && !rec.Config.Tty && opts.stdin === 'none' && createStart()) {
        // In the background without a terminal or input: no runtime process stays resident.
        // (Node closes a child's stdin pipe when the child exits: `create` cannot hand pid 1
        // a held one, so -d -i keeps `run`.)
        status = await launchCreated({
          binary,
          globalArgs: globalArgs(binary, paths.runtimeLog),
          bundle: paths.bundle,
          id,
          pidFile: paths.pidFile,
          stdin: 'none',
          log,
          relay: opts.relay,
          onRunning: (pid) => {
            running(undefined, pid);
            signalReady();
          },
        });
      } else {
        status = await launch({
          attach: server,
          size,
          binary,
          args: [...globalArgs(binary, paths.runtimeLog), 'run', '--bundle', paths.bundle, '--pid-file', paths.pidFile, id],
          tty: rec.Config.Tty,
          stdin: opts.stdin,
          log,
          tee,
          ...(opts.io ? { io: opts.io } : {}),
          pidFile: paths.pidFile,
          relay: opts.relay,
          onStart: (runtimePid) => running(runtimePid),
          onPid: (pid) => {
            safeUpdate(dir, id, { Pid: pid, PidStartTime: processStartTime(pid) });
            signalReady();
          },
        });
      }
      // The runtime's own failure (the command missing, a bad mount): 125/126/127, as Docker.
      const err = status !== 0 ? runtimeError(paths.runtimeLog) : undefined;
      if (err) {
        status = startFailureStatus(err);
        if (status === 125) throw new UfsError(err, 125);
      }
      await deleteState(binary, id);
    }
  } catch (err) {
    setupError = err instanceof Error ? err : new Error(String(err));
  } finally {
    try {
      log?.close();
    } catch {
      // the rest of the output did not fit on the disk
    }
    // Before the exit is recorded: a `start` that follows must not meet this teardown.
    // The network and the union come down side by side.
    await Promise.all([
      networked &&
        stopNetwork(store, id).catch((err: unknown) => {
          opts.warn?.((err as Error).message);
        }),
      mounted &&
        host.unmount().catch((err: unknown) => {
          // Leave it to the next command that meets it (reconcile), but say so.
          opts.warn?.(`unmounting ${paths.merged}: ${(err as Error).message}`);
        }),
    ]);
    safeUpdate(dir, id, {
      Status: setupError && !readRecord(dir, id)?.State.StartedAt ? 'created' : 'exited',
      Pid: 0,
      PidStartTime: undefined,
      InitPid: undefined,
      Paused: undefined,
      MonitorPid: 0,
      MonitorStartTime: undefined,
      ExitCode: setupError ? 125 : status,
      FinishedAt: new Date().toISOString(),
      Error: setupError?.message,
    });
  }
  signalReady(setupError);
  await server?.close(setupError ? (setupError instanceof UfsError ? setupError.exitCode : 125) : status, setupError?.message);
  const after = readRecord(dir, id);
  if (after?.HostConfig.AutoRemove) await removeContainerFiles(store, id);
  if (setupError) throw setupError instanceof UfsError ? setupError : new UfsError(setupError.message, 125);
  return status;
}

// `ufs exec`: another process in a running container, by the OCI runtime's exec with a
// process.json, with the container's environment, user and capabilities unless overridden.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import type { Store } from '../store/index.js';
import { execProcess } from './bundle.js';
import { userEnv } from './config.js';
import { containerPaths, readRecord } from './container.js';
import { launch, SignalRelay } from './launch.js';
import { findContainer, isRunning } from './lifecycle.js';
import { globalArgs, runtimeBinary, runtimeError, startFailureStatus, writeJson } from './ociruntime.js';
import { isAlive, sleep } from './proc.js';

export interface ExecOptions {
  cmd: string[];
  interactive: boolean;
  tty: boolean;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  privileged?: boolean;
}

export async function execInContainer(store: Store, ref: string, opts: ExecOptions): Promise<number> {
  if (opts.cmd.length === 0) throw new UfsError('no command given to exec');
  if (opts.workdir !== undefined && !path.posix.isAbsolute(opts.workdir)) throw new UfsError(`the working directory '${opts.workdir}' is invalid, it needs to be an absolute path`);
  const relay = new SignalRelay().install();
  try {
    let rec = await findContainer(store, ref);
    if (!isRunning(rec)) throw new UfsError(`container ${rec.Id} is not running`);
    // pid 1 is recorded a moment after the container starts.
    for (let i = 0; i < 100 && !isAlive(rec.State.Pid, rec.State.PidStartTime); i++) {
      await sleep(20);
      rec = readRecord(store.containersDir(), rec.Id) ?? rec;
      if (!isRunning(rec)) throw new UfsError(`container ${rec.Id} is not running`);
    }
    if (!isAlive(rec.State.Pid, rec.State.PidStartTime)) throw new UfsError(`container ${rec.Id} has no running process`);
    const paths = containerPaths(store.containersDir(), rec.Id);
    if (rec.State.Paused) throw new UfsError(`container ${rec.Id} is paused, unpause the container before exec`);
    const binary = runtimeBinary(rec.HostConfig.Runtime);
    const tag = crypto.randomBytes(8).toString('hex');
    const processFile = path.join(paths.bundle, `exec-${tag}.json`);
    const logFile = path.join(paths.bundle, `exec-${tag}.log`);
    const pidFile = path.join(paths.bundle, `exec-${tag}.pid`);
    writeJson(processFile, execProcess(rec, paths.merged, {
      args: opts.cmd,
      env: userEnv(opts),
      tty: opts.tty,
      cwd: opts.workdir,
      user: opts.user,
      privileged: opts.privileged,
    }));
    try {
      if (relay.early) return 130;
      const status = await launch({
        binary,
        args: [...globalArgs(binary, logFile), 'exec', '--process', processFile, '--pid-file', pidFile, rec.Id],
        tty: opts.tty,
        pidFile,
        stdin: opts.interactive ? 'inherit' : 'none',
        relay,
      });
      const err = status !== 0 ? runtimeError(logFile) : undefined;
      if (err) {
        const mapped = startFailureStatus(err);
        if (mapped === 125) throw new UfsError(err, 126);
        return mapped;
      }
      return status;
    } finally {
      fs.rmSync(processFile, { force: true });
      fs.rmSync(logFile, { force: true });
      fs.rmSync(pidFile, { force: true });
    }
  } finally {
    relay.dispose();
  }
}

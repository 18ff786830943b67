// `ufs exec`: another process in a running container's namespaces and root, through
// `ufs-init exec`, with the container's environment and user unless overridden.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import type { Store } from '../store/index.js';
import { processEnv, userEnv } from './config.js';
import { containerPaths, readRecord } from './container.js';
import { launch, SignalRelay } from './launch.js';
import { findContainer, isRunning } from './lifecycle.js';
import { isAlive, sleep } from './proc.js';
import { writeSpec } from './spec.js';
import { resolveUser } from './user.js';

export interface ExecOptions {
  cmd: string[];
  interactive: boolean;
  tty: boolean;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
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
    const user = resolveUser(paths.merged, opts.user ?? rec.Config.User);
    const specFile = path.join(paths.dir, `exec-${crypto.randomBytes(8).toString('hex')}.json`);
    writeSpec(specFile, {
      rootfs: paths.merged,
      args: opts.cmd,
      env: processEnv(rec.Config, opts.tty, user.home, userEnv(opts)),
      cwd: opts.workdir ?? (rec.Config.WorkingDir || '/'),
      uid: user.uid,
      gid: user.gid,
      groups: user.groups,
      hostname: rec.Config.Hostname,
      network: rec.HostConfig.NetworkMode,
      tty: opts.tty,
      mounts: [],
      pid: rec.State.Pid,
    });
    try {
      if (relay.early) return 130;
      return await launch({
        args: ['exec', specFile],
        tty: opts.tty,
        stdin: opts.interactive ? 'inherit' : 'none',
        wantPid: false,
        relay,
      });
    } finally {
      fs.rmSync(specFile, { force: true });
    }
  } finally {
    relay.dispose();
  }
}

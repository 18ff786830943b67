// A container's OCI bundle: the runtime spec made from its record (image config merged with
// the flags) with its mounted union as the root, and the process spec of an exec into it.
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../common/paths.js';
import { UfsError } from '../common/errors.js';
import { commandOf, processEnv } from './config.js';
import type { ContainerPaths, ContainerRecord } from './container.js';
import { etcMounts } from './etcfiles.js';
import { buildSpec, containerCaps, processSpec, type NetworkSpec, type OciProcess, type OciSpec, type SecurityOptions } from './ocispec.js';
import { mkdirInRootAsync } from './rootfs.js';
import { resolveUser, resolveUserAsync, type ExecUser } from './user.js';

// Our init for --init (native/init): a static binary, so it runs on any image.
export function initBinary(): string {
  const bin = process.env.UFS_INIT ?? path.join(PROJECT_ROOT, 'native', 'build', 'Release', 'ufs-init');
  if (!fs.existsSync(bin)) throw new UfsError(`ufs-init is not built (${bin}): run scripts/setup`, 125);
  return bin;
}

export function networkOf(mode: string): NetworkSpec {
  if (mode === 'host') return { mode: 'host' };
  if (mode.startsWith('ns:')) return { mode: 'netns', path: mode.slice(3) };
  return { mode: 'none' };
}

function securityOf(rec: ContainerRecord): SecurityOptions {
  const hc = rec.HostConfig;
  return { privileged: hc.Privileged, capAdd: hc.CapAdd, capDrop: hc.CapDrop, seccomp: hc.Seccomp, noNewPrivileges: hc.NoNewPrivileges };
}

// --group-add: numbers as they are, names from the container's /etc/group.
function groupAdds(rootfs: string, user: ExecUser, adds: string[] | undefined): number[] {
  const out = [...user.groups];
  for (const g of adds ?? []) {
    const gid = /^\d+$/.test(g) ? Number(g) : resolveUser(rootfs, `0:${g}`).gid;
    if (!out.includes(gid)) out.push(gid);
  }
  return out;
}

async function groupAddsAsync(rootfs: string, user: ExecUser, adds: string[] | undefined): Promise<number[]> {
  const out = [...user.groups];
  for (const g of adds ?? []) {
    const gid = /^\d+$/.test(g) ? Number(g) : (await resolveUserAsync(rootfs, `0:${g}`)).gid;
    if (!out.includes(gid)) out.push(gid);
  }
  return out;
}

// The container's runtime spec. It reads the mounted root with asynchronous calls only: the
// process calling it serves that mount on its own event loop (fuse/host.ts).
export async function containerSpec(rec: ContainerRecord, paths: ContainerPaths, rootfs: string, network: NetworkSpec = networkOf(rec.HostConfig.NetworkMode)): Promise<OciSpec> {
  const hc = rec.HostConfig;
  const user = await resolveUserAsync(rootfs, rec.Config.User);
  const cwd = rec.Config.WorkingDir || '/';
  if (rec.Config.WorkingDir) {
    try {
      await mkdirInRootAsync(rootfs, cwd); // Docker creates a missing working directory
    } catch (err) {
      throw new UfsError(`cannot create the working directory ${cwd}: ${(err as Error).message}`, 125);
    }
  }
  return buildSpec({
    rootfs,
    readonlyRoot: hc.ReadonlyRootfs,
    args: commandOf(rec.Config),
    env: processEnv(rec.Config, rec.Config.Tty, user.home),
    cwd,
    user: { uid: user.uid, gid: user.gid, additionalGids: await groupAddsAsync(rootfs, user, hc.GroupAdd) },
    terminal: rec.Config.Tty,
    hostname: rec.Config.Hostname,
    network,
    binds: [...etcMounts(paths), ...hc.Mounts],
    tmpfs: hc.Tmpfs,
    security: securityOf(rec),
    resources: { memory: hc.Memory, memorySwap: hc.MemorySwap, nanoCpus: hc.NanoCpus, cpuShares: hc.CpuShares, pidsLimit: hc.PidsLimit },
    devices: hc.Devices,
    ulimits: hc.Ulimits,
    shmSize: hc.ShmSize,
    ...(hc.Init ? { initPath: initBinary() } : {}),
    cgroupsPath: `/ufs/${rec.Id}`,
  });
}

export interface ExecProcessOptions {
  args: string[];
  env: string[];          // -e/--env-file on top of the container's
  tty: boolean;
  cwd?: string;
  user?: string;
  privileged?: boolean;
}

// What `runc exec --process` runs: the container's capabilities (all of ufs's with
// --privileged), its user and environment unless overridden.
export function execProcess(rec: ContainerRecord, rootfs: string, opts: ExecProcessOptions): OciProcess {
  const user = resolveUser(rootfs, opts.user ?? rec.Config.User);
  const sec = securityOf(rec);
  const caps = containerCaps(opts.privileged ? { ...sec, privileged: true } : sec);
  return processSpec({
    args: opts.args,
    env: processEnv(rec.Config, opts.tty, user.home, opts.env),
    cwd: opts.cwd ?? (rec.Config.WorkingDir || '/'),
    user: { uid: user.uid, gid: user.gid, additionalGids: groupAdds(rootfs, user, rec.HostConfig.GroupAdd) },
    terminal: opts.tty,
    ulimits: rec.HostConfig.Ulimits,
    security: sec,
  }, caps);
}

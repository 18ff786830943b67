// The `run` flags that become the OCI spec's limits, mounts and security settings, parsed as
// Docker parses them; every bad value is a one-line error with exit status 125.
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import type { BindMount, HostConfig } from './container.js';
import { normalizeCap, type DeviceMapping, type TmpfsMount, type Ulimit } from './ocispec.js';
import { parseSignal } from './signals.js';

export interface RuntimeFlags {
  runtime?: string;
  init?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  securityOpt?: string[];
  readOnly?: boolean;
  tmpfs?: string[];
  mount?: string[];
  device?: string[];
  ulimit?: string[];
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  shmSize?: string;
  groupAdd?: string[];
  stopSignal?: string;
  stopTimeout?: string;
}

const bad = (msg: string) => new UfsError(msg, 125);

// Docker's RAMInBytes: 512, 512b, 64k, 64m, 1g (binary units), case-insensitive.
export function parseBytes(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgtp]?)i?b?$/i.exec(s.trim());
  if (!m) throw bad(`invalid size for ${what}: '${s}'`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2].toLowerCase()] as number;
  return Math.floor(Number(m[1]) * mult);
}

function parseInteger(s: string, what: string): number {
  if (!/^-?\d+$/.test(s.trim())) throw bad(`invalid value for ${what}: '${s}'`);
  return Number(s);
}

// nofile=1024[:2048]
export function parseUlimit(s: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(s.trim());
  const names = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack', 'as'];
  if (!m || !names.includes(m[1])) throw bad(`invalid ulimit argument: ${s}`);
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  if (soft > hard && hard !== -1) throw bad(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { name: m[1], soft: soft < 0 ? Number.MAX_SAFE_INTEGER : soft, hard: hard < 0 ? Number.MAX_SAFE_INTEGER : hard };
}

// /dev/host[:/dev/container][:rwm]
export function parseDevice(s: string): DeviceMapping {
  const parts = s.split(':');
  let perms = 'rwm';
  if (parts.length > 1 && /^[rwm]+$/.test(parts[parts.length - 1])) perms = parts.pop() as string;
  if (parts.length > 2 || !parts[0]) throw bad(`invalid device specification: ${s}`);
  const host = parts[0];
  const container = parts[1] ?? host;
  if (!path.isAbsolute(host) || !path.posix.isAbsolute(container)) throw bad(`invalid device specification: ${s}: paths must be absolute`);
  return { host, container: path.posix.normalize(container), permissions: perms };
}

// Docker's default --tmpfs options (noexec, nosuid, nodev) under the given ones.
export function parseTmpfs(s: string): TmpfsMount {
  const i = s.indexOf(':');
  const target = i < 0 ? s : s.slice(0, i);
  const given = i < 0 ? [] : s.slice(i + 1).split(',').filter(Boolean);
  if (!path.posix.isAbsolute(target)) throw bad(`invalid tmpfs target: '${target}': must be an absolute path`);
  return { target: path.posix.normalize(target), options: tmpfsOptions(given) };
}

function tmpfsOptions(given: string[]): string[] {
  const out = ['noexec', 'nosuid', 'nodev'];
  const opposite: Record<string, string> = { exec: 'noexec', suid: 'nosuid', dev: 'nodev' };
  for (const o of given) {
    const off = opposite[o];
    if (off) {
      out.splice(out.indexOf(off), 1);
      continue;
    }
    if (!out.includes(o)) out.push(o);
  }
  return out;
}

// --mount type=bind,source=/x,target=/y[,readonly] | type=tmpfs,target=/y[,tmpfs-size=][,tmpfs-mode=]
export function parseMount(s: string): { bind?: BindMount; tmpfs?: TmpfsMount } {
  const kv = new Map<string, string>();
  for (const field of s.split(',')) {
    const i = field.indexOf('=');
    const k = (i < 0 ? field : field.slice(0, i)).trim().toLowerCase();
    kv.set(k, i < 0 ? 'true' : field.slice(i + 1));
  }
  const type = kv.get('type') ?? 'volume';
  const target = kv.get('target') ?? kv.get('destination') ?? kv.get('dst');
  if (!target || !path.posix.isAbsolute(target)) throw bad(`invalid mount config: target must be an absolute path: ${s}`);
  if (path.posix.normalize(target) === '/') throw bad(`invalid mount config: cannot mount over /: ${s}`);
  const ro = ['readonly', 'ro'].some((k) => kv.has(k) && kv.get(k) !== 'false' && kv.get(k) !== '0');
  if (type === 'bind') {
    const source = kv.get('source') ?? kv.get('src');
    if (!source || !path.isAbsolute(source)) throw bad(`invalid mount config for type "bind": source must be an absolute path: ${s}`);
    if (!fs.existsSync(source)) throw bad(`invalid mount config for type "bind": bind source path does not exist: ${source}`);
    return { bind: { source: path.resolve(source), target: path.posix.normalize(target), readonly: ro } };
  }
  if (type === 'tmpfs') {
    const opts: string[] = [];
    if (kv.has('tmpfs-size')) opts.push(`size=${parseBytes(kv.get('tmpfs-size') as string, 'tmpfs-size')}`);
    if (kv.has('tmpfs-mode')) opts.push(`mode=${Number.parseInt(kv.get('tmpfs-mode') as string, 8).toString(8)}`);
    if (ro) opts.push('ro');
    return { tmpfs: { target: path.posix.normalize(target), options: tmpfsOptions(opts) } };
  }
  throw bad(`mount type "${type}" is not supported (use bind or tmpfs)`);
}

// --security-opt seccomp=unconfined|FILE, no-new-privileges[=true|false]
function parseSecurityOpts(opts: string[]): Pick<HostConfig, 'Seccomp' | 'NoNewPrivileges'> {
  const out: Pick<HostConfig, 'Seccomp' | 'NoNewPrivileges'> = {};
  for (const o of opts) {
    const i = o.search(/[=:]/);
    const k = i < 0 ? o : o.slice(0, i);
    const v = i < 0 ? undefined : o.slice(i + 1);
    if (k === 'no-new-privileges') {
      if (v !== undefined && v !== 'true' && v !== 'false') throw bad(`invalid --security-opt: ${o}`);
      out.NoNewPrivileges = v !== 'false';
    } else if (k === 'seccomp' && v) {
      if (v === 'unconfined') out.Seccomp = 'unconfined';
      else {
        const file = path.resolve(v);
        if (!fs.existsSync(file)) throw bad(`opening seccomp profile (${v}) failed: no such file`);
        out.Seccomp = file;
      }
    } else if (k === 'label' || k === 'apparmor') {
      // no SELinux or AppArmor here: accepted and ignored, as Docker does without them
    } else {
      throw bad(`invalid --security-opt: ${o}`);
    }
  }
  return out;
}

export function hostConfigFromFlags(f: RuntimeFlags): Partial<HostConfig> & { Tmpfs: TmpfsMount[]; Mounts: BindMount[] } {
  const hc: Partial<HostConfig> & { Tmpfs: TmpfsMount[]; Mounts: BindMount[] } = { Tmpfs: [], Mounts: [] };
  if (f.runtime) hc.Runtime = f.runtime;
  if (f.init) hc.Init = true;
  if (f.privileged) hc.Privileged = true;
  if (f.capAdd?.length) hc.CapAdd = f.capAdd.map(normalizeCap);
  if (f.capDrop?.length) hc.CapDrop = f.capDrop.map(normalizeCap);
  Object.assign(hc, parseSecurityOpts(f.securityOpt ?? []));
  if (f.readOnly) hc.ReadonlyRootfs = true;
  for (const t of f.tmpfs ?? []) hc.Tmpfs.push(parseTmpfs(t));
  for (const m of f.mount ?? []) {
    const r = parseMount(m);
    if (r.bind) hc.Mounts.push(r.bind);
    if (r.tmpfs) hc.Tmpfs.push(r.tmpfs);
  }
  if (f.device?.length) hc.Devices = f.device.map(parseDevice);
  if (f.ulimit?.length) hc.Ulimits = f.ulimit.map(parseUlimit);
  if (f.memory !== undefined) {
    hc.Memory = parseBytes(f.memory, '--memory');
    if (hc.Memory < 6 * 1024 * 1024) throw bad('Minimum memory limit allowed is 6MB');
  }
  if (f.memorySwap !== undefined) {
    hc.MemorySwap = f.memorySwap.trim() === '-1' ? -1 : parseBytes(f.memorySwap, '--memory-swap');
    if (hc.Memory === undefined && hc.MemorySwap !== -1) throw bad('You should always set the Memory limit when using Memoryswap limit, see usage');
    if (hc.Memory !== undefined && hc.MemorySwap !== -1 && hc.MemorySwap < hc.Memory) throw bad('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  if (f.cpus !== undefined) {
    const n = Number(f.cpus);
    if (!Number.isFinite(n) || n <= 0) throw bad(`invalid argument "${f.cpus}" for "--cpus" flag`);
    hc.NanoCpus = Math.round(n * 1e9);
  }
  if (f.cpuShares !== undefined) hc.CpuShares = parseInteger(f.cpuShares, '--cpu-shares');
  if (f.pidsLimit !== undefined) hc.PidsLimit = parseInteger(f.pidsLimit, '--pids-limit');
  if (f.shmSize !== undefined) {
    hc.ShmSize = parseBytes(f.shmSize, '--shm-size');
    if (hc.ShmSize <= 0) throw bad('SHM size can not be less than 0');
  }
  if (f.groupAdd?.length) hc.GroupAdd = f.groupAdd;
  if (f.stopSignal !== undefined) parseSignal(f.stopSignal);
  if (f.stopTimeout !== undefined) parseInteger(f.stopTimeout, '--stop-timeout');
  return hc;
}

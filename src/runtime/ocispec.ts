// The OCI runtime spec (config.json of a bundle) for a container or a build step, with
// Docker's defaults: its capability set, seccomp profile, device cgroup allow-list, masked
// and read-only paths, /dev/shm of 64 MiB, and the flags' resources and mounts over them.
// One builder for `ufs run`, `ufs exec` (the process part) and the builder's RUN steps.
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import { defaultSeccomp, seccompFromFile, type LinuxSeccomp } from './seccomp.js';

export interface OciMount { destination: string; type: string; source: string; options?: string[] }
export interface OciUser { uid: number; gid: number; additionalGids?: number[] }
export interface OciCapabilities { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[]; ambient: string[] }
export interface OciRlimit { type: string; soft: number; hard: number }
export interface OciProcess {
  terminal: boolean;
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  rlimits?: OciRlimit[];
  noNewPrivileges: boolean;
}
interface OciDeviceRule { allow: boolean; type?: string; major?: number; minor?: number; access?: string }
interface OciDevice { path: string; type: string; major: number; minor: number; fileMode: number; uid: number; gid: number }
export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  linux: {
    namespaces: { type: string; path?: string }[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
    resources: {
      devices: OciDeviceRule[];
      memory?: { limit?: number; swap?: number };
      cpu?: { shares?: number; quota?: number; period?: number };
      pids?: { limit: number };
    };
    devices?: OciDevice[];
    cgroupsPath?: string;
    seccomp?: LinuxSeccomp;
    sysctl?: Record<string, string>;
  };
}

export type NetworkSpec = { mode: 'none' | 'host' } | { mode: 'netns'; path: string };

export interface SecurityOptions {
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  seccomp?: string;              // undefined: Docker's default; 'unconfined'; or a profile file
  noNewPrivileges?: boolean;
}

export interface ResourceOptions {
  memory?: number;               // bytes
  memorySwap?: number;           // bytes of memory+swap; -1 unlimited
  nanoCpus?: number;             // --cpus * 1e9
  cpuShares?: number;
  pidsLimit?: number;
}

export interface DeviceMapping { host: string; container: string; permissions: string }
export interface Ulimit { name: string; soft: number; hard: number }
export interface TmpfsMount { target: string; options: string[] }
export interface BindSpec { source: string; target: string; readonly: boolean }

export interface SpecInput {
  rootfs: string;
  readonlyRoot?: boolean;
  args: string[];
  env: string[];
  cwd: string;
  user: OciUser;
  terminal: boolean;
  hostname?: string;
  network: NetworkSpec;
  binds?: BindSpec[];            // /etc files and volumes, in order
  tmpfs?: TmpfsMount[];
  security?: SecurityOptions;
  resources?: ResourceOptions;
  devices?: DeviceMapping[];
  ulimits?: Ulimit[];
  shmSize?: number;              // bytes; default 64 MiB
  initPath?: string;             // --init: our init's host path, run as pid 1 from /dev/init
  cgroupsPath?: string;
}

// Docker's default capabilities.
export const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

// Every capability by number, as in linux/capability.h.
export const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

// The capabilities ufs itself holds (its bounding set): a container can get no more.
function ownCaps(): string[] {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  const mask = BigInt(`0x${m ? m[1] : '0'}`);
  return ALL_CAPS.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

export function normalizeCap(c: string): string {
  const up = c.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const name = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!ALL_CAPS.includes(name)) throw new UfsError(`unknown capability: "${c}"`, 125);
  return name;
}

// Docker's rules: ALL in --cap-add gives all; ALL in --cap-drop starts from none, then the adds.
export function containerCaps(sec: SecurityOptions): string[] {
  const own = ownCaps();
  if (sec.privileged) return own;
  const add = (sec.capAdd ?? []).map(normalizeCap);
  const drop = (sec.capDrop ?? []).map(normalizeCap);
  let caps: string[];
  if (add.includes('ALL')) caps = own.filter((c) => !drop.includes(c));
  else if (drop.includes('ALL')) caps = add;
  else caps = [...DEFAULT_CAPS.filter((c) => !drop.includes(c)), ...add];
  caps = [...new Set(caps)];
  const missing = caps.filter((c) => !own.includes(c));
  if (missing.length > 0) throw new UfsError(`cannot add ${missing.join(', ')}: ufs itself does not hold ${missing.length > 1 ? 'them' : 'it'}`, 125);
  return caps;
}

export function capabilitySets(caps: string[]): OciCapabilities {
  // Inheritable stays empty (as Docker since CVE-2022-24769); a non-root user keeps none of
  // the others across exec, as the kernel drops them with no ambient set.
  return { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] };
}

const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

// Docker's device cgroup: nothing but mknod in general, and use of the devices a container
// gets in /dev (null, zero, full, random, urandom, tty, console, ptys, ptmx, tun).
const DEFAULT_DEVICE_RULES: OciDeviceRule[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  ...([[1, 3], [1, 8], [1, 7], [5, 0], [1, 5], [1, 9], [5, 1], [136, -1], [5, 2], [10, 200]] as const).map(
    ([major, minor]): OciDeviceRule => ({ allow: true, type: 'c', major, ...(minor >= 0 ? { minor } : {}), access: 'rwm' }),
  ),
];

export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

function deviceOf(hostPath: string, containerPath: string): OciDevice {
  let st: fs.Stats;
  try {
    st = fs.statSync(hostPath);
  } catch (err) {
    throw new UfsError(`error gathering device information while adding custom device "${hostPath}": ${(err as Error).message}`, 125);
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new UfsError(`"${hostPath}" is not a device node`, 125);
  const rdev = st.rdev;
  const major = Number((BigInt(rdev) >> 8n) & 0xfffn);
  const minor = Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & 0xfff00n));
  return { path: containerPath, type: st.isCharacterDevice() ? 'c' : 'b', major, minor, fileMode: st.mode & 0o7777, uid: 0, gid: 0 };
}

// Every device node under the host's /dev, for --privileged (Docker gives them all).
function hostDevices(): OciDevice[] {
  const out: OciDevice[] = [];
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!['/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/fd'].includes(p)) walk(p);
      } else if (e.isCharacterDevice() || e.isBlockDevice()) {
        if (p === '/dev/console' || p === '/dev/ptmx' || p === '/dev/tty') continue;
        try {
          out.push(deviceOf(p, p));
        } catch {
          // gone meanwhile
        }
      }
    }
  };
  walk('/dev');
  return out;
}

function seccompFor(sec: SecurityOptions, caps: string[]): LinuxSeccomp | undefined {
  if (sec.privileged || sec.seccomp === 'unconfined') return undefined;
  if (sec.seccomp) return seccompFromFile(sec.seccomp, caps);
  return defaultSeccomp(caps);
}

// The process part (also `runc exec --process`).
export function processSpec(input: Pick<SpecInput, 'args' | 'env' | 'cwd' | 'user' | 'terminal' | 'ulimits' | 'security'>, caps: string[]): OciProcess {
  return {
    terminal: input.terminal,
    user: input.user,
    args: input.args,
    env: input.env,
    cwd: input.cwd,
    capabilities: capabilitySets(caps),
    ...(input.ulimits?.length ? { rlimits: input.ulimits.map((u) => ({ type: `RLIMIT_${u.name.toUpperCase()}`, soft: u.soft, hard: u.hard })) } : {}),
    noNewPrivileges: !!input.security?.noNewPrivileges,
  };
}

function swapSupported(): boolean {
  return fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes') || fs.existsSync('/sys/fs/cgroup/memory.swap.max');
}

export function buildSpec(input: SpecInput): OciSpec {
  const sec = input.security ?? {};
  const priv = !!sec.privileged;
  const caps = containerCaps(sec);
  const args = input.initPath ? ['/dev/init', '--', ...input.args] : input.args;
  const shm = input.shmSize ?? DEFAULT_SHM_SIZE;
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', priv ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', priv ? 'rw' : 'ro'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shm}`] },
  ];
  if (input.initPath) mounts.push({ destination: '/dev/init', type: 'bind', source: input.initPath, options: ['bind', 'ro', 'nosuid', 'nodev'] });
  for (const b of input.binds ?? []) {
    mounts.push({ destination: b.target, type: 'bind', source: b.source, options: ['rbind', 'rprivate', b.readonly ? 'ro' : 'rw'] });
  }
  for (const t of input.tmpfs ?? []) mounts.push({ destination: t.target, type: 'tmpfs', source: 'tmpfs', options: t.options });

  const namespaces: { type: string; path?: string }[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (input.network.mode === 'none') namespaces.push({ type: 'network' });
  else if (input.network.mode === 'netns') namespaces.push({ type: 'network', path: input.network.path });

  const res = input.resources ?? {};
  const resources: OciSpec['linux']['resources'] = { devices: priv ? [{ allow: true, access: 'rwm' }] : [...DEFAULT_DEVICE_RULES] };
  if (res.memory !== undefined && res.memory > 0) {
    resources.memory = { limit: res.memory };
    // Docker: without --memory-swap the container may use as much swap as memory.
    const swap = res.memorySwap ?? res.memory * 2;
    if (swapSupported() && swap !== 0) resources.memory.swap = swap;
  } else if (res.memorySwap !== undefined && res.memorySwap !== -1) {
    throw new UfsError('you should always set the memory limit when using the memory swap limit', 125);
  }
  if (res.nanoCpus || res.cpuShares) {
    resources.cpu = {};
    if (res.cpuShares) resources.cpu.shares = res.cpuShares;
    if (res.nanoCpus) {
      resources.cpu.period = 100_000;
      resources.cpu.quota = Math.round((res.nanoCpus * 100_000) / 1e9);
    }
  }
  if (res.pidsLimit !== undefined && res.pidsLimit !== 0) resources.pids = { limit: res.pidsLimit < 0 ? -1 : res.pidsLimit };

  const devices: OciDevice[] = priv ? hostDevices() : [];
  for (const d of input.devices ?? []) {
    const dev = deviceOf(d.host, d.container);
    devices.push(dev);
    if (!priv) resources.devices.push({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access: d.permissions });
  }

  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process: processSpec({ ...input, args }, caps),
    root: { path: input.rootfs, readonly: !!input.readonlyRoot },
    ...(input.hostname !== undefined ? { hostname: input.hostname } : {}),
    mounts,
    linux: {
      namespaces,
      ...(priv ? {} : { maskedPaths: MASKED_PATHS, readonlyPaths: READONLY_PATHS }),
      resources,
      ...(devices.length ? { devices } : {}),
      ...(input.cgroupsPath ? { cgroupsPath: input.cgroupsPath } : {}),
    },
  };
  const seccomp = seccompFor(sec, caps);
  if (seccomp) spec.linux.seccomp = seccomp;
  // Docker's sysctls for a network namespace of its own: pings and low ports without caps.
  if (input.network.mode !== 'host') {
    spec.linux.sysctl = { 'net.ipv4.ping_group_range': '0 2147483647', 'net.ipv4.ip_unprivileged_port_start': '0' };
  }
  return spec;
}

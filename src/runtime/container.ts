// The container record: <root>/containers/<id>/config.json, written atomically, plus the
// paths of everything else a container owns in its directory.
import type { PortMapping } from '../network/index.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UfsError, errnoCode } from '../common/errors.js';
import type { DeviceMapping, TmpfsMount, Ulimit } from './ocispec.js';

export type ContainerStatus = 'created' | 'running' | 'exited';

export interface ContainerState {
  Status: ContainerStatus;
  Pid: number;            // host pid of the container's pid 1 (0 when not running)
  PidStartTime?: number;  // its /proc start time, so a reused pid is not mistaken for it
  InitPid?: number;       // host pid of the OCI runtime process (the container's parent)
  Paused?: boolean;
  MonitorPid: number;     // the ufs process that owns the running container
  MonitorStartTime?: number;
  ExitCode: number;
  StartedAt: string;      // ISO time, or '' before the first start
  FinishedAt: string;
  Error?: string;
}

export interface ContainerConfig {
  Hostname: string;
  User: string;
  Env: string[];
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  WorkingDir: string;
  Tty: boolean;
  OpenStdin: boolean;
  Image: string;          // the reference the user gave
  Labels?: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
}

export interface BindMount {
  source: string;         // absolute host path
  target: string;         // absolute container path
  readonly: boolean;
  volume?: string;        // the volume whose directory source is (-v NAME:DIR, -v DIR)
  anonymous?: boolean;    // made for this container by -v DIR: `rm -v` removes it
}

export interface HostConfig {
  Binds: string[];        // as given: HOSTDIR:DIR[:ro]
  Mounts: BindMount[];    // -v and --mount type=bind, in order
  Tmpfs?: TmpfsMount[];   // --tmpfs and --mount type=tmpfs
  NetworkMode: string;    // bridge, none, host, container:NAME, a user network, or ns:PATH
  PortBindings?: PortMapping[]; // -p/-P as asked (host port 0: any free one)
  NetworkAliases?: string[];
  IPAddress?: string;     // --ip
  MacAddress?: string;    // --mac-address
  Dns?: string[];
  DnsSearch?: string[];
  DnsOptions?: string[];
  ExtraHosts?: string[];  // --add-host NAME:IP
  AutoRemove: boolean;
  Runtime?: string;       // --runtime; default runc
  Init?: boolean;
  Privileged?: boolean;
  CapAdd?: string[];
  CapDrop?: string[];
  Seccomp?: string;       // unconfined, a profile file, or unset for the default
  NoNewPrivileges?: boolean;
  ReadonlyRootfs?: boolean;
  Memory?: number;
  MemorySwap?: number;
  NanoCpus?: number;
  CpuShares?: number;
  PidsLimit?: number;
  Devices?: DeviceMapping[];
  Ulimits?: Ulimit[];
  ShmSize?: number;
  GroupAdd?: string[];
}

export interface ContainerRecord {
  Id: string;             // 64 hex
  Name: string;
  Image: string;          // image id, sha256:<hex>
  ImageRef: string;       // what the user typed
  Created: string;        // ISO time
  Path: string;           // the command: Path + Args (ENTRYPOINT and CMD combined)
  Args: string[];
  Config: ContainerConfig;
  State: ContainerState;
  HostConfig: HostConfig;
  LogPath: string;
}

// Where a container's files live.
export class ContainerPaths {
  constructor(readonly dir: string) {}
  get config() { return path.join(this.dir, 'config.json'); }
  get upper() { return path.join(this.dir, 'upper'); }
  get merged() { return path.join(this.dir, 'merged'); }
  get init() { return path.join(this.dir, 'init'); }
  get bundle() { return path.join(this.dir, 'bundle'); }
  get runtimeLog() { return path.join(this.dir, 'bundle', 'runtime.log'); }
  get hosts() { return path.join(this.dir, 'hosts'); }
  get hostname() { return path.join(this.dir, 'hostname'); }
  get resolvConf() { return path.join(this.dir, 'resolv.conf'); }
  get pidFile() { return path.join(this.dir, 'init.pid'); }
  get monitorLog() { return path.join(this.dir, 'monitor.log'); }
  get id() { return path.basename(this.dir); }
  log(id: string) { return path.join(this.dir, `${id}-json.log`); }
}

export function newContainerId(): string {
  return crypto.randomBytes(32).toString('hex');
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

export function containerPaths(containersDir: string, id: string): ContainerPaths {
  return new ContainerPaths(path.join(containersDir, id));
}

export function readRecord(containersDir: string, id: string): ContainerRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(containerPaths(containersDir, id).config, 'utf8')) as ContainerRecord;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

// Write to a temp name beside it, then rename: readers never see half a record.
export function writeRecord(containersDir: string, rec: ContainerRecord): void {
  const p = containerPaths(containersDir, rec.Id);
  const tmp = `${p.config}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(rec, null, 2)}\n`);
    fs.renameSync(tmp, p.config);
  } catch (err) {
    // A full disk must not leave half a record behind on top of the error.
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

// Errors of a store that cannot take a write right now (full, over quota, read-only).
export function isNoSpace(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS';
}

// Temp records that a killed writer left (config.json.<pid>.<hex>.tmp of a dead pid).
export function sweepTempRecords(containersDir: string, id: string): void {
  const dir = containerPaths(containersDir, id).dir;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^config\.json\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    if (!alive) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (err) {
        alive = errnoCode(err) === 'EPERM';
      }
    }
    if (!alive) fs.rmSync(path.join(dir, name), { force: true });
  }
}

// Read-modify-write of the state: other writers only touch a container whose monitor is
// gone, so last-writer-wins on the whole record is safe enough.
export function updateState(containersDir: string, id: string, change: Partial<ContainerState>): ContainerRecord | undefined {
  const rec = readRecord(containersDir, id);
  if (!rec) return undefined;
  rec.State = { ...rec.State, ...change };
  writeRecord(containersDir, rec);
  return rec;
}

export function listRecords(containersDir: string): ContainerRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(containersDir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: ContainerRecord[] = [];
  for (const name of names) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const rec = readRecord(containersDir, name);
    if (rec) out.push(rec);
  }
  return out;
}

// A full id, a unique id prefix, or a name (Docker also accepts '/name').
export function findRecord(containersDir: string, ref: string): ContainerRecord {
  const all = listRecords(containersDir);
  const want = ref.replace(/^\//, '');
  const exact = all.find((r) => r.Id === want) ?? all.find((r) => r.Name === want);
  if (exact) return exact;
  if (/^[0-9a-f]+$/.test(want)) {
    const matches = all.filter((r) => r.Id.startsWith(want));
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) throw new UfsError(`multiple containers match the prefix "${ref}": be more specific`);
  }
  throw new UfsError(`No such container: ${ref}`);
}

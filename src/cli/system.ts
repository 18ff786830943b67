// inspect (any object), version, info, system df / prune / info, completion: Docker's names,
// output and --format. Libraries are imported when a verb runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { UfsError } from '../common/errors.js';
import { bytesSize, compileListFormat, humanSize, parseTemplate, renderList } from '../common/format.js';
import type { Store } from '../store/index.js';
import { registerCompletionCommand } from './completion.js';
import { confirm, inspectEach, lookupImageForInspect } from './images.js';
import { openStore } from './store.js';
import { out, ufsVersion } from './output.js';

// ---- inspect: a container or an image (--type to choose), as Docker's `inspect`

// The runtime's container record, with what Docker's inspect adds that scripts rely on: the
// Name with its '/', State.Running and friends, and Mounts.
export async function lookupContainer(store: Store, ref: string): Promise<Record<string, unknown>> {
  const { findRecord } = await import('../runtime/container.js');
  const rec = findRecord(store.containersDir(), ref);
  const status = rec.State.Status as string;
  const binds = (rec.HostConfig?.Mounts ?? []) as { source: string; target: string; readonly: boolean; volume?: string }[];
  return {
    ...rec,
    Name: rec.Name.startsWith('/') ? rec.Name : `/${rec.Name}`,
    State: { ...rec.State, Running: status === 'running', Paused: status === 'paused', Restarting: status === 'restarting', OOMKilled: false, Dead: status === 'dead' },
    // Docker's two shapes: a volume (named or anonymous) and a host directory.
    Mounts: binds.map((m) =>
      m.volume
        ? { Type: 'volume', Name: m.volume, Source: m.source, Destination: m.target, Driver: 'local', Mode: m.readonly ? 'ro' : 'z', RW: !m.readonly, Propagation: '' }
        : { Type: 'bind', Source: m.source, Destination: m.target, Mode: m.readonly ? 'ro' : '', RW: !m.readonly, Propagation: 'rprivate' },
    ),
  };
}

async function lookupAny(store: Store, ref: string, type: string | undefined): Promise<unknown> {
  if (type === 'container') return lookupContainer(store, ref);
  if (type === 'image') return lookupImageForInspect(store, ref);
  // Docker's order without --type: a container first, then an image.
  try {
    return await lookupContainer(store, ref);
  } catch (err) {
    if (!(err instanceof UfsError)) throw err;
  }
  try {
    return await lookupImageForInspect(store, ref);
  } catch (err) {
    if (!(err instanceof UfsError) || !/^No such image/.test(err.message)) throw err;
  }
  throw new UfsError(`No such object: ${ref}`);
}

function addInspect(program: Command): void {
  program
    .command('inspect')
    .description('show low-level information on containers or images as JSON')
    .argument('<name...>', 'containers (name or id) or images')
    .option('-f, --format <template>', "format with a Go template, e.g. '{{.Id}}' or '{{json .Config}}'")
    .option('--type <type>', 'only this type of object: container or image')
    .option('-s, --size', 'accepted for Docker compatibility (sizes are always shown for images)')
    .action(async (names: string[], opts: { format?: string; type?: string }, cmd: Command) => {
      if (opts.type !== undefined && opts.type !== 'container' && opts.type !== 'image') throw new UfsError(`"${opts.type}" is not a valid value for --type`);
      if (opts.format !== undefined && opts.format !== 'json') await parseTemplate(opts.format);
      const store = await openStore(cmd);
      await inspectEach(names, opts.format, (ref) => lookupAny(store, ref, opts.type));
    });
}

// ---- version

function goArch(): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
}

// The first line of `runc --version` (or the configured runtime's), or undefined when missing.
async function runtimeVersion(name = 'runc'): Promise<string | undefined> {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(name, ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0 || !r.stdout) return undefined;
  return r.stdout.split('\n')[0]!.trim();
}

function versionData(): Record<string, unknown> {
  return {
    Client: {
      Platform: { Name: 'ufs' },
      Version: ufsVersion(),
      NodeVersion: process.version,
      Os: process.platform,
      Arch: goArch(),
      Context: 'default',
    },
  };
}

function addVersion(program: Command): void {
  program
    .command('version')
    .description('show the ufs version information')
    .option('-f, --format <template>', 'format with a Go template, e.g. {{.Client.Version}} or json')
    .action(async (opts: { format?: string }) => {
      const data = versionData();
      if (opts.format !== undefined) {
        out(opts.format === 'json' ? `${JSON.stringify(data)}\n` : `${(await parseTemplate(opts.format)).execute(data)}\n`);
        return;
      }
      const c = data.Client as Record<string, string>;
      out(
        'Client:\n' +
          ` Version:           ${c.Version}\n` +
          ` Node version:      ${c.NodeVersion}\n` +
          ` OS/Arch:           ${c.Os}/${c.Arch}\n` +
          ` Context:           ${c.Context}\n`,
      );
    });
}

// ---- info

function cgroupVersion(): string {
  return fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1';
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1]!;
  } catch {
    // no os-release
  }
  return os.type();
}

// Everything `ufs info` shows, under Docker's field names (for --format).
async function infoData(store: Store): Promise<Record<string, unknown>> {
  const { listContainers } = await import('../runtime/index.js');
  const containers = await listContainers(store, true);
  const running = containers.filter((c) => c.State.Status === 'running').length;
  const db = store.readImageDb();
  const runc = await runtimeVersion('runc');
  return {
    ID: '',
    Containers: containers.length,
    ContainersRunning: running,
    ContainersPaused: 0,
    ContainersStopped: containers.length - running,
    Images: Object.keys(db.images).length,
    Driver: 'ufs (FUSE)',
    DriverStatus: [['Backing', 'FUSE (/dev/fuse), one server process per mount']],
    CgroupVersion: cgroupVersion(),
    KernelVersion: os.release(),
    OperatingSystem: osName(),
    OSType: process.platform,
    Architecture: os.machine(),
    NCPU: os.availableParallelism(),
    MemTotal: os.totalmem(),
    Name: os.hostname(),
    DockerRootDir: store.root,
    DefaultRuntime: 'runc',
    Runtimes: runc ? { runc: { path: 'runc', version: runc } } : {},
    ServerVersion: ufsVersion(),
  };
}

function addInfo(parent: Command, name: string): void {
  parent
    .command(name)
    .description('show system-wide information: store, counts, runtime, storage driver, kernel')
    .option('-f, --format <template>', 'format with a Go template, e.g. {{.DockerRootDir}} or json')
    .action(async (opts: { format?: string }, cmd: Command) => {
      if (opts.format !== undefined && opts.format !== 'json') await parseTemplate(opts.format);
      const store = await openStore(cmd);
      const d = await infoData(store);
      if (opts.format !== undefined) {
        out(opts.format === 'json' ? `${JSON.stringify(d)}\n` : `${(await parseTemplate(opts.format)).execute(d)}\n`);
        return;
      }
      const runtimes = Object.keys(d.Runtimes as object);
      out(
        'Client:\n' +
          ` Version:    ${ufsVersion()}\n` +
          ` Context:    default\n` +
          '\n' +
          'Server:\n' +
          ` Containers: ${d.Containers}\n` +
          `  Running: ${d.ContainersRunning}\n` +
          `  Paused: ${d.ContainersPaused}\n` +
          `  Stopped: ${d.ContainersStopped}\n` +
          ` Images: ${d.Images}\n` +
          ` Server Version: ${d.ServerVersion} (daemonless)\n` +
          ` Storage Driver: ${d.Driver}\n` +
          (d.DriverStatus as string[][]).map(([k, v]) => `  ${k}: ${v}\n`).join('') +
          ` Cgroup Version: ${d.CgroupVersion}\n` +
          ` Runtimes: ${runtimes.length ? runtimes.join(' ') : '(runc not found)'}\n` +
          ` Default Runtime: ${d.DefaultRuntime}\n` +
          (runtimes.length ? ` runc version: ${(d.Runtimes as Record<string, { version: string }>).runc!.version}\n` : '') +
          ` Kernel Version: ${d.KernelVersion}\n` +
          ` Operating System: ${d.OperatingSystem}\n` +
          ` OSType: ${d.OSType}\n` +
          ` Architecture: ${d.Architecture}\n` +
          ` CPUs: ${d.NCPU}\n` +
          ` Total Memory: ${bytesSize(d.MemTotal as number)}\n` +
          ` Name: ${d.Name}\n` +
          ` Docker Root Dir: ${d.DockerRootDir}\n`,
      );
    });
}

// ---- system df / prune

function treeBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return; // gone or unreadable: the number is only informative
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        try {
          total += fs.lstatSync(p).size;
        } catch {
          // raced with a removal
        }
      }
    }
  };
  walk(dir);
  return total;
}

interface DfLine {
  Type: string;
  TotalCount: number;
  Active: number;
  Size: string;
  Reclaimable: string;
}

async function diskUsage(store: Store): Promise<DfLine[]> {
  const { listContainers } = await import('../runtime/index.js');
  const { containerPaths } = await import('../runtime/container.js');
  const { readImageConfig } = await import('../image/records.js');
  const containers = await listContainers(store, true);
  const db = store.readImageDb();
  const used = new Set(containers.map((c) => c.Image));
  const layerSize = new Map<string, number>();
  const activeLayers = new Set<string>();
  const images = Object.keys(db.images);
  for (const id of images) {
    let diffIds: string[];
    try {
      diffIds = readImageConfig(store, id).rootfs.diff_ids;
    } catch {
      continue;
    }
    for (const d of diffIds) {
      layerSize.set(d, store.layerMeta(d)?.size ?? 0);
      if (used.has(id)) activeLayers.add(d);
    }
  }
  let total = 0;
  let reclaim = 0;
  for (const [d, size] of layerSize) {
    total += size;
    if (!activeLayers.has(d)) reclaim += size;
  }
  const pct = (part: number, whole: number) => (whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : '');
  let cTotal = 0;
  let cReclaim = 0;
  for (const c of containers) {
    const size = treeBytes(containerPaths(store.containersDir(), c.Id).upper);
    cTotal += size;
    if (c.State.Status !== 'running') cReclaim += size;
  }
  const { listVolumes, volumeUsers, dirBytes } = await import('../volume/index.js');
  const vols = listVolumes(store);
  let vTotal = 0;
  let vReclaim = 0;
  let vActive = 0;
  for (const v of vols) {
    const size = dirBytes(v.Mountpoint);
    vTotal += size;
    if ((await volumeUsers(store, v.Name)).length) vActive++;
    else vReclaim += size;
  }
  const activeImages = images.filter((id) => used.has(id)).length;
  const running = containers.filter((c) => c.State.Status === 'running').length;
  return [
    { Type: 'Images', TotalCount: images.length, Active: activeImages, Size: humanSize(total, 4), Reclaimable: `${humanSize(reclaim, 4)}${pct(reclaim, total)}` },
    { Type: 'Containers', TotalCount: containers.length, Active: running, Size: humanSize(cTotal, 4), Reclaimable: `${humanSize(cReclaim, 4)}${pct(cReclaim, cTotal)}` },
    { Type: 'Local Volumes', TotalCount: vols.length, Active: vActive, Size: humanSize(vTotal, 4), Reclaimable: `${humanSize(vReclaim, 4)}${pct(vReclaim, vTotal)}` },
    { Type: 'Build Cache', TotalCount: 0, Active: 0, Size: '0B', Reclaimable: '0B' },
  ];
}

function addSystem(program: Command): void {
  const system = program.command('system').description('manage ufs: disk usage, pruning, information');
  system
    .command('df')
    .description('show disk usage of images, containers, volumes and build cache')
    .option('--format <format>', "format: 'table', 'table TEMPLATE', 'json' or a Go template")
    .action(async (opts: { format?: string }, cmd: Command) => {
      if (opts.format !== undefined && opts.format !== 'json' && opts.format !== 'table') await compileListFormat(opts.format);
      const store = await openStore(cmd);
      const lines = await diskUsage(store);
      out(
        await renderList(opts.format, lines, {
          table: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
          headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
        }),
      );
    });
  system
    .command('prune')
    .description('remove stopped containers and dangling images (with -a, every image no container uses; with --volumes, unused anonymous volumes)')
    .option('-a, --all', 'remove all unused images, not just dangling ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--volumes', 'prune anonymous volumes too')
    .action(async (opts: { all?: boolean; force?: boolean; volumes?: boolean }, cmd: Command) => {
      const what = `:\n  - all stopped containers\n${opts.volumes ? '  - all anonymous volumes not used by at least one container\n' : ''}  - ${opts.all ? 'all images without at least one container associated to them' : 'all dangling images'}\n`;
      if (!(await confirm(opts.force, what.replace(/\n$/, '')))) return;
      const store = await openStore(cmd);
      const { pruneImages } = await import('../image/gc.js');
      const pruned = await pruneContainers(store);
      let reclaimed = pruned.bytes;
      const deleted = pruned.deleted;
      if (deleted.length) out(`Deleted Containers:\n${deleted.map((d) => `${d}\n`).join('')}\n`);
      if (opts.volumes) {
        const { pruneVolumes } = await import('../volume/index.js');
        const vols = await pruneVolumes(store, {});
        if (vols.removed.length) out(`Deleted Volumes:\n${vols.removed.map((n) => `${n}\n`).join('')}\n`);
        reclaimed += vols.bytes;
      }
      const images = await pruneImages(store, !!opts.all);
      if (images.lines.length) out(`Deleted Images:\n${images.lines.map((l) => `${l}\n`).join('')}\n`);
      out(`Total reclaimed space: ${humanSize(reclaimed + images.bytes)}\n`);
    });
  addInfo(system, 'info');
}

// Removes every stopped container (`system prune`, `container prune`): their ids, and the
// bytes their writable layers held. A container that cannot go is reported and skipped.
export async function pruneContainers(store: Store): Promise<{ deleted: string[]; bytes: number }> {
  const { listContainers, removeContainer } = await import('../runtime/index.js');
  const { containerPaths } = await import('../runtime/container.js');
  let bytes = 0;
  const deleted: string[] = [];
  for (const c of await listContainers(store, true)) {
    if (c.State.Status === 'running') continue;
    const size = treeBytes(containerPaths(store.containersDir(), c.Id).upper);
    try {
      await removeContainer(store, c.Id, false);
    } catch (err) {
      if (!(err instanceof UfsError)) throw err;
      process.stderr.write(`ufs: ${err.message}\n`);
      continue;
    }
    deleted.push(c.Id);
    bytes += size;
  }
  return { deleted, bytes };
}

export function registerSystemCommands(program: Command): void {
  addInspect(program);
  addVersion(program);
  addInfo(program, 'info');
  addSystem(program);
  registerCompletionCommand(program);
}

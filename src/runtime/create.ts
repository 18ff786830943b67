// `ufs run`'s first half (Docker's `create`): resolve the image, work out the container's
// configuration, and lay out containers/<id>/ with its record, writable layer, init layer
// and /etc files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import { resolveImage } from '../image/resolve.js';
import type { Store } from '../store/index.js';
import { effectiveConfig, commandOf, type ConfigFlags, type ImageRunConfig } from './config.js';
import { mergePublished, parseExtraHost, parseNetworkMode, parsePublish, publishAll, resolveNetwork } from '../network/index.js';
import { containerPaths, listRecords, newContainerId, shortId, writeRecord, type BindMount, type ContainerRecord, type HostConfig } from './container.js';
import { writeEtcFiles } from './etcfiles.js';
import { hostConfigFromFlags, type RuntimeFlags } from './flags.js';
import { createInitLayer } from './initlayer.js';
import { randomName, validName } from './names.js';
import { processStartTime } from './proc.js';
import { ANONYMOUS_LABEL, createVolume, removeVolume, validVolumeName } from '../volume/index.js';
import { fillVolumeFromImage } from './volumefill.js';

export interface CreateOptions extends Omit<ConfigFlags, 'hostname'>, RuntimeFlags {
  image: string;
  name?: string;
  hostname?: string;
  volumes: string[];             // [HOSTDIR|NAME:]DIR[:ro]
  network: string;               // bridge (default), none, host, container:NAME, a user network, or ns:PATH
  publish?: string[];            // -p [IP:][HOST:]CONTAINER[/PROTO]
  publishAll?: boolean;          // -P: every EXPOSEd port on a free host port
  networkAliases?: string[];
  ip?: string;
  macAddress?: string;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  addHost?: string[];
  autoRemove: boolean;
  labels?: string[];             // KEY=VALUE
  cidfile?: string;
}

// -v HOSTDIR:DIR[:ro|rw], -v NAME:DIR[:ro|rw] (a named volume) or -v DIR (an anonymous one),
// as Docker reads them: a source that is an absolute path is a host directory (created when
// missing), any other is a volume's name. The parsed form names the volume, not yet its
// directory (volumeMounts makes and finds those).
export interface VolumeSpec {
  source?: string;        // absolute host path (a bind)
  volume?: string;        // a named volume ('' for a new anonymous one)
  target: string;
  readonly: boolean;
}

export function parseVolume(spec: string): VolumeSpec {
  const parts = spec.split(':');
  if (parts.length === 1 && parts[0]) parts.unshift(''); // -v /dir: anonymous
  if (parts.length < 2 || parts.length > 3 || !parts[1]) {
    throw new UfsError(`invalid volume specification: '${spec}' (want [HOSTDIR|NAME:]DIR[:ro])`, 125);
  }
  const [source, target, mode = 'rw'] = parts as [string, string, string?];
  if (!path.posix.isAbsolute(target)) throw new UfsError(`invalid volume specification: '${spec}': the container path must be absolute`, 125);
  if (path.posix.normalize(target) === '/') throw new UfsError(`invalid volume specification: '${spec}': cannot mount over /`, 125);
  const opts = (mode ?? 'rw').split(',');
  for (const o of opts) if (!['ro', 'rw', 'z', 'Z'].includes(o)) throw new UfsError(`invalid volume specification: '${spec}': unknown mode '${o}'`, 125);
  const common = { target: path.posix.normalize(target), readonly: opts.includes('ro') };
  if (path.isAbsolute(source)) return { source: path.resolve(source), ...common };
  if (source !== '' && !validVolumeName(source)) {
    throw new UfsError(`create ${source}: "${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, 125);
  }
  return { volume: source, ...common };
}

// The bind mounts of the -v flags: host directories made when missing, named volumes made
// when missing, a new anonymous volume for each -v DIR. Returns them with Binds as Docker
// records them (an anonymous volume's generated name in place of the empty one).
async function volumeMounts(store: Store, specs: string[]): Promise<{ mounts: BindMount[]; binds: string[] }> {
  const parsed = specs.map(parseVolume); // all checked before anything is made
  const mounts: BindMount[] = [];
  const binds: string[] = [];
  for (const [i, v] of parsed.entries()) {
    if (v.source !== undefined) {
      if (!fs.existsSync(v.source)) fs.mkdirSync(v.source, { recursive: true, mode: 0o755 });
      mounts.push({ source: v.source, target: v.target, readonly: v.readonly });
      binds.push(specs[i]!);
      continue;
    }
    const vol = await createVolume(store, v.volume ? { name: v.volume } : { labels: { [ANONYMOUS_LABEL]: '' } });
    mounts.push({ source: vol.Mountpoint, target: v.target, readonly: v.readonly, volume: vol.Name, anonymous: !v.volume || undefined });
    binds.push(`${vol.Name}:${v.target}${v.readonly ? ':ro' : ''}`);
  }
  return { mounts, binds };
}

// Docker's anonymous volume for each VOLUME of the image that no -v, --mount or --tmpfs
// covers; added to `mounts` (so that a failed create removes them with the others).
async function imageVolumes(store: Store, config: ImageRunConfig, mounts: BindMount[], otherTargets: string[]): Promise<void> {
  const taken = new Set([...mounts.map((m) => m.target), ...otherTargets]);
  for (const dir of Object.keys(config.Volumes ?? {})) {
    const target = path.posix.normalize(dir);
    if (!path.posix.isAbsolute(target) || target === '/' || taken.has(target)) continue;
    taken.add(target);
    const vol = await createVolume(store, { labels: { [ANONYMOUS_LABEL]: '' } });
    mounts.push({ source: vol.Mountpoint, target, readonly: false, volume: vol.Name, anonymous: true });
  }
}

export async function parseNetwork(store: Store, network: string): Promise<string> {
  if (network.startsWith('ns:') && path.isAbsolute(network.slice(3))) return network;
  const mode = parseNetworkMode(network);
  if (mode.kind !== 'network') return network;
  try {
    return (await resolveNetwork(store, mode.name)).name;
  } catch (err) {
    throw err instanceof UfsError ? new UfsError(err.message, 125) : err;
  }
}

// The network flags, checked now (a bad one fails `create`, not a later start).
function networkFlags(opts: CreateOptions, exposed: string[]): Partial<HostConfig> {
  const out: Partial<HostConfig> = {};
  try {
    let ports = (opts.publish ?? []).flatMap((p) => parsePublish(p));
    if (opts.publishAll) ports = mergePublished(ports, publishAll(exposed));
    if (ports.length) out.PortBindings = ports;
    for (const h of opts.addHost ?? []) parseExtraHost(h);
  } catch (err) {
    throw err instanceof UfsError ? new UfsError(err.message, 125) : err;
  }
  if (opts.networkAliases?.length) out.NetworkAliases = opts.networkAliases;
  if (opts.ip !== undefined) out.IPAddress = opts.ip;
  if (opts.macAddress !== undefined) out.MacAddress = opts.macAddress;
  if (opts.dns?.length) out.Dns = opts.dns;
  if (opts.dnsSearch?.length) out.DnsSearch = opts.dnsSearch;
  if (opts.dnsOptions?.length) out.DnsOptions = opts.dnsOptions;
  if (opts.addHost?.length) out.ExtraHosts = opts.addHost;
  return out;
}

function parseLabels(labels: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) {
    const i = l.indexOf('=');
    if (i === 0) throw new UfsError(`invalid label: '${l}'`, 125);
    out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

// With `monitor` (a foreground `ufs run`, which is the container's monitor from the start),
// the record names this process as its monitor from its first write: the monitor's claim
// then needs no second write under the lock.
export async function createContainer(store: Store, opts: CreateOptions, monitor = false): Promise<ContainerRecord> {
  opts.volumes.forEach(parseVolume); // bad flags fail before anything is made
  const made = await volumeMounts(store, opts.volumes);
  try {
    return await createRecord(store, opts, made, monitor);
  } catch (err) {
    // anonymous volumes made for a container that never was go with it
    for (const m of made.mounts) if (m.anonymous && m.volume) await removeVolume(store, m.volume, true).catch(() => {});
    throw err;
  }
}

async function createRecord(store: Store, opts: CreateOptions, { mounts, binds }: { mounts: BindMount[]; binds: string[] }, monitor: boolean): Promise<ContainerRecord> {
  if (opts.name !== undefined && !validName(opts.name)) {
    throw new UfsError(`Invalid container name (${opts.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, 125);
  }
  const network = await parseNetwork(store, opts.network);
  const fromFlags = hostConfigFromFlags(opts);
  if (opts.cidfile && fs.existsSync(opts.cidfile)) throw new UfsError(`Container ID file found, make sure the other container isn't running or delete ${opts.cidfile}`, 125);
  let image;
  try {
    image = await resolveImage(store, opts.image);
  } catch (err) {
    throw err instanceof UfsError ? new UfsError(err.message, 125) : err;
  }
  const id = newContainerId();
  // Docker: the host's hostname with the host's network.
  const hostname = opts.hostname ?? (network === 'host' ? os.hostname() : shortId(id));
  const imageConfig = ((image.config as { config?: ImageRunConfig }).config ?? {}) as ImageRunConfig;
  const config = effectiveConfig(imageConfig, opts.image, { ...opts, hostname });
  if (opts.labels?.length) config.Labels = { ...(config.Labels ?? {}), ...parseLabels(opts.labels) };
  if (opts.stopSignal !== undefined) config.StopSignal = opts.stopSignal;
  if (opts.stopTimeout !== undefined) config.StopTimeout = Number(opts.stopTimeout);
  const args = commandOf(config);
  await imageVolumes(store, imageConfig, mounts, [...fromFlags.Mounts.map((m) => m.target), ...fromFlags.Tmpfs.map((t) => t.target)]);
  for (const m of mounts) if (m.volume) await fillVolumeFromImage(image.layerDirs, m.target, m.source);

  const dir = store.containersDir();
  const paths = containerPaths(dir, id);
  const rec: ContainerRecord = {
    Id: id,
    Name: '',
    Image: image.id,
    ImageRef: opts.image,
    Created: new Date().toISOString(),
    Path: args[0],
    Args: args.slice(1),
    Config: config,
    State: { Status: 'created', Pid: 0, MonitorPid: monitor ? process.pid : 0, ...(monitor ? { MonitorStartTime: processStartTime(process.pid) } : {}), ExitCode: 0, StartedAt: '', FinishedAt: '' },
    HostConfig: { ...fromFlags, ...networkFlags(opts, Object.keys(imageConfig.ExposedPorts ?? {})), Binds: binds, Mounts: [...mounts, ...fromFlags.Mounts], NetworkMode: network, AutoRemove: opts.autoRemove },
    LogPath: paths.log(id),
  };
  // The name is claimed under the store lock: two `run --name x` cannot both win.
  await store.withLock(async () => {
    // The image must still be there now that we hold the lock: an `rmi -f` that ran since
    // we resolved it would otherwise leave a container without its image. From here on our
    // record holds it.
    try {
      await resolveImage(store, image.id);
    } catch {
      throw new UfsError(`No such image: ${opts.image} (removed while the container was being created)`, 125);
    }
    const taken = new Map(listRecords(dir).map((r) => [r.Name, r.Id]));
    if (opts.name !== undefined) {
      const other = taken.get(opts.name);
      if (other) {
        throw new UfsError(`Conflict. The container name "/${opts.name}" is already in use by container "${other}". You have to remove (or rename) that container to be able to reuse that name.`, 125);
      }
      rec.Name = opts.name;
    } else {
      do rec.Name = randomName();
      while (taken.has(rec.Name));
    }
    fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    try {
      fs.mkdirSync(paths.upper, { mode: 0o755 });
      fs.mkdirSync(paths.merged, { mode: 0o755 });
      createInitLayer(paths.init, image.layerDirs);
      writeEtcFiles(paths, hostname, network === 'host' ? 'host' : 'none'); // rewritten at start for the network's
      writeRecord(dir, rec);
    } catch (err) {
      fs.rmSync(paths.dir, { recursive: true, force: true });
      throw err;
    }
  });
  if (opts.cidfile) {
    try {
      fs.writeFileSync(opts.cidfile, rec.Id, { flag: 'wx' });
    } catch (err) {
      throw new UfsError(`cannot write the container id file ${opts.cidfile}: ${(err as Error).message}`, 125);
    }
  }
  return rec;
}

// `rm -v`: the anonymous volumes made for the container (-v DIR) go with it; named ones stay.
// Returns the names removed; a volume another container now uses is left (and named).
export async function removeAnonymousVolumes(store: Store, rec: ContainerRecord): Promise<{ removed: string[]; kept: string[] }> {
  const removed: string[] = [];
  const kept: string[] = [];
  for (const m of rec.HostConfig.Mounts ?? []) {
    if (!m.anonymous || !m.volume) continue;
    try {
      await removeVolume(store, m.volume, true);
      removed.push(m.volume);
    } catch (err) {
      if (!(err instanceof UfsError)) throw err;
      kept.push(m.volume);
    }
  }
  return { removed, kept };
}

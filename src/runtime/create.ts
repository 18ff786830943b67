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

export interface CreateOptions extends Omit<ConfigFlags, 'hostname'>, RuntimeFlags {
  image: string;
  name?: string;
  hostname?: string;
  volumes: string[];             // HOSTDIR:DIR[:ro]
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

// -v HOSTDIR:DIR[:ro|rw]: both absolute; a missing host directory is created, as Docker does.
export function parseVolume(spec: string): BindMount {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw new UfsError(`invalid volume specification: '${spec}' (want HOSTDIR:DIR[:ro])`, 125);
  }
  const [source, target, mode = 'rw'] = parts;
  if (!path.isAbsolute(source)) throw new UfsError(`invalid volume specification: '${spec}': the host path must be absolute (named volumes are not supported)`, 125);
  if (!path.posix.isAbsolute(target)) throw new UfsError(`invalid volume specification: '${spec}': the container path must be absolute`, 125);
  if (path.posix.normalize(target) === '/') throw new UfsError(`invalid volume specification: '${spec}': cannot mount over /`, 125);
  const opts = mode.split(',');
  for (const o of opts) if (!['ro', 'rw', 'z', 'Z'].includes(o)) throw new UfsError(`invalid volume specification: '${spec}': unknown mode '${o}'`, 125);
  if (!fs.existsSync(source)) fs.mkdirSync(source, { recursive: true, mode: 0o755 });
  return { source: path.resolve(source), target: path.posix.normalize(target), readonly: opts.includes('ro') };
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

export async function createContainer(store: Store, opts: CreateOptions): Promise<ContainerRecord> {
  if (opts.name !== undefined && !validName(opts.name)) {
    throw new UfsError(`Invalid container name (${opts.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`, 125);
  }
  const network = await parseNetwork(store, opts.network);
  const mounts = opts.volumes.map(parseVolume);
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
    State: { Status: 'created', Pid: 0, MonitorPid: 0, ExitCode: 0, StartedAt: '', FinishedAt: '' },
    HostConfig: { ...fromFlags, ...networkFlags(opts, Object.keys(imageConfig.ExposedPorts ?? {})), Binds: opts.volumes, Mounts: [...mounts, ...fromFlags.Mounts], NetworkMode: network, AutoRemove: opts.autoRemove },
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

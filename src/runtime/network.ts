// A container's network at start (the network module's setupNetwork for its --network
// mode) and its undoing at exit, rm and reconcile. The /etc files are rewritten at each
// start, since a bridged container's address is leased per start.
import fs from 'node:fs';
import { UfsError } from '../common/errors.js';
import { detach, endpoints, holdPort, parseNetworkMode, type JoinTarget, type NetworkSetup, type PortHold, type PortMapping, setupNetwork } from '../network/index.js';
import type { Store } from '../store/index.js';
import { containerPaths, findRecord, type ContainerRecord } from './container.js';
import type { NetworkSpec } from './ocispec.js';
import { isAlive } from './proc.js';

// The other container of --network container:NAME: running, its namespace and /etc files.
function joinTarget(store: Store, ref: string): JoinTarget {
  const other = findRecord(store.containersDir(), ref);
  if (other.State.Status !== 'running' || !isAlive(other.State.Pid, other.State.PidStartTime)) {
    throw new UfsError(`cannot join network of a non running container: ${ref}`, 125);
  }
  const mode = other.HostConfig.NetworkMode;
  if (mode.startsWith('container:')) throw new UfsError(`cannot join the network of ${ref}: it shares another container's network`, 125);
  const attached = endpoints(store, other.Id)[0]?.netnsPath;
  const paths = containerPaths(store.containersDir(), other.Id);
  return {
    netnsPath: mode === 'host' ? '' : (attached ?? `/proc/${other.State.Pid}/ns/net`),
    etcHosts: fs.readFileSync(paths.hosts, 'utf8'),
    resolvConf: fs.readFileSync(paths.resolvConf, 'utf8'),
  };
}

export interface StartedNetwork {
  spec: NetworkSpec;
  setup?: NetworkSetup;
}

export async function startNetwork(store: Store, rec: ContainerRecord): Promise<StartedNetwork> {
  const hc = rec.HostConfig;
  if (hc.NetworkMode.startsWith('ns:')) return { spec: { mode: 'netns', path: hc.NetworkMode.slice(3) } };
  const mode = parseNetworkMode(hc.NetworkMode);
  let join: JoinTarget | undefined;
  if (mode.kind === 'container') {
    join = joinTarget(store, mode.ref);
    if (!join.netnsPath) return { spec: { mode: 'host' }, ...writeFiles(store, rec, join.etcHosts, join.resolvConf) };
  }
  await detach(store, rec.Id); // a crashed start's leftovers
  const setup = await setupNetwork(
    store,
    rec.Id,
    {
      mode,
      hostname: rec.Config.Hostname,
      name: rec.Name,
      ...(hc.NetworkAliases?.length ? { aliases: hc.NetworkAliases } : {}),
      ...(hc.IPAddress ? { ip: hc.IPAddress } : {}),
      ...(hc.MacAddress ? { mac: hc.MacAddress } : {}),
      ...(hc.PortBindings?.length ? { ports: hc.PortBindings } : {}),
      ...(hc.Dns?.length ? { dns: hc.Dns } : {}),
      ...(hc.DnsSearch?.length ? { dnsSearch: hc.DnsSearch } : {}),
      ...(hc.DnsOptions?.length ? { dnsOptions: hc.DnsOptions } : {}),
      ...(hc.ExtraHosts?.length ? { extraHosts: hc.ExtraHosts } : {}),
    },
    join,
  );
  writeFiles(store, rec, setup.etcHosts, setup.resolvConf);
  await holdPorts(rec.Id, setup.ports);
  return { spec: setup.spec, setup };
}

// The published ports this process holds open for its containers (it is their monitor).
const held = new Map<string, PortHold[]>();

async function holdPorts(id: string, ports: PortMapping[]): Promise<void> {
  const mine: PortHold[] = [];
  held.set(id, mine);
  for (const p of ports) {
    try {
      mine.push(await holdPort(p.hostIp, p.hostPort, p.protocol));
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'port is already allocated' : (err as Error).message;
      throw new UfsError(`Bind for ${p.hostIp || '0.0.0.0'}:${p.hostPort} failed: ${why}`, 125);
    }
  }
}

function releasePorts(id: string): void {
  for (const h of held.get(id) ?? []) h.close();
  held.delete(id);
}

function writeFiles(store: Store, rec: ContainerRecord, hosts: string, resolv: string): Record<string, never> {
  const paths = containerPaths(store.containersDir(), rec.Id);
  fs.writeFileSync(paths.hosts, hosts, { mode: 0o644 });
  fs.writeFileSync(paths.resolvConf, resolv, { mode: 0o644 });
  return {};
}

// Idempotent: nothing attached is nothing to do.
export async function stopNetwork(store: Store, id: string): Promise<void> {
  releasePorts(id);
  await detach(store, id);
}

// `ufs port`: the host ports a running container's ports are published on.
export function publishedPorts(store: Store, id: string): PortMapping[] {
  return endpoints(store, id).flatMap((e) => e.ports);
}

// attach/detach (INTERFACES.md §3): a container's namespace, its address, its published ports
// and its names, set up by netavark and recorded as an endpoint under the store lock, so no
// two containers get one address or one host port, and detach can always undo all of it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import { type Store, withFileLock } from '../store/index.js';
import { etcHosts, parseExtraHost, resolvConf } from './etcfiles.js';
import { freePort, portFree } from './hostnet.js';
import { contains, firstHost, formatIp, isIp, lastHost, parseCidr, parseIp } from './ipv4.js';
import { NetavarkError, netavarkSetup, netavarkTeardown, removeNetavarkConfigDir } from './netavark.js';
import { addPlaceholderInterface, createNetns, deleteNetns, netnsExists, netnsPathOf } from './netns.js';
import { DEFAULT_NETWORK, dropEndpoint, networksDir, endpointsOf, ensureDefaultNetwork, getNetwork, listEndpoints, PSEUDO_NETWORKS, writeEndpoint } from './records.js';
import type { AttachOptions, AttachResult, Endpoint, NetavarkOptions, NetworkRecord, PortMapping } from './types.js';

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const ALIAS_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export async function resolveNetwork(store: Store, ref: string): Promise<NetworkRecord> {
  if (PSEUDO_NETWORKS.includes(ref)) throw new UfsError(`network ${ref} is a mode of its own, not one a container attaches to`);
  return ref === DEFAULT_NETWORK ? ensureDefaultNetwork(store) : getNetwork(store, ref);
}

function validate(opts: AttachOptions, net: NetworkRecord): void {
  const user = net.name !== DEFAULT_NETWORK;
  if (opts.ip !== undefined) {
    if (!user) throw new UfsError('user specified IP address is supported on user defined networks only');
    if (!isIp(opts.ip)) throw new UfsError(`invalid --ip ${JSON.stringify(opts.ip)}: expected an IPv4 address`);
  }
  if (opts.aliases?.length && !user) throw new UfsError('network-scoped alias is supported only for containers in user defined networks');
  for (const a of opts.aliases ?? []) if (!ALIAS_RE.test(a)) throw new UfsError(`invalid --network-alias ${JSON.stringify(a)}`);
  if (opts.mac !== undefined && !MAC_RE.test(opts.mac)) throw new UfsError(`invalid --mac-address ${JSON.stringify(opts.mac)}: expected six hex pairs such as 02:42:ac:11:00:02`);
  if (opts.mac !== undefined && (parseInt(opts.mac.slice(0, 2), 16) & 1) === 1) throw new UfsError(`invalid --mac-address ${opts.mac}: a multicast address`);
  for (const h of opts.extraHosts ?? []) parseExtraHost(h);
  for (const d of opts.dns ?? []) if (!isIp(d)) throw new UfsError(`invalid --dns ${JSON.stringify(d)}: expected an IPv4 address`);
  if (!opts.hostname) throw new UfsError('attach needs the container hostname');
}

// The lowest free host address of the network (not the gateway, not another container's).
function allocateIp(store: Store, net: NetworkRecord, wanted?: string): string {
  const cidr = parseCidr(net.subnet);
  const taken = new Set(listEndpoints(store).filter((e) => e.networkId === net.id).map((e) => parseIp(e.ip)));
  taken.add(parseIp(net.gateway));
  if (wanted !== undefined) {
    const n = parseIp(wanted);
    if (!contains(cidr, n) || n < firstHost(cidr) || n > lastHost(cidr)) throw new UfsError(`requested IP ${wanted} is not a host address of network ${net.name} (${net.subnet})`);
    if (taken.has(n)) throw new UfsError(`address ${wanted} is already in use on network ${net.name}`);
    return wanted;
  }
  for (let n = firstHost(cidr); n <= lastHost(cidr); n++) if (!taken.has(n)) return formatIp(n);
  throw new UfsError(`no free address left on network ${net.name} (${net.subnet})`);
}

function sameSocket(a: PortMapping, b: PortMapping): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === '' || b.hostIp === '' || a.hostIp === b.hostIp);
}

// Host ports: explicit ones checked against other containers and the host; 0 gets a free one.
async function resolvePorts(store: Store, wanted: PortMapping[]): Promise<PortMapping[]> {
  const held = listEndpoints(store).flatMap((e) => e.ports);
  const out: PortMapping[] = [];
  for (const m of wanted) {
    if (m.hostIp && !isIp(m.hostIp)) throw new UfsError(`invalid host IP ${m.hostIp}`);
    let port = m.hostPort;
    if (port === 0) {
      for (let tries = 0; ; tries++) {
        port = await freePort(m.hostIp, m.protocol);
        const cand = { ...m, hostPort: port };
        if (![...held, ...out].some((h) => sameSocket(h, cand))) break;
        if (tries > 50) throw new UfsError('no free host port found');
      }
    } else {
      const cand = { ...m, hostPort: port };
      if ([...held, ...out].some((h) => sameSocket(h, cand)) || !(await portFree(m.hostIp, port, m.protocol))) {
        throw new UfsError(`Bind for ${m.hostIp || '0.0.0.0'}:${port} failed: port is already allocated`);
      }
    }
    out.push({ ...m, hostPort: port });
  }
  return out;
}

// The name netavark knows a network by. netavark names its firewall chains after it, and the
// chains are machine-wide: every store's default network is called "bridge", and two stores
// may each have a "mynet", so by their own names they would share a chain (and one's
// teardown would take the other's MASQUERADE rule). The network's id is unique.
export function netavarkName(net: NetworkRecord): string {
  return `ufs-${net.id.slice(0, 16)}`;
}

function netavarkOptions(containerId: string, opts: AttachOptions, net: NetworkRecord, iface: string, ip: string, aliases: string[], ports: PortMapping[]): NetavarkOptions {
  const perNet: NetavarkOptions['networks'][string] = { static_ips: [ip], aliases, interface_name: iface };
  if (opts.mac) perNet.static_mac = opts.mac.toLowerCase();
  const options: NetavarkOptions = {
    container_id: containerId,
    container_name: opts.name ?? opts.hostname,
    networks: { [netavarkName(net)]: perNet },
    network_info: {
      [netavarkName(net)]: {
        name: netavarkName(net),
        id: net.id,
        driver: 'bridge',
        network_interface: net.bridge,
        subnets: [{ subnet: net.subnet, gateway: net.gateway }],
        ipv6_enabled: false,
        internal: net.internal,
        dns_enabled: net.dns,
        ipam_options: { driver: 'host-local' },
      },
    },
  };
  if (ports.length) options.port_mappings = ports.map((p) => ({ host_ip: p.hostIp, container_port: p.containerPort, host_port: p.hostPort, range: 1, protocol: p.protocol }));
  if (net.dns && opts.dns?.length) options.dns_servers = [...opts.dns];
  return options;
}

export async function attach(store: Store, containerId: string, opts: AttachOptions): Promise<AttachResult> {
  if (!containerId || containerId.includes('/')) throw new UfsError(`invalid container id ${JSON.stringify(containerId)}`);
  const net = await resolveNetwork(store, opts.network);
  validate(opts, net);
  const nsPath = netnsPathOf(containerId);
  const ep = await store.withLock(async () => {
    const mine = endpointsOf(store, containerId);
    if (mine.some((e) => e.networkId === net.id)) throw new UfsError(`container ${containerId.slice(0, 12)} is already connected to network ${net.name}`);
    const ip = allocateIp(store, net, opts.ip);
    const ports = await resolvePorts(store, opts.ports ?? []);
    const used = new Set(mine.map((e) => e.interface));
    let i = 0;
    while (used.has(`eth${i}`)) i++;
    const iface = `eth${i}`;
    // Names that resolve on a user network: the container's name, its aliases, its short id (Docker's set).
    const aliases = net.dns ? [...new Set([...(opts.name ? [opts.name] : []), ...(opts.aliases ?? []), containerId.slice(0, 12)])] : [];
    const rec: Endpoint = {
      containerId,
      network: net.name,
      networkId: net.id,
      netnsPath: nsPath,
      interface: iface,
      ip,
      ...(opts.mac ? { mac: opts.mac.toLowerCase() } : {}),
      aliases,
      ports,
      options: netavarkOptions(containerId, opts, net, iface, ip, aliases, ports),
      ...(opts.ownerPid ? { ownerPid: opts.ownerPid } : {}),
      created: new Date().toISOString(),
    };
    writeEndpoint(store, rec);
    return rec;
  });
  let mac = '';
  try {
    await createNetns(nsPath);
    let status;
    try {
      status = await netavarkSetup(store.root, nsPath, ep.options);
    } catch (err) {
      if (!(err instanceof NetavarkError) || !IPTABLES_RACE.test(err.detail)) throw err;
      await teardown(store, ep); // what the first try made, then once more
      status = await netavarkSetup(store.root, nsPath, ep.options);
    }
    mac = status[netavarkName(net)]?.interfaces?.[ep.interface]?.mac_address ?? '';
  } catch (err) {
    await detachEndpoint(store, ep).catch(() => {});
    if (endpointsOf(store, containerId).length === 0) await deleteNetns(nsPath).catch(() => {});
    throw err;
  }
  const mode = net.dns ? 'user' : 'bridge';
  const etc = {
    ip: ep.ip,
    hostname: opts.hostname,
    ...(opts.extraHosts ? { extraHosts: opts.extraHosts } : {}),
    ...(opts.dns ? { dns: opts.dns } : {}),
    ...(opts.dnsSearch ? { dnsSearch: opts.dnsSearch } : {}),
    ...(opts.dnsOptions ? { dnsOptions: opts.dnsOptions } : {}),
    ...(net.dns ? { embeddedDns: net.gateway } : {}),
  };
  return {
    netnsPath: nsPath,
    ips: [ep.ip],
    ...(net.internal ? {} : { gateway: net.gateway }),
    mac,
    etcHosts: etcHosts(mode, etc),
    resolvConf: resolvConf(mode, etc),
    ports: ep.ports,
  };
}

// What netavark's teardown reports when the thing it would remove is already gone: the
// aardvark-dns state (or its daemon), the bridge (so no veth or rule on it either).
const ALREADY_GONE = [/^IO error: No such file or directory \(os error 2\)$/, /failed to get bridge interface: .*No such device/, /aardvark pid not found/];

function problems(err: NetavarkError): string[] {
  const m = /^netavark encountered multiple errors:\s*\n([\s\S]*)$/.exec(err.detail);
  const all = m ? m[1]!.split('\n').map((l) => l.replace(/^\s*-\s*/, '').trim()).filter(Boolean) : [err.detail];
  return all.filter((p) => !ALREADY_GONE.some((re) => re.test(p)));
}

// iptables-nft can fail a change that races with another writer of the same table (Podman's
// netavark does not take our lock); netavark checks before it deletes, so a retry is safe.
const IPTABLES_RACE = /iptables: (No chain\/target\/match|Resource temporarily unavailable)|xtables lock/;

async function teardown(store: Store, ep: Endpoint): Promise<void> {
  let left: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await netavarkTeardown(store.root, ep.netnsPath, ep.options);
    } catch (err) {
      if (!(err instanceof NetavarkError)) throw err;
      left = problems(err);
      if (!left.length || !left.some((p) => IPTABLES_RACE.test(p))) break;
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
    }
  }
  if (!left.length) return;
  // The interface vanished with a lost namespace, and netavark stops there: give it a
  // stand-in so it goes on to remove the firewall rules and the DNS entry.
  if (left.some((p) => /failed to delete container veth/.test(p))) {
    await addPlaceholderInterface(ep.netnsPath, ep.interface).catch(() => {});
    try {
      return await netavarkTeardown(store.root, ep.netnsPath, ep.options);
    } catch (err) {
      if (!(err instanceof NetavarkError)) throw err;
      left = problems(err);
    }
  }
  if (left.length) throw new NetavarkError('teardown', left.join('; '));
}

// Undoes one endpoint: netavark teardown (in the namespace, which is kept until then), then the lease.
async function detachEndpoint(store: Store, ep: Endpoint): Promise<void> {
  if (!netnsExists(ep.netnsPath)) await createNetns(ep.netnsPath);
  await teardown(store, ep);
  await store.withLock(async () => {
    dropEndpoint(store, ep.containerId, ep.networkId);
    if (listEndpoints(store).length === 0) removeNetavarkConfigDir(store.root);
  });
}

// Leaves no namespace, veth, firewall rule, DNS entry or lease of the container: on one
// network (disconnect) or all. Safe to call again, and for a container never attached.
export async function detach(store: Store, containerId: string, network?: string): Promise<void> {
  if (endpointsOf(store, containerId).length === 0) {
    await deleteNetns(netnsPathOf(containerId));
    return;
  }
  // One detach of a container at a time (its monitor at exit, `rm -f`, a reconcile): the
  // second finds the work done instead of tearing down what is half gone.
  const lock = path.join(networksDir(store), 'locks', containerId.replace(/[^a-zA-Z0-9_.-]/g, '_'));
  fs.mkdirSync(path.dirname(lock), { recursive: true, mode: 0o700 });
  await withFileLock(lock, async () => {
    let eps = endpointsOf(store, containerId);
    if (network !== undefined) {
      const net = getNetwork(store, network);
      eps = eps.filter((e) => e.networkId === net.id);
    }
    const errors: string[] = [];
    for (const ep of eps) {
      try {
        await detachEndpoint(store, ep);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (endpointsOf(store, containerId).length === 0) await deleteNetns(netnsPathOf(containerId));
    if (errors.length) throw new UfsError(`detaching ${containerId.slice(0, 12)}: ${errors.join('; ')}`);
  });
  // A waiter still blocked on this (unlinked) file finds nothing left to do.
  fs.rmSync(lock, { force: true });
}

// What a container is attached to (ufs port, inspect, --network container:NAME).
export function endpoints(store: Store, containerId: string): Endpoint[] {
  return endpointsOf(store, containerId);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// A network for the length of `fn` (a build's RUN step): attached under a fresh id owned by
// this process, detached afterwards, also when fn throws.
export async function withTemporaryNetwork<T>(store: Store, opts: AttachOptions, fn: (a: AttachResult) => Promise<T>): Promise<T> {
  const id = `tmp-${crypto.randomBytes(12).toString('hex')}`;
  const a = await attach(store, id, { ...opts, ownerPid: process.pid });
  try {
    return await fn(a);
  } finally {
    await detach(store, id);
  }
}

// Frees what belongs to containers that no longer exist or no longer run (`keep` says which
// may keep their networks); returns the ids it detached.
export async function reconcile(store: Store, keep: (containerId: string) => boolean): Promise<string[]> {
  const eps = listEndpoints(store);
  const owned = new Set(eps.filter((e) => e.ownerPid && pidAlive(e.ownerPid)).map((e) => e.containerId));
  const ids = [...new Set(eps.map((e) => e.containerId))].filter((id) => !owned.has(id) && !keep(id));
  const errors: string[] = [];
  for (const id of ids) {
    try {
      await detach(store, id);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length) throw new UfsError(errors.join('; '));
  return ids;
}

// Frees attachments whose owning process (a build killed before its cleanup ran) is gone;
// containers' attachments have no owner process and are left to the runtime's reconcile.
export async function reapOrphans(store: Store): Promise<string[]> {
  const orphaned = new Set(listEndpoints(store).filter((e) => e.ownerPid && !pidAlive(e.ownerPid)).map((e) => e.containerId));
  if (orphaned.size === 0) return [];
  return reconcile(store, (id) => !orphaned.has(id));
}

// The network store, under the store root:
//   networks/<name>.json                          one network (NetworkRecord)
//   networks/endpoints/<containerId>/<netid>.json one container's attachment (Endpoint)
// Every change is an atomic rename made under the store lock; readers never lock.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, UfsError } from '../common/errors.js';
import { DEFAULT_STORE_ROOT } from '../common/paths.js';
import { readJsonSync, rmTreeSync, type Store, writeFileAtomicSync } from '../store/index.js';
import { hostBlocks } from './hostnet.js';
import { type Cidr, contains, firstHost, formatCidr, formatIp, lastHost, overlaps, parseCidr, parseIp } from './ipv4.js';
import type { Endpoint, NetworkRecord } from './types.js';

export const DEFAULT_NETWORK = 'bridge';
export const DEFAULT_BRIDGE = 'ufs0';
// Docker's default bridge is 172.17.0.0/16 and podman's 10.88.0.0/16; ours sits beside both.
const DEFAULT_SUBNETS = ['10.87.0.0/16', '10.86.0.0/16', '10.85.0.0/16', '172.29.0.0/16'];
// The default bridge of a store other than /var/lib/ufs: a /24 from here.
const OTHER_STORES_POOL = parseCidr('10.160.0.0/12');
// User networks without --subnet get a /24 from here (podman takes 10.89.x.0/24).
const USER_POOL = parseCidr('10.91.0.0/16');
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const PSEUDO_NETWORKS = ['host', 'none'];

export function networksDir(store: Store): string {
  return path.join(store.root, 'networks');
}
function networkFile(store: Store, name: string): string {
  return path.join(networksDir(store), `${name}.json`);
}
export function endpointsDir(store: Store): string {
  return path.join(networksDir(store), 'endpoints');
}
function endpointFile(store: Store, containerId: string, networkId: string): string {
  return path.join(endpointsDir(store), containerId, `${networkId}.json`);
}

function writeJson(store: Store, file: string, value: unknown): void {
  if (!store.holdsLock()) throw new Error(`network store written without the store lock: ${file}`);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomicSync(store.tmpPath('net.json'), file, `${JSON.stringify(value, null, 2)}\n`);
}

export function listNetworks(store: Store): NetworkRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(networksDir(store)).filter((n) => n.endsWith('.json'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: NetworkRecord[] = [];
  for (const n of names) {
    const rec = readJsonSync<NetworkRecord>(path.join(networksDir(store), n));
    if (rec) out.push(rec);
  }
  return out.sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
}

// By exact name, else by a unique id prefix (as Docker).
export function findNetwork(store: Store, ref: string): NetworkRecord | undefined {
  if (NAME_RE.test(ref)) {
    const rec = readJsonSync<NetworkRecord>(networkFile(store, ref));
    if (rec) return rec;
  }
  if (!/^[a-f0-9]{1,64}$/.test(ref)) return undefined;
  const hits = listNetworks(store).filter((n) => n.id.startsWith(ref));
  if (hits.length > 1) throw new UfsError(`network ${ref} is ambiguous (${hits.length} networks have that id prefix)`);
  return hits[0];
}

export function getNetwork(store: Store, ref: string): NetworkRecord {
  const rec = findNetwork(store, ref);
  if (!rec) throw new UfsError(`network ${ref} not found`);
  return rec;
}

function usedBlocks(store: Store): { cidr: Cidr; what: string }[] {
  return [...listNetworks(store).map((n) => ({ cidr: parseCidr(n.subnet), what: `network ${n.name}` })), ...hostBlocks()];
}

export interface CreateNetworkOptions {
  name: string;
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  labels?: Record<string, string>;
  bridge?: string; // host interface name; default ufs-<id prefix>
  dns?: boolean; // default: true
}

export async function createNetwork(store: Store, opts: CreateNetworkOptions): Promise<NetworkRecord> {
  if (!NAME_RE.test(opts.name) || opts.name.length > 64) throw new UfsError(`invalid network name ${JSON.stringify(opts.name)}: use letters, digits, '_', '.', '-' (starting with a letter or digit)`);
  if (opts.name === 'endpoints') throw new UfsError('network name "endpoints" is reserved');
  if (opts.bridge !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/.test(opts.bridge)) throw new UfsError(`invalid bridge name ${JSON.stringify(opts.bridge)} (at most 15 characters)`);
  return store.withLock(async () => {
    if (PSEUDO_NETWORKS.includes(opts.name) || findNetwork(store, opts.name)?.name === opts.name) throw new UfsError(`network with name ${opts.name} already exists`);
    const id = crypto.randomBytes(32).toString('hex');
    const used = usedBlocks(store);
    let cidr: Cidr;
    if (opts.subnet !== undefined) {
      cidr = parseCidr(opts.subnet);
      if (cidr.prefix > 30) throw new UfsError(`subnet ${opts.subnet} is too small: give at most /30`);
      const clash = used.find((u) => overlaps(u.cidr, cidr));
      if (clash) throw new UfsError(`subnet ${formatCidr(cidr)} overlaps with ${clash.what}`);
    } else {
      const found = pickUserSubnet(used);
      if (!found) throw new UfsError('no free subnet left in 10.91.0.0/16: give one with --subnet');
      cidr = found;
    }
    let gateway = firstHost(cidr);
    if (opts.gateway !== undefined) {
      gateway = parseIp(opts.gateway);
      if (!contains(cidr, gateway) || gateway < firstHost(cidr) || gateway > lastHost(cidr)) throw new UfsError(`gateway ${opts.gateway} is not a host address of subnet ${formatCidr(cidr)}`);
    }
    const bridge = opts.bridge ?? `ufs-${id.slice(0, 11)}`;
    if (listNetworks(store).some((n) => n.bridge === bridge)) throw new UfsError(`bridge ${bridge} is already used by another network`);
    const rec: NetworkRecord = {
      name: opts.name,
      id,
      driver: 'bridge',
      bridge,
      subnet: formatCidr(cidr),
      gateway: formatIp(gateway),
      internal: !!opts.internal,
      dns: opts.dns ?? true,
      labels: opts.labels ?? {},
      created: new Date().toISOString(),
    };
    writeJson(store, networkFile(store, rec.name), rec);
    return rec;
  });
}

function pickUserSubnet(used: { cidr: Cidr }[]): Cidr | undefined {
  for (let i = 0; i < 256; i++) {
    const c: Cidr = { base: USER_POOL.base + i * 256, prefix: 24 };
    if (!used.some((u) => overlaps(u.cidr, c))) return c;
  }
  return undefined;
}

// The default network: made on first use, Docker's `bridge` (no embedded DNS, NAT out).
// The standard store's is bridge ufs0 on 10.87.0.0/16 (or the next free /16); any other
// store (a test's, a bench's) gets a bridge and a /24 of its own, both derived from its
// root, so that two stores never share a bridge whose addresses each leases on its own.
// A caller may fix the bridge name and subnet instead.
export async function ensureDefaultNetwork(store: Store, opts: { bridge?: string; subnet?: string } = {}): Promise<NetworkRecord> {
  const have = findNetwork(store, DEFAULT_NETWORK);
  if (have?.name === DEFAULT_NETWORK) return have;
  return store.withLock(async () => {
    const again = readJsonSync<NetworkRecord>(networkFile(store, DEFAULT_NETWORK));
    if (again) return again;
    const standard = store.root === path.resolve(DEFAULT_STORE_ROOT);
    const tag = crypto.createHash('sha256').update(store.root).digest();
    let subnet = opts.subnet;
    if (subnet === undefined) {
      const used = usedBlocks(store);
      const free = (c: Cidr): boolean => !used.some((u) => overlaps(u.cidr, c));
      if (standard) {
        subnet = DEFAULT_SUBNETS.find((s) => free(parseCidr(s)));
      } else {
        const start = tag.readUInt16BE(0) % 4096;
        for (let i = 0; i < 4096 && subnet === undefined; i++) {
          const c: Cidr = { base: OTHER_STORES_POOL.base + ((start + i) % 4096) * 256, prefix: 24 };
          if (free(c)) subnet = formatCidr(c);
        }
      }
      if (!subnet) throw new UfsError('no free subnet for the default bridge network');
    }
    const bridge = opts.bridge ?? (standard ? DEFAULT_BRIDGE : `ufs${tag.toString('hex').slice(0, 8)}`);
    return createNetworkUnchecked(store, DEFAULT_NETWORK, bridge, subnet);
  });
}

async function createNetworkUnchecked(store: Store, name: string, bridge: string, subnet: string): Promise<NetworkRecord> {
  const cidr = parseCidr(subnet);
  const rec: NetworkRecord = {
    name,
    id: crypto.randomBytes(32).toString('hex'),
    driver: 'bridge',
    bridge,
    subnet: formatCidr(cidr),
    gateway: formatIp(firstHost(cidr)),
    internal: false,
    dns: false,
    labels: {},
    created: new Date().toISOString(),
  };
  writeJson(store, networkFile(store, name), rec);
  return rec;
}

// Removes user networks; refuses the default one and any with containers attached.
export async function removeNetwork(store: Store, ref: string): Promise<NetworkRecord> {
  return store.withLock(async () => {
    if (PSEUDO_NETWORKS.includes(ref)) throw new UfsError(`${ref} is a pre-defined network and cannot be removed`);
    const rec = getNetwork(store, ref);
    if (rec.name === DEFAULT_NETWORK) throw new UfsError(`${rec.name} is a pre-defined network and cannot be removed`);
    const users = endpointsOfNetwork(store, rec.id);
    if (users.length) throw new UfsError(`error while removing network: network ${rec.name} id ${rec.id} has active endpoints`);
    fs.rmSync(networkFile(store, rec.name), { force: true });
    return rec;
  });
}

// --- endpoints ---

export function listEndpoints(store: Store): Endpoint[] {
  const out: Endpoint[] = [];
  let ids: string[];
  try {
    ids = fs.readdirSync(endpointsDir(store));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  for (const id of ids) out.push(...endpointsOf(store, id));
  return out;
}

export function endpointsOf(store: Store, containerId: string): Endpoint[] {
  const dir = path.join(endpointsDir(store), containerId);
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
  const out: Endpoint[] = [];
  for (const f of files) {
    const ep = readJsonSync<Endpoint>(path.join(dir, f));
    if (ep) out.push(ep);
  }
  return out.sort((a, b) => a.interface.localeCompare(b.interface, undefined, { numeric: true }));
}

export function endpointsOfNetwork(store: Store, networkId: string): Endpoint[] {
  return listEndpoints(store).filter((e) => e.networkId === networkId);
}

export function writeEndpoint(store: Store, ep: Endpoint): void {
  writeJson(store, endpointFile(store, ep.containerId, ep.networkId), ep);
}

export function dropEndpoint(store: Store, containerId: string, networkId: string): void {
  if (!store.holdsLock()) throw new Error('endpoint dropped without the store lock');
  fs.rmSync(endpointFile(store, containerId, networkId), { force: true });
  const dir = path.join(endpointsDir(store), containerId);
  try {
    if (fs.readdirSync(dir).length === 0) rmTreeSync(dir);
  } catch {
    // already gone
  }
}

// `network prune`: every user network no container is attached to (label filters as Docker's
// `--filter label=K[=V]`).
export async function pruneNetworks(store: Store, labels: { key: string; value?: string }[] = []): Promise<NetworkRecord[]> {
  return store.withLock(async () => {
    const busy = new Set(listEndpoints(store).map((e) => e.networkId));
    const gone: NetworkRecord[] = [];
    for (const n of listNetworks(store)) {
      if (n.name === DEFAULT_NETWORK || busy.has(n.id)) continue;
      if (!labels.every((l) => l.key in n.labels && (l.value === undefined || n.labels[l.key] === l.value))) continue;
      fs.rmSync(networkFile(store, n.name), { force: true });
      gone.push(n);
    }
    return gone;
  });
}

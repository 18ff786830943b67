// Helpers for the network tests: a temp store whose default bridge and networks have unique
// names and random subnets from 10.250-254.x.0/24 (checked against the host's routes), and
// counts of only this test's own namespaces, veths and firewall rules.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { createNetwork, detach, ensureDefaultNetwork, listEndpoints, listNetworks, type NetworkRecord, reconcile } from '../../src/network/index.js';
import { Store } from '../../src/store/index.js';

export { run, type Result } from './process.js';

const taken = new Set<string>();

function hostRoutes(): string[] {
  const routes = JSON.parse(execFileSync('ip', ['-j', '-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' }) || '[]') as { dst?: string }[];
  const addrs = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr'], { encoding: 'utf8' }) || '[]') as { addr_info?: { local?: string }[] }[];
  return [...routes.map((r) => r.dst ?? ''), ...addrs.flatMap((a) => (a.addr_info ?? []).map((i) => i.local ?? ''))];
}

// A /24 in 10.250-254.x.0 that nothing on the host routes or holds (nor an earlier pick here).
export function freeSubnet(): string {
  const used = hostRoutes();
  for (let i = 0; i < 200; i++) {
    const prefix = `10.${250 + crypto.randomInt(5)}.${crypto.randomInt(256)}.`;
    if (taken.has(prefix) || used.some((u) => u.startsWith(prefix))) continue;
    taken.add(prefix);
    return `${prefix}0/24`;
  }
  throw new Error('no free test subnet in 10.250-254.x.0/24');
}

export function uniqueName(prefix: string): string {
  return `${prefix}${crypto.randomBytes(4).toString('hex')}`;
}

export function containerId(): string {
  return crypto.randomBytes(32).toString('hex');
}

export interface NetEnv {
  dir: string;
  root: string;
  store: Store;
  defaultNet: NetworkRecord; // this store's own "bridge": unique bridge name and subnet
  userNet(opts?: { internal?: boolean; name?: string }): Promise<NetworkRecord>;
  resources(): Resources;
}

// A temp store; on teardown every endpoint is detached (namespaces, veths, rules, DNS
// entries) and the store removed, also when the test failed half way.
export async function netEnv(t: ExecutionContext): Promise<NetEnv> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'ufs-test-net-'));
  const root = path.join(dir, 'root');
  const store = await Store.open(root);
  t.teardown(async () => {
    await reconcile(store, () => false).catch((err: unknown) => t.log(`cleanup: ${(err as Error).message}`));
    // reconcile keeps what a live process owns (withTemporaryNetwork in this very process)
    for (const id of new Set(listEndpoints(store).map((e) => e.containerId))) {
      await detach(store, id).catch((err: unknown) => t.log(`cleanup: ${(err as Error).message}`));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const defaultNet = await ensureDefaultNetwork(store, { bridge: uniqueName('ufst'), subnet: freeSubnet() });
  return {
    dir,
    root,
    store,
    defaultNet,
    userNet: (opts = {}) => createNetwork(store, { name: opts.name ?? uniqueName('tn'), subnet: freeSubnet(), bridge: uniqueName('ufst'), internal: !!opts.internal }),
    resources: () => countResources(store),
  };
}

export interface Resources {
  netns: number; // ours: /run/netns/ufs-<id> of the store's endpoints, or of ids it ever used
  bridges: number;
  veths: number; // interfaces enslaved to our bridges
  rules: number; // iptables-save lines that name our subnets, our containers or chains made for them
}

const seenIds = new WeakMap<Store, Set<string>>();

export function countResources(store: Store): Resources {
  const nets = listNetworks(store);
  const ids = seenIds.get(store) ?? new Set<string>();
  seenIds.set(store, ids);
  for (const e of listEndpoints(store)) ids.add(e.containerId);
  const netnsNames = new Set(fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []);
  const netns = [...ids].filter((id) => netnsNames.has(`ufs-${id.slice(0, 40)}`)).length;
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }) || '[]') as { ifname: string; master?: string }[];
  const bridgeNames = new Set(nets.map((n) => n.bridge));
  const bridges = links.filter((l) => bridgeNames.has(l.ifname)).length;
  const veths = links.filter((l) => l.master && bridgeNames.has(l.master)).length;
  return { netns, bridges, veths, rules: countRules(nets.map((n) => n.subnet.replace(/0\/24$/, '')), [...ids]) };
}

function countRules(subnetPrefixes: string[], ids: string[]): number {
  let save = '';
  for (const table of ['filter', 'nat']) save += execFileSync('iptables-save', ['-t', table], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const lines = save.split('\n');
  const direct = lines.filter((l) => subnetPrefixes.some((p) => l.includes(p)) || ids.some((id) => l.includes(id)));
  const shared = /^NETAVARK(-HOSTPORT-|_FORWARD)/;
  const chains = new Set<string>();
  for (const l of direct) for (const m of l.matchAll(/(?:-A|-j) (NETAVARK[-_][A-Z0-9_-]+)/g)) if (!shared.test(m[1]!)) chains.add(m[1]!);
  return lines.filter((l) => direct.includes(l) || [...chains].some((c) => l.includes(c))).length;
}

// An HTTP server on the host at ip (port chosen by the kernel) that answers `body`; closed on teardown.
export async function hostServer(t: ExecutionContext, ip: string, body: string): Promise<number> {
  const srv = http.createServer((_req, res) => res.end(body));
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, ip, () => resolve());
  });
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  srv.unref();
  return (srv.address() as AddressInfo).port;
}

// A long-running process inside a namespace (busybox httpd, sleep), killed by its pid on teardown.
export function inNetns(t: ExecutionContext, nsPath: string, args: string[]): ChildProcess {
  const child = spawn('nsenter', [`--net=${nsPath}`, '--', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

export function hostAddress(): string {
  const addrs = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr'], { encoding: 'utf8' }) || '[]') as { ifname: string; addr_info?: { local?: string; scope?: string }[] }[];
  for (const a of addrs) for (const i of a.addr_info ?? []) if (i.scope === 'global' && i.local && !a.ifname.startsWith('ufs')) return i.local;
  throw new Error('the host has no global IPv4 address');
}

export async function waitUntil(what: string, fn: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

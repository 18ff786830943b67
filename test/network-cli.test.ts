// ufs network create/ls/inspect/rm/prune through the built CLI on a temp store.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { attach, detach, ensureDefaultNetwork } from '../src/network/index.js';
import { Store } from '../src/store/index.js';
import { containerId, freeSubnet, netEnv, run, uniqueName } from './helpers/network.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

function ufs(root: string, args: string[]): ReturnType<typeof run> {
  return run(process.execPath, [CLI, '--root', root, ...args], { input: null });
}

test('create, ls, inspect, rm, prune with Docker columns and errors', async (t) => {
  const env = await netEnv(t);
  const name = uniqueName('cli');
  const subnet = freeSubnet();
  const gw = subnet.replace(/0\/24$/, '254');
  const created = await ufs(env.root, ['network', 'create', '--subnet', subnet, '--gateway', gw, '--label', 'team=net', name]);
  t.is(created.code, 0, created.stderr);
  const id = created.stdout.trim();
  t.regex(id, /^[a-f0-9]{64}$/);
  const ls = await ufs(env.root, ['network', 'ls']);
  const lines = ls.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
  t.deepEqual(lines.slice(1).map((l) => l.split(/\s+/).slice(1)), [['bridge', 'bridge', 'local'], ['host', 'host', 'local'], ['none', 'null', 'local'], [name, 'bridge', 'local']]);
  t.true(lines[4]!.startsWith(id.slice(0, 12)));
  t.is((await ufs(env.root, ['network', 'ls', '-q', '--filter', `name=${name}`])).stdout, `${id.slice(0, 12)}\n`);
  t.is((await ufs(env.root, ['network', 'ls', '--format', '{{.Name}}:{{.Driver}}', '--filter', 'label=team=net'])).stdout, `${name}:bridge\n`);
  const inspect = JSON.parse((await ufs(env.root, ['network', 'inspect', id.slice(0, 12)])).stdout) as { Name: string; IPAM: { Config: { Subnet: string; Gateway: string }[] }; Labels: Record<string, string>; Containers: Record<string, { IPv4Address: string }> }[];
  t.is(inspect[0]!.Name, name);
  t.deepEqual(inspect[0]!.IPAM.Config, [{ Subnet: subnet, Gateway: gw }]);
  t.deepEqual(inspect[0]!.Labels, { team: 'net' });

  // errors: one line, non-zero, nothing changed
  for (const [args, msg] of [
    [['network', 'create', '--subnet', subnet, uniqueName('dup')], /overlaps with network/],
    [['network', 'create', name], /already exists/],
    [['network', 'create', '--subnet', '10.250.0.0/33', 'x'], /invalid subnet/],
    [['network', 'create', '--gateway', '10.250.0.1', 'x'], /--gateway needs --subnet/],
    [['network', 'create', '-d', 'macvlan', 'x'], /only bridge/],
    [['network', 'rm', 'bridge'], /pre-defined network/],
    [['network', 'rm', 'nosuch'], /not found/],
    [['network', 'inspect', 'nosuch'], /not found/],
  ] as const) {
    const r = await ufs(env.root, [...args]);
    t.not(r.code, 0, args.join(' '));
    t.regex(r.stderr, msg, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }

  // a network in use is neither removed nor pruned; the container shows in inspect
  const cid = containerId();
  const a = await attach(env.store, cid, { network: name, hostname: 'x', name: 'x' });
  const busy = await ufs(env.root, ['network', 'rm', name]);
  t.regex(busy.stderr, /has active endpoints/);
  t.is((await ufs(env.root, ['network', 'prune', '-f'])).stdout, '');
  const seen = JSON.parse((await ufs(env.root, ['network', 'inspect', name])).stdout) as typeof inspect;
  t.is(seen[0]!.Containers[cid]!.IPv4Address, `${a.ips[0]}/24`);
  await detach(env.store, cid);

  const other = uniqueName('prn');
  t.is((await ufs(env.root, ['network', 'create', '--subnet', freeSubnet(), other])).code, 0);
  t.is((await ufs(env.root, ['network', 'prune', '--filter', 'label=team'])).stdout, `Deleted Networks:\n${name}\n`);
  t.is((await ufs(env.root, ['network', 'rm', other])).stdout, `${other}\n`);
  t.deepEqual((await ufs(env.root, ['network', 'ls', '--format', '{{.Name}}'])).stdout.split('\n').filter(Boolean), ['bridge', 'host', 'none']);
});

test('a store other than /var/lib/ufs gets a default bridge and subnet of its own, never ufs0', async (t) => {
  const recs = [];
  for (let i = 0; i < 2; i++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ufs-test-netdef-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const store = await Store.open(path.join(dir, 'root'));
    recs.push(await ensureDefaultNetwork(store));
    t.deepEqual(await ensureDefaultNetwork(store), recs[i], 'made once, then read');
  }
  for (const r of recs) {
    t.regex(r.bridge, /^ufs[0-9a-f]{8}$/);
    t.regex(r.subnet, /^10\.(1[6-7]\d)\.\d+\.0\/24$/);
    t.false(r.dns);
  }
  t.not(recs[0]!.bridge, recs[1]!.bridge);
  t.not(recs[0]!.subnet, recs[1]!.subnet);
});

// `ufs build --network` and `RUN --network`: RUN steps on the default bridge (as Docker's
// build), reaching a server the test starts on the host through the gateway; none with no
// way out; host; a user network; and nothing left attached after a build, a failed step or
// a Ctrl-C. Each test has its own store, whose default bridge has a unique name and subnet.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { attach, detach, ensureDefaultNetwork, listEndpoints, listNetworks, reconcile, type NetworkRecord, createNetwork } from '../src/network/index.js';
import { Store } from '../src/store/index.js';
import { CLI, imageEnv, type ImageEnv, run } from './helpers/images.js';
import { containerId, countResources, freeSubnet, hostServer, uniqueName, waitUntil } from './helpers/network.js';

interface Env {
  e: ImageEnv;
  store: Store;
  def: NetworkRecord;
  build(dockerfile: string, args?: string[]): Promise<{ code: number; out: string; err: string }>;
  // A stand-in container attached to `net`, so its bridge and gateway address exist before
  // the build (a test server listens on the gateway); detached on teardown.
  holder(net: NetworkRecord): Promise<void>;
}

async function setup(t: ExecutionContext): Promise<Env> {
  const e = await imageEnv(t);
  const store = await Store.open(e.root);
  t.teardown(async () => {
    await reconcile(store, () => false).catch((err: unknown) => t.log(`cleanup: ${(err as Error).message}`));
    for (const id of new Set(listEndpoints(store).map((x) => x.containerId))) await detach(store, id).catch(() => {});
  });
  const def = await ensureDefaultNetwork(store, { bridge: uniqueName('ufsbt'), subnet: freeSubnet() });
  let n = 0;
  return {
    e,
    store,
    def,
    async build(dockerfile, args = []) {
      const ctx = path.join(e.dir, `ctx${n++}`);
      fs.mkdirSync(ctx);
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile);
      const r = await e.ufs(['build', '--progress', 'plain', ...args, ctx]);
      return { code: r.code, out: r.stdout, err: r.stderr };
    },
    async holder(net) {
      await attach(store, containerId(), { network: net.name, hostname: 'holder' });
    },
  };
}

// The firewall lines naming this store's subnets (logged when a count differs).
function ruleLines(store: Store): string[] {
  const prefixes = listNetworks(store).map((n) => n.subnet.replace(/0\/24$/, ''));
  let save = '';
  for (const table of ['filter', 'nat']) save += execFileSync('iptables-save', ['-t', table], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return save.split('\n').filter((l) => prefixes.some((p) => l.includes(p)));
}

function sameResources(t: ExecutionContext, store: Store, before: ReturnType<typeof countResources>, linesBefore: string[]): void {
  const now = countResources(store);
  if (JSON.stringify(now) !== JSON.stringify(before)) t.log(`rules before:\n${linesBefore.join('\n')}\nafter:\n${ruleLines(store).join('\n')}`);
  t.deepEqual(now, before);
}

function ours(store: Store): string[] {
  return listEndpoints(store).filter((x) => x.containerId.startsWith('tmp-')).map((x) => x.containerId);
}

test.serial('RUN steps use the default bridge: a host server through the gateway; RUN --network=none in the same build has no way out', async (t) => {
  const env = await setup(t);
  await env.holder(env.def);
  const before = countResources(env.store);
  const lines = ruleLines(env.store);
  const port = await hostServer(t, env.def.gateway, 'from-the-host');
  const url = `http://${env.def.gateway}:${port}/`;
  const r = await env.build(['FROM busybox', `RUN wget -q -O /got ${url} && echo "fetched: $(cat /got)"`, `RUN --network=none ! wget -q -T 2 -O- ${url} && ip -o link | grep -v ' lo:' | wc -l > /links`, 'RUN ip route'].join('\n'));
  t.is(r.code, 0, r.err);
  t.regex(r.err, /fetched: from-the-host/);
  t.regex(r.err, new RegExp(`default via ${env.def.gateway.replace(/\./g, '\\.')}`));
  const id = r.out.trim().split('\n').at(-1)!;
  t.is((await env.e.ok(['run', '--rm', '--network', 'none', id, 'sh', '-c', 'cat /got; echo; cat /links'])).replace(/\s+/g, ' ').trim(), 'from-the-host 0');
  t.deepEqual(ours(env.store), []);
  sameResources(t, env.store, before, lines);
  // Cached the second time: nothing runs, so nothing is attached.
  const again = await env.build(['FROM busybox', `RUN wget -q -O /got ${url} && echo "fetched: $(cat /got)"`, `RUN --network=none ! wget -q -T 2 -O- ${url} && ip -o link | grep -v ' lo:' | wc -l > /links`, 'RUN ip route'].join('\n'));
  t.is(again.code, 0, again.err);
  t.is((again.err.match(/CACHED/g) ?? []).length, 3);
});

test.serial('--network none: no interface but lo, the host server unreachable, the step fails cleanly', async (t) => {
  const env = await setup(t);
  await env.holder(env.def);
  const before = countResources(env.store);
  const lines = ruleLines(env.store);
  const port = await hostServer(t, env.def.gateway, 'from-the-host');
  const ok = await env.build(['FROM busybox', "RUN ip -o link | grep -v ' lo:' | wc -l"].join('\n'), ['--network', 'none']);
  t.is(ok.code, 0, ok.err);
  t.regex(ok.err, /#\d+ \S+ 0\n/);
  const r = await env.build(['FROM busybox', `RUN wget -q -T 2 -O- http://${env.def.gateway}:${port}/`].join('\n'), ['--network', 'none', '--no-cache']);
  t.not(r.code, 0);
  t.regex(r.err, /did not complete successfully: exit code: 1/);
  t.deepEqual(ours(env.store), []);
  sameResources(t, env.store, before, lines);
});

test.serial('--network host sees the host interfaces; --network NET runs on a user network; bad values are one-line errors', async (t) => {
  const env = await setup(t);
  const user = await createNetwork(env.store, { name: uniqueName('tbn'), subnet: freeSubnet(), bridge: uniqueName('ufsbt'), internal: false });
  await env.holder(user);
  const host = await env.build(['FROM busybox', `RUN ip -o link | grep -c ${user.bridge}`].join('\n'), ['--network', 'host']);
  t.is(host.code, 0, host.err);
  const port = await hostServer(t, user.gateway, 'on-the-user-network');
  const r = await env.build(['FROM busybox', `RUN wget -q -O- http://${user.gateway}:${port}/ && ip -4 -o addr show eth0`].join('\n'), ['--network', user.name]);
  t.is(r.code, 0, r.err);
  t.regex(r.err, /on-the-user-network/);
  t.regex(r.err, new RegExp(`inet ${user.subnet.replace(/0\/24$/, '').replace(/\./g, '\\.')}`));
  t.deepEqual(ours(env.store), []);
  for (const [args, msg] of [
    [['--network', 'container:abc'], /cannot join a container's network/],
    [['--network', 'nosuchnet0'], /network nosuchnet0 not found/],
  ] as const) {
    const bad = await env.build('FROM busybox\nRUN true\n', [...args]);
    t.is(bad.code, 1, bad.err);
    t.regex(bad.err, msg);
    t.is(bad.err.trim().split('\n').length, 1, bad.err);
  }
  const flag = await env.build('FROM busybox\nRUN --network=bridge true\n');
  t.not(flag.code, 0);
  t.regex(flag.err, /Dockerfile:2: RUN --network=bridge: only default, none and host are supported/);
});

test.serial('Ctrl-C during a bridged RUN step: exit 130, nothing tagged, nothing left attached', async (t) => {
  const env = await setup(t);
  await env.holder(env.def);
  const before = countResources(env.store);
  const lines = ruleLines(env.store);
  const ctx = path.join(env.e.dir, 'ctxint');
  fs.mkdirSync(ctx);
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo started && sleep 60\n');
  const child = spawn(process.execPath, [CLI, '--root', env.e.root, 'build', '--progress', 'plain', '-t', 'intr:1', ctx], { env: env.e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await waitUntil('the RUN step to start', () => /#\d+ [\d.]+ started/.test(err), 60_000);
  t.is(ours(env.store).length, 1);
  child.kill('SIGINT');
  t.is(await exited, 130, err);
  t.deepEqual(ours(env.store), []);
  sameResources(t, env.store, before, lines);
  const images = await env.e.ok(['images', '--format', '{{.Repository}}']);
  t.notRegex(images, /intr/);
});

test.serial('a build killed outright leaves an attachment the next bridged build frees', async (t) => {
  const env = await setup(t);
  await env.holder(env.def);
  const before = countResources(env.store);
  const lines = ruleLines(env.store);
  const ctx = path.join(env.e.dir, 'ctxkill');
  fs.mkdirSync(ctx);
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo started && sleep 60\n');
  const child = spawn(process.execPath, [CLI, '--root', env.e.root, 'build', '--progress', 'plain', ctx], { env: env.e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitUntil('the RUN step to start', () => /#\d+ [\d.]+ started/.test(err), 60_000);
  child.kill('SIGKILL');
  await exited;
  // Its RUN container lives on (runc is not our child's child to kill): end it as a user would.
  const rroot = path.join(env.e.dir, 'run', 'runtime', 'runc');
  for (const id of (await run('runc', ['--root', rroot, 'list', '-q'])).stdout.split('\n').filter(Boolean)) await run('runc', ['--root', rroot, 'delete', '--force', id]);
  t.is(ours(env.store).length, 1);
  const r = await env.build('FROM busybox\nRUN true\n', ['--no-cache']);
  t.is(r.code, 0, r.err);
  t.deepEqual(ours(env.store), []);
  // the killed build's runc container and its snapshot may outlive it; the network does not
  const now = countResources(env.store);
  if (now.rules !== before.rules) t.log(`rules before:\n${lines.join('\n')}\nafter:\n${ruleLines(env.store).join('\n')}`);
  t.deepEqual([now.veths, now.rules], [before.veths, before.rules]);
});

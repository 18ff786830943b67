// attach/detach on netavark with namespaces the tests make: traffic out through the gateway,
// published ports in (127.0.0.1 and the host's own address), names through aardvark-dns,
// --internal, no leftovers (also after a crash), and no shared address under concurrency.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { attach, detach, endpoints, listEndpoints, parseNetworkMode, parsePublish, reconcile, setupNetwork, withTemporaryNetwork } from '../src/network/index.js';
import { containerId, countResources, hostAddress, hostServer, inNetns, netEnv, run, waitUntil } from './helpers/network.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const networkModule = path.resolve(here, '..', 'src', 'network', 'index.js');
const storeModule = path.resolve(here, '..', 'src', 'store', 'index.js');

function curlIn(nsPath: string, url: string): ReturnType<typeof run> {
  return run('nsenter', [`--net=${nsPath}`, '--', 'curl', '-sS', '--max-time', '3', url], { timeoutMs: 10_000 });
}

test('a namespace on the default bridge reaches a server on the host through the gateway', async (t) => {
  const env = await netEnv(t);
  const id = containerId();
  const a = await attach(env.store, id, { network: 'bridge', hostname: 'c1' });
  t.is(a.gateway, env.defaultNet.gateway);
  t.is(a.ips.length, 1);
  t.true(a.ips[0]!.startsWith(env.defaultNet.subnet.replace(/0\/24$/, '')));
  t.is(a.netnsPath, endpoints(env.store, id)[0]!.netnsPath);
  const port = await hostServer(t, env.defaultNet.gateway, 'from-the-host');
  const r = await curlIn(a.netnsPath, `http://${env.defaultNet.gateway}:${port}/`);
  t.is(r.stdout, 'from-the-host', r.stderr);
  const route = await run('nsenter', [`--net=${a.netnsPath}`, '--', 'ip', 'route']);
  t.regex(route.stdout, new RegExp(`default via ${env.defaultNet.gateway.replace(/\./g, '\\.')}`));
  // Docker's files for the default bridge: own address last, no embedded DNS.
  t.true(a.etcHosts.endsWith(`${a.ips[0]}\tc1\n`));
  t.regex(a.etcHosts, /^127\.0\.0\.1\tlocalhost\n/);
  t.notRegex(a.resolvConf, new RegExp(env.defaultNet.gateway.replace(/\./g, '\\.')));
  await detach(env.store, id);
});

test('published ports reach a server in the namespace on 127.0.0.1 and on the host address', async (t) => {
  const env = await netEnv(t);
  const net = await env.userNet();
  const www = path.join(env.dir, 'www');
  fs.mkdirSync(www);
  fs.writeFileSync(path.join(www, 'index.html'), 'from-the-namespace');
  const id = containerId();
  const wanted = [...parsePublish('127.0.0.1::80'), ...parsePublish('80'), ...parsePublish('81/udp')];
  const a = await attach(env.store, id, { network: net.name, hostname: 'web', ports: wanted });
  t.is(a.ports.length, 3);
  for (const p of a.ports) t.true(p.hostPort > 0);
  t.deepEqual(a.ports.map((p) => [p.hostIp, p.containerPort, p.protocol]), [['127.0.0.1', 80, 'tcp'], ['', 80, 'tcp'], ['', 81, 'udp']]);
  const httpd = inNetns(t, a.netnsPath, ['busybox', 'httpd', '-f', '-p', '80', '-h', www]);
  t.teardown(() => void httpd.kill('SIGKILL'));
  const local = `http://127.0.0.1:${a.ports[0]!.hostPort}/`;
  await waitUntil('httpd', async () => (await run('curl', ['-sS', '--max-time', '2', local])).stdout === 'from-the-namespace');
  const onHost = await run('curl', ['-sS', '--max-time', '3', `http://${hostAddress()}:${a.ports[1]!.hostPort}/`]);
  t.is(onHost.stdout, 'from-the-namespace', onHost.stderr);
  const anyLocal = await run('curl', ['-sS', '--max-time', '3', `http://127.0.0.1:${a.ports[1]!.hostPort}/`]);
  t.is(anyLocal.stdout, 'from-the-namespace', anyLocal.stderr);
  // A host port another container holds is refused, and the refusal leaves nothing behind.
  const before = countResources(env.store);
  const other = containerId();
  await t.throwsAsync(attach(env.store, other, { network: net.name, hostname: 'x', ports: [{ ...a.ports[1]! }] }), { message: /port is already allocated/ });
  t.deepEqual(endpoints(env.store, other), []);
  t.false(fs.existsSync(`/run/netns/ufs-${other.slice(0, 40)}`));
  t.deepEqual(countResources(env.store), before);
  await detach(env.store, id);
  const gone = await run('curl', ['-sS', '--max-time', '2', local]);
  t.not(gone.stdout, 'from-the-namespace');
});

test('two namespaces on a user network resolve each other by name and alias through aardvark-dns', async (t) => {
  const env = await netEnv(t);
  const net = await env.userNet();
  const one = containerId();
  const two = containerId();
  const a = await attach(env.store, one, { network: net.name, hostname: 'h-one', name: 'one', aliases: ['db'], dnsSearch: ['example.test'] });
  const b = await attach(env.store, two, { network: net.name, hostname: 'h-two', name: 'two' });
  t.is(a.resolvConf, `nameserver ${net.gateway}\nsearch example.test\noptions ndots:0\n`);
  for (const [from, name, ip] of [[b.netnsPath, 'one', a.ips[0]], [b.netnsPath, 'db', a.ips[0]], [a.netnsPath, 'two', b.ips[0]], [a.netnsPath, one.slice(0, 12), a.ips[0]]] as const) {
    const r = await run('nsenter', [`--net=${from}`, '--', 'busybox', 'nslookup', name, net.gateway], { timeoutMs: 10_000 });
    t.regex(r.stdout, new RegExp(`Address:\\s+${ip!.replace(/\./g, '\\.')}\\b`), `${name}: ${r.stdout}${r.stderr}`);
  }
  const missing = await run('nsenter', [`--net=${a.netnsPath}`, '--', 'busybox', 'nslookup', 'nosuchname-ufs.invalid', net.gateway], { timeoutMs: 10_000 });
  t.regex(missing.stdout, /can't find nosuchname-ufs\.invalid/);
  t.notRegex(missing.stdout, /Name:/);
  await detach(env.store, one);
  // Once detached, the name is gone from the resolver.
  const after = await run('nsenter', [`--net=${b.netnsPath}`, '--', 'busybox', 'nslookup', 'one', net.gateway], { timeoutMs: 10_000 });
  t.notRegex(after.stdout, new RegExp(`Address:\\s+${a.ips[0]!.replace(/\./g, '\\.')}\\b`));
  await detach(env.store, two);
});

test('--internal has no way out', async (t) => {
  const env = await netEnv(t);
  const open = await env.userNet();
  const closed = await env.userNet({ internal: true });
  const hostIp = hostAddress();
  const port = await hostServer(t, hostIp, 'outside');
  const a = await attach(env.store, containerId(), { network: open.name, hostname: 'o' });
  const b = await attach(env.store, containerId(), { network: closed.name, hostname: 'i' });
  t.is((await curlIn(a.netnsPath, `http://${hostIp}:${port}/`)).stdout, 'outside', 'the open network gets out (control)');
  t.is(b.gateway, undefined);
  const r = await curlIn(b.netnsPath, `http://${hostIp}:${port}/`);
  t.not(r.code, 0);
  t.not(r.stdout, 'outside');
  const route = await run('nsenter', [`--net=${b.netnsPath}`, '--', 'ip', 'route']);
  t.notRegex(route.stdout, /default/);
});

test('detach leaves no namespace, veth, firewall rule, DNS entry or lease, and is idempotent', async (t) => {
  const env = await netEnv(t);
  const net = await env.userNet();
  const before = countResources(env.store);
  const ids = [containerId(), containerId()];
  const first = await attach(env.store, ids[0]!, { network: net.name, hostname: 'a', name: 'a', ports: parsePublish('127.0.0.1::8080') });
  await attach(env.store, ids[1]!, { network: 'bridge', hostname: 'b', ports: parsePublish('127.0.0.1::9090/udp') });
  const during = countResources(env.store);
  t.is(during.netns, before.netns + 2);
  t.is(during.veths, before.veths + 2);
  t.true(during.rules > before.rules);
  t.true(fs.existsSync(first.netnsPath));
  for (const id of ids) await detach(env.store, id);
  for (const id of ids) await detach(env.store, id); // again: nothing to do, no error
  await detach(env.store, containerId()); // never attached
  t.deepEqual(countResources(env.store), before);
  t.deepEqual(listEndpoints(env.store), []);
  t.false(fs.existsSync(first.netnsPath));
});

test('detach after a crash: killed processes, and a namespace lost behind our back', async (t) => {
  const env = await netEnv(t);
  const net = await env.userNet();
  const before = countResources(env.store);
  const killed = containerId();
  const lost = containerId();
  const a = await attach(env.store, killed, { network: net.name, hostname: 'k', name: 'k', ports: parsePublish('127.0.0.1::80') });
  const b = await attach(env.store, lost, { network: net.name, hostname: 'l', name: 'l', ports: parsePublish('127.0.0.1::81') });
  const proc = inNetns(t, a.netnsPath, ['sleep', '600']);
  await new Promise((r) => setTimeout(r, 200));
  proc.kill('SIGKILL');
  // The worst case: the namespace (and with it the veth) vanished without netavark's teardown.
  await run('ip', ['netns', 'delete', path.basename(b.netnsPath)]);
  // The runtime's view: neither container exists any more; a live one (keep) is left alone.
  const live = containerId();
  await attach(env.store, live, { network: net.name, hostname: 'live' });
  const freed = await reconcile(env.store, (id) => id === live);
  t.deepEqual(freed.sort(), [killed, lost].sort());
  t.deepEqual(endpoints(env.store, live).length, 1);
  await detach(env.store, live);
  t.deepEqual(countResources(env.store), before);
});

test('concurrent attaches from several processes never share an address', async (t) => {
  const env = await netEnv(t);
  const net = await env.userNet();
  const perProcess = 3;
  const script = `
    const { Store } = await import(${JSON.stringify(storeModule)});
    const N = await import(${JSON.stringify(networkModule)});
    const store = await Store.open(${JSON.stringify(env.root)});
    const ids = Array.from({ length: ${perProcess} }, () => crypto.randomUUID().replace(/-/g, ''));
    const res = await Promise.all(ids.map((id) => N.attach(store, id, { network: ${JSON.stringify(net.name)}, hostname: id.slice(0, 12), ports: N.parsePublish('127.0.0.1::80') })));
    console.log(JSON.stringify(res.map((r) => [r.ips[0], r.ports[0].hostPort])));`;
  const runs = await Promise.all([0, 1, 2].map(() => new Promise<string>((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', () => resolve(out || err));
  })));
  const got = runs.flatMap((r) => JSON.parse(r) as [string, number][]);
  t.is(got.length, 3 * perProcess, runs.join('\n'));
  t.is(new Set(got.map((g) => g[0])).size, got.length, 'addresses are unique');
  t.is(new Set(got.map((g) => g[1])).size, got.length, 'host ports are unique');
  t.is(listEndpoints(env.store).length, got.length);
  await reconcile(env.store, () => false);
  t.deepEqual(listEndpoints(env.store), []);
});

test('--ip and --mac-address are honoured; a taken or foreign address is refused', async (t) => {
  const env = await netEnv(t);
  const net = await env.userNet();
  const ip = net.subnet.replace(/0\/24$/, '77');
  const id = containerId();
  const a = await attach(env.store, id, { network: net.name, hostname: 'fixed', ip, mac: '02:42:AC:11:00:99' });
  t.deepEqual(a.ips, [ip]);
  t.is(a.mac, '02:42:ac:11:00:99');
  const link = await run('nsenter', [`--net=${a.netnsPath}`, '--', 'ip', '-br', 'addr', 'show', 'eth0']);
  t.true(link.stdout.includes(`${ip}/24`), link.stdout);
  const mac = await run('nsenter', [`--net=${a.netnsPath}`, '--', 'ip', '-br', 'link', 'show', 'eth0']);
  t.regex(mac.stdout, /\b02:42:ac:11:00:99\b/);
  await t.throwsAsync(attach(env.store, containerId(), { network: net.name, hostname: 'x', ip }), { message: /already in use/ });
  await t.throwsAsync(attach(env.store, containerId(), { network: net.name, hostname: 'x', ip: '10.1.2.3' }), { message: /not a host address/ });
  await t.throwsAsync(attach(env.store, containerId(), { network: 'bridge', hostname: 'x', ip: env.defaultNet.gateway.replace(/1$/, '9') }), { message: /user defined networks only/ });
  await t.throwsAsync(attach(env.store, containerId(), { network: net.name, hostname: 'x', mac: 'zz' }), { message: /invalid --mac-address/ });
  await t.throwsAsync(attach(env.store, containerId(), { network: 'nosuchnet', hostname: 'x' }), { message: /network nosuchnet not found/ });
  await t.throwsAsync(attach(env.store, id, { network: net.name, hostname: 'fixed' }), { message: /already connected/ });
  t.is(listEndpoints(env.store).length, 1);
  await detach(env.store, id);
});

test('a second network joins the same namespace as eth1 (connect), and leaves alone (disconnect)', async (t) => {
  const env = await netEnv(t);
  const n1 = await env.userNet();
  const n2 = await env.userNet();
  const id = containerId();
  const a = await attach(env.store, id, { network: n1.name, hostname: 'c' });
  const b = await attach(env.store, id, { network: n2.name, hostname: 'c' });
  t.is(a.netnsPath, b.netnsPath);
  const links = await run('nsenter', [`--net=${a.netnsPath}`, '--', 'ip', '-br', 'addr']);
  t.regex(links.stdout, /eth0.*\n.*eth1|eth1.*\n.*eth0/);
  await detach(env.store, id, n1.name);
  t.deepEqual(endpoints(env.store, id).map((e) => e.network), [n2.name]);
  t.true(fs.existsSync(a.netnsPath));
  await detach(env.store, id);
  t.false(fs.existsSync(a.netnsPath));
});

test('setupNetwork: each --network mode, and Docker\'s conflicting options', async (t) => {
  const env = await netEnv(t);
  const net = await env.userNet();
  t.deepEqual(parseNetworkMode(undefined), { kind: 'network', name: 'bridge' });
  t.deepEqual(parseNetworkMode('container:web'), { kind: 'container', ref: 'web' });
  t.throws(() => parseNetworkMode('bad name'), { message: /invalid --network/ });
  const none = await setupNetwork(env.store, containerId(), { mode: { kind: 'none' }, hostname: 'n' });
  t.deepEqual(none.spec, { mode: 'none' });
  t.false(none.attached);
  const host = await setupNetwork(env.store, containerId(), { mode: { kind: 'host' }, hostname: 'h', ports: parsePublish('80') });
  t.deepEqual(host.warnings, ['Published ports are discarded when using host network mode']);
  await t.throwsAsync(setupNetwork(env.store, containerId(), { mode: { kind: 'container', ref: 'x' }, hostname: 'c', ports: parsePublish('80') }), { message: /conflicting options/ });
  await t.throwsAsync(setupNetwork(env.store, containerId(), { mode: { kind: 'container', ref: 'x' }, hostname: 'c' }), { message: /not running/ });
  await t.throwsAsync(setupNetwork(env.store, containerId(), { mode: { kind: 'none' }, hostname: 'c', aliases: ['a'] }), { message: /user defined networks/ });
  const id = containerId();
  const on = await setupNetwork(env.store, id, { mode: { kind: 'network', name: net.name }, hostname: 'u', name: 'u' });
  t.true(on.attached);
  t.deepEqual(on.spec, { mode: 'netns', path: on.spec.mode === 'netns' ? on.spec.path : '' });
  const joined = await setupNetwork(env.store, containerId(), { mode: { kind: 'container', ref: 'u' }, hostname: 'j' }, { netnsPath: (on.spec as { path: string }).path, etcHosts: on.etcHosts, resolvConf: on.resolvConf });
  t.deepEqual(joined.spec, on.spec);
  t.is(joined.resolvConf, on.resolvConf);
  await detach(env.store, id);
});

test('withTemporaryNetwork: kept by reconcile while its process lives, freed after, also when the owner died', async (t) => {
  const env = await netEnv(t);
  const before = countResources(env.store);
  const seen = await withTemporaryNetwork(env.store, { network: 'bridge', hostname: 'build' }, async (a) => {
    const port = await hostServer(t, env.defaultNet.gateway, 'build-step');
    t.deepEqual(await reconcile(env.store, () => false), [], 'a live owner keeps it');
    return (await curlIn(a.netnsPath, `http://${env.defaultNet.gateway}:${port}/`)).stdout;
  });
  t.is(seen, 'build-step');
  t.deepEqual(listEndpoints(env.store), []);
  await t.throwsAsync(withTemporaryNetwork(env.store, { network: 'bridge', hostname: 'build' }, async () => {
    throw new Error('step failed');
  }), { message: 'step failed' });
  t.deepEqual(listEndpoints(env.store), []);
  // An owner that died without detaching: reconcile frees it.
  const dead = spawn('true');
  await new Promise((r) => dead.once('exit', r));
  const orphan = containerId();
  await attach(env.store, orphan, { network: 'bridge', hostname: 'o', ownerPid: dead.pid! });
  t.deepEqual(await reconcile(env.store, () => false), [orphan]);
  t.deepEqual(countResources(env.store), before);
});

// The NAT chain a network's containers go through, and whether it still masquerades.
function natChain(subnet: string): { chain?: string; masquerades: boolean } {
  const save = execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
  const chain = save.map((l) => new RegExp(`^-A POSTROUTING -s ${subnet.replace(/\./g, '\\.')} -j (\\S+)$`).exec(l)?.[1]).find(Boolean);
  return { ...(chain ? { chain } : {}), masquerades: !!chain && save.some((l) => l.startsWith(`-A ${chain} `) && l.includes('-j MASQUERADE')) };
}

test('default networks of two stores share no firewall chain: one store tearing down leaves the other its NAT', async (t) => {
  const a = await netEnv(t);
  const b = await netEnv(t);
  await attach(a.store, containerId(), { network: 'bridge', hostname: 'a' });
  const idB = containerId();
  await attach(b.store, idB, { network: 'bridge', hostname: 'b' });
  const before = natChain(b.defaultNet.subnet);
  t.true(before.masquerades);
  t.not(natChain(a.defaultNet.subnet).chain, before.chain);
  for (const id of new Set(listEndpoints(a.store).map((e) => e.containerId))) await detach(a.store, id);
  t.deepEqual(natChain(b.defaultNet.subnet), before);
  await detach(b.store, idB);
});

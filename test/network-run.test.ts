// Networks through `ufs run`: the default bridge out to a host server, -p and -P into busybox
// httpd, names on a user network, container:NAME, the /etc files, and nothing left after rm
// (also after the monitor was killed).
import fs from 'node:fs';
import net from 'node:net';
import test from 'ava';
import { listNetworks } from '../src/network/index.js';
import { Store } from '../src/store/index.js';
import { countResources, freeSubnet, hostAddress, hostServer, run, uniqueName, waitUntil } from './helpers/network.js';
import { makeEnv, type Env } from './helpers/runtime.js';

const HTTPD = 'mkdir -p /w && echo from-the-container > /w/index.html && exec httpd -f -p 80 -h /w';

async function storeOf(env: Env): Promise<Store> {
  return Store.open(env.root);
}

// A port the kernel hands out as free right now (ufs checks it again when it publishes it).
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

async function curl(url: string): Promise<string> {
  return (await run('curl', ['-sS', '--max-time', '3', url], { timeoutMs: 10_000 })).stdout;
}

test('the default bridge: out through the gateway to a host server; /etc files as Docker writes them', async (t) => {
  const env = await makeEnv(t);
  const out = await env.ok(['run', '--rm', '--add-host', 'db.test:10.9.9.9', '--dns-search', 'example.test', '-h', 'box', 'busybox', 'sh', '-c', 'cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; ip route']);
  const store = await storeOf(env);
  const def = listNetworks(store).find((n) => n.name === 'bridge')!;
  t.not(def.bridge, 'ufs0');
  const [hosts, resolv, routes] = out.split('---\n');
  t.regex(hosts!, /^127\.0\.0\.1\tlocalhost\n/);
  t.regex(hosts!, /10\.9\.9\.9\tdb\.test\n\S+\tbox\n$/);
  t.regex(resolv!, /search example\.test/);
  t.regex(routes!, new RegExp(`default via ${def.gateway.replace(/\./g, '\\.')}`));
  // A server on the host (on the gateway address, which exists while a container is attached).
  const ctr = await env.ok(['run', '-d', 'busybox', 'sleep', '120']);
  const port = await hostServer(t, def.gateway, 'from-the-host');
  const got = await env.ok(['exec', ctr.trim(), 'wget', '-q', '-O-', `http://${def.gateway}:${port}/`]);
  t.is(got, 'from-the-host');
  await env.ok(['rm', '-f', ctr.trim()]);
});

test('-p 127.0.0.1:PORT:80, -p 80 and -P reach busybox httpd; ufs port lists them', async (t) => {
  const env = await makeEnv(t);
  const store = await storeOf(env);
  const hostPort = await freeTcpPort();
  const id = (await env.ok(['run', '-d', '-p', `127.0.0.1:${hostPort}:80`, '-p', '80', 'busybox', 'sh', '-c', HTTPD])).trim();
  await waitUntil('httpd', async () => (await curl(`http://127.0.0.1:${hostPort}/`)) === 'from-the-container\n');
  const ports = (await env.ok(['port', id])).trim().split('\n');
  t.is(ports[0], `80/tcp -> 127.0.0.1:${hostPort}`);
  const any = /^80\/tcp -> 0\.0\.0\.0:(\d+)$/.exec(ports[1]!);
  t.truthy(any, ports.join('\n'));
  t.is(await curl(`http://${hostAddress()}:${any![1]}/`), 'from-the-container\n');
  // -P: an image that EXPOSEs 80
  await env.ok(['commit', '-c', 'EXPOSE 80', id, 'webimg:1']);
  const p = (await env.ok(['run', '-d', '-P', 'webimg:1', 'sh', '-c', HTTPD])).trim();
  const line = (await env.ok(['port', p, '80'])).trim();
  const m = /^0\.0\.0\.0:(\d+)$/.exec(line);
  t.truthy(m, line);
  await waitUntil('httpd -P', async () => (await curl(`http://127.0.0.1:${m![1]}/`)) === 'from-the-container\n');
  // the same host port twice is refused, with Docker's words and exit 125
  const clash = await env.ufs(['run', '--rm', '-p', `127.0.0.1:${hostPort}:80`, 'busybox', 'true']);
  t.is(clash.code, 125);
  t.regex(clash.stderr, /port is already allocated/);
  // held open by the container's monitor, as docker-proxy holds it: no host process can take it
  t.false(await canListen('127.0.0.1', hostPort));
  t.false(await canListen('0.0.0.0', Number(any![1])));
  await env.ok(['rm', '-f', id, p]);
  t.is(await curl(`http://127.0.0.1:${hostPort}/`), '');
  t.true(await canListen('127.0.0.1', hostPort));
  const left = countResources(store);
  t.deepEqual([left.netns, left.veths], [0, 0]);
});

test('two containers on a user network reach each other by name and alias; container:NAME shares interfaces', async (t) => {
  const env = await makeEnv(t);
  const net = uniqueName('rn');
  await env.ok(['network', 'create', '--subnet', freeSubnet(), net]);
  const web = (await env.ok(['run', '-d', '--name', 'web', '--network', net, '--network-alias', 'www', 'busybox', 'sh', '-c', HTTPD])).trim();
  for (const name of ['web', 'www']) {
    let got = '';
    await waitUntil(`wget ${name}`, async () => {
      got = (await env.ufs(['run', '--rm', '--network', net, 'busybox', 'wget', '-q', '-O-', `http://${name}/`])).stdout;
      return got === 'from-the-container\n';
    }, 30_000);
    t.is(got, 'from-the-container\n');
  }
  const resolv = await env.ok(['run', '--rm', '--network', net, 'busybox', 'cat', '/etc/resolv.conf']);
  t.regex(resolv, /^nameserver 10\.\d+\.\d+\.1\n/);
  const mine = await env.ok(['exec', web, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  const shared = await env.ok(['run', '--rm', '--network', 'container:web', 'busybox', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.is(shared.split(/\s+/)[3], mine.split(/\s+/)[3]);
  const bad = await env.ufs(['run', '--rm', '--network', 'container:web', '-p', '80', 'busybox', 'true']);
  t.is(bad.code, 125);
  t.regex(bad.stderr, /conflicting options/);
  // connect adds eth1 to the running container; disconnect takes it away, never the last one
  const net2 = uniqueName('rn');
  await env.ok(['network', 'create', '--subnet', freeSubnet(), net2]);
  await env.ok(['network', 'connect', '--alias', 'web2', net2, 'web']);
  t.regex(await env.ok(['exec', web, 'ip', '-o', 'link']), /\beth1\b/);
  const byAlias = await env.ufs(['run', '--rm', '--network', net2, 'busybox', 'wget', '-q', '-O-', 'http://web2/']);
  t.is(byAlias.stdout, 'from-the-container\n', byAlias.stderr);
  await env.ok(['network', 'disconnect', net2, 'web']);
  t.notRegex(await env.ok(['exec', web, 'ip', '-o', 'link']), /\beth1\b/);
  t.regex((await env.ufs(['network', 'disconnect', net, 'web'])).stderr, /only network/);
  await env.ok(['network', 'rm', net2]);
  const rm = await env.ufs(['network', 'rm', net]);
  t.regex(rm.stderr, /active endpoints/);
  await env.ok(['rm', '-f', web]);
  await env.ok(['network', 'rm', net]);
});

test('nothing is left after rm -f of a running container, nor after its monitor was killed', async (t) => {
  const env = await makeEnv(t);
  const store = await storeOf(env);
  const net = uniqueName('rk');
  await env.ok(['network', 'create', '--subnet', freeSubnet(), net]);
  const before = countResources(store);
  const a = (await env.ok(['run', '-d', '--network', net, '-p', '127.0.0.1::80', 'busybox', 'sleep', '300'])).trim();
  const b = (await env.ok(['run', '-d', '-p', '127.0.0.1::81', 'busybox', 'sleep', '300'])).trim();
  t.true(countResources(store).veths >= before.veths + 2);
  await env.ok(['rm', '-f', a]);
  const rec = await env.record(b);
  process.kill(rec.State.MonitorPid, 'SIGKILL');
  await waitUntil('the monitor to die', () => !fs.existsSync(`/proc/${rec.State.MonitorPid}/stat`) || /^\S+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${rec.State.MonitorPid}/stat`, 'utf8')));
  await env.ok(['ps', '-a']); // the next command that meets it settles it
  await env.ok(['rm', '-f', b]);
  t.deepEqual(countResources(store), before);
});

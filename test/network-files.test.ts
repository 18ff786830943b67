// -p parsing and the /etc/hosts and /etc/resolv.conf text per network mode (pure functions).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { etcHosts, formatPort, mergePublished, parsePublish, publishAll, resolvConf } from '../src/network/index.js';

test('-p forms as Docker reads them', (t) => {
  t.deepEqual(parsePublish('8080:80'), [{ hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
  t.deepEqual(parsePublish('127.0.0.1:8080:80/udp'), [{ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'udp' }]);
  t.deepEqual(parsePublish('80'), [{ hostIp: '', hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
  t.deepEqual(parsePublish('127.0.0.1::80'), [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
  t.deepEqual(parsePublish('0.0.0.0:9000-9001:80-81').map((m) => [m.hostIp, m.hostPort, m.containerPort]), [['', 9000, 80], ['', 9001, 81]]);
  for (const bad of ['', 'x', '70000', '1:2:3:4', '80/sctp', 'a.b.c.d:1:2', '9000-9002:80-81', '0:80']) t.throws(() => parsePublish(bad), { message: /invalid/ }, bad);
  t.is(formatPort({ hostIp: '', hostPort: 32768, containerPort: 80, protocol: 'tcp' }), '80/tcp -> 0.0.0.0:32768');
  const all = publishAll(['80/tcp', '53/udp', '8080']);
  t.deepEqual(all.map((m) => `${m.containerPort}/${m.protocol}:${m.hostPort}`), ['80/tcp:0', '53/udp:0', '8080/tcp:0']);
  t.deepEqual(mergePublished(parsePublish('8000:80'), all).map((m) => `${m.containerPort}/${m.protocol}:${m.hostPort}`), ['80/tcp:8000', '53/udp:0', '8080/tcp:0']);
});

function hostFiles(t: import('ava').ExecutionContext, resolv: string): { hostResolvConf: string; hostHosts: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ufs-test-netfiles-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'resolv.conf'), resolv);
  fs.writeFileSync(path.join(dir, 'hosts'), '127.0.0.1 localhost\n10.0.0.5 myhost\n');
  return { hostResolvConf: path.join(dir, 'resolv.conf'), hostHosts: path.join(dir, 'hosts') };
}

test('/etc/hosts: defaults, --add-host, then the container address (bridge, user); the host file for host', (t) => {
  const files = hostFiles(t, 'nameserver 1.1.1.1\n');
  const bridge = etcHosts('bridge', { ip: '10.250.1.2', hostname: 'abc', extraHosts: ['db:10.9.9.9'], ...files });
  t.is(bridge, '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n10.9.9.9\tdb\n10.250.1.2\tabc\n');
  t.false(etcHosts('none', { hostname: 'abc', ...files }).includes('abc'));
  t.is(etcHosts('host', { hostname: 'abc', extraHosts: ['x:1.2.3.4'], ...files }), '127.0.0.1 localhost\n10.0.0.5 myhost\n1.2.3.4\tx\n');
  t.throws(() => etcHosts('bridge', { hostname: 'a', extraHosts: ['nocolon'] }), { message: /invalid --add-host/ });
});

test('/etc/resolv.conf per mode, with --dns and --dns-search', (t) => {
  const files = hostFiles(t, 'nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0\n');
  t.is(resolvConf('bridge', { hostname: 'a', ...files }), 'nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n');
  t.is(resolvConf('bridge', { hostname: 'a', dns: ['9.9.9.9'], dnsSearch: ['a.test', 'b.test'], ...files }), 'nameserver 9.9.9.9\nsearch a.test b.test\noptions edns0\n');
  t.is(resolvConf('user', { hostname: 'a', embeddedDns: '10.250.1.1', dns: ['9.9.9.9'], ...files }), 'nameserver 10.250.1.1\nsearch corp.example\noptions edns0 ndots:0\n');
  t.is(resolvConf('host', { hostname: 'a', ...files }), fs.readFileSync(files.hostResolvConf, 'utf8'));
  const loopOnly = hostFiles(t, 'nameserver 127.0.0.53\n');
  t.is(resolvConf('none', { hostname: 'a', ...loopOnly }), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  t.throws(() => resolvConf('bridge', { hostname: 'a', dns: ['not-an-ip'] }), { message: /invalid --dns/ });
});

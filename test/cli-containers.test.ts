// Container verbs of issue 13 through the CLI on real containers (busybox from the host's
// busybox-static): create, restart, rename, the container family, cp both ways (owners,
// modes, -a, -L, tar streams, volumes, hostile symlinks and archives), named and anonymous
// volumes with run -v and rm -v, and logs --tail/--since/--until/-t.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { rawTar } from './helpers/images.js';
import { freeSubnet, uniqueName } from './helpers/network.js';
import { CLI, makeEnv, waitFor, type Env } from './helpers/runtime.js';

// `ufs ARGS` with a Buffer on stdin; its stdout as bytes.
function ufsBytes(e: Env, args: string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, '--root', e.root, ...args], { env: e.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
    p.stdin.end(input ?? Buffer.alloc(0));
  });
}

function tarList(tar: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('tar', ['tvf', '-', '--numeric-owner'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.on('error', reject);
    p.on('close', () => resolve(out));
    p.stdin.end(tar);
  });
}

function hostTemp(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ufs-test-cp-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

test('create, start, rename, restart, and the container family (ls, inspect, prune)', async (t) => {
  const e = await makeEnv(t);
  const id = (await e.ok(['create', '--name', 'first', 'busybox', 'sleep', '60'])).trim();
  t.regex(id, /^[0-9a-f]{64}$/);
  t.is(await e.ok(['ps', '-a', '--format', '{{.Names}} {{.State}}']), 'first created\n');
  t.is(await e.ok(['container', 'ls', '-a', '--format', '{{.Names}}']), 'first\n');
  t.is(await e.ok(['container', 'ps', '-aq']), `${id.slice(0, 12)}\n`);
  const bad = await e.ufs(['create', '--name', 'first', 'busybox']);
  t.is(bad.code, 125);
  t.regex(bad.stderr, /^ufs: Conflict\. The container name "\/first" is already in use/);
  t.is((await e.ufs(['create', 'nosuch-image-here:1', '--pull', 'never'])).code, 125);

  t.is(await e.ok(['rename', 'first', 'second']), '');
  t.is(await e.ok(['container', 'inspect', '-f', '{{.Name}} {{.State.Status}}', id.slice(0, 12)]), '/second created\n');
  t.regex((await e.ufs(['rename', 'second', 'bad/name'])).stderr, /^ufs: Invalid container name \(bad\/name\)/);
  t.is((await e.ufs(['rename', 'nosuch', 'xx'])).stderr, 'ufs: No such container: nosuch\n');
  await e.ok(['create', '--name', 'other', 'busybox', 'true']);
  const taken = await e.ufs(['rename', 'second', 'other']);
  t.is(taken.code, 1);
  t.regex(taken.stderr, /Conflict\. The container name "\/other" is already in use/);

  t.is(await e.ok(['container', 'start', 'second']), 'second\n');
  const pid1 = (await e.record('second')).State.Pid;
  t.true(pid1 > 0);
  t.is(await e.ok(['restart', '-t', '1', 'second']), 'second\n');
  const after = await e.record('second');
  t.is(after.State.Status, 'running');
  t.not(after.State.Pid, pid1);
  t.is(await e.ok(['container', 'restart', 'other']), 'other\n'); // a stopped one is started

  await e.ok(['container', 'stop', '-t', '1', 'second']);
  const prune = await e.ok(['container', 'prune', '-f']);
  t.regex(prune, new RegExp(`^Deleted Containers:\\n(${id}\\n[0-9a-f]{64}\\n|[0-9a-f]{64}\\n${id}\\n)\\nTotal reclaimed space: `));
  t.is(await e.ok(['ps', '-aq']), '');
});

test('cp: both ways, running and stopped, owners, modes, -a, -L, tar streams', async (t) => {
  const e = await makeEnv(t);
  const host = hostTemp(t);
  // its first run makes the files and exits; a later start sleeps
  await e.ok(['run', '--name', 'cpc', 'busybox', 'sh', '-c', [
    '[ -e /d ] && exec sleep 60; mkdir -p /d/sub && echo one > /d/f && echo two > /d/sub/g && chmod 4750 /d/f && chown 12:34 /d/sub/g',
    'ln -s f /d/link && ln -s /d/f /abs && mkfifo /d/fifo',
  ].join(' && ')]);
  // stopped: out to a new host directory, then into an existing one
  await e.ok(['cp', 'cpc:/d', path.join(host, 'out')]);
  t.is(fs.readFileSync(path.join(host, 'out', 'f'), 'utf8'), 'one\n');
  t.is(fs.statSync(path.join(host, 'out', 'f')).mode & 0o7777, 0o4750);
  t.is(fs.readlinkSync(path.join(host, 'out', 'link')), 'f');
  t.true(fs.lstatSync(path.join(host, 'out', 'fifo')).isFIFO());
  t.is(fs.statSync(path.join(host, 'out', 'sub', 'g')).uid, process.getuid!(), 'owners are the copier\'s without -a');
  await e.ok(['cp', '-a', 'cpc:/d', path.join(host, 'out')]);
  t.is(fs.statSync(path.join(host, 'out', 'd', 'sub', 'g')).uid, 12);
  t.is(fs.statSync(path.join(host, 'out', 'd', 'sub', 'g')).gid, 34);
  // a symlink source: the link itself, or with -L what it points to
  await e.ok(['cp', 'cpc:/abs', path.join(host, 'abs')]);
  t.is(fs.readlinkSync(path.join(host, 'abs')), '/d/f');
  await e.ok(['cp', '-L', 'cpc:/abs', path.join(host, 'absL')]);
  t.is(fs.readFileSync(path.join(host, 'absL'), 'utf8'), 'one\n');
  // as a tar stream on stdout, as Docker streams it
  const tar = await ufsBytes(e, ['cp', 'cpc:/d/sub', '-']);
  t.is(tar.code, 0, tar.stderr);
  t.regex(await tarList(tar.stdout), /^drwxr-xr-x 0\/0 .* sub\/\n-rw-r--r-- 12\/34 .* sub\/g\n$/);
  const missing = await e.ufs(['cp', 'cpc:/nope', host]);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'ufs: Could not find the file /nope in container cpc\n');

  // into the stopped container: owners become root's unless -a; modes stay
  fs.writeFileSync(path.join(host, 'h'), 'host\n');
  fs.chmodSync(path.join(host, 'h'), 0o640);
  fs.chownSync(path.join(host, 'h'), 1234, 5678);
  await e.ok(['cp', path.join(host, 'h'), 'cpc:/d/']);
  await e.ok(['cp', '-a', path.join(host, 'h'), 'cpc:/d/h-a']);
  fs.mkdirSync(path.join(host, 'tree', 'x'), { recursive: true });
  fs.writeFileSync(path.join(host, 'tree', 'x', 'y'), 'y\n');
  await e.ok(['cp', path.join(host, 'tree'), 'cpc:/newdir']); // a new directory: the tree's contents
  await e.ok(['cp', path.join(host, 'tree') + '/.', 'cpc:/d/sub']); // DIR/. : its contents into an existing one
  const check = 'stat -c "%n %a %u:%g" /d/h /d/h-a && cat /newdir/x/y /d/sub/x/y';
  await e.ok(['start', 'cpc']);
  t.is(await e.ok(['exec', 'cpc', 'sh', '-c', check]), '/d/h 640 0:0\n/d/h-a 640 1234:5678\ny\ny\n');
  t.is(await e.ok(['exec', 'cpc', 'cat', '/d/h']), 'host\n');

  // running: both ways go through its own view
  await e.ok(['run', '-d', '--name', 'cpr', 'busybox', 'sh', '-c', 'echo live > /live; sleep 60']);
  fs.writeFileSync(path.join(host, 'in'), 'in\n');
  await e.ok(['cp', path.join(host, 'in'), 'cpr:/tmp/in']);
  t.is(await e.ok(['exec', 'cpr', 'cat', '/tmp/in']), 'in\n');
  await waitFor('/live written', async () => ((await e.ufs(['exec', 'cpr', 'cat', '/live'])).stdout === 'live\n' ? true : undefined));
  await e.ok(['cp', 'cpr:/live', path.join(host, 'live')]);
  t.is(fs.readFileSync(path.join(host, 'live'), 'utf8'), 'live\n');
  // a tar on stdin into a directory
  const inTar = rawTar([{ name: 'fromtar/', type: '5' }, { name: 'fromtar/z', content: 'zz\n', mode: 0o600 }]);
  const put = await ufsBytes(e, ['cp', '-', 'cpr:/tmp'], inTar);
  t.is(put.code, 0, put.stderr);
  t.is(await e.ok(['exec', 'cpr', 'sh', '-c', 'stat -c "%a" /tmp/fromtar/z; cat /tmp/fromtar/z']), '600\nzz\n');
  const notDir = await ufsBytes(e, ['cp', '-', 'cpr:/tmp/in'], inTar);
  t.is(notDir.code, 1);
  t.regex(notDir.stderr, /must be a directory/);
  // on a terminal, Docker's last line; in a pipe, nothing
  t.is((await e.ufs(['cp', path.join(host, 'in'), 'cpr:/tmp/in2'])).stderr, '');
  const term = e.pty(['cp', path.join(host, 'in'), 'cpr:/tmp/in3']);
  t.is(await term.exit, 0);
  t.regex(term.output, /^Successfully copied \d+(\.\d+)?kB to cpr:\/tmp\/in3\r?\n$/);
  const quiet = e.pty(['cp', '-q', path.join(host, 'in'), 'cpr:/tmp/in4']);
  t.is(await quiet.exit, 0);
  t.is(quiet.output, '');
  const usage = await e.ufs(['cp', 'a', 'b']);
  t.is(usage.code, 1);
  t.is(usage.stderr, 'ufs: must specify at least one container source\n');
});

test('cp never writes out of the container root: symlinks and hostile archives land inside', async (t) => {
  const e = await makeEnv(t);
  const outside = hostTemp(t); // what the links point at, on the host
  const src = hostTemp(t);
  fs.writeFileSync(path.join(src, 'payload'), 'payload\n');
  await e.ok(['run', '--name', 'hostile', 'busybox', 'sh', '-c', `ln -s ${outside} /abs && ln -s ../../../../../../..${outside} /rel && mkdir -p ${outside}`]);
  for (const dest of ['hostile:/abs/', 'hostile:/abs/x', 'hostile:/rel/y']) t.is((await e.ufs(['cp', path.join(src, 'payload'), dest])).code, 0, dest);
  const evil = rawTar([
    { name: 'a', type: '2', linkname: outside },
    { name: 'a/through-link', content: 'x' },
    { name: `../../../../../..${outside}/dotdot`, content: 'x' },
    { name: 'hl', type: '1', linkname: `../../../../..${outside}/payload` },
  ]);
  await ufsBytes(e, ['cp', '-', 'hostile:/'], evil);
  t.deepEqual(fs.readdirSync(outside), [], 'nothing reached the host directory');
  const inside = await ufsBytes(e, ['cp', `hostile:${outside}/.`, '-']);
  t.deepEqual((await tarList(inside.stdout)).split('\n').filter(Boolean).map((l) => l.split(' ').pop()).sort(), ['dotdot', 'payload', 'through-link', 'x', 'y']);
  // the hard link names a file inside the root, whatever its '..'
  t.is((await ufsBytes(e, ['cp', 'hostile:/hl', '-'])).code, 0);
});

test('volumes: run -v NAME:/dir and -v /dir; named ones survive rm, rm -v takes anonymous ones', async (t) => {
  const e = await makeEnv(t);
  await e.ok(['run', '--name', 'vw', '-v', 'data:/data', '-v', '/scratch', 'busybox', 'sh', '-c', 'echo kept > /data/f; echo gone > /scratch/f']);
  const rec = await e.record('vw');
  const vols = (await e.ok(['volume', 'ls', '-q'])).trim().split('\n');
  t.is(vols.length, 2);
  const anon = vols.find((v) => v !== 'data')!;
  t.regex(anon, /^[0-9a-f]{64}$/);
  t.is(await e.ok(['volume', 'inspect', '-f', '{{index .Labels "com.docker.volume.anonymous"}}|', anon]), '|\n');
  t.is(await e.ok(['inspect', '-f', '{{range .Mounts}}{{.Destination}} {{end}}', 'vw']), '/data /scratch \n');
  // in use: volume rm refuses
  const busy = await e.ufs(['volume', 'rm', 'data']);
  t.is(busy.code, 1);
  t.regex(busy.stderr, new RegExp(`^ufs: remove data: volume is in use - \\[${rec.Id}\\]`));
  // another container sees the named volume's content
  t.is(await e.ok(['run', '--rm', '-v', 'data:/x:ro', 'busybox', 'cat', '/x/f']), 'kept\n');
  t.is((await e.ufs(['run', '--rm', '-v', 'data:/x:ro', 'busybox', 'touch', '/x/new'])).code, 1, 'read-only');
  await e.ok(['rm', '-v', 'vw']);
  t.is(await e.ok(['volume', 'ls', '-q']), 'data\n', 'the anonymous volume went with rm -v, the named one stays');
  t.is(fs.readFileSync(path.join(e.root, 'volumes', 'data', '_data', 'f'), 'utf8'), 'kept\n');
  await e.ok(['run', '--name', 'w2', '-v', 'data:/data', 'busybox', 'true']);
  await e.ok(['rm', 'w2']);
  t.is(await e.ok(['volume', 'rm', 'data']), 'data\n');
  t.is(await e.ok(['volume', 'ls', '-q']), '');
  for (const [spec, msg] of [
    ['bad$name:/x', /includes invalid characters for a local volume name/],
    ['data:relative', /the container path must be absolute/],
    ['/', /cannot mount over \//],
  ] as [string, RegExp][]) {
    const r = await e.ufs(['run', '--rm', '-v', spec, 'busybox', 'true']);
    t.is(r.code, 125, spec);
    t.regex(r.stderr, msg, spec);
  }
  t.is(await e.ok(['volume', 'ls', '-q']), '', 'a failed run leaves no volume');
  // --rm takes its anonymous volumes along, never a named one
  t.is(await e.ok(['run', '--rm', '-v', '/tmpvol', '-v', 'keep:/k', 'busybox', 'sh', '-c', 'touch /tmpvol/x /k/y']), '');
  t.is(await e.ok(['volume', 'ls', '-q']), 'keep\n');
});

test('logs --tail, --since, --until, -t', async (t) => {
  const e = await makeEnv(t);
  // A foreground container (no terminal) is logged too, as Docker's, while its output also
  // reaches ours; a --rm one keeps no log to read.
  const fg = await e.ufs(['run', '--name', 'logfg', 'busybox', 'sh', '-c', 'echo fgout; echo fgerr >&2']);
  t.deepEqual([fg.code, fg.stdout, fg.stderr], [0, 'fgout\n', 'fgerr\n']);
  const fgLogs = await e.ufs(['logs', 'logfg']);
  t.deepEqual([fgLogs.stdout, fgLogs.stderr], ['fgout\n', 'fgerr\n']);
  await e.ok(['rm', 'logfg']);
  await e.ok(['run', '-d', '--name', 'logc', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5; do echo out$i; done; sleep 0.5; echo err >&2']);
  t.is(await e.ok(['wait', 'logc']), '0\n');
  t.is(await e.ok(['logs', 'logc']), 'out1\nout2\nout3\nout4\nout5\n');
  t.is((await e.ufs(['logs', 'logc'])).stderr, 'err\n');
  const tail = await e.ufs(['logs', '--tail', '2', 'logc']);
  t.is(tail.stdout, 'out5\n');
  t.is(tail.stderr, 'err\n');
  t.is(await e.ok(['logs', '-n', '0', 'logc']), '');
  t.is(await e.ok(['logs', '--tail', 'all', 'logc']), 'out1\nout2\nout3\nout4\nout5\n');
  t.regex(await e.ok(['logs', '-t', '--tail', '3', 'logc']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z out4\n\S+Z out5\n$/);
  t.is(await e.ok(['logs', '--since', '10m', 'logc']), 'out1\nout2\nout3\nout4\nout5\n');
  t.is(await e.ok(['logs', '--until', '10m', 'logc']), '');
  t.is(await e.ok(['logs', '--since', '2000-01-01T00:00:00Z', '--until', String(Math.ceil(Date.now() / 1000) + 60), 'logc']), 'out1\nout2\nout3\nout4\nout5\n');
  t.is(await e.ok(['logs', '--since', new Date(Date.now() + 3_600_000).toISOString(), 'logc']), '');
  for (const [args, msg] of [
    [['--since', 'yesterday'], /^ufs: invalid value for "since": failed to parse value as time or duration: "yesterday"\n$/],
    [['--tail', 'x'], /^ufs: invalid value for "tail"/],
  ] as [string[], RegExp][]) {
    const r = await e.ufs(['logs', ...args, 'logc']);
    t.is(r.code, 1);
    t.regex(r.stderr, msg);
  }
});

test('ps PORTS: the host ports a running container is published on', async (t) => {
  const e = await makeEnv(t);
  const net = uniqueName('cps');
  await e.ok(['network', 'create', '--subnet', freeSubnet(), net]);
  try {
    await e.ok(['run', '-d', '--name', 'pub', '--network', net, '-p', '127.0.0.1::80', '-p', '127.0.0.1::53/udp', 'busybox', 'sleep', '60']);
    await e.ok(['create', '--name', 'notyet', '--network', net, '-p', '127.0.0.1::81', 'busybox', 'true']);
    const ports = await e.ok(['ps', '-a', '--format', '{{.Names}}|{{.Ports}}']);
    t.regex(ports, /^(notyet\|\npub\|127\.0\.0\.1:\d+->80\/tcp, 127\.0\.0\.1:\d+->53\/udp\n|pub\|127\.0\.0\.1:\d+->80\/tcp, 127\.0\.0\.1:\d+->53\/udp\nnotyet\|\n)$/);
    const port80 = /127\.0\.0\.1:(\d+)->80\/tcp/.exec(ports)![1];
    t.is(await e.ok(['port', 'pub', '80']), `127.0.0.1:${port80}\n`);
    const table = (await e.ok(['ps'])).split('\n');
    t.regex(table[0]!, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
    t.regex(table[1]!, new RegExp(`Up .*127\\.0\\.0\\.1:${port80}->80/tcp, 127\\.0\\.0\\.1:\\d+->53/udp\\s+pub$`));
  } finally {
    await e.ufs(['rm', '-f', 'pub', 'notyet']);
    await e.ufs(['network', 'rm', net]);
  }
});

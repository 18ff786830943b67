// The life of a ufs mount through the CLI: mount, mounts, umount, and the errors around them.
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SERVING_NODE_ARGS } from '../src/common/serving.js';
import { fill, isMounted, makeLayers, mount, pidAlive, records, sh, ufs } from './helpers/mount.js';

async function waitGone(pid: number, ms = 15000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !pidAlive(pid);
}

test('mount prints nothing, is ready on return, is listed, and umount ends its server', async (t) => {
  const l = await makeLayers(t, { lowers: 2 });
  await fill(l.lowers[0]!, 'echo top > a');
  await fill(l.lowers[1]!, 'echo bottom > a; echo b > b');
  const m = await mount(t, l); // fails if anything is printed
  // Ready on return: the very first access already sees the union.
  t.is(await fs.readFile(path.join(l.mnt, 'a'), 'utf8'), 'top\n');
  t.is(await fs.readFile(path.join(l.mnt, 'b'), 'utf8'), 'b\n');
  t.true(await isMounted(l.mnt));
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const line = info.split('\n').find((x) => x.split(' ')[4] === l.mnt)!;
  t.regex(line, / - fuse\.ufs ufs:/);
  t.true(pidAlive(m.pid));
  // the server runs with a serving process's flags (src/common/serving.ts)
  const cmdline = (await fs.readFile(`/proc/${m.pid}/cmdline`, 'utf8')).split('\0');
  t.deepEqual(cmdline.slice(1, 1 + SERVING_NODE_ARGS.length), [...SERVING_NODE_ARGS]);

  const list = await ufs(['mounts'], l.env);
  t.is(list.code, 0);
  const lines = list.stdout.trim().split('\n');
  t.regex(lines[0]!, /^MOUNTPOINT\s+PID\s+LAYERS\s+UPPER$/);
  t.true(lines.some((x) => x.startsWith(l.mnt) && x.includes(String(m.pid)) && x.includes(l.upper!)));

  const json = await ufs(['mounts', '--json'], l.env);
  const parsed = JSON.parse(json.stdout) as { mountpoint: string; pid: number; lowers: string[]; upper: string }[];
  t.is(parsed.length, 1);
  t.like(parsed[0], { mountpoint: l.mnt, pid: m.pid, lowers: l.lowers, upper: l.upper });

  const u = await m.umount();
  t.deepEqual([u.code, u.stdout, u.stderr], [0, '', '']);
  t.false(await isMounted(l.mnt));
  t.true(await waitGone(m.pid), 'the server exits on umount');
  t.deepEqual(await records(l.runDir), []);
  t.is((await ufs(['mounts', '--json'], l.env)).stdout.trim(), '[]');
});

test('fusermount -u from outside also ends the server and its record', async (t) => {
  const l = await makeLayers(t);
  const m = await mount(t, l);
  const r = await sh(`fusermount -u ${l.mnt}`);
  t.is(r.code, 0, r.stderr);
  t.true(await waitGone(m.pid));
  t.deepEqual(await records(l.runDir), []);
});

test('without --upper the mount is read-only: EROFS', async (t) => {
  const l = await makeLayers(t, { upper: false });
  await fill(l.lowers[0]!, 'echo x > f; mkdir d');
  const m = await mount(t, l);
  t.is(await m.ok('cat f'), 'x\n');
  const codes = await m.node<string[]>(`return [
    await tryCode(() => fs.writeFile('new', 'x')),
    await tryCode(() => fs.appendFile('f', 'y')),
    await tryCode(() => fs.mkdir('d2')),
    await tryCode(() => fs.rm('f')),
    await tryCode(() => fs.rmdir('d')),
    await tryCode(() => fs.chmod('f', 0o600)),
    await tryCode(() => fs.rename('f', 'g')),
    await tryCode(() => fs.symlink('f', 'l')),
    await tryCode(() => fs.utimes('f', 1, 1)),
  ];`);
  t.deepEqual(codes, Array(9).fill('EROFS'));
  t.deepEqual((await fs.readdir(l.lowers[0]!)).sort(), ['d', 'f']);
  const list = await ufs(['mounts'], l.env);
  t.regex(list.stdout, new RegExp(`${l.mnt}\\s+\\d+\\s+1\\s+-`));
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const line = info.split('\n').find((x) => x.split(' ')[4] === l.mnt)!;
  t.regex(line.split(' ')[5]!, /^ro,/);
});

test('busy mountpoint: a second mount on it fails with a clear error', async (t) => {
  const l = await makeLayers(t);
  await mount(t, l);
  const r = await ufs(['mount', '--lower', l.lowers[0]!, l.mnt], l.env);
  t.not(r.code, 0);
  t.is(r.stdout, '');
  t.is(r.stderr, `ufs: ${l.mnt} is busy: something is already mounted there\n`);
  t.is((await records(l.runDir)).length, 1);
});

test('missing lower, missing upper, missing mountpoint, file as mountpoint: one-line errors, nothing mounted', async (t) => {
  const l = await makeLayers(t);
  const cases: [string[], RegExp][] = [
    [['--lower', path.join(l.base, 'nope'), l.mnt], /^ufs: lower \S+nope does not exist\n$/],
    [['--lower', l.lowers[0]!, '--upper', path.join(l.base, 'nope'), l.mnt], /^ufs: upper \S+nope does not exist\n$/],
    [['--lower', l.lowers[0]!, path.join(l.base, 'nope')], /^ufs: mountpoint \S+nope does not exist\n$/],
    [['--lower', l.lowers[0]!, l.mnt, 'extra'], /^ufs: usage: ufs mount /],
    [['--lower', l.mnt, '--upper', l.upper!, l.mnt], /overlap\n$/],
  ];
  await fs.writeFile(path.join(l.base, 'file'), 'x');
  cases.push([['--lower', l.lowers[0]!, path.join(l.base, 'file')], /^ufs: mountpoint \S+file is not a directory\n$/]);
  cases.push([['--lower', path.join(l.base, 'file'), l.mnt], /^ufs: lower \S+file is not a directory\n$/]);
  for (const [args, re] of cases) {
    const r = await ufs(['mount', ...args], l.env);
    t.not(r.code, 0, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
    t.is(r.stderr.split('\n').length, 2, 'one line');
  }
  t.false(await isMounted(l.mnt));
  t.deepEqual(await records(l.runDir), []);
});

test('umount of something not mounted, or not ufs, is a clear error', async (t) => {
  const l = await makeLayers(t);
  const r = await ufs(['umount', l.mnt], l.env);
  t.is(r.code, 1);
  t.is(r.stderr, `ufs: ${l.mnt} is not mounted\n`);
  const r2 = await ufs(['umount', '/proc'], l.env);
  t.is(r2.code, 1);
  t.is(r2.stderr, 'ufs: /proc is not a ufs mount (proc)\n');
});

test('umount of a busy mount fails, keeps it, and works once it is free', async (t) => {
  const l = await makeLayers(t);
  await fill(l.lowers[0]!, 'mkdir d');
  const m = await mount(t, l);
  // A process whose cwd is in the mount keeps it busy.
  const { spawn } = await import('node:child_process');
  const holder = spawn('sleep', ['60'], { cwd: path.join(l.mnt, 'd'), stdio: 'ignore' });
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  await new Promise((r) => holder.once('spawn', r));
  const r = await m.umount();
  t.is(r.code, 1);
  t.is(r.stderr, `ufs: ${l.mnt} is busy\n`);
  t.true(await isMounted(l.mnt));
  t.true(pidAlive(m.pid));
  t.is(await m.ok('ls'), 'd\n');
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  const r2 = await m.umount();
  t.is(r2.code, 0, r2.stderr);
  t.true(await waitGone(m.pid));
});

test('a mount whose server was killed is listed as dead and cleaned by umount', async (t) => {
  const l = await makeLayers(t);
  await fill(l.lowers[0]!, 'echo x > f');
  const m = await mount(t, l);
  process.kill(m.pid, 'SIGKILL');
  t.true(await waitGone(m.pid));
  const st = await m.sh('cat f');
  t.not(st.code, 0);
  t.regex(st.stderr, /Transport endpoint is not connected/);
  const json = JSON.parse((await ufs(['mounts', '--json'], l.env)).stdout) as { mountpoint: string; stale?: boolean }[];
  t.deepEqual(json.map((x) => [x.mountpoint, x.stale]), [[l.mnt, true]]);
  t.regex((await ufs(['mounts'], l.env)).stdout, /\(dead\)/);
  const r = await m.umount();
  t.is(r.code, 0, r.stderr);
  t.false(await isMounted(l.mnt));
  t.deepEqual(await records(l.runDir), []);
  // And the mountpoint is usable again.
  const again = await mount(t, l);
  t.is(await again.ok('cat f'), 'x\n');
});

test('SIGTERM to the server unmounts and ends it', async (t) => {
  const l = await makeLayers(t);
  const m = await mount(t, l);
  process.kill(m.pid, 'SIGTERM');
  t.true(await waitGone(m.pid));
  t.false(await isMounted(l.mnt));
  t.deepEqual(await records(l.runDir), []);
});

test('the server runs in its own session with a thread pool larger than the default, logging to a file', async (t) => {
  const l = await makeLayers(t);
  const m = await mount(t, l);
  const stat = await fs.readFile(`/proc/${m.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  t.is(Number(fields[3]), m.pid, 'session leader (setsid)');
  const env = (await fs.readFile(`/proc/${m.pid}/environ`, 'utf8')).split('\0');
  // Larger than libuv's default of 4, so that a slow copy-up does not hold up the rest.
  const pool = env.find((e) => e.startsWith('UV_THREADPOOL_SIZE='));
  t.true(Number(pool?.split('=')[1]) >= 8, String(pool));
  t.is(await fs.readlink(`/proc/${m.pid}/fd/0`), '/dev/null');
  t.regex(await fs.readlink(`/proc/${m.pid}/fd/2`), /\.log$/);
  t.regex(await m.serverLog(), /mounted/);
});

// src/fuse/warmup.ts: as it comes up, the server makes its first requests itself, through a
// detached copy of the mount (before it reports ready) and on a scratch union in a temp dir.
test('the server warms up after it is mounted, changes nothing in the union, and an unmount at once still works', async (t) => {
  const l = await makeLayers(t, { lowers: 2 });
  await fill(l.lowers[0]!, 'mkdir -p etc/ssh; echo top > a; ln -s a link; echo cfg > etc/ssh/cfg');
  await fill(l.lowers[1]!, 'mkdir -p usr/bin; echo b > b; echo x > usr/bin/x');
  const tree = () => sh(`cd ${l.lowers[0]} && find . -printf '%p %s %T@\\n' | sort; cd ${l.lowers[1]} && find . -printf '%p %s %T@\\n' | sort`);
  const before = (await tree()).stdout;
  const m = await mount(t, l);
  const end = Date.now() + 10_000;
  while (!/warmed up in \d+ ms/.test(await m.serverLog()) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  const log = await m.serverLog();
  t.regex(log, /warmed up in \d+ ms/);
  t.notRegex(log, /warming up:/);
  // Nothing to see: the upper holds its empty work dir only, the lowers are as they were.
  t.deepEqual(await fs.readdir(l.upper!), ['.wh..wh..ufs.work']);
  t.deepEqual(await fs.readdir(path.join(l.upper!, '.wh..wh..ufs.work')), []);
  t.is((await tree()).stdout, before);
  t.deepEqual((await fs.readdir(l.mnt)).sort(), ['a', 'b', 'etc', 'link', 'usr']);
  t.is((await m.umount()).code, 0);
  t.true(await waitGone(m.pid));

  // Unmounted with umount(8) the moment it is up, while the server still warms up.
  for (let i = 0; i < 5; i++) {
    const again = await mount(t, l);
    const r = await sh(`umount ${l.mnt}`);
    t.is(r.code, 0, r.stderr);
    t.false(await isMounted(l.mnt));
    t.true(await waitGone(again.pid), 'the server ends once its file system is gone');
  }
  t.deepEqual(await records(l.runDir), []);
});

test('the warm-up\'s listings leave the atimes of upper directories alone', async (t) => {
  const l = await makeLayers(t);
  await fill(l.lowers[0]!, 'echo f > f');
  // Under relatime, a listing updates an atime that is not newer than the mtime: these would.
  await fill(l.upper!, 'mkdir d && echo g > d/g && touch -d @1000000000 d . && touch -a -d @1000000000 d .');
  const atimes = async () => (await sh(`stat -c '%n %X' ${l.upper} ${l.upper}/d`)).stdout;
  const before = await atimes();
  const m = await mount(t, l);
  const end = Date.now() + 10_000;
  while (!/warmed up in \d+ ms/.test(await m.serverLog()) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.regex(await m.serverLog(), /warmed up in \d+ ms/);
  t.is(await atimes(), before);
});

test('mount options: allow_other, default_permissions, read-write', async (t) => {
  const l = await makeLayers(t);
  await mount(t, l);
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const line = info.split('\n').find((x) => x.split(' ')[4] === l.mnt)!;
  t.regex(line, /default_permissions/);
  t.regex(line, /allow_other/);
  t.regex(line.split(' ')[5]!, /^rw/);
});

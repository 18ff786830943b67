// ufs-init on the kinds of root a real container has: a mount point (a bind mount), a FUSE
// mount served by another process (fuse-overlayfs), and a real ufs union mount.
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { makeLayers, mount } from './helpers/mount.js';
import { PATH_ENV, makeBusyboxRootfs, runInit, startInit, tempRootfs, writeSpec } from './helpers/rootfs.js';

function cmd(file: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) =>
    execFile(file, args, (err, _out, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr })),
  );
}

async function mountPoints(): Promise<string[]> {
  return (await fs.readFile('/proc/self/mountinfo', 'utf8')).split('\n').map((l) => l.split(' ')[4] ?? '');
}

async function waitMounted(mnt: string, ms = 10000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await mountPoints()).includes(mnt)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

// What every kind of root must give: the root writable through to where it is stored, a
// volume whose missing target is created, the container's own mounts, exec.
async function exercise(t: ExecutionContext, base: string, root: string, storedAt: string, fsType: RegExp) {
  const vol = path.join(base, 'vol');
  await fs.mkdir(vol);
  const r = await runInit(t, base, {
    rootfs: root,
    args: ['sh', '-c', 'echo from-container > /tmp/written; echo v > /newvol/v; cat /proc/1/mountinfo | cut -d" " -f5,8 | tr "\\n" ","'],
    mounts: [{ source: vol, target: '/newvol' }],
    network: 'none',
  });
  t.is(r.code, 0, r.stderr);
  // (Without the masked and read-only paths inside /proc and /sys: init-security's.)
  const entries = r.stdout.split(',').filter((e) => e && !/^\/(proc|sys)\//.test(e)).map((e) => e.split(' '));
  t.deepEqual(entries.map((e) => e[0]), ['/', '/proc', '/dev', '/dev/pts', '/dev/shm', '/sys', '/newvol']);
  t.regex(entries[0]![1]!, fsType);
  t.is(await fs.readFile(path.join(storedAt, 'tmp/written'), 'utf8'), 'from-container\n');
  t.true((await fs.stat(path.join(storedAt, 'newvol'))).isDirectory());
  t.is(await fs.readFile(path.join(vol, 'v'), 'utf8'), 'v\n');

  // A running container on this root, and an exec into it.
  const c = startInit(t, 'run', await writeSpec(base, { rootfs: root, env: [PATH_ENV], args: ['sh', '-c', 'echo ready; exec sleep 1000'] }));
  const pid1 = Number(await c.reported);
  await c.waitFor('ready\n');
  const e = await startInit(t, 'exec', await writeSpec(base, { pid: pid1, env: [PATH_ENV], args: ['cat', '/tmp/written'] })).done;
  t.deepEqual([e.code, e.stdout], [0, 'from-container\n']);
  process.kill(c.pid, 'SIGTERM');
  t.is((await c.done).code, 143);
}

test('rootfs that is already a mount point (a bind mount)', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const mnt = path.join(base, 'mnt');
  await fs.mkdir(mnt);
  t.teardown(async () => {
    if ((await mountPoints()).includes(mnt)) await cmd('umount', [mnt]);
  });
  const m = await cmd('mount', ['--bind', rootfs, mnt]);
  t.is(m.code, 0, m.stderr);
  await exercise(t, base, mnt, rootfs, /^(?!fuse)\w+$/);
  // The container's mounts never reach the host's namespace.
  t.deepEqual((await mountPoints()).filter((p) => p.startsWith(`${mnt}/`)), []);
  const u = await cmd('umount', [mnt]);
  t.is(u.code, 0, u.stderr);
});

test('rootfs on a FUSE mount served by another process (fuse-overlayfs, allow_other)', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const upper = path.join(base, 'upper');
  const work = path.join(base, 'work');
  const mnt = path.join(base, 'mnt');
  for (const d of [upper, work, mnt]) await fs.mkdir(d);
  // -f keeps it in the foreground: its pid is ours to end.
  const server = spawn('fuse-overlayfs', ['-f', '-o', `lowerdir=${rootfs},upperdir=${upper},workdir=${work},allow_other`, mnt], {
    stdio: 'ignore',
  });
  const gone = new Promise<void>((resolve) => server.on('exit', () => resolve()));
  t.teardown(async () => {
    if ((await mountPoints()).includes(mnt)) await cmd('fusermount3', ['-u', mnt]);
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    await gone;
  });
  t.true(await waitMounted(mnt), 'fuse-overlayfs mounted');
  await exercise(t, base, mnt, upper, /^fuse\.fuse-overlayfs$/);
  // The lower (the image) is untouched.
  await t.throwsAsync(fs.stat(path.join(rootfs, 'tmp/written')));
});

test('rootfs on a ufs union mount (ufs mount --lower --upper)', async (t) => {
  const l = await makeLayers(t);
  await makeBusyboxRootfs(l.lowers[0]!);
  await mount(t, l);
  await exercise(t, l.base, l.mnt, l.upper!, /^fuse\.ufs$/);
  await t.throwsAsync(fs.stat(path.join(l.lowers[0]!, 'tmp/written')));
});

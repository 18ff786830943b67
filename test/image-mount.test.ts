// Looking inside images through real FUSE mounts (through the CLI, in child processes):
// archives by skopeo and umoci mount with the right content, `--layer` shows each stage of a
// staged image, and `ufs layers` reports each layer's changes and wasted space.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { imageEnv, type ImageEnv, makeBusyboxRootfs, must, run, tarOf, umociLayout, umociStaged } from './helpers/images.js';

let fx: { dir: string; dockerTar: string; ociTar: string; umociTar: string; stagedTar: string; aBin: Buffer };

test.before(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ufs-test-mountfx-'));
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  const layout = await umociLayout(dir, rootfs);
  const dockerTar = path.join(dir, 'docker.tar');
  const ociTar = path.join(dir, 'oci.tar');
  await must('skopeo', ['copy', '-q', `oci:${layout}:latest`, `docker-archive:${dockerTar}:bb:docker`]);
  await must('skopeo', ['copy', '-q', `oci:${layout}:latest`, `oci-archive:${ociTar}:bb:oci`]);
  const umociTar = await tarOf(layout, path.join(dir, 'umoci.tar'));
  const staged = await umociStaged(dir, rootfs);
  const stagedTar = await tarOf(staged, path.join(dir, 'staged.tar'));
  fx = { dir, dockerTar, ociTar, umociTar, stagedTar, aBin: fs.readFileSync(path.join(dir, 's1', 'data', 'a.bin')) };
});

test.after.always(() => {
  if (fx) fs.rmSync(fx.dir, { recursive: true, force: true });
});

async function loadAs(e: ImageEnv, tar: string, tag: string): Promise<void> {
  const out = await e.ok(['load', '-i', tar]);
  const m = /Loaded image ID: (sha256:\S+)|Loaded image: (\S+)/.exec(out)!;
  await e.ok(['tag', m[1] ?? m[2]!, tag]);
}

async function mount(t: Parameters<typeof imageEnv>[0], e: ImageEnv, args: string[]): Promise<string> {
  const mp = fs.mkdtempSync(path.join(e.dir, 'mp-'));
  await e.ok(['mount', ...args.slice(0, 1), mp, ...args.slice(1)]);
  t.teardown(() => run('fusermount', ['-uz', mp]));
  return mp;
}

function ls(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

test('images from skopeo docker-archive, skopeo oci-archive and umoci mount with the right content', async (t) => {
  const e = await imageEnv(t);
  await loadAs(e, fx.dockerTar, 'from:docker');
  await loadAs(e, fx.ociTar, 'from:oci');
  await loadAs(e, fx.umociTar, 'from:umoci');
  const passwd = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n';
  for (const tag of ['from:docker', 'from:oci', 'from:umoci']) {
    const mp = await mount(t, e, [tag]);
    t.deepEqual(ls(mp), ['bin', 'etc', 'tmp'], tag);
    t.true(fs.readFileSync(path.join(mp, 'bin', 'busybox')).equals(fs.readFileSync('/bin/busybox')), tag);
    t.is(fs.readlinkSync(path.join(mp, 'bin', 'sh')), 'busybox');
    t.is(fs.readFileSync(path.join(mp, 'etc', 'passwd'), 'utf8'), passwd);
    t.is(fs.statSync(path.join(mp, 'tmp')).mode & 0o7777, 0o1777);
    const err = t.throws(() => fs.writeFileSync(path.join(mp, 'etc', 'new'), 'x'));
    t.is((err as NodeJS.ErrnoException).code, 'EROFS');
    const r = await run('/bin/busybox', ['sh', '-c', `cd ${mp} && ./bin/busybox cat etc/passwd`]);
    t.is(r.stdout, passwd);
    await e.ok(['umount', mp]);
  }
});

test('mount without a mountpoint prints a temp dir; umount undoes it', async (t) => {
  const e = await imageEnv(t);
  await loadAs(e, fx.ociTar, 'bb:oci');
  const mp = (await e.ok(['mount', 'bb:oci'])).trim();
  t.teardown(async () => {
    await run('fusermount', ['-uz', mp]);
    fs.rmSync(mp, { recursive: true, force: true });
  });
  t.true(mp.startsWith(os.tmpdir()));
  t.true(fs.existsSync(path.join(mp, 'bin', 'busybox')));
  t.regex(await e.ok(['mounts']), new RegExp(mp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  await e.ok(['umount', mp]);
  t.false(fs.existsSync(path.join(mp, 'bin')));
  const r = await e.ufs(['mount', 'nosuch:image']);
  t.is(r.code, 1);
  t.is(r.stderr, 'ufs: No such image: nosuch:image\n');
});

test('--layer N|DIGEST mounts the filesystem as it stood after that layer', async (t) => {
  const e = await imageEnv(t);
  await loadAs(e, fx.stagedTar, 'staged');
  const diffIds = JSON.parse(await e.ok(['inspect', '-f', '{{json .RootFS.Layers}}', 'staged'])) as string[];
  t.is(diffIds.length, 5);
  const stage = async (layer: string) => mount(t, e, ['staged', '--layer', layer]);

  const s0 = await stage('0');
  t.deepEqual(ls(s0), ['bin', 'etc', 'tmp']);
  t.regex(fs.readFileSync(path.join(s0, 'etc', 'passwd'), 'utf8'), /^root:.*\nnobody:/);

  const s1 = await stage('1');
  t.deepEqual(ls(path.join(s1, 'data')), ['a.bin', 'keep.txt']);
  t.true(fs.readFileSync(path.join(s1, 'data', 'a.bin')).equals(fx.aBin));

  const s2 = await stage(diffIds[2]!.slice(7, 19)); // by diff_id prefix
  t.regex(fs.readFileSync(path.join(s2, 'etc', 'passwd'), 'utf8'), /\nuser:x:1000:/);

  const s3 = await stage(diffIds[3]!);
  t.deepEqual(ls(path.join(s3, 'data')), ['keep.txt'], 'the whiteout hides a.bin');

  const s4 = await stage('4');
  t.deepEqual(ls(path.join(s4, 'data')), ['new.txt'], 'the opaque directory hides keep.txt');
  const whole = await mount(t, e, ['staged']);
  t.deepEqual(ls(path.join(whole, 'data')), ['new.txt']);
  t.true(fs.readFileSync(path.join(whole, 'bin', 'busybox')).equals(fs.readFileSync('/bin/busybox')));

  const bad = await e.ufs(['mount', 'staged', path.join(e.dir, 'x'), '--layer', '5']);
  t.is(bad.stderr, 'ufs: layer 5 does not exist: the image has 5 layers (0-4)\n');
});

test('ufs layers: per-layer A/C/D counts, the changes of one layer and its wasted space', async (t) => {
  const e = await imageEnv(t);
  await loadAs(e, fx.stagedTar, 'staged');
  const table = (await e.ok(['layers', 'staged'])).trimEnd().split('\n');
  t.regex(table[0]!, /^INDEX\s+DIFF ID\s+SIZE\s+ADDED\s+MODIFIED\s+DELETED\s+CREATED BY$/);
  t.is(table.length, 6);
  const cols = table.slice(1).map((l) => l.split(/\s{2,}/));
  t.deepEqual(cols.map((c) => [c[0], c[3], c[4], c[5], c[6]]), [
    ['0', '11', '0', '0', 'umoci insert'], // /bin + busybox + 5 links, /etc + 2 files, /tmp
    ['1', '3', '0', '0', 'umoci insert'],
    ['2', '0', '2', '0', 'umoci insert'],
    ['3', '0', '1', '1', 'umoci insert'],
    ['4', '1', '1', '0', 'umoci insert'],
  ]);
  t.is(cols[1]![2], '200kB');
  t.is(await e.ok(['layers', 'staged', '3']), 'C /data\nD /data/a.bin\n\nWasted: 0B (no file of this layer is overwritten or deleted by a later layer)\n');
  const one = await e.ok(['layers', 'staged', '1']);
  t.true(one.startsWith('A /data\nA /data/a.bin\nA /data/keep.txt\n\nWasted: 200kB in 2 files overwritten or deleted by later layers\n'), one);
  t.regex(one, /\n200kB\s+\/data\/a\.bin\s+\(hidden by layer 3\)\n5B\s+\/data\/keep\.txt\s+\(hidden by layer 4\)\n$/);
  const zero = JSON.parse(await e.ok(['layers', 'staged', '0', '--json'])) as { wasted: { path: string; by: number }[]; wastedBytes: number };
  t.deepEqual(zero.wasted.map((w) => [w.path, w.by]), [['/etc/passwd', 2]]);
  t.is(zero.wastedBytes, fs.readFileSync(path.join(fx.dir, 'rootfs', 'etc', 'passwd')).length);
  const r = await e.ufs(['layers', 'staged', '9']);
  t.is(r.stderr, 'ufs: layer 9 does not exist: the image has 5 layers (0-4)\n');
});

test('rmi of a mounted image keeps its layers until the mount is gone', async (t) => {
  const e = await imageEnv(t);
  await loadAs(e, fx.ociTar, 'bb:oci');
  const layers = JSON.parse(await e.ok(['inspect', '-f', '{{json .RootFS.Layers}}', 'bb:oci'])) as string[];
  const mp = await mount(t, e, ['bb:oci']);
  t.regex(await e.ok(['rmi', 'bb:oci']), /Untagged: bb:oci\nDeleted: sha256:/);
  const dir = path.join(e.root, 'layers', layers[0]!.slice(7));
  t.true(fs.existsSync(dir), 'still mounted: kept');
  t.true(fs.readFileSync(path.join(mp, 'bin', 'busybox')).equals(fs.readFileSync('/bin/busybox')));
  await e.ok(['umount', mp]);
  await e.ok(['image', 'prune', '-f']);
  t.false(fs.existsSync(dir), 'collected once unmounted');
});

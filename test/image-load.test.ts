// `ufs load` of archives written by the real tools (skopeo docker-archive and oci-archive,
// an umoci layout as a tar), gzip and plain layers, many images with shared layers, and the
// refusals: bad digests, hostile layers, truncated or foreign input, all leaving the store as
// it was. Two concurrent loads of one archive both succeed; a killed load leaves no image.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { CLI, dockerArchive, imageEnv, makeBusyboxRootfs, must, rawTar, sha256, snapshot, tarOf, umociLayout } from './helpers/images.js';

let fx: { dir: string; dockerTar: string; ociTar: string; umociTar: string; layout: string };

test.before(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ufs-test-loadfx-'));
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  const layout = await umociLayout(dir, rootfs, 'latest');
  const dockerTar = path.join(dir, 'docker.tar');
  const ociTar = path.join(dir, 'oci.tar');
  await must('skopeo', ['copy', '-q', `oci:${layout}:latest`, `docker-archive:${dockerTar}:busybox:latest`]);
  await must('skopeo', ['copy', '-q', `oci:${layout}:latest`, `oci-archive:${ociTar}:example.com/tools/busybox:1.0`]);
  const umociTar = await tarOf(layout, path.join(dir, 'umoci.tar'));
  fx = { dir, dockerTar, ociTar, umociTar, layout };
});

test.after.always(() => {
  if (fx) fs.rmSync(fx.dir, { recursive: true, force: true });
});

function layerDirs(root: string): string[] {
  return fs.readdirSync(path.join(root, 'layers')).filter((n) => /^[a-f0-9]{64}$/.test(n));
}

function sameFile(t: { true(v: boolean, m?: string): void }, a: string, b: string): void {
  t.true(fs.readFileSync(a).equals(fs.readFileSync(b)), `${a} equals ${b}`);
}

test('loads a skopeo docker-archive (plain layers) with its tag', async (t) => {
  const e = await imageEnv(t);
  t.is(await e.ok(['load', '-i', fx.dockerTar]), 'Loaded image: busybox:latest\n');
  const ls = await e.ok(['images']);
  t.regex(ls, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/);
  t.regex(ls, /\nbusybox\s+latest\s+[0-9a-f]{12}\s+/);
  const layers = layerDirs(e.root);
  t.is(layers.length, 1);
  sameFile(t, path.join(e.root, 'layers', layers[0]!, 'bin', 'busybox'), '/bin/busybox');
  t.is(fs.readlinkSync(path.join(e.root, 'layers', layers[0]!, 'bin', 'sh')), 'busybox');
  const inspect = JSON.parse(await e.ok(['inspect', 'busybox'])) as { Config: { Cmd: string[] }; RootFS: { Layers: string[] } }[];
  t.deepEqual(inspect[0]!.Config.Cmd, ['sh']);
  t.is(inspect[0]!.RootFS.Layers[0], `sha256:${layers[0]}`);
});

test('loads a skopeo oci-archive from stdin, keeping a registry name', async (t) => {
  const e = await imageEnv(t);
  t.is(await e.ok(['load'], { inputFile: fx.ociTar }), 'Loaded image: example.com/tools/busybox:1.0\n');
  t.regex(await e.ok(['images']), /\nexample\.com\/tools\/busybox\s+1\.0\s+/);
  await e.ok(['inspect', 'example.com/tools/busybox:1.0']);
});

test('loads an umoci layout tar (gzip layers, bare tag: no name, like Docker)', async (t) => {
  const e = await imageEnv(t);
  const out = await e.ok(['load', '-i', fx.umociTar]);
  const m = /^Loaded image ID: (sha256:[0-9a-f]{64})\n$/.exec(out);
  t.truthy(m, out);
  const layers = layerDirs(e.root);
  t.is(layers.length, 1);
  sameFile(t, path.join(e.root, 'layers', layers[0]!, 'bin', 'busybox'), '/bin/busybox');
  const meta = JSON.parse(fs.readFileSync(path.join(e.root, 'layers', `${layers[0]}.json`), 'utf8')) as { blob: { mediaType: string } };
  t.is(meta.blob.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  t.regex(await e.ok(['images']), /\n<none>\s+<none>\s+/);
  // the same image through docker-archive: same id, same layer, nothing unpacked twice
  await e.ok(['load', '-i', fx.dockerTar]);
  t.deepEqual(layerDirs(e.root), layers);
  t.is((await e.ok(['images', '-q'])).trim(), m![1]!.slice(7, 19));
});

test('loads a gzip-compressed archive (docker save | gzip)', async (t) => {
  const e = await imageEnv(t);
  const gz = path.join(e.dir, 'docker.tar.gz');
  fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(fx.dockerTar)));
  t.is(await e.ok(['load', '-i', gz]), 'Loaded image: busybox:latest\n');
});

test('many images in one archive, all tags kept, a shared layer stored and unpacked once', async (t) => {
  const e = await imageEnv(t);
  const base = rawTar([{ name: 'etc/', type: '5' }, { name: 'etc/os-release', content: 'ID=test\n' }]);
  const top1 = rawTar([{ name: 'one', content: '1' }]);
  const top2 = rawTar([{ name: 'two', content: '2' }]);
  const archive = path.join(e.dir, 'multi.tar');
  fs.writeFileSync(
    archive,
    dockerArchive([
      { layers: [base, top1], tags: ['app:one', 'app:uno', 'registry.local:5000/team/app:1'] },
      { layers: [base, top2], tags: ['app:two'], gzip: true },
    ]),
  );
  const out = await e.ok(['load', '-i', archive]);
  t.is(out, 'Loaded image: app:one\nLoaded image: app:uno\nLoaded image: registry.local:5000/team/app:1\nLoaded image: app:two\n');
  const layers = layerDirs(e.root);
  t.is(layers.length, 3);
  const baseDir = path.join(e.root, 'layers', sha256(base).slice(7));
  t.true(layers.includes(sha256(base).slice(7)));
  const ino = fs.statSync(path.join(baseDir, 'etc', 'os-release')).ino;
  // another archive on the same base: the base layer is not unpacked again
  const archive2 = path.join(e.dir, 'other.tar');
  fs.writeFileSync(archive2, dockerArchive([{ layers: [base, rawTar([{ name: 'three', content: '3' }])], tags: ['app:three'] }]));
  await e.ok(['load', '-i', archive2]);
  t.is(fs.statSync(path.join(baseDir, 'etc', 'os-release')).ino, ino);
  t.is(layerDirs(e.root).length, 4);
  const ls = await e.ok(['images']);
  for (const tag of ['one', 'uno', 'two', 'three']) t.regex(ls, new RegExp(`\\napp\\s+${tag}\\s`));
  t.regex(ls, /\nregistry\.local:5000\/team\/app\s+1\s/);
});

interface Bad {
  title: string;
  make: (dir: string) => Buffer;
  message: RegExp;
}

const bad: Bad[] = [
  {
    title: 'a diff_id that does not match the layer',
    make: () => {
      // the config names another diff_id than the layer's content hashes to
      const layer = rawTar([{ name: 'a', content: 'a' }]);
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(Buffer.from('other'))] } }));
      return rawTar([
        { name: `${sha256(layer).slice(7)}.tar`, content: layer },
        { name: `${sha256(config).slice(7)}.json`, content: config },
        { name: 'manifest.json', content: JSON.stringify([{ Config: `${sha256(config).slice(7)}.json`, RepoTags: ['bad:diffid'], Layers: [`${sha256(layer).slice(7)}.tar`] }]) },
      ]);
    },
    message: /^ufs: layer sha256:[0-9a-f]{64}: diff_id mismatch: the config says sha256:[0-9a-f]{64}, the content is sha256:[0-9a-f]{64}\n$/,
  },
  {
    title: 'an OCI blob whose content does not match its digest',
    make: () => {
      const tar = fs.readFileSync(fx.ociTar);
      // flip one byte inside the gzip layer body (the largest blob)
      const i = tar.indexOf(Buffer.from([0x1f, 0x8b, 0x08]));
      const copy = Buffer.from(tar);
      copy[i + 100] = copy[i + 100]! ^ 0xff;
      return copy;
    },
    message: /^ufs: bad archive: blob sha256:[0-9a-f]{64} has digest sha256:[0-9a-f]{64}\n$/,
  },
  {
    title: 'a layer with an entry escaping by ..',
    make: () => dockerArchive([{ layers: [rawTar([{ name: 'ok', content: 'x' }, { name: '../../escape', content: 'x' }])], tags: ['evil:dots'] }]),
    message: /^ufs: layer sha256:[0-9a-f]{64}: entry "\.\.\/\.\.\/escape": path escapes the layer \('\.\.'\)\n$/,
  },
  {
    title: 'a layer turning a directory into a symlink and writing through it',
    make: () =>
      dockerArchive([
        {
          layers: [rawTar([{ name: 'lnk', type: '2', linkname: '/tmp' }]), rawTar([{ name: 'lnk/', type: '5' }, { name: 'lnk', type: '2', linkname: '/' }, { name: 'lnk/escape', content: 'x' }])],
          tags: ['evil:link'],
        },
      ]),
    message: /^ufs: layer sha256:[0-9a-f]{64}: entry "lnk\/escape": path passes through the symlink lnk\n$/,
  },
  {
    title: 'an entry of unknown type',
    make: () => dockerArchive([{ layers: [rawTar([{ name: 'dev/x', type: 'V' }])], tags: ['evil:type'] }]),
    message: /^ufs: layer sha256:[0-9a-f]{64}: bad layer tar: entry "dev\/x": unknown entry type 'V'\n$/,
  },
  {
    title: 'a truncated archive',
    make: () => fs.readFileSync(fx.dockerTar).subarray(0, 700_000),
    message: /^ufs: bad archive: unexpected end of tar data\n$/,
  },
  {
    title: 'something that is not an archive',
    make: () => crypto.randomBytes(5000),
    message: /^ufs: bad archive: invalid tar header checksum \(not a tar archive, or corrupt\)\n$/,
  },
  {
    title: 'a tar that is neither docker-archive nor OCI',
    make: () => rawTar([{ name: 'hello.txt', content: 'hi' }]),
    message: /^ufs: bad archive: neither manifest\.json \(docker-archive\) nor index\.json \+ oci-layout \(OCI\) in it\n$/,
  },
];

for (const b of bad) {
  test(`refuses ${b.title}, leaving the store as it was`, async (t) => {
    const e = await imageEnv(t);
    await e.ok(['load', '-i', fx.dockerTar]); // a store with something in it
    const before = snapshot(e.root);
    const file = path.join(e.dir, 'bad.tar');
    fs.writeFileSync(file, b.make(e.dir));
    const r = await e.ufs(['load', '-i', file]);
    t.is(r.code, 1);
    t.regex(r.stderr, b.message);
    t.is(r.stdout, '');
    t.deepEqual(snapshot(e.root), before);
    t.false(fs.existsSync('/tmp/escape'));
    t.false(fs.existsSync('/escape'));
  });
}

test('a symlink planted by an earlier layer is never followed by a later one', async (t) => {
  const e = await imageEnv(t);
  const outside = path.join(e.dir, 'outside');
  fs.mkdirSync(outside);
  const l1 = rawTar([{ name: 'lnk', type: '2', linkname: outside }, { name: 'rel', type: '2', linkname: '../../../../../../..' + outside }]);
  const l2 = rawTar([{ name: 'lnk/escape', content: 'x' }, { name: 'rel/escape', content: 'y' }]);
  const archive = path.join(e.dir, 'planted.tar');
  fs.writeFileSync(archive, dockerArchive([{ layers: [l1, l2], tags: ['planted:1'] }]));
  t.is(await e.ok(['load', '-i', archive]), 'Loaded image: planted:1\n');
  t.deepEqual(fs.readdirSync(outside), [], 'nothing written through the symlink');
  const top = path.join(e.root, 'layers', sha256(l2).slice(7));
  t.true(fs.lstatSync(path.join(top, 'lnk')).isDirectory(), 'a real directory in the later layer');
  t.is(fs.readFileSync(path.join(top, 'lnk', 'escape'), 'utf8'), 'x');
  t.is(fs.readFileSync(path.join(top, 'rel', 'escape'), 'utf8'), 'y');
});

test('two concurrent loads of the same archive both succeed, one copy stored', async (t) => {
  const e = await imageEnv(t);
  const [a, b] = await Promise.all([e.ufs(['load', '-i', fx.ociTar]), e.ufs(['load', '-i', fx.ociTar])]);
  t.is(a.code, 0, a.stderr);
  t.is(b.code, 0, b.stderr);
  t.is(a.stdout, 'Loaded image: example.com/tools/busybox:1.0\n');
  t.is(b.stdout, a.stdout);
  t.is(layerDirs(e.root).length, 1);
  t.deepEqual(fs.readdirSync(path.join(e.root, 'tmp')), []);
  t.is((await e.ok(['images', '-q'])).trim().split('\n').length, 1);
});

test('a load killed half-way leaves no image, no layer, and its temp files are swept', async (t) => {
  const e = await imageEnv(t);
  await e.ok(['images']); // create the store
  const before = snapshot(e.root);
  const big = rawTar([{ name: 'big.bin', content: crypto.randomBytes(12 << 20) }]);
  const archive = dockerArchive([{ layers: [big], tags: ['big:one'] }]);
  const child = spawn(process.execPath, [CLI, '--root', e.root, 'load'], { env: e.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  child.stdin.on('error', () => {});
  child.stdin.write(archive.subarray(0, 8 << 20));
  // wait until the load is spooling into tmp/, then kill it
  for (let i = 0; i < 400 && fs.readdirSync(path.join(e.root, 'tmp')).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  t.true(fs.readdirSync(path.join(e.root, 'tmp')).length > 0, 'the load was under way');
  child.kill('SIGKILL');
  await exited;
  t.is((await e.ok(['images', '-q'])).trim(), ''); // and this sweeps the dead load's tmp files
  t.deepEqual(snapshot(e.root), before);
});

test('load errors: missing file, terminal-less empty stdin', async (t) => {
  const e = await imageEnv(t);
  const r = await e.ufs(['load', '-i', path.join(e.dir, 'nope.tar')]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^ufs: load: cannot open .*nope\.tar: no such file\n$/);
  const empty = await e.ufs(['load'], { input: '' });
  t.is(empty.code, 1);
  t.regex(empty.stderr, /^ufs: bad archive: empty/);
});

// `ufs save`: what it writes is read back by skopeo (docker-archive: and oci-archive:), by
// umoci (the OCI layout), and by `ufs load` (same image ids, tags kept).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { CLI, dockerArchive, imageEnv, makeBusyboxRootfs, must, rawTar, run, sha256, umociLayout } from './helpers/images.js';

let fx: { dir: string; ociTar: string };

test.before(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ufs-test-savefx-'));
  const layout = await umociLayout(dir, makeBusyboxRootfs(path.join(dir, 'rootfs')));
  const ociTar = path.join(dir, 'oci.tar');
  await must('skopeo', ['copy', '-q', `oci:${layout}:latest`, `oci-archive:${ociTar}:busybox:1.0`]);
  fx = { dir, ociTar };
});

test.after.always(() => {
  if (fx) fs.rmSync(fx.dir, { recursive: true, force: true });
});

async function imageId(e: Awaited<ReturnType<typeof imageEnv>>, ref: string): Promise<string> {
  return (await e.ok(['inspect', '-f', '{{.Id}}', ref])).trim();
}

test('docker format: skopeo reads it, layers are the uncompressed diffs', async (t) => {
  const e = await imageEnv(t);
  await e.ok(['load', '-i', fx.ociTar]);
  const id = await imageId(e, 'busybox:1.0');
  const out = path.join(e.dir, 'saved.tar');
  t.is(await e.ok(['save', '-o', out, 'busybox:1.0']), '');
  const info = JSON.parse(await must('skopeo', ['inspect', `docker-archive:${out}`])) as { Layers: string[] };
  t.is(info.Layers.length, 1);
  const dir = path.join(e.dir, 'copied');
  await must('skopeo', ['copy', '-q', `docker-archive:${out}`, `dir:${dir}`]);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  t.is(manifest.config.digest, id, 'the config (image id) is unchanged');
  const diffIds = JSON.parse(await e.ok(['inspect', '-f', '{{json .RootFS.Layers}}', 'busybox:1.0'])) as string[];
  const layerFile = path.join(dir, manifest.layers[0]!.digest.slice(7));
  t.is(sha256(fs.readFileSync(layerFile)), diffIds[0]);
  const list = await must('tar', ['-tf', layerFile]);
  t.regex(list, /bin\/busybox/);
});

test('oci format: skopeo and umoci read it, blobs as stored', async (t) => {
  const e = await imageEnv(t);
  await e.ok(['load', '-i', fx.ociTar]);
  await e.ok(['tag', 'busybox:1.0', 'example.com/x/busybox:2']);
  const id = await imageId(e, 'busybox:1.0');
  const out = path.join(e.dir, 'saved-oci.tar');
  await e.ok(['save', '--format', 'oci', '-o', out, 'busybox:1.0', 'example.com/x/busybox:2']);
  const viaSkopeo = JSON.parse(await must('skopeo', ['inspect', '--config', `oci-archive:${out}:1.0`])) as { rootfs: { diff_ids: string[] } };
  t.deepEqual(viaSkopeo.rootfs.diff_ids, JSON.parse(await e.ok(['inspect', '-f', '{{json .RootFS.Layers}}', 'busybox:1.0'])));
  const layoutDir = path.join(e.dir, 'layout');
  fs.mkdirSync(layoutDir);
  await must('tar', ['-xf', out, '-C', layoutDir]);
  const index = JSON.parse(fs.readFileSync(path.join(layoutDir, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
  t.deepEqual(
    index.manifests.map((m) => m.annotations['io.containerd.image.name']),
    ['docker.io/library/busybox:1.0', 'example.com/x/busybox:2'],
  );
  t.regex(await must('umoci', ['ls', '--layout', layoutDir]), /^1\.0\n2\n$/);
  const bundle = path.join(e.dir, 'bundle');
  await must('umoci', ['unpack', '--image', `${layoutDir}:2`, bundle]);
  t.true(fs.readFileSync(path.join(bundle, 'rootfs', 'bin', 'busybox')).equals(fs.readFileSync('/bin/busybox')));
  const copied = path.join(e.dir, 'copied');
  await must('skopeo', ['copy', '-q', `oci-archive:${out}:2`, `dir:${copied}`]);
  t.is((JSON.parse(fs.readFileSync(path.join(copied, 'manifest.json'), 'utf8')) as { config: { digest: string } }).config.digest, id);
});

for (const format of ['docker', 'oci']) {
  test(`${format} format: load(save(images)) gives the same images and tags`, async (t) => {
    const e = await imageEnv(t);
    const base = rawTar([{ name: 'etc/', type: '5' }, { name: 'etc/hostname', content: 'x\n' }]);
    const archive = path.join(e.dir, 'in.tar');
    fs.writeFileSync(
      archive,
      dockerArchive([
        { layers: [base, rawTar([{ name: 'a', content: crypto.randomBytes(100) }])], tags: ['app:a', 'app:alias'] },
        { layers: [base, rawTar([{ name: 'b', content: 'b' }])], tags: ['app:b'], gzip: true },
      ]),
    );
    await e.ok(['load', '-i', archive]);
    await e.ok(['load', '-i', fx.ociTar]);
    const ids = await Promise.all(['app:a', 'app:b', 'busybox:1.0'].map((r) => imageId(e, r)));
    const out = path.join(e.dir, `out-${format}.tar`);
    await e.ok(['save', '--format', format, '-o', out, 'app:a', 'app:alias', 'app:b', 'busybox:1.0']);
    const e2 = await imageEnv(t);
    const loaded = await e2.ok(['load', '-i', out]);
    t.is(loaded, 'Loaded image: app:a\nLoaded image: app:alias\nLoaded image: app:b\nLoaded image: busybox:1.0\n');
    t.deepEqual(await Promise.all(['app:a', 'app:b', 'busybox:1.0'].map((r) => imageId(e2, r))), ids);
    t.is(await imageId(e2, 'app:alias'), ids[0]!);
    // and skopeo reads each image of the multi-image archive
    const ref = format === 'docker' ? `docker-archive:${out}:app:b` : `oci-archive:${out}:b`;
    const r = await run('skopeo', ['inspect', '--config', ref]);
    t.is(r.code, 0, r.stderr);
    t.is((JSON.parse(r.stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids.length, 2);
  });
}

test('saved by ID it has no name; unknown images fail and leave no file', async (t) => {
  const e = await imageEnv(t);
  await e.ok(['load', '-i', fx.ociTar]);
  const id = await imageId(e, 'busybox:1.0');
  const out = path.join(e.dir, 'byid.tar');
  await e.ok(['save', '-o', out, id.slice(7, 19)]);
  const e2 = await imageEnv(t);
  t.is(await e2.ok(['load', '-i', out]), `Loaded image ID: ${id}\n`);
  const missing = path.join(e.dir, 'missing.tar');
  const r = await e.ufs(['save', '-o', missing, 'busybox:1.0', 'nosuch:tag']);
  t.is(r.code, 1);
  t.is(r.stderr, 'ufs: No such image: nosuch:tag\n');
  t.false(fs.existsSync(missing));
  t.deepEqual(fs.readdirSync(e.dir).filter((n) => n.includes('.ufs-')), []);
  const bad = await e.ufs(['save', '--format', 'zip', '-o', missing, 'busybox:1.0']);
  t.is(bad.stderr, 'ufs: unknown --format "zip": use docker or oci\n');
});

test('save to stdout, load from stdin', async (t) => {
  const e = await imageEnv(t);
  await e.ok(['load', '-i', fx.ociTar]);
  const out = path.join(e.dir, 'piped.tar');
  const r = await run('sh', ['-c', `"${process.execPath}" "${CLI}" --root "${e.root}" save busybox:1.0 > "${out}"`], { env: e.env });
  t.is(r.code, 0, r.stderr);
  const e2 = await imageEnv(t);
  t.is(await e2.ok(['load'], { inputFile: out }), 'Loaded image: busybox:1.0\n');
});

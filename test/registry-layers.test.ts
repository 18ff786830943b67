// A pull of several large layers: each unpacks on a worker thread while it downloads (the
// blob followed as it grows). The files are umoci's, byte for byte; a layer corrupted in the
// registry stops the pull with the digest error and leaves the store as it was, however far
// its unpacking had got.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { imageEnv, makeBusyboxRootfs, must, run, snapshot, tempDir } from './helpers/images.js';
import { skopeoCopy, startRegistry, treeListing } from './helpers/registry.js';

async function threeLayers(t: Parameters<typeof tempDir>[0]): Promise<{ layout: string; rootfs: string }> {
  const dir = await tempDir(t, 'layersrc');
  const base = makeBusyboxRootfs(path.join(dir, 'base'));
  const big = path.join(dir, 'big', 'data');
  fs.mkdirSync(big, { recursive: true });
  for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(big, `b${i}`), crypto.randomBytes(2 << 20));
  const small = path.join(dir, 'small', 'data', 'small');
  fs.mkdirSync(small, { recursive: true });
  for (let i = 0; i < 600; i++) fs.writeFileSync(path.join(small, `s${i}`), crypto.randomBytes(4096));
  const layout = path.join(dir, 'layout');
  await must('umoci', ['init', '--layout', layout]);
  await must('umoci', ['new', '--image', `${layout}:x`]);
  for (const d of [base, path.join(dir, 'big'), path.join(dir, 'small')]) await must('umoci', ['insert', '--image', `${layout}:x`, d, '/']);
  await must('umoci', ['unpack', '--image', `${layout}:x`, path.join(dir, 'bundle')]);
  return { layout, rootfs: path.join(dir, 'bundle', 'rootfs') };
}

test('three large layers pull while they download: the same files as umoci unpacks; a corrupt one rejects all', async (t) => {
  const reg = await startRegistry(t);
  const src = await threeLayers(t);
  await skopeoCopy(`oci:${src.layout}:x`, `docker://${reg.host}/ufs/three:1`);
  const e = await imageEnv(t);
  await e.ok(['pull', '-q', `${reg.host}/ufs/three:1`]);
  const mp = path.join(e.dir, 'mp');
  fs.mkdirSync(mp);
  await e.ok(['mount', `${reg.host}/ufs/three:1`, mp]);
  t.teardown(() => run('fusermount', ['-uz', mp]));
  t.deepEqual(treeListing(mp), treeListing(src.rootfs));
  t.true(fs.readFileSync(path.join(mp, 'data', 'b1')).equals(fs.readFileSync(path.join(src.rootfs, 'data', 'b1'))));
  await e.ok(['umount', mp]);
  t.deepEqual(fs.readdirSync(path.join(e.root, 'tmp')), []);

  // Corrupt the largest blob near its end: its unpacking has run far by the time the digest fails.
  const f = await imageEnv(t);
  await f.ok(['images']);
  const before = snapshot(f.root);
  const blobs = path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  let largest = '';
  for (const p of fs.readdirSync(blobs)) for (const h of fs.readdirSync(path.join(blobs, p))) {
    const file = path.join(blobs, p, h, 'data');
    if (!largest || fs.statSync(file).size > fs.statSync(largest).size) largest = file;
  }
  const bad = fs.readFileSync(largest);
  bad[bad.length - 100]! ^= 0xff;
  fs.writeFileSync(largest, bad);
  const r = await f.ufs(['pull', `${reg.host}/ufs/three:1`]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^ufs: (digest mismatch for layer sha256:[a-f0-9]{64}: the content is sha256:[a-f0-9]{64}|layer sha256:[a-f0-9]{64}: corrupt gzip data)\n$/);
  t.deepEqual(snapshot(f.root), before, 'nothing half-pulled, no tag');
});

// The blob digest of a pulled layer is computed by the thread that unpacks it (not by the
// download). A blob that unpacks to the very same tar but is not the manifest's bytes (here:
// another gzip mtime in its header) must still fail as a digest mismatch, on a worker thread
// (a large layer) as on the main one (a small layer), and leave the store as it was.
test('a layer blob that unpacks fine but is not the manifest\'s bytes fails as a digest mismatch (worker and main thread)', async (t) => {
  const reg = await startRegistry(t);
  const src = await threeLayers(t);
  await skopeoCopy(`oci:${src.layout}:x`, `docker://${reg.host}/ufs/mtime:1`);
  const blobs = path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  const gz: { file: string; size: number }[] = [];
  for (const p of fs.readdirSync(blobs)) for (const h of fs.readdirSync(path.join(blobs, p))) {
    const file = path.join(blobs, p, h, 'data');
    const head = fs.readFileSync(file).subarray(0, 2);
    if (head[0] === 0x1f && head[1] === 0x8b) gz.push({ file, size: fs.statSync(file).size });
  }
  gz.sort((a, b) => a.size - b.size);
  t.is(gz.length, 3);
  t.true(gz[0]!.size < 4 << 20 && gz[2]!.size > 4 << 20, `layer sizes ${gz.map((g) => g.size).join(', ')}`);
  for (const victim of [gz[2]!, gz[0]!]) {
    const original = fs.readFileSync(victim.file);
    const changed = Buffer.from(original);
    changed[4]! ^= 0x5a; // MTIME: not part of what gunzip yields
    t.true(zlib.gunzipSync(changed).equals(zlib.gunzipSync(original)), 'the same tar inside');
    fs.writeFileSync(victim.file, changed);
    const e = await imageEnv(t);
    await e.ok(['images']);
    const before = snapshot(e.root);
    const r = await e.ufs(['pull', `${reg.host}/ufs/mtime:1`]);
    t.is(r.code, 1, r.stdout);
    t.regex(r.stderr, /^ufs: digest mismatch for layer sha256:[a-f0-9]{64}: the content is sha256:[a-f0-9]{64}\n$/);
    t.true(r.stderr.includes(`the content is sha256:${crypto.createHash('sha256').update(changed).digest('hex')}`));
    t.deepEqual(snapshot(e.root), before, 'nothing half-pulled, no tag');
    fs.writeFileSync(victim.file, original);
  }
});

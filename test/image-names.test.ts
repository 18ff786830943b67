// File names are bytes (DESIGN.md "The store"): Latin-1 names in layers made by GNU tar
// (gnu and pax formats) round-trip byte for byte through unpack, the union mount, commit and
// save, and every layer written keeps the diff_id of its bytes.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { copyDirectoryAsLayer } from '../src/image/layer-copy.js';
import { tarDirectory } from '../src/image/tar/pack-dir.js';
import { readTar } from '../src/image/tar/reader.js';
import { unpackEntries } from '../src/image/unpack.js';
import { dockerArchive, makeBusyboxRootfs, must, sha256, tempDir } from './helpers/images.js';
import { makeEnv } from './helpers/runtime.js';

const L1 = (s: string): Buffer => Buffer.from(s, 'latin1'); // a name's bytes, written as Latin-1 text
const join = (...parts: Buffer[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from('/'), p] : [p])));

// A tree with names that are not UTF-8: a file, a directory and a file in it, a symlink to a
// Latin-1 name, a hard link, and a name long enough for GNU long names / pax path records.
function latin1Tree(dir: Buffer): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(join(dir, L1('café')), 'latin-1 e-acute\n');
  fs.writeFileSync(join(dir, Buffer.from('café')), 'utf-8 e-acute, a different name\n');
  fs.mkdirSync(join(dir, L1('dÿr')));
  fs.writeFileSync(join(dir, L1('dÿr'), L1('über')), 'inside\n');
  fs.symlinkSync(L1('café'), join(dir, L1('lïnk')));
  fs.linkSync(join(dir, L1('café')), join(dir, L1('hàrd')));
  fs.writeFileSync(join(dir, L1(`${'é'.repeat(120)}.txt`)), 'long\n');
}

// Every name under `dir` as hex of its bytes (sorted), with symlink targets.
function namesOf(dir: Buffer, rel: Buffer[] = []): string[] {
  const out: string[] = [];
  for (const n of fs.readdirSync(join(dir, ...rel), { encoding: 'buffer' })) {
    const p = [...rel, n];
    const full = join(dir, ...p);
    const st = fs.lstatSync(full);
    const label = join(...p).toString('hex');
    out.push(st.isSymbolicLink() ? `${label} -> ${fs.readlinkSync(full, { encoding: 'buffer' }).toString('hex')}` : label);
    if (st.isDirectory()) out.push(...namesOf(dir, p));
  }
  return out.sort();
}

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

for (const format of ['gnu', 'pax', 'ustar'] as const) {
  test(`a GNU tar --format=${format} layer with Latin-1 names unpacks, re-tars and commits byte for byte`, async (t) => {
    const dir = await tempDir(t, 'names');
    const src = Buffer.from(path.join(dir, 'src'));
    latin1Tree(src);
    if (format === 'ustar') fs.rmSync(join(src, L1(`${'é'.repeat(120)}.txt`))); // no long names in ustar
    const archive = path.join(dir, 'in.tar');
    await must('tar', [`--format=${format}`, '-cf', archive, '-C', src.toString(), '.'], { env: { ...process.env, LC_ALL: 'C' } });

    const dest = Buffer.from(path.join(dir, 'dest'));
    fs.mkdirSync(dest);
    await unpackEntries(readTar(fs.createReadStream(archive)), dest.toString());
    t.deepEqual(namesOf(dest), namesOf(src));
    t.is(fs.readFileSync(join(dest, L1('dÿr'), L1('über')), 'utf8'), 'inside\n');
    t.is(fs.lstatSync(join(dest, L1('hàrd'))).ino, fs.lstatSync(join(dest, L1('café'))).ino, 'the hard link is one');

    // Our tar of it: GNU tar reads back the same names; the same tree gives the same bytes.
    const ours = await collect(tarDirectory(dest.toString()));
    t.true(ours.equals(await collect(tarDirectory(src.toString()))));
    const back = Buffer.from(path.join(dir, 'back'));
    fs.mkdirSync(back);
    await must('tar', ['-xf', '-', '-C', back.toString()], { input: ours, env: { ...process.env, LC_ALL: 'C' } });
    t.deepEqual(namesOf(back), namesOf(src));

    // Commit's copy: the same tree, and the diff_id of the tar it never writes.
    const copy = path.join(dir, 'copy');
    fs.mkdirSync(copy);
    const copied = copyDirectoryAsLayer(dest.toString(), copy);
    t.is(copied.diffId, sha256(ours));
    t.is(copied.tarSize, ours.length);
    t.deepEqual(namesOf(Buffer.from(copy)), namesOf(src));
    t.true((await collect(tarDirectory(copy))).equals(ours));
  });
}

test('pax path records with raw bytes and with UTF-8 are both kept as bytes', async (t) => {
  const dir = await tempDir(t, 'names');
  const { rawTar } = await import('./helpers/images.js');
  const tar = rawTar([
    { name: 'PaxHeader-ignored', pax: { path: L1('raw-é') } as Record<string, Buffer>, content: 'a' },
    { name: 'PaxHeader-ignored2', pax: { path: 'utf8-é' }, content: 'b' },
  ]);
  const dest = path.join(dir, 'dest');
  fs.mkdirSync(dest);
  await unpackEntries(readTar(Readable.from([tar])), dest);
  t.deepEqual(fs.readdirSync(dest, { encoding: 'buffer' }).map((b) => b.toString('hex')).sort(), [L1('raw-é'), Buffer.from('utf8-é')].map((b) => b.toString('hex')).sort());
});

test('load -> run (the union mount) -> commit -> save -> load: Latin-1 names and diff_ids survive', async (t) => {
  const u = await makeEnv(t);
  const scratch = path.join(u.dir, 'scratch');
  // Layer 0: a busybox root; layer 1: Latin-1 names by GNU tar --format=gnu; layer 2: by --format=pax.
  const rootfs = makeBusyboxRootfs(path.join(scratch, 'rootfs'));
  const layers: Buffer[] = [];
  const env = { ...process.env, LC_ALL: 'C' };
  await must('tar', ['--format=pax', '-cf', path.join(scratch, 'base.tar'), '-C', rootfs, '.'], { env });
  layers.push(fs.readFileSync(path.join(scratch, 'base.tar')));
  for (const [i, format] of (['gnu', 'pax'] as const).entries()) {
    const d = Buffer.from(path.join(scratch, `l${i}`));
    latin1Tree(join(d, Buffer.from(`n${i}`)));
    const out = path.join(scratch, `l${i}.tar`);
    await must('tar', [`--format=${format}`, '-cf', out, '-C', d.toString(), '.'], { env });
    layers.push(fs.readFileSync(out));
  }
  const archive = path.join(scratch, 'in.tar');
  fs.writeFileSync(archive, dockerArchive([{ layers, tags: ['names:loaded'] }]));
  await u.ok(['load', '-i', archive]);

  // Through the mount: the names as bytes (hex from the container's od), and a file by its bytes.
  const hex = async (cmd: string) => (await u.ok(['run', '--rm', 'names:loaded', 'sh', '-c', `${cmd} | /bin/busybox od -An -tx1 -v`])).replace(/\s+/g, '');
  const listing = (names: string[]) => Buffer.concat(names.map((n) => Buffer.concat([L1(n), Buffer.from('\n')]))).toString('hex');
  const top0 = ['café', 'café', 'dÿr', 'hàrd', 'lïnk', `${'é'.repeat(120)}.txt`].map((n, i) => (i === 1 ? Buffer.from(n).toString('latin1') : n));
  top0.sort((a, b) => Buffer.compare(L1(a), L1(b)));
  for (const d of ['/n0', '/n1']) t.is(await hex(`cd ${d} && for f in *; do echo "$f"; done`), listing(top0), d);
  t.is(await u.ok(['run', '--rm', 'names:loaded', 'sh', '-c', 'cat "/n1/$(printf "l\\357nk")" "/n1/$(printf "d\\377r")/$(printf "\\374ber")"']), 'latin-1 e-acute\ninside\n');
  // The container changes Latin-1 names: a new one, a removed one (a whiteout of bytes), one appended to.
  await u.ok(['run', '--name', 'c1', 'names:loaded', 'sh', '-c', [
    'printf new > "/n0/$(printf "n\\351w")"',
    '/bin/busybox rm "/n1/$(printf "caf\\351")"',
    'echo more >> "/n0/$(printf "d\\377r")/$(printf "\\374ber")"',
    'cat "/n0/$(printf "caf\\351")" > /n0/copied',
  ].join(' && ')]);
  await u.ok(['commit', 'c1', 'names:committed']);

  const saved = path.join(scratch, 'saved.tar');
  await u.ok(['save', '-o', saved, 'names:committed']);
  const x = path.join(scratch, 'x');
  fs.mkdirSync(x);
  await must('tar', ['-xf', saved, '-C', x]);
  const manifest = JSON.parse(fs.readFileSync(path.join(x, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
  const config = JSON.parse(fs.readFileSync(path.join(x, manifest[0]!.Config), 'utf8')) as { rootfs: { diff_ids: string[] } };
  const tars = manifest[0]!.Layers.map((l) => fs.readFileSync(path.join(x, l)));
  t.is(tars.length, 4);
  t.deepEqual(tars.map(sha256), config.rootfs.diff_ids, 'every saved layer has its diff_id');
  for (let i = 0; i < 3; i++) t.true(tars[i]!.equals(layers[i]!), `loaded layer ${i} saved byte for byte`);

  // The committed layer, extracted by GNU tar: the names the container made, as bytes.
  const top = Buffer.from(path.join(scratch, 'top'));
  fs.mkdirSync(top);
  await must('tar', ['-xf', '-', '-C', top.toString()], { input: tars[3]!, env });
  const names = namesOf(top).map((h) => Buffer.from(h.split(' ')[0]!, 'hex').toString('latin1'));
  for (const want of ['n0/néw', 'n0/copied', 'n0/dÿr/über', 'n1/.wh.café']) t.true(names.includes(want), `${want} in ${names.join(', ')}`);
  t.is(fs.readFileSync(join(top, L1('n0'), L1('copied')), 'utf8'), 'latin-1 e-acute\n');
  t.is(fs.readFileSync(join(top, L1('n0'), L1('dÿr'), L1('über')), 'utf8'), 'inside\nmore\n');

  // Loaded into a fresh store, the saved image is the same image (its diff_ids check out).
  const v = await makeEnv(t);
  await v.ok(['load', '-i', saved]);
  const id = (s: typeof u) => s.ok(['inspect', '-f', '{{.Id}}', 'names:committed']);
  t.is(await id(v), await id(u));
  t.is(await v.ok(['run', '--rm', 'names:committed', 'sh', '-c', 'cat "/n0/$(printf "n\\351w")"; test -e "/n1/$(printf "caf\\351")" || echo gone']), 'newgone\n');
  t.is(crypto.createHash('sha256').update(tars[3]!).digest('hex'), config.rootfs.diff_ids[3]!.slice(7));
});

// Layer tars into layer directories: what is kept (modes, owners, ns mtimes, xattrs, links,
// devices, whiteouts), what is refused (escapes by '..', absolute names, symlinks, hard links,
// unknown types) and that the writer is deterministic. In-process, no FUSE.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { tarDirectory } from '../src/image/tar/pack-dir.js';
import { readTar } from '../src/image/tar/reader.js';
import { unpackEntries } from '../src/image/unpack.js';
import { must, rawTar, run, tempDir } from './helpers/images.js';

async function unpackBuf(tar: Buffer, dest: string) {
  fs.mkdirSync(dest, { recursive: true });
  return unpackEntries(readTar(Readable.from([tar])), dest);
}

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function xattr(file: string, name: string): Promise<string> {
  const r = await run('getfattr', ['-h', '-e', 'hex', '-n', name, file]);
  const line = r.stdout.split('\n').find((l) => l.startsWith(`${name}=`));
  return line ? line.slice(name.length + 1) : `(none: ${r.stderr.trim()})`;
}

test('keeps types, modes, owners, ns mtimes, xattrs, whiteouts', async (t) => {
  const dir = await tempDir(t, 'unpack');
  const dest = path.join(dir, 'layer');
  const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xff, 0x00]); // binary, not UTF-8
  const tar = rawTar([
    { name: './', type: '5', mode: 0o755 },
    { name: './etc/', type: '5', mode: 0o750, uid: 12, gid: 34, mtime: 1_500_000_000 },
    { name: './etc/conf', content: 'hello\n', mode: 0o4711, uid: 1000, gid: 1001, pax: { mtime: '1600000000.123456789' } },
    { name: 'etc/link', type: '2', linkname: '/etc/conf' },
    { name: 'etc/hard', type: '1', linkname: './etc/conf' },
    { name: 'dev/', type: '5' },
    { name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/loop9', type: '4', devmajor: 7, devminor: 9, mode: 0o660 },
    { name: 'run/fifo', type: '6', mode: 0o600 },
    { name: 'data/x', content: 'x', pax: { 'SCHILY.xattr.user.test': cap } },
    { name: 'data/.wh.gone', content: '' },
    { name: 'opaque/.wh..wh..opq', content: '' },
  ]);
  const stats = await unpackBuf(tar, dest);
  t.is(stats.size, 7);
  const conf = fs.lstatSync(path.join(dest, 'etc/conf'), { bigint: true });
  t.is(Number(conf.mode & 0o7777n), 0o4711);
  t.is(Number(conf.uid), 1000);
  t.is(Number(conf.gid), 1001);
  t.is(conf.mtimeNs, 1_600_000_000_123_456_789n);
  const etc = fs.lstatSync(path.join(dest, 'etc'));
  t.is(etc.mode & 0o7777, 0o750);
  t.is(etc.uid, 12);
  t.is(Math.floor(etc.mtimeMs / 1000), 1_500_000_000, 'directory mtime set after its contents');
  t.is(fs.readlinkSync(path.join(dest, 'etc/link')), '/etc/conf');
  t.is(BigInt(fs.lstatSync(path.join(dest, 'etc/hard')).ino), conf.ino);
  const nul = fs.lstatSync(path.join(dest, 'dev/null'));
  t.true(nul.isCharacterDevice());
  t.is(nul.rdev, 0x103);
  t.true(fs.lstatSync(path.join(dest, 'dev/loop9')).isBlockDevice());
  t.true(fs.lstatSync(path.join(dest, 'run/fifo')).isFIFO());
  t.is(await xattr(path.join(dest, 'data/x'), 'user.test'), `0x${cap.toString('hex')}`);
  t.true(fs.lstatSync(path.join(dest, 'data/.wh.gone')).isFile(), 'whiteouts stay plain files');
  t.true(fs.lstatSync(path.join(dest, 'opaque/.wh..wh..opq')).isFile());
});

test('reads GNU long names, pax long names and umoci-style archives without end blocks', async (t) => {
  const dir = await tempDir(t, 'unpack');
  const src = path.join(dir, 'src');
  const long = `${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(120)}`;
  fs.mkdirSync(path.join(src, path.dirname(long)), { recursive: true });
  fs.writeFileSync(path.join(src, long), 'deep');
  fs.symlinkSync('t'.repeat(150), path.join(src, 'longlink'));
  const gnu = path.join(dir, 'gnu.tar');
  await must('tar', ['--format=gnu', '-C', src, '-cf', gnu, '.']);
  await unpackBuf(fs.readFileSync(gnu), path.join(dir, 'a'));
  t.is(fs.readFileSync(path.join(dir, 'a', long), 'utf8'), 'deep');
  t.is(fs.readlinkSync(path.join(dir, 'a', 'longlink')), 't'.repeat(150));
  const pax = path.join(dir, 'pax.tar');
  await must('tar', ['--format=pax', '-C', src, '-cf', pax, '.']);
  await unpackBuf(fs.readFileSync(pax), path.join(dir, 'b'));
  t.is(fs.readFileSync(path.join(dir, 'b', long), 'utf8'), 'deep');
  // the last body unpadded and no end-of-archive blocks, as umoci 0.4 writes layers
  const full = rawTar([{ name: '/', type: '5' }, { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' }]);
  const cut = full.subarray(0, 512 * 2 + 26);
  await unpackBuf(cut, path.join(dir, 'c'));
  t.is(fs.readFileSync(path.join(dir, 'c', 'etc/passwd'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n');
});

const hostile: [string, Parameters<typeof rawTar>[0], RegExp][] = [
  ['dot-dot', [{ name: '../evil', content: 'x' }], /entry "\.\.\/evil": path escapes the layer/],
  ['dot-dot inside', [{ name: 'a/b/../../../evil', content: 'x' }], /entry "a\/b\/\.\.\/\.\.\/\.\.\/evil": path escapes/],
  ['absolute', [{ name: '/etc/evil', content: 'x' }], /entry "\/etc\/evil": absolute path/],
  ['through symlink', [{ name: 'lnk', type: '2', linkname: 'OUTSIDE' }, { name: 'lnk/evil', content: 'x' }], /entry "lnk\/evil": path passes through the symlink lnk/],
  ['through relative symlink', [{ name: 'up', type: '2', linkname: '..' }, { name: 'up/evil', content: 'x' }], /entry "up\/evil": path passes through the symlink up/],
  ['symlink replacing a dir', [{ name: 'd/', type: '5' }, { name: 'd', type: '2', linkname: 'OUTSIDE' }, { name: 'd/evil', content: 'x' }], /entry "d\/evil": path passes through the symlink d/],
  ['hard link out', [{ name: 'hl', type: '1', linkname: '../outside-file' }], /entry "hl": hard link target "\.\.\/outside-file": path escapes the layer/],
  ['hard link absolute', [{ name: 'hl', type: '1', linkname: '/etc/passwd' }], /entry "hl": hard link target "\/etc\/passwd": absolute path/],
  ['hard link missing', [{ name: 'hl', type: '1', linkname: 'nothere' }], /entry "hl": hard link target "nothere" is not in this layer/],
  ['hard link via symlink', [{ name: 'lnk', type: '2', linkname: 'OUTSIDE' }, { name: 'hl', type: '1', linkname: 'lnk/secret' }], /entry "hl": hard link target "lnk\/secret" is not in this layer/],
  ['unknown type', [{ name: 'weird', type: 'Z', content: '' }], /entry "weird": unknown entry type 'Z'/],
  ['sparse', [{ name: 'sparse', type: 'S', content: '' }], /entry "sparse": unknown entry type 'S'/],
];

for (const [title, entries, message] of hostile) {
  test(`refuses ${title}, naming the entry, writing nothing outside`, async (t) => {
    const dir = await tempDir(t, 'hostile');
    const outside = path.join(dir, 'OUTSIDE');
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(dir, 'outside-file'), 'secret');
    fs.writeFileSync(path.join(outside, 'secret'), 'secret');
    // resolve symlink targets named OUTSIDE to the real outside dir
    const fixed = entries.map((e) => (e.linkname === 'OUTSIDE' ? { ...e, linkname: outside } : e));
    const dest = path.join(dir, 'layer');
    const err = await t.throwsAsync(unpackBuf(rawTar(fixed), dest));
    t.regex(err!.message, message);
    t.false(err!.message.includes('\n'));
    t.deepEqual(fs.readdirSync(outside), ['secret']);
    t.false(fs.existsSync(path.join(dir, 'evil')));
    t.false(fs.existsSync('/etc/evil'));
    t.is(fs.readFileSync(path.join(dir, 'outside-file'), 'utf8'), 'secret');
  });
}

test('a directory tar is deterministic and unpacks back to the same tar', async (t) => {
  const dir = await tempDir(t, 'det');
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'b/c'), { recursive: true });
  fs.writeFileSync(path.join(src, 'b/c/f'), crypto.randomBytes(3000));
  fs.writeFileSync(path.join(src, 'a'), 'a');
  fs.linkSync(path.join(src, 'a'), path.join(src, 'z-hard'));
  fs.symlinkSync('a', path.join(src, 'sym'));
  fs.writeFileSync(path.join(src, 'ünïcødé-ñame'), 'u');
  const long = path.join(src, 'l'.repeat(120), 'm'.repeat(150));
  fs.mkdirSync(path.dirname(long));
  fs.writeFileSync(long, 'long');
  fs.writeFileSync(path.join(src, '.wh.gone'), '');
  fs.writeFileSync(path.join(src, '.wh..wh..ufs.tmp123'), 'union temp: skipped');
  await must('setfattr', ['-n', 'user.k', '-v', 'v', path.join(src, 'a')]);
  fs.utimesSync(path.join(src, 'a'), 1_600_000_000.5, 1_600_000_000.5);
  const one = await collect(tarDirectory(src));
  const two = await collect(tarDirectory(src));
  t.true(one.equals(two), 'same tree, same bytes');
  const dest = path.join(dir, 'dest');
  await unpackBuf(one, dest);
  t.false(fs.existsSync(path.join(dest, '.wh..wh..ufs.tmp123')));
  t.true(fs.existsSync(path.join(dest, '.wh.gone')));
  t.is(fs.readFileSync(path.join(dest, 'ünïcødé-ñame'), 'utf8'), 'u');
  t.is(fs.readFileSync(path.join(dest, 'l'.repeat(120), 'm'.repeat(150)), 'utf8'), 'long');
  t.is(fs.lstatSync(path.join(dest, 'a')).ino, fs.lstatSync(path.join(dest, 'z-hard')).ino);
  t.is(Math.floor(fs.lstatSync(path.join(dest, 'a')).mtimeMs), 1_600_000_000_000, 'mtime truncated to seconds');
  // the tar of the unpacked copy is byte-identical: the layer dir is exactly the tar
  fs.rmSync(path.join(src, '.wh..wh..ufs.tmp123'));
  const three = await collect(tarDirectory(dest));
  t.true(three.equals(one));
});

test("the union's and overlayfs's private xattrs from an image never land on the store's files", async (t) => {
  const dir = await tempDir(t, 'unpack');
  const dest = path.join(dir, 'layer');
  const v = Buffer.from('y');
  const tar = rawTar([
    {
      name: 'f',
      content: 'x',
      pax: {
        'SCHILY.xattr.trusted.overlay.opaque': v,
        'SCHILY.xattr.trusted.overlay.redirect': Buffer.from('/etc'),
        'SCHILY.xattr.user.overlay.opaque': v,
        'SCHILY.xattr.trusted.ufs.origin': Buffer.from('1'),
        'SCHILY.xattr.user.kept': v,
      },
    },
  ]);
  await unpackBuf(tar, dest);
  const r = await run('getfattr', ['-h', '-d', '-m', '-', path.join(dest, 'f')]);
  const names = r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => l.split('=')[0]);
  t.deepEqual(names, ['user.kept']);
});

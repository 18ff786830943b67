// Our tar reader and writer: binary xattr values (a file capability is bytes,
// not UTF-8) go through pack-dir -> unpack unchanged and GNU tar reads them from our tar;
// layers we write carry whole-second mtimes (as Docker's), and nanosecond mtimes that an
// archive carries in PAX records are kept on unpack.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { tarDirectory } from '../src/image/tar/pack-dir.js';
import { encodeHeader, packTar } from '../src/image/tar/writer.js';
import { readTar } from '../src/image/tar/reader.js';
import { unpackEntries } from '../src/image/unpack.js';
import { must, run, tempDir } from './helpers/images.js';

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function xattrHex(file: string, name: string): Promise<string> {
  const r = await run('getfattr', ['-h', '-e', 'hex', '-n', name, file]);
  const line = r.stdout.split('\n').find((l) => l.startsWith(`${name}=`));
  return line ? line.slice(name.length + 1) : `(none: ${r.stderr.trim()})`;
}

const mtimeNs = (file: string): bigint => fs.lstatSync(file, { bigint: true }).mtimeNs;

test('a binary security.capability xattr survives pack-dir -> unpack byte for byte; mtimes in whole seconds', async (t) => {
  const dir = await tempDir(t, 'tar');
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'bin'), { recursive: true });
  const tool = path.join(src, 'bin', 'tool');
  fs.writeFileSync(tool, 'not really a program\n', { mode: 0o755 });
  fs.symlinkSync('tool', path.join(src, 'bin', 'link'));
  // VFS_CAP_REVISION_2 | effective; cap_net_bind_service, cap_net_raw, cap_setfcap; cap_bpf:
  // zero bytes, bytes over 0x7f, not valid UTF-8.
  const cap = '0x0100000200240080000000008000000000000000';
  await must('setfattr', ['-n', 'security.capability', '-v', cap, tool]);
  await must('setfattr', ['-n', 'user.raw', '-v', '0x00ff3d0a80c3', tool]); // NUL, 0xff, '=', '\n'
  t.is(await xattrHex(tool, 'security.capability'), cap, 'the kernel took the capability');
  await must('touch', ['-h', '-d', '@1600000000.123456789', tool]);
  await must('touch', ['-h', '-d', '@1700000000.999999999', path.join(src, 'bin', 'link')]);
  await must('touch', ['-h', '-d', '@1500000000.000000001', path.join(src, 'bin')]);

  const tar = await collect(tarDirectory(src));
  const dest = path.join(dir, 'dest');
  fs.mkdirSync(dest);
  await unpackEntries(readTar(Readable.from([tar])), dest);
  t.is(await xattrHex(path.join(dest, 'bin', 'tool'), 'security.capability'), cap);
  t.is(await xattrHex(path.join(dest, 'bin', 'tool'), 'user.raw'), '0x00ff3d0a80c3');
  t.is(mtimeNs(path.join(dest, 'bin', 'tool')), 1_600_000_000_000_000_000n);
  t.is(mtimeNs(path.join(dest, 'bin', 'link')), 1_700_000_000_000_000_000n);
  t.is(mtimeNs(path.join(dest, 'bin')), 1_500_000_000_000_000_000n);
  t.true((await collect(tarDirectory(dest))).equals(tar), 'the unpacked copy packs to the same bytes');

  // standard records: GNU tar restores the same capability from our tar
  const gnu = path.join(dir, 'gnu');
  fs.mkdirSync(gnu);
  await must('tar', ['--xattrs', '--xattrs-include=*', '-xpf', '-', '-C', gnu], { input: tar });
  t.is(await xattrHex(path.join(gnu, 'bin', 'tool'), 'security.capability'), cap);
  t.is(mtimeNs(path.join(gnu, 'bin', 'tool')), 1_600_000_000_000_000_000n);

  // a POSIX tar from GNU tar carries nanoseconds in PAX records: unpack keeps them
  const posix = execFileSync('tar', ['--format=posix', '-cf', '-', '-C', src, 'bin']);
  const fromPosix = path.join(dir, 'posix');
  fs.mkdirSync(fromPosix);
  await unpackEntries(readTar(Readable.from([posix])), fromPosix);
  t.is(mtimeNs(path.join(fromPosix, 'bin', 'tool')), 1_600_000_000_123_456_789n);
  t.is(mtimeNs(path.join(fromPosix, 'bin')), 1_500_000_000_000_000_001n);
});

// The writer is our own; the layers committed before it were written by tar-stream's pack()
// (with the patch in native/patches). The same headers must give the same bytes, or the same
// tree would get a new diff_id. The mapping below is the one the old writer used.
test("the tar writer gives tar-stream pack()'s bytes for every kind of header", async (t) => {
  const { pack } = await import('tar-stream');
  const S_IF: Record<string, number> = { file: 0o100000, link: 0o100000, symlink: 0o120000, char: 0o20000, block: 0o60000, dir: 0o40000, fifo: 0o10000 };
  const TYPES: Record<string, string> = { file: 'file', link: 'link', symlink: 'symlink', char: 'character-device', block: 'block-device', dir: 'directory', fifo: 'fifo' };
  const reference = async (h: WriteHeaderLike, body?: Buffer): Promise<Buffer> => {
    const ns = h.mtimeNs ?? BigInt(h.mtimeSec) * 1_000_000_000n;
    const sec = Number(ns / 1_000_000_000n) - (ns % 1_000_000_000n < 0n ? 1 : 0);
    const pax: Record<string, string | Buffer> = {};
    if (h.uid > 0o777777) pax.uid = String(h.uid);
    if (h.gid > 0o777777) pax.gid = String(h.gid);
    if (ns % 1_000_000_000n !== 0n || sec < 0 || sec > 0x7fffffff) {
      const abs = ns < 0n ? -ns : ns;
      const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
      pax.mtime = `${ns < 0n ? '-' : ''}${abs / 1_000_000_000n}${frac ? `.${frac}` : ''}`;
    }
    for (const [k, v] of h.xattrs ?? []) pax[`SCHILY.xattr.${k}`] = v;
    const p = pack();
    const text = (b: string) => Buffer.from(b, 'latin1').toString('utf8'); // tar-stream takes names as text
    const header = {
      name: text(h.type === 'dir' ? `${h.name}/` : h.name),
      type: TYPES[h.type] as never,
      mode: S_IF[h.type]! | (h.mode & 0o7777),
      uid: Math.min(h.uid, 0o777777),
      gid: Math.min(h.gid, 0o777777),
      size: h.type === 'file' ? (h.size ?? 0) : 0,
      mtime: new Date(Math.max(0, Math.min(sec, 0x7fffffff)) * 1000),
      linkname: text(h.linkname ?? ''),
      uname: '',
      gname: '',
      devmajor: h.devmajor ?? 0,
      devminor: h.devminor ?? 0,
      ...(Object.keys(pax).length ? { pax } : {}),
    };
    if (body) p.entry(header, body);
    else p.entry(header);
    p.finalize();
    const parts: Buffer[] = [];
    for await (const c of p) parts.push(c as Buffer);
    return Buffer.concat(parts);
  };
  type WriteHeaderLike = Parameters<typeof encodeHeader>[0];
  const base = { mode: 0o644, uid: 0, gid: 0, mtimeSec: 1_600_000_000 };
  const cases: WriteHeaderLike[] = [
    { ...base, name: 'etc', type: 'dir', mode: 0o755 },
    { ...base, name: 'etc/passwd', type: 'file', size: 5 },
    { ...base, name: 'usr/lib/caf\u00c3\u00a9', type: 'file', size: 5 }, // a UTF-8 name, as a byte string
    { ...base, name: `${'a'.repeat(99)}/${'b'.repeat(99)}`, type: 'file', size: 5 }, // ustar prefix split
    { ...base, name: `${'a'.repeat(160)}/${'b'.repeat(120)}`, type: 'file', size: 5 }, // pax path
    { ...base, name: 'l', type: 'symlink', linkname: 't'.repeat(150) },
    { ...base, name: 'l2', type: 'symlink', linkname: '../caf\u00c3\u00a9' },
    { ...base, name: 'h', type: 'link', linkname: 'etc/passwd' },
    { ...base, name: 'big', type: 'file', size: 5, uid: 300_000, gid: 400_000 },
    { ...base, name: 'frac', type: 'file', size: 5, mtimeNs: 1_600_000_000_250_000_000n },
    { ...base, name: 'old', type: 'file', size: 5, mtimeSec: -5 },
    { ...base, name: 'x', type: 'file', size: 5, xattrs: [['security.capability', Buffer.from('0100000200240080', 'hex')], ['user.k', Buffer.from([0, 0xff, 0x0a])]] },
    { ...base, name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
    { ...base, name: 'dev/sda', type: 'block', mode: 0o660, devmajor: 8, devminor: 0 },
    { ...base, name: 'p', type: 'fifo', mode: 0o4755 },
    { ...base, name: 'zero', type: 'file', size: 0, mode: 0 },
  ];
  for (const h of cases) {
    const body = h.type === 'file' ? Buffer.alloc(h.size ?? 0, 0x61) : undefined;
    const ours: Buffer[] = [];
    for await (const c of packTar([{ header: h, ...(body ? { body: [body] } : {}) }])) ours.push(c);
    t.true(Buffer.concat(ours).equals(await reference(h, body)), h.name);
    t.true(encodeHeader(h).equals(Buffer.concat(ours).subarray(0, encodeHeader(h).length)));
  }
});

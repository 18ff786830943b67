// The tar-stream adapters with our patch: binary xattr values (a file capability is bytes,
// not UTF-8) go through pack-dir -> unpack unchanged and GNU tar reads them from our tar;
// layers we write carry whole-second mtimes (as Docker's), and nanosecond mtimes that an
// archive carries in PAX records are kept on unpack.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { tarDirectory } from '../src/image/tar/pack-dir.js';
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

// Copy-up: data and every piece of metadata, parents, stable inode numbers, crash safety.
import test, { type ExecutionContext } from 'ava';
import fs, { promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { TEMP_PREFIX, UnionFs, settleCopies } from '../src/unionfs/index.js';
import { C, ROOT, exists, mkdirIn, names, put, read, stack, sys, tempDir, write, xattrs } from './helpers/unionfs.js';

const T1 = 1_600_000_000_123_456_789n; // ns since the epoch, odd digits to catch rounding
const T2 = 1_500_000_000_987_654_321n;

function setTimes(file: string, atime: bigint, mtime: bigint): void {
  sys.utimensat(file, Number(atime / 1_000_000_000n), Number(atime % 1_000_000_000n), Number(mtime / 1_000_000_000n), Number(mtime % 1_000_000_000n));
}

test('open for write copies the file up; the lower stays untouched', async (t) => {
  const { u, lowers, upper } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'd/f', 'hello world')) });
  const before = await u.getattr('/d/f');
  await write(u, '/d/f', 'J', 0, C.O_RDWR);
  t.is(await read(u, '/d/f'), 'Jello world');
  t.is(await fsp.readFile(path.join(lowers[0]!, 'd/f'), 'utf8'), 'hello world');
  t.is(await fsp.readFile(path.join(upper, 'd/f'), 'utf8'), 'Jello world');
  const after = await u.getattr('/d/f');
  t.is(after.ino, before.ino, 'same inode number after copy-up');
  t.deepEqual(await names(u, '/d'), ['f']);
  t.deepEqual(Object.keys(xattrs(path.join(upper, 'd/f'))), ['trusted.ufs.origin'], 'origin recorded');
  t.deepEqual(await u.listxattr('/d/f'), [], 'private xattrs are never listed');
  await t.throwsAsync(u.getxattr('/d/f', 'trusted.ufs.origin'), { code: 'ENODATA' });
  await t.throwsAsync(u.setxattr('/d/f', 'trusted.ufs.origin', Buffer.from('1'), 0), { code: 'EPERM' });
  await t.throwsAsync(u.removexattr('/d/f', 'trusted.ufs.origin'), { code: 'ENODATA' });
});

test('read-only opens use the lower file; O_TRUNC copies up without the data', async (t) => {
  const { u, upper } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'f', 'old contents')) });
  const fh = await u.open('/f', C.O_RDONLY);
  await u.release(fh);
  t.false(await exists(path.join(upper, 'f')));
  const w = await u.open('/f', C.O_WRONLY | C.O_TRUNC);
  fs.writeSync(w, 'new', 0);
  await u.release(w);
  t.is(await read(u, '/f'), 'new');
});

test('copy-up keeps mode, owner, nanosecond times and xattrs (binary too)', async (t) => {
  const binary = Buffer.from([0, 1, 2, 255, 0, 10]);
  const { u, lowers, upper } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      const f = await put(l0!, 'bin/tool', '#!/bin/sh\n');
      await fsp.chown(f, 1001, 1002);
      await fsp.chmod(f, 0o4755);
      sys.lsetxattr(f, 'user.text', Buffer.from('hello'), 0);
      sys.lsetxattr(f, 'user.bin', binary, 0);
      sys.lsetxattr(f, 'trusted.other', Buffer.from('t'), 0);
      sys.lsetxattr(f, 'security.capability', Buffer.from('0000000201000000000000000000000000000000', 'hex'), 0);
      setTimes(f, T1, T2);
    },
  });
  const before = await u.getattr('/bin/tool');
  await u.utimens('/bin/tool', 'omit', 'omit'); // no change, no copy-up
  t.false(await exists(path.join(upper, 'bin/tool')));
  await u.utimens('/bin/tool', T1, 'omit'); // copies up, changes nothing visible
  t.true(await exists(path.join(upper, 'bin/tool')));
  const after = await u.getattr('/bin/tool');
  t.is(after.mode, before.mode);
  t.is(after.mode & 0o7777, 0o4755, 'setuid kept (chmod after chown)');
  t.is(after.uid, 1001);
  t.is(after.gid, 1002);
  t.is(after.atimeNs, T1);
  t.is(after.mtimeNs, T2);
  t.is(after.size, before.size);
  const up = path.join(upper, 'bin/tool');
  const lowerX = xattrs(path.join(lowers[0]!, 'bin/tool'));
  const upperX = xattrs(up);
  delete upperX['trusted.ufs.origin'];
  t.deepEqual(upperX, lowerX);
  t.deepEqual((await u.getxattr('/bin/tool', 'user.bin')).toString('hex'), binary.toString('hex'));
  t.deepEqual((await u.listxattr('/bin/tool')).sort(), Object.keys(lowerX).sort());
});

test('metadata-only changes copy up too, keeping the rest', async (t) => {
  const { u, upper } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      for (const n of ['a', 'b', 'c', 'd', 'e']) {
        const f = await put(l0!, n, `content ${n}`);
        await fsp.chown(f, 7, 8);
        await fsp.chmod(f, 0o640);
        setTimes(f, T1, T2);
      }
    },
  });
  await u.chmod('/a', 0o600);
  let a = await u.getattr('/a');
  t.deepEqual([a.mode & 0o7777, a.uid, a.gid, a.mtimeNs], [0o600, 7, 8, T2]);
  await u.chown('/b', -1, 99);
  a = await u.getattr('/b');
  t.deepEqual([a.mode & 0o7777, a.uid, a.gid, a.mtimeNs], [0o640, 7, 99, T2]);
  await u.chown('/b', 42, -1);
  t.deepEqual([(await u.getattr('/b')).uid, (await u.getattr('/b')).gid], [42, 99]);
  await u.utimens('/c', 'omit', T1);
  a = await u.getattr('/c');
  t.deepEqual([a.atimeNs, a.mtimeNs, a.uid], [T1, T1, 7]);
  await u.truncate('/d', 3);
  t.is(await read(u, '/d'), 'con');
  await u.setxattr('/e', 'user.k', Buffer.from('v'), 0);
  t.is((await u.getxattr('/e', 'user.k')).toString(), 'v');
  t.is(await read(u, '/e'), 'content e');
  for (const n of ['a', 'b', 'c', 'd', 'e']) t.true(await exists(path.join(upper, n)), n);
  // Failing calls decide before copying anything.
  const { u: u2, upper: upper2 } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'f', 'x')) });
  await t.throwsAsync(u2.removexattr('/f', 'user.none'), { code: 'ENODATA' });
  await t.throwsAsync(u2.setxattr('/f', 'user.none', Buffer.from('1'), 2 /* XATTR_REPLACE */), { code: 'ENODATA' });
  await t.throwsAsync(u2.getxattr('/f', 'user.none'), { code: 'ENODATA' });
  await t.throwsAsync(u2.truncate('/', 0), { code: 'EISDIR' });
  await t.throwsAsync(u2.open('/', C.O_WRONLY), { code: 'EISDIR' });
  t.false(await exists(path.join(upper2, 'f')));
});

test('parents are created in upper with the lower metadata, and their times are kept', async (t) => {
  const { u, upper } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'a/b/c/f', 'x');
      for (const [d, mode, owner] of [['a', 0o751, 11], ['a/b', 0o2770, 12], ['a/b/c', 0o700, 13]] as const) {
        const dir = path.join(l0!, d);
        await fsp.chown(dir, owner, owner + 100);
        await fsp.chmod(dir, mode);
        sys.lsetxattr(dir, 'user.dir', Buffer.from(d), 0);
      }
      for (const d of ['a/b/c', 'a/b', 'a']) setTimes(path.join(l0!, d), T1, T2);
    },
  });
  const before = await Promise.all(['/', '/a', '/a/b', '/a/b/c'].map((p) => u.getattr(p)));
  await u.chmod('/a/b/c/f', 0o600);
  const after = await Promise.all(['/', '/a', '/a/b', '/a/b/c'].map((p) => u.getattr(p)));
  for (let i = 0; i < before.length; i++) {
    const [b, a] = [before[i]!, after[i]!];
    t.deepEqual([a.ino, a.mode, a.uid, a.gid, a.mtimeNs], [b.ino, b.mode, b.uid, b.gid, b.mtimeNs], `dir ${i}`);
  }
  const st = await fsp.lstat(path.join(upper, 'a/b'));
  t.is(st.mode & 0o7777, 0o2770);
  t.is(st.uid, 12);
  t.is(sys.lgetxattr(path.join(upper, 'a/b'), 'user.dir').toString(), 'a/b');
  t.is((await u.getxattr('/a/b/c', 'user.dir')).toString(), 'a/b/c');
});

test('symlinks, fifos and devices copy up as what they are', async (t) => {
  const { u, upper } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await mkdirIn(l0!, 'dev');
      await fsp.symlink('../target/that/does/not/exist', path.join(l0!, 'dev/link'));
      await fsp.lchown(path.join(l0!, 'dev/link'), 5, 6);
      setTimes(path.join(l0!, 'dev/link'), T1, T2);
      sys.mknod(path.join(l0!, 'dev/fifo'), C.S_IFIFO | 0o620, 0);
      sys.mknod(path.join(l0!, 'dev/null'), C.S_IFCHR | 0o666, (1 << 8) | 3);
      await fsp.chmod(path.join(l0!, 'dev/null'), 0o666);
      await fsp.chown(path.join(l0!, 'dev/fifo'), 3, 4);
    },
  });
  await u.chown('/dev/link', 50, -1); // lchown: the link itself
  let a = await u.getattr('/dev/link');
  t.deepEqual([a.mode & C.S_IFMT, a.uid, a.gid, a.atimeNs, a.mtimeNs], [C.S_IFLNK, 50, 6, T1, T2]);
  t.is(await u.readlink('/dev/link'), '../target/that/does/not/exist');
  await u.utimens('/dev/link', T2, T1); // on the link itself, never its target
  a = await u.getattr('/dev/link');
  t.deepEqual([a.atimeNs, a.mtimeNs], [T2, T1]);
  await t.throwsAsync(u.chmod('/dev/link', 0o600), { code: 'EOPNOTSUPP' });

  await u.chmod('/dev/fifo', 0o600);
  a = await u.getattr('/dev/fifo');
  t.deepEqual([a.mode, a.uid, a.gid], [C.S_IFIFO | 0o600, 3, 4]);
  await u.utimens('/dev/null', T1, T1);
  a = await u.getattr('/dev/null');
  t.deepEqual([a.mode, a.rdev, a.mtimeNs], [C.S_IFCHR | 0o666, (1 << 8) | 3, T1]);
  t.true((await fsp.lstat(path.join(upper, 'dev/null'))).isCharacterDevice());
});

test('inode numbers are stable across copy-up, for files, dirs and through file handles', async (t) => {
  const { u } = await stack(t, {
    lowers: 2,
    setup: async ({ lowers: [l0, l1] }) => {
      await put(l1!, 'd/deep/f', 'x');
      await put(l0!, 'd/g', 'y');
    },
  });
  const paths = ['/', '/d', '/d/deep', '/d/deep/f', '/d/g'];
  const before = await Promise.all(paths.map(async (p) => (await u.getattr(p)).ino));
  const fromDir = (await u.readdir('/d/deep')).find((e) => e.name === 'f')!.ino;
  const fh = await u.open('/d/deep/f', C.O_RDWR);
  t.is((await u.fgetattr(fh, '/d/deep/f')).ino, before[3]);
  t.is((await u.fgetattr(fh, null)).ino, before[3]);
  await u.release(fh);
  await u.chmod('/d/g', 0o600);
  const after = await Promise.all(paths.map(async (p) => (await u.getattr(p)).ino));
  t.deepEqual(after, before);
  t.is((await u.readdir('/d/deep')).find((e) => e.name === 'f')!.ino, fromDir);
  t.is(new Set(after).size, after.length);
  // A fresh object gets a number of its own that differs from all of them.
  await u.mkdir('/d/new', 0o755, ROOT);
  t.false(after.includes((await u.getattr('/d/new')).ino));
});

test('concurrent writers of one lower file share one copy-up; a big file copies intact', async (t) => {
  const big = Buffer.alloc(48 << 20);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  const digest = createHash('sha256').update(big).digest('hex');
  const { u, upper } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'big', big)) });
  const ino = (await u.getattr('/big')).ino;
  const handles = await Promise.all(Array.from({ length: 6 }, () => u.open('/big', C.O_RDWR)));
  // All handles see one upper file.
  const inodes = new Set(await Promise.all(handles.map(async (h) => (await fsp.stat(`/proc/self/fd/${h}`)).ino)));
  t.is(inodes.size, 1);
  for (const h of handles) await u.release(h);
  const copied = await fsp.readFile(path.join(upper, 'big'));
  t.is(createHash('sha256').update(copied).digest('hex'), digest);
  t.is((await u.getattr('/big')).ino, ino);
  t.deepEqual((await fsp.readdir(upper)).sort(), ['.wh..wh..ufs.work', 'big']);
  t.deepEqual(await fsp.readdir(path.join(upper, '.wh..wh..ufs.work')), [], 'no temporary names left');
});

test('a crash mid copy-up leaves nothing under a real name, and init cleans the temp', async (t) => {
  const { lowers, upper } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'f', 'lower')) });
  // What a crash after copying the data but before the rename leaves behind:
  await put(upper, '.wh..wh..ufs.work/tmp.deadbeef', 'low');
  const u = new UnionFs({ lowers, upper });
  await u.init();
  t.deepEqual(await fsp.readdir(upper), ['.wh..wh..ufs.work']);
  t.deepEqual(await fsp.readdir(path.join(upper, '.wh..wh..ufs.work')), []);
  t.is(await read(u, '/f'), 'lower');
});

// What a background copier leaves when its server dies after 1 MiB of a 3 MiB file: that much
// in place (with a write in it), the rest zeros, and its journal entry (copyjournal.ts).
async function cutCopy(t: ExecutionContext): Promise<{ upper: string; file: string; entry: string; want: Buffer }> {
  const root = await tempDir(t, 'settle');
  const lower = path.join(root, 'lower-big');
  const data = Buffer.alloc(3 << 20);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  await fsp.writeFile(lower, data);
  const upper = path.join(root, 'upper');
  const work = path.join(upper, TEMP_PREFIX + 'work');
  await fsp.mkdir(work, { recursive: true });
  const file = path.join(upper, 'f');
  const partial = Buffer.alloc(data.length);
  data.copy(partial, 0, 0, 1 << 20);
  partial.write('HEAD', 0, 'latin1');
  await fsp.writeFile(file, partial);
  setTimes(file, T1, T2);
  const entry = path.join(work, 'copying.test');
  await fsp.link(file, entry);
  sys.lsetxattr(entry, 'trusted.ufs.copysrc', Buffer.from(lower), 0);
  sys.lsetxattr(entry, 'trusted.ufs.copied', Buffer.from(String(1 << 20)), 0);
  const want = Buffer.from(data);
  want.write('HEAD', 0, 'latin1');
  return { upper, file, entry, want };
}

test('settleCopies waits for a background copy that runs, and finishes one whose server died', async (t) => {
  const { upper, file, entry, want } = await cutCopy(t);
  // A live copier holds the lock: a new server refuses, a committer waits.
  const held = fs.openSync(file, 'r');
  t.true(sys.flock(held, 2 /* LOCK_EX */ | 4 /* LOCK_NB */));
  await t.throwsAsync(settleCopies(upper, { wait: false }), { code: 'EBUSY' });
  let ended = false;
  const waiting = settleCopies(upper, { wait: true }).then((n) => {
    ended = true;
    return n;
  });
  await new Promise((r) => setTimeout(r, 200));
  t.false(ended, 'waits while the lock is held');
  fs.closeSync(held);
  t.is(await waiting, 1);
  t.true((await fsp.readFile(file)).equals(want), 'the bytes before the progress are kept, the rest copied');
  t.deepEqual(Object.keys(xattrs(file)), [], 'the journal xattrs are gone');
  t.false(await exists(entry));
  t.is((await fsp.stat(file, { bigint: true })).mtimeNs, T2, 'mtime kept');
  t.is(await settleCopies(upper, { wait: false }), 0, 'nothing left to settle');
});

test('a union reading a cut-short upper as a lower layer (ufs cp of a stopped container) finishes it first', async (t) => {
  const { upper, want } = await cutCopy(t);
  const u = new UnionFs({ lowers: [upper] });
  await u.init();
  const fh = await u.open('/f', C.O_RDONLY);
  try {
    const got = Buffer.alloc(want.length + 1);
    t.is(fs.readSync(fh, got, 0, got.length, 0), want.length);
    t.true(got.subarray(0, want.length).equals(want));
  } finally {
    await u.release(fh);
  }
});

// Creating and deleting through the union: owners, whiteouts, opaque dirs, links, errors.
import test from 'ava';
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { C, ROOT, USER, exists, mkdirIn, names, put, read, stack, write } from './helpers/unionfs.js';

test('new objects get the caller as owner and the mode as given', async (t) => {
  const { u, upper } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await mkdirIn(l0!, 'home', 0o777)) });
  const fh = await u.create('/home/f', 0o640, C.O_WRONLY, USER);
  fs.writeSync(fh, 'data', 0);
  t.is((await u.fgetattr(fh, '/home/f')).ino, (await u.getattr('/home/f')).ino);
  await u.release(fh);
  await u.mkdir('/home/d', 0o750, USER);
  await u.symlink('f', '/home/l', USER);
  await u.mknod('/home/p', C.S_IFIFO | 0o604, 0, USER);
  await u.mknod('/home/r', C.S_IFREG | 0o600, 0, USER);
  await u.mknod('/home/c', C.S_IFCHR | 0o660, (1 << 8) | 5, USER);
  const want: Record<string, number> = { f: C.S_IFREG | 0o640, d: C.S_IFDIR | 0o750, l: C.S_IFLNK | 0o777, p: C.S_IFIFO | 0o604, r: C.S_IFREG | 0o600, c: C.S_IFCHR | 0o660 };
  for (const [n, mode] of Object.entries(want)) {
    const a = await u.getattr(`/home/${n}`);
    t.deepEqual([a.mode, a.uid, a.gid], [mode, USER.uid, USER.gid], n);
  }
  t.is((await u.getattr('/home/c')).rdev, (1 << 8) | 5);
  t.is(await read(u, '/home/f'), 'data');
  t.is(await u.readlink('/home/l'), 'f');
  t.deepEqual(await names(u, '/home'), ['c', 'd', 'f', 'l', 'p', 'r']);
  t.deepEqual(await fsp.readdir(path.join(upper, '.wh..wh..ufs.work')), []);
});

test('a setgid parent gives its group, and setgid to new subdirectories', async (t) => {
  const { u } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      const d = await mkdirIn(l0!, 'shared');
      await fsp.chown(d, 0, 4242);
      await fsp.chmod(d, 0o2775);
    },
  });
  await u.mkdir('/shared/sub', 0o755, USER);
  const sub = await u.getattr('/shared/sub');
  t.deepEqual([sub.uid, sub.gid, sub.mode & 0o7777], [USER.uid, 4242, 0o2755]);
  await u.release(await u.create('/shared/sub/f', 0o644, C.O_WRONLY, USER));
  const f = await u.getattr('/shared/sub/f');
  t.deepEqual([f.uid, f.gid, f.mode & 0o7777], [USER.uid, 4242, 0o644]);
  await u.mkdir('/plain', 0o755, USER);
  t.is((await u.getattr('/plain')).gid, USER.gid);
});

test('create: O_EXCL on an existing name is EEXIST, without it the file opens', async (t) => {
  const { u } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'f', 'lower data')) });
  await t.throwsAsync(u.create('/f', 0o644, C.O_WRONLY | C.O_EXCL, ROOT), { code: 'EEXIST' });
  const fh = await u.create('/f', 0o644, C.O_RDWR, ROOT);
  t.is(fs.readFileSync(fh, 'utf8'), 'lower data');
  await u.release(fh);
  const tr = await u.create('/f', 0o644, C.O_WRONLY | C.O_TRUNC, ROOT);
  await u.release(tr);
  t.is(await read(u, '/f'), '');
  await t.throwsAsync(u.create('/missing/f', 0o644, C.O_WRONLY, ROOT), { code: 'ENOENT' });
  await t.throwsAsync(u.create('/f/x', 0o644, C.O_WRONLY, ROOT), { code: 'ENOTDIR' });
  await t.throwsAsync(u.mkdir('/f', 0o755, ROOT), { code: 'EEXIST' });
  await t.throwsAsync(u.symlink('x', '/f', ROOT), { code: 'EEXIST' });
  await t.throwsAsync(u.mknod('/f', C.S_IFIFO | 0o644, 0, ROOT), { code: 'EEXIST' });
  await t.throwsAsync(u.mkdir('/', 0o755, ROOT), { code: 'EEXIST' });
  await t.throwsAsync(u.mkdir('/' + 'n'.repeat(256), 0o755, ROOT), { code: 'ENAMETOOLONG' });
});

test('.wh. names cannot be created by any call', async (t) => {
  const { u, upper } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'f', 'x')) });
  const bad = ['/.wh.f', '/.wh..wh..opq', '/.wh..wh..ufs.work'];
  for (const p of bad) {
    await t.throwsAsync(u.create(p, 0o644, C.O_WRONLY, ROOT), { code: 'EINVAL' }, `create ${p}`);
    await t.throwsAsync(u.mkdir(p, 0o755, ROOT), { code: 'EINVAL' }, `mkdir ${p}`);
    await t.throwsAsync(u.mknod(p, C.S_IFIFO | 0o644, 0, ROOT), { code: 'EINVAL' }, `mknod ${p}`);
    await t.throwsAsync(u.symlink('f', p, ROOT), { code: 'EINVAL' }, `symlink ${p}`);
    await t.throwsAsync(u.link('/f', p), { code: 'EINVAL' }, `link ${p}`);
    await t.throwsAsync(u.rename('/f', p), { code: 'EINVAL' }, `rename ${p}`);
  }
  await t.throwsAsync(u.open('/.wh.f', C.O_WRONLY), { code: 'ENOENT' });
  await t.throwsAsync(u.unlink('/.wh.f'), { code: 'ENOENT' });
  t.deepEqual((await fsp.readdir(upper)).sort(), ['.wh..wh..ufs.work']);
  t.is(await read(u, '/f'), 'x');
});

test('unlink: whiteout for a lower name, plain removal for an upper-only one', async (t) => {
  const { u, upper, lowers } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'd/lower', 'l');
      await put(l0!, 'd/copied', 'c');
    },
  });
  await u.release(await u.create('/d/fresh', 0o644, C.O_WRONLY, ROOT));
  await write(u, '/d/copied', 'C');
  await u.unlink('/d/lower');
  await u.unlink('/d/copied');
  await u.unlink('/d/fresh');
  t.deepEqual(await names(u, '/d'), []);
  t.deepEqual((await fsp.readdir(path.join(upper, 'd'))).sort(), ['.wh.copied', '.wh.lower']);
  t.true(await exists(path.join(lowers[0]!, 'd/lower')));
  for (const n of ['lower', 'copied', 'fresh']) await t.throwsAsync(u.getattr(`/d/${n}`), { code: 'ENOENT' }, n);
  await t.throwsAsync(u.unlink('/d/lower'), { code: 'ENOENT' });
  await t.throwsAsync(u.unlink('/d'), { code: 'EISDIR' });
  // create over a whiteout removes the whiteout
  await u.release(await u.create('/d/lower', 0o600, C.O_WRONLY, ROOT));
  t.deepEqual((await fsp.readdir(path.join(upper, 'd'))).sort(), ['.wh.copied', 'lower']);
  t.is(await read(u, '/d/lower'), '');
});

test('mkdir over a whiteout makes an opaque directory', async (t) => {
  const { u, upper } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'd/a', 'a');
      await put(l0!, 'd/sub/b', 'b');
    },
  });
  await u.unlink('/d/a');
  await u.unlink('/d/sub/b');
  await u.rmdir('/d/sub');
  await u.rmdir('/d');
  t.deepEqual(await names(u, '/'), []);
  await u.mkdir('/d', 0o700, USER);
  t.deepEqual(await names(u, '/d'), []);
  await t.throwsAsync(u.getattr('/d/sub'), { code: 'ENOENT' });
  t.deepEqual((await fsp.readdir(path.join(upper, 'd'))).sort(), ['.wh..wh..opq']);
  t.false(await exists(path.join(upper, '.wh.d')));
  const a = await u.getattr('/d');
  t.deepEqual([a.mode & 0o7777, a.uid, a.nlink], [0o700, USER.uid, 2]);
  // a fresh directory where nothing exists below is not made opaque
  await u.mkdir('/d/new', 0o755, ROOT);
  t.deepEqual(await fsp.readdir(path.join(upper, 'd/new')), []);
});

test('rmdir: ENOTEMPTY until the merged directory is empty; whiteouts do not count', async (t) => {
  const { u, upper } = await stack(t, {
    lowers: 2,
    setup: async ({ lowers: [l0, l1] }) => {
      await put(l1!, 'd/a', 'a');
      await put(l0!, 'd/b', 'b');
      await mkdirIn(l1!, 'empty');
    },
  });
  await t.throwsAsync(u.rmdir('/d'), { code: 'ENOTEMPTY' });
  await u.unlink('/d/a');
  await t.throwsAsync(u.rmdir('/d'), { code: 'ENOTEMPTY' });
  await u.unlink('/d/b');
  await u.rmdir('/d');
  t.deepEqual((await fsp.readdir(upper)).sort(), ['.wh..wh..ufs.work', '.wh.d']);
  await u.rmdir('/empty');
  await t.throwsAsync(u.rmdir('/empty'), { code: 'ENOENT' });
  await u.mkdir('/fresh', 0o755, ROOT);
  await u.mkdir('/fresh/inner', 0o755, ROOT);
  await t.throwsAsync(u.rmdir('/fresh'), { code: 'ENOTEMPTY' });
  await u.rmdir('/fresh/inner');
  await u.rmdir('/fresh');
  t.deepEqual((await fsp.readdir(upper)).sort(), ['.wh..wh..ufs.work', '.wh.d', '.wh.empty']);
  await u.release(await u.create('/file', 0o644, C.O_WRONLY, ROOT));
  await t.throwsAsync(u.rmdir('/file'), { code: 'ENOTDIR' });
  await t.throwsAsync(u.rmdir('/'), { code: 'EBUSY' });
  t.deepEqual(await names(u, '/'), ['file']);
});

test('hard links: copy-up first, one inode, right link count', async (t) => {
  const { u, upper } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'a/f', 'shared');
      await mkdirIn(l0!, 'b');
    },
  });
  const ino = (await u.getattr('/a/f')).ino;
  await u.link('/a/f', '/b/g');
  const [f, g] = [await u.getattr('/a/f'), await u.getattr('/b/g')];
  t.is(f.ino, ino);
  t.is(g.ino, ino);
  t.is(f.nlink, 2);
  t.is(g.nlink, 2);
  await write(u, '/b/g', 'SHARED');
  t.is(await read(u, '/a/f'), 'SHARED');
  t.is((await fsp.stat(path.join(upper, 'a/f'))).ino, (await fsp.stat(path.join(upper, 'b/g'))).ino);
  await u.link('/b/g', '/a/h');
  t.is((await u.getattr('/a/h')).nlink, 3);
  const entries = await u.readdir('/a');
  t.deepEqual(entries.map((e) => e.ino), [ino, ino]);
  await u.unlink('/a/f');
  t.is((await u.getattr('/b/g')).nlink, 2);
  t.is((await u.getattr('/b/g')).ino, ino);
  await t.throwsAsync(u.link('/a', '/b/dirlink'), { code: 'EPERM' });
  await t.throwsAsync(u.link('/b/g', '/a/h'), { code: 'EEXIST' });
  await t.throwsAsync(u.link('/nope', '/b/x'), { code: 'ENOENT' });
  await t.throwsAsync(u.link('/b/g', '/nope/x'), { code: 'ENOENT' });
});

test('handles keep working after their file is unlinked (path null)', async (t) => {
  const { u } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'f', 'abcdef')) });
  const ino = (await u.getattr('/f')).ino;
  const fh = await u.open('/f', C.O_RDWR);
  await u.unlink('/f');
  await u.ftruncate(fh, null, 3);
  const a = await u.fgetattr(fh, null);
  t.is(a.size, 3n);
  t.is(a.nlink, 0);
  t.is(a.ino, ino);
  await u.fsync(fh, true);
  await u.fsync(fh, false);
  await u.release(fh);
  await t.throwsAsync(u.getattr('/f'), { code: 'ENOENT' });
});

test('utimens: now, omit and exact nanoseconds; chown -1 keeps a field', async (t) => {
  const { u } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'f', 'x')) });
  const T = 1_234_567_890_123_456_789n;
  await u.utimens('/f', T, T);
  await u.utimens('/f', 'omit', 'now');
  const a = await u.getattr('/f');
  t.is(a.atimeNs, T);
  t.true(a.mtimeNs > T);
  await u.chown('/f', 10, 20);
  await u.chown('/f', -1, -1);
  await u.chown('/f', 0xffffffff, 30);
  const b = await u.getattr('/f');
  t.deepEqual([b.uid, b.gid], [10, 30]);
});

test('readdir and lookups follow every change (no stale cache)', async (t) => {
  const { u } = await stack(t, {
    lowers: 2,
    setup: async ({ lowers: [l0, l1] }) => {
      await put(l1!, 'd/x', 'x');
      await put(l0!, 'd/y', 'y');
    },
  });
  t.deepEqual(await names(u, '/d'), ['x', 'y']);
  await u.getattr('/d/x');
  await t.throwsAsync(u.getattr('/d/z'), { code: 'ENOENT' });
  await u.release(await u.create('/d/z', 0o644, C.O_WRONLY, ROOT));
  t.deepEqual(await names(u, '/d'), ['x', 'y', 'z']);
  await u.getattr('/d/z');
  await u.unlink('/d/x');
  t.deepEqual(await names(u, '/d'), ['y', 'z']);
  await t.throwsAsync(u.getattr('/d/x'), { code: 'ENOENT' });
  await u.rename('/d/y', '/d/x');
  t.deepEqual(await names(u, '/d'), ['x', 'z']);
  t.is(await read(u, '/d/x'), 'y');
  await u.mkdir('/d/sub', 0o755, ROOT);
  await u.symlink('x', '/d/sub/l', ROOT);
  t.deepEqual(await names(u, '/d/sub'), ['l']);
  await u.unlink('/d/sub/l');
  await u.rmdir('/d/sub');
  t.deepEqual(await names(u, '/d'), ['x', 'z']);
  // many concurrent creates and listings
  await Promise.all(Array.from({ length: 50 }, (_, i) => u.create(`/d/n${i}`, 0o644, C.O_WRONLY, ROOT).then((fh) => u.release(fh))));
  t.is((await u.readdir('/d')).length, 52);
});

test('names of 255 bytes work; a lower one that long cannot get a whiteout', async (t) => {
  const long = 'n'.repeat(255);
  const { u } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, `d/${long}`, 'x')) });
  await u.release(await u.create(`/${long}`, 0o644, C.O_WRONLY, ROOT));
  t.true((await names(u, '/')).includes(long));
  await u.rename(`/${long}`, `/${long.slice(1)}`);
  await u.unlink(`/${long.slice(1)}`);
  t.is(await read(u, `/d/${long}`), 'x');
  await t.throwsAsync(u.unlink(`/d/${long}`), { code: 'ENAMETOOLONG' });
  t.deepEqual(await names(u, '/d'), [long]);
});

// cp -p sets the mode through system.posix_acl_access when it can; the union refuses ACLs
// so the mode is set with chmod and the kernel's attribute cache stays true.
test('POSIX ACL xattrs are refused with EOPNOTSUPP and never listed', async (t) => {
  const { UnionFs } = await import('../src/unionfs/index.js');
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'ufs-test-acl-'));
  t.teardown(() => fsp.rm(root, { recursive: true, force: true }));
  await fsp.mkdir(path.join(root, 'lower'));
  await fsp.mkdir(path.join(root, 'upper'));
  await fsp.writeFile(path.join(root, 'lower', 'f'), 'x');
  const u = new UnionFs({ lowers: [path.join(root, 'lower')], upper: path.join(root, 'upper') });
  await u.init();
  const acl = Buffer.from([2, 0, 0, 0]);
  for (const name of ['system.posix_acl_access', 'system.posix_acl_default']) {
    await t.throwsAsync(u.setxattr('/f', name, acl, 0), { code: 'EOPNOTSUPP' });
    await t.throwsAsync(u.getxattr('/f', name), { code: 'EOPNOTSUPP' });
    await t.throwsAsync(u.removexattr('/f', name), { code: 'EOPNOTSUPP' });
  }
  t.false((await u.listxattr('/f')).some((n) => n.startsWith('system.posix_acl')));
});

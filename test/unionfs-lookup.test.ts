// Resolving paths across layers, merged readdir, hidden names, and the read-only union.
import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UnionFs } from '../src/unionfs/index.js';
import { C, ROOT, mkdirIn, names, opaque, put, read, stack, tempDir, whiteout } from './helpers/unionfs.js';

test('the topmost layer that has a path wins; directories merge', async (t) => {
  const { u } = await stack(t, {
    lowers: 3,
    setup: async ({ lowers: [l0, l1, l2], upper }) => {
      await put(l2!, 'etc/f', 'from l2');
      await put(l2!, 'etc/only2', '2');
      await put(l1!, 'etc/f', 'from l1');
      await put(l1!, 'etc/only1', '1');
      await mkdirIn(l0!, 'etc');
      await put(upper, 'etc/up', 'u');
    },
  });
  t.is(await read(u, '/etc/f'), 'from l1');
  t.deepEqual(await names(u, '/etc'), ['f', 'only1', 'only2', 'up']);
  t.deepEqual(await names(u, '/'), ['etc']);
});

test('a whiteout hides the name in every layer beneath, not in its own layer', async (t) => {
  const { u } = await stack(t, {
    lowers: 3,
    setup: async ({ lowers: [l0, l1, l2] }) => {
      await put(l2!, 'd/gone', 'x');
      await put(l2!, 'd/kept', 'k');
      await put(l2!, 'gonedir/x', 'x');
      await whiteout(l1!, 'd/gone');
      await whiteout(l1!, 'gonedir');
      await put(l0!, 'gonedir/new', 'n'); // a layer above the whiteout brings it back, fresh
    },
  });
  await t.throwsAsync(u.getattr('/d/gone'), { code: 'ENOENT' });
  t.deepEqual(await names(u, '/d'), ['kept']);
  t.deepEqual(await names(u, '/gonedir'), ['new']);
  await t.throwsAsync(u.getattr('/gonedir/x'), { code: 'ENOENT' });
});

test('an opaque directory hides everything beneath it; so does a dir beside its own whiteout', async (t) => {
  const { u } = await stack(t, {
    lowers: 2,
    setup: async ({ lowers: [l0, l1] }) => {
      await put(l1!, 'o/old', 'x');
      await put(l1!, 'w/old', 'x');
      await put(l0!, 'o/new', 'n');
      await opaque(l0!, 'o');
      await put(l0!, 'w/new', 'n');
      await whiteout(l0!, 'w');
    },
  });
  t.deepEqual(await names(u, '/o'), ['new']);
  await t.throwsAsync(u.getattr('/o/old'), { code: 'ENOENT' });
  t.deepEqual(await names(u, '/w'), ['new']);
  t.is((await u.getattr('/o')).nlink, 2, 'an opaque dir does not merge: its real link count');
});

test('only directories merge: a non-directory hides the name below, and is not a directory', async (t) => {
  const { u } = await stack(t, {
    lowers: 2,
    setup: async ({ lowers: [l0, l1] }) => {
      await put(l1!, 'd/x', 'x');
      await put(l0!, 'd', 'a file now');
      await mkdirIn(l1!, 'e');
      await fsp.symlink('/tmp', path.join(l0!, 'e'));
    },
  });
  t.is(((await u.getattr('/d')).mode & C.S_IFMT), C.S_IFREG);
  await t.throwsAsync(u.getattr('/d/x'), { code: 'ENOTDIR' });
  await t.throwsAsync(u.readdir('/d'), { code: 'ENOTDIR' });
  t.is(((await u.getattr('/e')).mode & C.S_IFMT), C.S_IFLNK);
  t.is(await u.readlink('/e'), '/tmp');
});

test('a symlink in a layer pointing at /etc is never followed', async (t) => {
  const { u } = await stack(t, {
    lowers: 1,
    setup: async ({ lowers: [l0], upper }) => {
      await fsp.symlink('/etc', path.join(l0!, 'link'));
      await fsp.symlink('/etc', path.join(upper, 'ulink'));
    },
  });
  for (const p of ['/link/passwd', '/ulink/passwd', '/ulink/hostname']) {
    await t.throwsAsync(u.getattr(p), { code: 'ENOTDIR' }, p);
  }
  await t.throwsAsync(u.getattr('/link/.'), { code: 'EINVAL' });
  await t.throwsAsync(u.open('/link/passwd', C.O_RDONLY), { code: 'ENOTDIR' });
  await t.throwsAsync(u.readdir('/link'), { code: 'ENOTDIR' });
  await t.throwsAsync(u.open('/link/passwd', C.O_WRONLY), { code: 'ENOTDIR' });
  await t.throwsAsync(u.create('/link/evil', 0o644, C.O_WRONLY, ROOT), { code: 'ENOTDIR' });
  await t.throwsAsync(u.mkdir('/ulink/evil', 0o755, ROOT), { code: 'ENOTDIR' });
  await t.throwsAsync(u.unlink('/link/hostname'), { code: 'ENOTDIR' });
  await t.throwsAsync(u.getxattr('/link/passwd', 'user.x'), { code: 'ENOTDIR' });
  // Opening the link itself never opens its target either.
  await t.throwsAsync(u.open('/link', C.O_RDONLY), { code: 'ELOOP' });
  t.is(await u.readlink('/link'), '/etc');
});

test('changes racing with a swap to a symlink never reach the host file it points at', async (t) => {
  const { u, root } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'x', 'lower')) });
  const host = await put(root, 'host-secret', 'secret', 0o640);
  for (let i = 0; i < 40; i++) {
    const results = await Promise.allSettled([
      u.chmod('/x', 0o777),
      u.chown('/x', 4321, 4321),
      u.truncate('/x', 0),
      u.utimens('/x', 0n, 0n),
      u.setxattr('/x', 'user.evil', Buffer.from('1'), 0),
      (async () => {
        await u.unlink('/x');
        await u.symlink(host, '/x', ROOT);
      })(),
      u.open('/x', C.O_RDONLY).then((fh) => u.release(fh)),
    ]);
    t.is(results[5]!.status, 'fulfilled');
    await u.unlink('/x');
    await u.release(await u.create('/x', 0o644, C.O_WRONLY, ROOT));
  }
  const st = await fsp.stat(host);
  t.deepEqual([st.mode & 0o7777, st.uid, st.size], [0o640, 0, 6]);
  t.is(await fsp.readFile(host, 'utf8'), 'secret');
});

test('bad paths: missing, through a file, too long, dot-dot', async (t) => {
  const { u } = await stack(t, { setup: async ({ lowers: [l0] }) => void (await put(l0!, 'f', 'x')) });
  await t.throwsAsync(u.getattr('/nope'), { code: 'ENOENT' });
  await t.throwsAsync(u.getattr('/nope/deeper'), { code: 'ENOENT' });
  await t.throwsAsync(u.getattr('/f/x'), { code: 'ENOTDIR' });
  await t.throwsAsync(u.getattr('/' + 'a'.repeat(256)), { code: 'ENAMETOOLONG' });
  await t.throwsAsync(u.getattr('/' + 'a'.repeat(255)), { code: 'ENOENT' });
  await t.throwsAsync(u.getattr('/../etc/passwd'), { code: 'EINVAL' });
  await t.throwsAsync(u.getattr('relative'), { code: 'EINVAL' });
  await t.throwsAsync(u.readlink('/f'), { code: 'EINVAL' });
});

test('.wh. names are never shown', async (t) => {
  const { u } = await stack(t, {
    lowers: 2,
    setup: async ({ lowers: [l0, l1], upper }) => {
      await put(l1!, 'd/x', 'x');
      await whiteout(l0!, 'd/x');
      await opaque(upper, 'e');
      await put(upper, '.wh..wh..ufs.tmp.leftover', 'junk');
      await put(upper, '.wh.nothing', '');
      await put(l0!, '.wh..wh.plnk/1', 'aufs junk');
    },
  });
  t.deepEqual(await names(u, '/'), ['d', 'e']);
  t.deepEqual(await names(u, '/d'), []);
  t.deepEqual(await names(u, '/e'), []);
  for (const p of ['/.wh.nothing', '/d/.wh.x', '/e/.wh..wh..opq', '/.wh..wh.plnk', '/.wh..wh.plnk/1']) {
    await t.throwsAsync(u.getattr(p), { code: 'ENOENT' }, p);
  }
});

test('readdir entries carry the inode number and type that getattr reports', async (t) => {
  const { u } = await stack(t, {
    lowers: 2,
    setup: async ({ lowers: [l0, l1], upper }) => {
      await put(l1!, 'd/file', 'x');
      await mkdirIn(l1!, 'd/sub');
      await mkdirIn(l0!, 'd/sub');
      await fsp.symlink('file', path.join(l0!, 'd/link'));
      await put(upper, 'd/up', 'u');
    },
  });
  const entries = await u.readdir('/d');
  t.deepEqual(entries.map((e) => e.name).sort(), ['file', 'link', 'sub', 'up']);
  for (const e of entries) {
    const a = await u.getattr(`/d/${e.name}`);
    t.is(e.ino, a.ino, e.name);
    t.is(e.mode, a.mode & C.S_IFMT, e.name);
  }
  const inos = new Set(entries.map((e) => e.ino));
  t.is(inos.size, entries.length, 'distinct objects have distinct numbers');
  t.is((await u.getattr('/d/sub')).nlink, 1, 'a merged directory reports nlink 1');
});

test('without an upper layer: reads work, every change is EROFS', async (t) => {
  const { u } = await stack(t, {
    upper: false,
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'd/f', 'data');
      await fsp.symlink('f', path.join(l0!, 'd/l'));
    },
  });
  t.is(await read(u, '/d/f'), 'data');
  t.deepEqual(await names(u, '/d'), ['f', 'l']);
  const ops: [string, () => Promise<unknown>][] = [
    ['open write', () => u.open('/d/f', C.O_WRONLY)],
    ['open rdwr', () => u.open('/d/f', C.O_RDWR)],
    ['open trunc', () => u.open('/d/f', C.O_RDONLY | C.O_TRUNC)],
    ['create', () => u.create('/d/n', 0o644, C.O_WRONLY, ROOT)],
    ['mkdir', () => u.mkdir('/d/n', 0o755, ROOT)],
    ['mknod', () => u.mknod('/d/n', C.S_IFIFO | 0o644, 0, ROOT)],
    ['symlink', () => u.symlink('x', '/d/n', ROOT)],
    ['link', () => u.link('/d/f', '/d/n')],
    ['unlink', () => u.unlink('/d/f')],
    ['rmdir', () => u.rmdir('/d')],
    ['rename', () => u.rename('/d/f', '/d/g')],
    ['truncate', () => u.truncate('/d/f', 0)],
    ['chmod', () => u.chmod('/d/f', 0o600)],
    ['chown', () => u.chown('/d/f', 1, 1)],
    ['utimens', () => u.utimens('/d/f', 'now', 'now')],
    ['setxattr', () => u.setxattr('/d/f', 'user.a', Buffer.from('1'), 0)],
    ['removexattr', () => u.removexattr('/d/f', 'user.a')],
  ];
  for (const [what, op] of ops) await t.throwsAsync(op(), { code: 'EROFS' }, what);
  await t.throwsAsync(u.access('/d/f', C.W_OK), { code: 'EROFS' });
  await u.access('/d/f', C.R_OK);
  t.is((await u.statfs('/')).flag & 1, 1, 'statfs says read-only');
});

test('statfs and access', async (t) => {
  const { u } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'x', '#!/bin/sh', 0o755);
      await put(l0!, 'nx', 'data', 0o644);
    },
  });
  const s = await u.statfs('/');
  t.true(s.bsize > 0 && s.blocks > 0);
  t.is(s.namemax, 255);
  t.is(s.flag, 0);
  await u.access('/x', C.X_OK);
  await t.throwsAsync(u.access('/nx', C.X_OK), { code: 'EACCES' });
  await t.throwsAsync(u.access('/missing', C.F_OK), { code: 'ENOENT' });
  await t.throwsAsync(u.statfs('/missing'), { code: 'ENOENT' });
});

test('init rejects a missing layer directory and removes crash leftovers', async (t) => {
  const root = await tempDir(t);
  await t.throwsAsync(new UnionFs({ lowers: [path.join(root, 'nope')] }).init(), { code: 'ENOENT' });
  const lower = await mkdirIn(root, 'l');
  const upper = await mkdirIn(root, 'u');
  await put(upper, '.wh..wh..ufs.tmp.0123/deep/file', 'half a copy');
  await put(upper, '.wh..wh..ufs.tmp.4567', 'half a file');
  await put(upper, 'kept', 'k');
  const u = new UnionFs({ lowers: [lower], upper });
  await u.init();
  t.deepEqual((await fsp.readdir(upper)).sort(), ['.wh..wh..ufs.work', 'kept']);
  t.deepEqual(await fsp.readdir(path.join(upper, '.wh..wh..ufs.work')), []);
  t.deepEqual(await names(u, '/'), ['kept']);
});

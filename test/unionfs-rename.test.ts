// rename(2) through the union: files, lower and merged directory trees, replacing targets,
// and ext4's errors. Never EXDEV.
import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { C, ROOT, exists, mkdirIn, names, put, read, stack, sys, write, xattrs } from './helpers/unionfs.js';

test('a lower file moves: copied up at the new name, old name whited out, same inode', async (t) => {
  const { u, upper, lowers } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'a/f', 'data');
      await mkdirIn(l0!, 'b');
    },
  });
  const ino = (await u.getattr('/a/f')).ino;
  await u.rename('/a/f', '/b/g');
  t.is(await read(u, '/b/g'), 'data');
  t.is((await u.getattr('/b/g')).ino, ino);
  await t.throwsAsync(u.getattr('/a/f'), { code: 'ENOENT' });
  t.deepEqual(await names(u, '/a'), []);
  t.true(await exists(path.join(upper, 'a/.wh.f')));
  t.true(await exists(path.join(lowers[0]!, 'a/f')));
  // an upper-only file moves plainly: no whiteout left behind
  await u.release(await u.create('/b/fresh', 0o644, C.O_WRONLY, ROOT));
  await u.rename('/b/fresh', '/a/fresh');
  t.false(await exists(path.join(upper, 'b/.wh.fresh')));
  t.deepEqual(await names(u, '/b'), ['g']);
  // back to the old name: the whiteout goes
  await u.rename('/b/g', '/a/f');
  t.false(await exists(path.join(upper, 'a/.wh.f')));
  t.true(await exists(path.join(upper, 'b/.wh.g')) === false);
  t.deepEqual(await names(u, '/a'), ['f', 'fresh']);
  t.is((await u.getattr('/a/f')).ino, ino);
});

test('rename replaces targets as rename(2) does, with its errors', async (t) => {
  const { u } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'f1', 'one');
      await put(l0!, 'f2', 'two');
      await put(l0!, 'full/x', 'x');
      await mkdirIn(l0!, 'empty');
      await mkdirIn(l0!, 'dir');
      await put(l0!, 'dir/inner/y', 'y');
    },
  });
  await u.rename('/f1', '/f2'); // file over a lower file
  t.is(await read(u, '/f2'), 'one');
  await t.throwsAsync(u.getattr('/f1'), { code: 'ENOENT' });
  await t.throwsAsync(u.rename('/f2', '/empty'), { code: 'EISDIR' });
  await t.throwsAsync(u.rename('/empty', '/f2'), { code: 'ENOTDIR' });
  await t.throwsAsync(u.rename('/dir', '/full'), { code: 'ENOTEMPTY' });
  await t.throwsAsync(u.rename('/dir', '/dir/inner/deeper'), { code: 'EINVAL' });
  await t.throwsAsync(u.rename('/dir/inner', '/dir'), { code: 'ENOTEMPTY' });
  await t.throwsAsync(u.rename('/nope', '/x'), { code: 'ENOENT' });
  await t.throwsAsync(u.rename('/f2', '/nope/x'), { code: 'ENOENT' });
  await t.throwsAsync(u.rename('/f2', '/f2/x'), { code: 'ENOTDIR' });
  await t.throwsAsync(u.rename('/', '/x'), { code: 'EBUSY' });
  await u.rename('/f2', '/f2'); // same name: nothing happens
  t.is(await read(u, '/f2'), 'one');
  await u.rename('/dir', '/empty'); // dir over an empty dir
  t.deepEqual(await names(u, '/empty'), ['inner']);
  t.is(await read(u, '/empty/inner/y'), 'y');
  t.deepEqual(await names(u, '/'), ['empty', 'f2', 'full']);
  // a directory whose lower contents were all deleted counts as empty
  await u.unlink('/full/x');
  await u.rename('/empty', '/full');
  t.deepEqual(await names(u, '/full'), ['inner']);
  await t.throwsAsync(u.getattr('/full/x'), { code: 'ENOENT' });
  // hard links of one file: nothing to do
  await u.link('/f2', '/f3');
  await u.rename('/f2', '/f3');
  t.deepEqual(await names(u, '/'), ['f2', 'f3', 'full']);
});

test('a lower directory tree moves whole: contents, metadata, links and inodes intact', async (t) => {
  const T = 1_111_111_111_222_333_444n;
  const { u, upper, lowers } = await stack(t, {
    lowers: 2,
    setup: async ({ lowers: [l0, l1] }) => {
      await put(l1!, 'src/a.txt', 'A');
      await put(l1!, 'src/sub/b.txt', 'B', 0o600);
      await put(l1!, 'src/sub/deep/c.txt', 'C');
      await put(l1!, 'src/gone', 'deleted in l0');
      await whiteoutIn(l0!, 'src/gone');
      await put(l0!, 'src/sub/from-l0', 'L0');
      await fsp.symlink('a.txt', path.join(l1!, 'src/link'));
      await fsp.link(path.join(l1!, 'src/a.txt'), path.join(l1!, 'src/sub/hard'));
      sys.mknod(path.join(l1!, 'src/fifo'), C.S_IFIFO | 0o644, 0);
      await fsp.chown(path.join(l1!, 'src/sub'), 77, 88);
      await fsp.chmod(path.join(l1!, 'src/sub'), 0o750);
      sys.lsetxattr(path.join(l1!, 'src/sub/b.txt'), 'user.k', Buffer.from([1, 0, 2]), 0);
      sys.utimensat(path.join(l1!, 'src/sub/deep/c.txt'), Number(T / 10n ** 9n), Number(T % 10n ** 9n), Number(T / 10n ** 9n), Number(T % 10n ** 9n));
    },
  });
  const tree = ['/src', '/src/a.txt', '/src/sub', '/src/sub/b.txt', '/src/sub/deep', '/src/sub/deep/c.txt', '/src/sub/from-l0', '/src/link', '/src/sub/hard', '/src/fifo'];
  const before = new Map<string, Awaited<ReturnType<typeof u.getattr>>>();
  for (const p of tree) before.set(p, await u.getattr(p));
  // a change already in upper inside the tree must move with it
  await write(u, '/src/sub/deep/c.txt', 'c');
  await u.utimens('/src/sub/deep/c.txt', T, T);
  await u.release(await u.create('/src/sub/new', 0o644, C.O_WRONLY, ROOT));

  await u.rename('/src', '/dst');

  await t.throwsAsync(u.getattr('/src'), { code: 'ENOENT' });
  t.true(await exists(path.join(upper, '.wh.src')));
  t.false(await exists(path.join(upper, 'src')));
  t.deepEqual(await names(u, '/dst'), ['a.txt', 'fifo', 'link', 'sub']);
  t.deepEqual(await names(u, '/dst/sub'), ['b.txt', 'deep', 'from-l0', 'hard', 'new']);
  t.is(await read(u, '/dst/a.txt'), 'A');
  t.is(await read(u, '/dst/sub/b.txt'), 'B');
  t.is(await read(u, '/dst/sub/deep/c.txt'), 'c');
  t.is(await read(u, '/dst/sub/from-l0'), 'L0');
  t.is(await u.readlink('/dst/link'), 'a.txt');
  await t.throwsAsync(u.getattr('/dst/gone'), { code: 'ENOENT' });
  for (const p of tree) {
    const b = before.get(p)!;
    const a = await u.getattr(p.replace(/^\/src/, '/dst'));
    t.deepEqual([a.ino, a.mode, a.uid, a.gid], [b.ino, b.mode, b.uid, b.gid], p);
    // times kept, except where something changed (c.txt written, /src/sub got a new entry)
    if (!['/src/sub/deep/c.txt', '/src/sub'].includes(p)) t.is(a.mtimeNs, b.mtimeNs, p);
  }
  t.is((await u.getattr('/dst/sub/deep/c.txt')).mtimeNs, T);
  // hard links inside the tree stay hard links
  t.is((await fsp.stat(path.join(upper, 'dst/a.txt'))).ino, (await fsp.stat(path.join(upper, 'dst/sub/hard'))).ino);
  t.is((await u.getattr('/dst/a.txt')).nlink, 2);
  t.deepEqual(xattrs(path.join(upper, 'dst/sub/b.txt'))['user.k'], '010002');
  // the new directory is opaque only if needed, holds no whiteouts, and the lowers are untouched
  const all = await listTree(path.join(upper, 'dst'));
  t.deepEqual(all.filter((n) => path.basename(n).startsWith('.wh.')), []);
  t.true(await exists(path.join(lowers[1]!, 'src/sub/deep/c.txt')));
  t.is(await fsp.readFile(path.join(lowers[1]!, 'src/sub/deep/c.txt'), 'utf8'), 'C');
  // and it can move back onto its old name (now over a whiteout: opaque there)
  await u.rename('/dst', '/src');
  t.deepEqual(await names(u, '/src'), ['a.txt', 'fifo', 'link', 'sub']);
  await t.throwsAsync(u.getattr('/src/gone'), { code: 'ENOENT' });
  t.true(await exists(path.join(upper, 'src/.wh..wh..opq')));
  t.false(await exists(path.join(upper, '.wh.src')));
  t.is((await u.getattr('/src')).ino, before.get('/src')!.ino);
});

test('a directory moved onto a name that exists below hides what is there', async (t) => {
  const { u } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'old/stale', 's');
      await put(l0!, 'other/keep', 'k');
    },
  });
  await u.unlink('/old/stale');
  await u.rmdir('/old');
  await u.mkdir('/fresh', 0o755, ROOT);
  await u.release(await u.create('/fresh/n', 0o644, C.O_WRONLY, ROOT));
  await u.rename('/fresh', '/old');
  t.deepEqual(await names(u, '/old'), ['n']);
  // an empty merged target with lower contents whited out
  await u.unlink('/other/keep');
  await u.mkdir('/fresh2', 0o755, ROOT);
  await u.rename('/fresh2', '/other');
  t.deepEqual(await names(u, '/other'), []);
  await t.throwsAsync(u.getattr('/other/keep'), { code: 'ENOENT' });
  t.deepEqual(await names(u, '/'), ['old', 'other']);
});

test('many renames in a row keep the view consistent', async (t) => {
  const { u } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      for (let i = 0; i < 5; i++) await put(l0!, `d${i}/f`, `${i}`);
    },
  });
  await u.rename('/d0', '/tmp0');
  await u.rename('/d1', '/d0');
  await u.rename('/tmp0', '/d1');
  await u.rename('/d2/f', '/d3/f');
  await u.rename('/d3', '/d2/d3');
  t.is(await read(u, '/d0/f'), '1');
  t.is(await read(u, '/d1/f'), '0');
  t.is(await read(u, '/d2/d3/f'), '2');
  t.deepEqual(await names(u, '/'), ['d0', 'd1', 'd2', 'd4']);
  t.deepEqual(await names(u, '/d2'), ['d3']);
});

async function whiteoutIn(layer: string, rel: string): Promise<void> {
  await put(layer, path.join(path.dirname(rel), `.wh.${path.basename(rel)}`));
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await listTree(p)));
  }
  return out;
}

test('redirectDir: a renamed lower directory keeps its contents below and a redirect, also once upper is a lower', async (t) => {
  const { root, lowers, upper } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'a/d/f', 'data');
      await put(l0!, 'a/d/sub/g', 'deep');
      await mkdirIn(l0!, 'b');
      await mkdirIn(l0!, 'b/d'); // a lower dir at the target name must stay hidden
      await put(l0!, 'b/d/hidden', 'no');
    },
  });
  const { UnionFs } = await import('../src/unionfs/index.js');
  const u = new UnionFs({ lowers, upper, redirectDir: true });
  await u.init();
  const ino = (await u.getattr('/a/d')).ino;
  await u.unlink('/b/d/hidden');
  await u.rmdir('/b/d');
  await u.rename('/a/d', '/b/d');
  t.is(await read(u, '/b/d/f'), 'data');
  t.is(await read(u, '/b/d/sub/g'), 'deep');
  t.deepEqual(await names(u, '/b/d'), ['f', 'sub']);
  t.is((await u.getattr('/b/d')).ino, ino, 'same inode number after the move');
  t.deepEqual(await names(u, '/a'), []);
  t.false(await exists(path.join(upper, 'b/d/f')), 'contents stay below');
  t.true(await exists(path.join(upper, 'a/.wh.d')));
  // a move inside the moved directory, then the upper rotated into a lower
  await u.rename('/b/d/sub', '/sub2');
  t.is(await read(u, '/sub2/g'), 'deep');
  const upper2 = path.join(root, 'upper2');
  await fsp.mkdir(upper2);
  const u2 = new UnionFs({ lowers: [upper, ...lowers], upper: upper2, redirectDir: true });
  await u2.init();
  t.deepEqual(await names(u2, '/b/d'), ['f']);
  t.is(await read(u2, '/sub2/g'), 'deep');
  await u2.rename('/sub2', '/sub3');
  t.is(await read(u2, '/sub3/g'), 'deep');
});

test('a name made again in a directory moved to where a new one stood drops the whiteout the move brought', async (t) => {
  // /f is made here (so no whiteout in it) and moved away; /d, which holds a whiteout and keeps
  // its lower contents by redirect, takes its place: a file made there must drop the whiteout.
  const { lowers, upper } = await stack(t, {
    setup: async ({ lowers: [l0] }) => {
      await put(l0!, 'd/x', 'x');
      await put(l0!, 'd/y', 'y');
    },
  });
  const { UnionFs } = await import('../src/unionfs/index.js');
  const u = new UnionFs({ lowers, upper, redirectDir: true });
  await u.init();
  await u.unlink('/d/x');
  await u.mkdir('/f', 0o755, ROOT);
  await u.rename('/f', '/g');
  await u.rename('/d', '/f');
  t.deepEqual(await fsp.readdir(path.join(upper, 'f')), ['.wh.x']);
  await u.release(await u.create('/f/x', 0o644, C.O_WRONLY, ROOT));
  t.deepEqual(await names(u, '/f'), ['x', 'y']);
  t.deepEqual(await fsp.readdir(path.join(upper, 'f')), ['x']);
});

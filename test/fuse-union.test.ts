// The union rules through a real mount: whiteouts, opaque dirs, merged readdir, copy-up,
// stable inode numbers, links, rename, rmdir, and the OCI form of what lands in upper.
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fill, type Layers, mountWith, shAs } from './helpers/mount.js';

// Everything under dir (relative names, sorted), skipping the union's temp names.
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      if (e.name.startsWith('.wh..wh..ufs')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(e.isDirectory() ? `${r}/` : r);
      if (e.isDirectory()) await walk(r);
    }
  }
  await walk('');
  return out.sort();
}

const twoLowers = (top: string, bottom: string) => ({
  lowers: 2,
  setup: async (l: Layers) => {
    await fill(l.lowers[1]!, bottom);
    await fill(l.lowers[0]!, top);
  },
});

test('whiteouts hide lower names; .wh. names are never visible', async (t) => {
  const m = await mountWith(t, twoLowers(': > .wh.gone; mkdir d; : > d/.wh.f1', 'echo g > gone; mkdir d; echo 1 > d/f1; echo 2 > d/f2; echo k > kept'));
  t.is(await m.ok('ls -A'), 'd\nkept\n');
  t.is(await m.ok('ls -A d'), 'f2\n');
  const codes = await m.node<string[]>(`return [
    await tryCode(() => fs.stat('gone')),
    await tryCode(() => fs.stat('.wh.gone')),
    await tryCode(() => fs.stat('d/.wh.f1')),
    await tryCode(() => fs.readFile('d/f1')),
  ];`);
  t.deepEqual(codes, ['ENOENT', 'ENOENT', 'ENOENT', 'ENOENT']);
  t.is(await m.ok('find . | sort'), '.\n./d\n./d/f2\n./kept\n');
});

test('an opaque directory hides everything below it', async (t) => {
  const m = await mountWith(t, twoLowers('mkdir d; : > d/.wh..wh..opq; echo top > d/a', 'mkdir -p d/sub; echo b > d/b; echo a > d/a; echo c > d/sub/c'));
  t.is(await m.ok('ls -A d'), 'a\n');
  t.is(await m.ok('cat d/a'), 'top\n');
  t.is((await m.sh('ls d/sub')).code, 2);
});

test('a non-directory hides a directory below it, and a directory hides a file', async (t) => {
  const m = await mountWith(t, twoLowers('ln -s elsewhere d; mkdir f', 'mkdir d; echo x > d/inside; echo file > f'));
  t.is(await m.ok('stat -c %F d f'), 'symbolic link\ndirectory\n');
  t.is(await m.ok('readlink d'), 'elsewhere\n');
  t.is(await m.ok('ls -A f'), '');
  t.not((await m.sh('cat d/inside')).code, 0);
});

test('merged readdir: union of all layers, no duplicates, top wins', async (t) => {
  const m = await mountWith(t, twoLowers('mkdir d; echo top > d/same; echo t > d/onlytop', 'mkdir d; echo bottom > d/same; echo b > d/onlybottom; mkdir d/sub'));
  await m.ok('echo up > d/same; echo u > d/onlyupper');
  t.is(await m.ok('ls -A d'), 'onlybottom\nonlytop\nonlyupper\nsame\nsub\n');
  t.is(await m.ok('cat d/same'), 'up\n');
  // Node's readdir agrees and sees no dups with many entries too.
  await m.ok('for i in $(seq 1 300); do : > d/n$i; done');
  const names = await m.node<string[]>(`return fs.readdir('d');`);
  t.is(names.length, new Set(names).size);
  t.is(names.length, 305);
});

test('.wh. names cannot be created through the mount', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'echo x > f; mkdir d') });
  const codes = await m.node<string[]>(`return [
    await tryCode(() => fs.writeFile('.wh.f', '')),
    await tryCode(() => fs.mkdir('.wh.x')),
    await tryCode(() => fs.mkdir('d/.wh..wh..opq')),
    await tryCode(() => fs.symlink('f', '.wh.l')),
    await tryCode(() => fs.link('f', '.wh.h')),
    await tryCode(() => fs.rename('f', '.wh.r')),
  ];`);
  for (const c of codes) t.not(c, 'ok');
  t.is(await m.ok('ls -A; ls -A d'), 'd\nf\n');
  t.is(await m.ok('cat f'), 'x\n');
});

test('unlink of a lower file leaves an OCI whiteout in upper; of an upper-only file removes it', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'mkdir -p d; echo x > d/f; echo y > g') });
  await m.ok('echo n > new && rm new d/f g');
  t.is(await m.ok('find . | sort'), '.\n./d\n');
  const wh = await fs.lstat(path.join(m.upper!, 'd', '.wh.f'));
  t.true(wh.isFile());
  t.deepEqual(await tree(m.upper!), ['.wh.g', 'd/', 'd/.wh.f']);
  // Creating the name again replaces the whiteout.
  await m.ok('echo again > g');
  t.is(await m.ok('cat g'), 'again\n');
  t.deepEqual(await tree(m.upper!), ['d/', 'd/.wh.f', 'g']);
});

test('rmdir: ENOTEMPTY while any layer has an entry; whiteouts alone do not count', async (t) => {
  const m = await mountWith(t, twoLowers('mkdir d; echo 1 > d/a', 'mkdir d; echo 2 > d/b'));
  const out = await m.node<string[]>(`
    const r = [await tryCode(() => fs.rmdir('d'))];
    await fs.unlink('d/a');
    r.push(await tryCode(() => fs.rmdir('d')));
    await fs.unlink('d/b');
    r.push(await tryCode(() => fs.rmdir('d')));
    r.push(await tryCode(() => fs.stat('d')));
    return r;
  `);
  t.deepEqual(out, ['ENOTEMPTY', 'ENOTEMPTY', 'ok', 'ENOENT']);
  t.deepEqual(await tree(m.upper!), ['.wh.d']);
});

test('mkdir over a whiteout makes an opaque directory', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'mkdir d; echo x > d/old') });
  await m.ok('rm -r d && mkdir d && echo n > d/new');
  t.is(await m.ok('ls -A d'), 'new\n');
  t.deepEqual(await tree(m.upper!), ['d/', 'd/.wh..wh..opq', 'd/new']);
});

test('copy-up keeps mode, owner, times and xattrs, and makes parents with the lower metadata', async (t) => {
  const m = await mountWith(t, {
    setup: async (l) =>
      fill(
        l.lowers[0]!,
        `mkdir -p a/b; echo data > a/b/f
         chmod 0640 a/b/f; chown 1234:5678 a/b/f; setfattr -n user.k -v v a/b/f
         chmod 0750 a; chown 11:12 a; chmod 0705 a/b; chown 13:14 a/b; setfattr -n user.dir -v b a/b
         touch -d '2001-01-01 01:01:01.111111111' a/b/f; touch -d '2002-02-02 02:02:02' a/b; touch -d '2003-03-03 03:03:03' a`,
      ),
  });
  const before = await m.ok('stat -c "%n %i %a %u %g %X %Y" a a/b a/b/f');
  // setxattr copies up without changing the times.
  await m.ok('setfattr -n user.new -v 1 a/b/f');
  t.is(await m.ok('stat -c "%n %i %a %u %g %X %Y" a a/b a/b/f'), before, 'same metadata, same inode numbers');
  const up = (p: string) => path.join(m.upper!, p);
  const sf = await fs.stat(up('a/b/f'), { bigint: true });
  t.is(Number(sf.mode & 0o7777n), 0o640);
  t.deepEqual([sf.uid, sf.gid], [1234n, 5678n]);
  t.is(sf.mtimeNs, BigInt(Date.UTC(2001, 0, 1, 1, 1, 1)) * 1000000n + 111111111n);
  t.is(await m.ok('getfattr --only-values -n user.k a/b/f'), 'v');
  t.regex((await m.ok(`getfattr -d ${up('a/b/f')}`)), /user\.k="v"[\s\S]*user\.new="1"/);
  const sb = await fs.stat(up('a/b'));
  t.deepEqual([sb.mode & 0o7777, sb.uid, sb.gid, sb.mtimeMs], [0o705, 13, 14, Date.UTC(2002, 1, 2, 2, 2, 2)]);
  t.is((await m.ok(`getfattr --only-values -n user.dir ${up('a/b')}`)), 'b');
  const sa = await fs.stat(up('a'));
  t.deepEqual([sa.mode & 0o7777, sa.uid, sa.gid, sa.mtimeMs], [0o750, 11, 12, Date.UTC(2003, 2, 3, 3, 3, 3)]);
  // Writing keeps the owner and mode, and the content.
  await m.ok('echo more >> a/b/f');
  t.is(await fs.readFile(up('a/b/f'), 'utf8'), 'data\nmore\n');
  t.is(await m.ok('stat -c "%a %u %g" a/b/f'), '640 1234 5678\n');
  // The lower is untouched.
  t.is(await fs.readFile(path.join(m.lowers[0]!, 'a/b/f'), 'utf8'), 'data\n');
});

test('the same path keeps its st_ino across copy-up, for files and directories', async (t) => {
  const m = await mountWith(t, twoLowers('mkdir d; echo x > d/f', 'echo y > bottom; mkdir e'));
  const before = await m.ok('stat -c "%n %i" d d/f bottom e');
  await m.ok('echo 1 >> d/f && chmod 600 bottom && touch e/new && chmod 700 d');
  t.is(await m.ok('stat -c "%n %i" d d/f bottom e'), before);
  // Inode numbers are distinct across different files.
  const inos = (await m.ok('stat -c %i d d/f bottom e e/new')).trim().split('\n');
  t.is(new Set(inos).size, inos.length);
});

test('hard links: lower links share one inode; link of a lower file copies it up once', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'echo x > h1; ln h1 h2; echo y > solo') });
  t.is(await m.ok('stat -c %i:%h h1 h2 | uniq | wc -l'), '1\n');
  t.is(await m.ok('stat -c %h h1'), '2\n');
  const ino = (await m.ok('stat -c %i solo')).trim();
  await m.ok('ln solo solo2');
  t.is(await m.ok('stat -c %i:%h solo2'), `${ino}:2\n`, 'the lower inode number, two links');
  await m.ok('echo z >> solo2');
  t.is(await m.ok('cat solo2'), 'y\nz\n');
  const a = await fs.stat(path.join(m.upper!, 'solo'));
  const b = await fs.stat(path.join(m.upper!, 'solo2'));
  t.is(a.ino, b.ino, 'a real hard link in upper');
  t.is(await fs.readFile(path.join(m.upper!, 'solo'), 'utf8'), 'y\nz\n');
});

test('rename of a whole lower directory with contents, across directories, never EXDEV', async (t) => {
  const m = await mountWith(
    t,
    twoLowers('mkdir -p src/sub; echo top > src/sub/f; ln -s f src/sub/l', 'mkdir -p src/deep/er other; echo b > src/b; echo d > src/deep/er/d; chmod 0701 src/deep'),
  );
  const before = await m.ok('cd src && find . -exec stat -c "%n %a %u %g %F" {} + | sort');
  const res = await m.node<string>(`return tryCode(() => fs.rename('src', 'other/moved'));`);
  t.is(res, 'ok');
  t.is(await m.ok('cd other/moved && find . -exec stat -c "%n %a %u %g %F" {} + | sort'), before);
  t.is(await m.ok('cat other/moved/sub/f other/moved/b other/moved/deep/er/d'), 'top\nb\nd\n');
  t.is(await m.ok('readlink other/moved/sub/l'), 'f\n');
  t.is((await m.sh('ls src')).code, 2);
  t.is(await m.ok('ls -A'), 'other\n');
  // mv of a lower dir with the shell's mv too, and back.
  await m.ok('mv other/moved back && mv back/deep . && ls -A deep/er');
  t.is(await m.ok('ls -A back'), 'b\nsub\n');
  // The lowers are untouched.
  t.is(await fs.readFile(path.join(m.lowers[1]!, 'src/deep/er/d'), 'utf8'), 'd\n');
});

test('rename replacing targets: lower file over lower file, dir over empty lower dir', async (t) => {
  const m = await mountWith(t, twoLowers('echo a > a; mkdir d1; echo in > d1/x', 'echo b > b; mkdir d2; mkdir d3; : > d3/y'));
  const codes = await m.node<Record<string, string>>(`return {
    file: await tryCode(() => fs.rename('a', 'b')),
    dirOverEmpty: await tryCode(() => fs.rename('d1', 'd2')),
    dirOverFull: await tryCode(() => fs.rename('d2', 'd3')),
  };`);
  t.deepEqual(codes, { file: 'ok', dirOverEmpty: 'ok', dirOverFull: 'ENOTEMPTY' });
  t.is(await m.ok('cat b; ls -A d2; ls -A'), 'a\nx\nb\nd2\nd3\n');
  // A whiteout stands where a lower name went away.
  const upper = await tree(m.upper!);
  t.true(upper.includes('.wh.a'));
  t.true(upper.includes('.wh.d1'));
});

test('upper holds the OCI form after a mixed session', async (t) => {
  const m = await mountWith(t, twoLowers('mkdir -p etc; echo c > etc/conf; echo r > readme', 'mkdir -p etc var/log; echo p > etc/passwd; echo l > var/log/old'));
  await m.ok(`
    echo changed >> etc/conf
    rm readme
    rm -r var/log
    mkdir var/log && echo new > var/log/new
    mkdir fresh && echo f > fresh/file
    chmod 600 etc/passwd
  `);
  t.deepEqual(await tree(m.upper!), [
    '.wh.readme', 'etc/', 'etc/conf', 'etc/passwd', 'fresh/', 'fresh/file', 'var/', 'var/log/', 'var/log/.wh..wh..opq', 'var/log/new',
  ]);
  t.is(await m.ok('find . -type f | sort | xargs cat'), 'c\nchanged\np\nf\nnew\n');
});

test('files made in a directory only upper has: owner, mode and whiteouts as the union rules say', async (t) => {
  // d exists only in upper and holds a stale whiteout of x; u is made through the mount.
  const m = await mountWith(t, { setup: async (l) => fill(l.upper!, 'mkdir d; : > d/.wh.x; chmod 0 d/.wh.x') });
  await m.ok('echo new > d/x; echo y > d/y; mkdir -m 777 u; umask 027; echo z > u/z');
  t.deepEqual(await tree(m.upper!), ['d/', 'd/x', 'd/y', 'u/', 'u/z'], 'the whiteout under the new name is gone');
  t.is(await m.ok('cat d/x d/y; stat -c "%a %u %g" d/y u/z'), 'new\ny\n644 0 0\n640 0 0\n');
  // made by another user: theirs, not the server's
  const r = await shAs(1000, 1000, 'echo mine > u/mine && stat -c "%u %g" u/mine', { cwd: m.mnt });
  t.is(r.stdout, '1000 1000\n', r.stderr);
  const st = await fs.lstat(path.join(m.upper!, 'u', 'mine'));
  t.deepEqual([st.uid, st.gid], [1000, 1000]);
  // an existing name opens (O_EXCL refused in C, the plain open in JS), and O_EXCL says EEXIST
  t.is(await m.ok('echo again >> d/y; cat d/y'), 'y\nagain\n');
  t.regex((await m.sh('set -C; echo no > d/y')).stderr, /exists/);
});

// Every filesystem operation a Linux program uses, through a real ufs mount, compared with
// what ext4 gives (the temp dirs live on ext4: the same calls on a plain directory are the
// reference where that is handy).
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fill, mountWith, nodeIn, sh, tempDir } from './helpers/mount.js';

test('create, write, read, append, truncate, fsync, stat size', async (t) => {
  const m = await mountWith(t);
  const out = await m.node<Record<string, unknown>>(`
    await fs.writeFile('f', 'hello');
    await fs.appendFile('f', ' world');
    const a = await fs.readFile('f', 'utf8');
    const h = await fs.open('f', 'r+');
    await h.write('J', 0);
    await h.sync();
    await h.datasync();
    const st1 = await h.stat();
    await h.truncate(3);
    const st2 = await h.stat();
    await h.close();
    await fs.truncate('f', 10);
    const b = await fs.readFile('f');
    const big = Buffer.alloc(3 << 20, 7);
    await fs.writeFile('big', big);
    const back = await fs.readFile('big');
    return { a, size1: st1.size, size2: st2.size, b: [...b], bigOk: back.equals(big), pos: (await fs.readFile('f', 'latin1')).length };
  `);
  t.deepEqual(out, { a: 'hello world', size1: 11, size2: 3, b: [74, 101, 108, 0, 0, 0, 0, 0, 0, 0], bigOk: true, pos: 10 });
  t.is(await fs.readFile(path.join(m.upper!, 'f'), 'latin1'), 'Jel\0\0\0\0\0\0\0');
});

test('readdir: . and .., names, types, with inode numbers matching stat', async (t) => {
  const m = await mountWith(t, {
    setup: async (l) => fill(l.lowers[0]!, 'mkdir d; echo x > f; ln -s f l; mkfifo p'),
  });
  await m.ok('touch n');
  const out = await m.node<{ names: string[]; types: Record<string, string>; inoMatch: boolean; dots: boolean }>(`
    const ents = await fs.readdir('.', { withFileTypes: true });
    const types = Object.fromEntries(ents.map((e) => [e.name, e.isDirectory() ? 'd' : e.isSymbolicLink() ? 'l' : e.isFIFO() ? 'p' : e.isFile() ? 'f' : '?']));
    return { names: ents.map((e) => e.name).sort(), types, inoMatch: true, dots: true };
  `);
  t.deepEqual(out.names, ['d', 'f', 'l', 'n', 'p']);
  t.deepEqual(out.types, { d: 'd', f: 'f', l: 'l', n: 'f', p: 'p' });
  // ls -ai: the inode of each entry as readdir reports it equals stat's.
  const lsOut = await m.ok('ls -ai1');
  const byName = new Map(lsOut.trim().split('\n').map((line) => {
    const [ino, name] = line.trim().split(/\s+/);
    return [name!, Number(ino)];
  }));
  t.deepEqual([...byName.keys()].sort(), ['.', '..', 'd', 'f', 'l', 'n', 'p']);
  for (const name of ['d', 'f', 'l', 'n', 'p', '.']) {
    const st = await fs.lstat(path.join(m.mnt, name));
    t.is(byName.get(name), st.ino, name);
  }
});

test('mkdir, rmdir, unlink, and their errno values', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'mkdir full; echo x > full/f; echo y > file') });
  const codes = await m.node<Record<string, string>>(`return {
    mkdir: await tryCode(() => fs.mkdir('d')),
    mkdirExists: await tryCode(() => fs.mkdir('d')),
    mkdirOverFile: await tryCode(() => fs.mkdir('file')),
    mkdirNoParent: await tryCode(() => fs.mkdir('nope/d')),
    mkdirUnderFile: await tryCode(() => fs.mkdir('file/d')),
    rmdirNotEmpty: await tryCode(() => fs.rmdir('full')),
    rmdirFile: await tryCode(() => fs.rmdir('file')),
    rmdirMissing: await tryCode(() => fs.rmdir('missing')),
    rmdir: await tryCode(() => fs.rmdir('d')),
    unlinkDir: await tryCode(() => fs.unlink('full')),
    unlinkMissing: await tryCode(() => fs.unlink('missing')),
    unlinkThroughFile: await tryCode(() => fs.unlink('file/x')),
    openMissing: await tryCode(() => fs.readFile('missing')),
    openDirForWrite: await tryCode(() => fs.writeFile('full', 'x')),
    createExcl: await tryCode(() => fs.writeFile('file', 'x', { flag: 'wx' })),
    unlink: await tryCode(() => fs.unlink('full/f')),
    rmdirNowEmpty: await tryCode(() => fs.rmdir('full')),
    nameTooLong: await tryCode(() => fs.writeFile('x'.repeat(256), '')),
  };`);
  t.deepEqual(codes, {
    mkdir: 'ok', mkdirExists: 'EEXIST', mkdirOverFile: 'EEXIST', mkdirNoParent: 'ENOENT', mkdirUnderFile: 'ENOTDIR',
    rmdirNotEmpty: 'ENOTEMPTY', rmdirFile: 'ENOTDIR', rmdirMissing: 'ENOENT', rmdir: 'ok', unlinkDir: 'EISDIR',
    unlinkMissing: 'ENOENT', unlinkThroughFile: 'ENOTDIR', openMissing: 'ENOENT', openDirForWrite: 'EISDIR',
    createExcl: 'EEXIST', unlink: 'ok', rmdirNowEmpty: 'ok', nameTooLong: 'ENAMETOOLONG',
  });
  t.is(await m.ok('ls -A'), 'file\n');
});

test('the same errno values as ext4 for a batch of failing calls', async (t) => {
  // One script, run on a plain ext4 dir and through the mount, must give the same codes.
  const script = `return {
    a: await tryCode(() => fs.rename('dir', 'dir/sub/inside')),
    b: await tryCode(() => fs.rename('file', 'dir2')),
    c: await tryCode(() => fs.rename('dir', 'file')),
    d: await tryCode(() => fs.rename('dir2', 'dir')),
    e: await tryCode(() => fs.link('dir', 'dirlink')),
    f: await tryCode(() => fs.link('file', 'file2')),
    g: await tryCode(() => fs.symlink('x', 'file')),
    h: await tryCode(() => fs.readlink('file')),
    i: await tryCode(() => fs.readdir('file')),
    j: await tryCode(() => fs.rmdir('.')),
    k: await tryCode(() => fs.open('file/', 'r')),
    l: await tryCode(() => fs.mkdir('dir2/x/y')),
    m: await tryCode(() => fs.rename('missing', 'x')),
    n: await tryCode(() => fs.truncate('dir', 0)),
    o: await tryCode(() => fs.rename('file', 'file')),
    p: await tryCode(() => fs.rename('dir', 'dir/')),
  };`;
  const setup = 'mkdir -p dir/sub dir2/in; echo x > file; echo y > file2';
  const plain = await tempDir(t);
  await fill(plain, setup);
  const expected = await nodeIn(plain, script);
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, setup) });
  t.deepEqual(await m.node(script), expected);
});

test('symlink and readlink; lstat of a link', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'ln -s /etc/passwd abs; ln -s dangling rel') });
  await m.ok('ln -s ../some/where new && echo hi > target && ln -s target tl');
  t.is(await m.ok('readlink abs rel new tl'), '/etc/passwd\ndangling\n../some/where\ntarget\n');
  t.is(await m.ok('cat tl'), 'hi\n');
  t.is(await m.ok('stat -c %F:%s new'), 'symbolic link:13\n');
  // A symlink in a layer is never followed to the host.
  const r = await m.sh('cat rel');
  t.not(r.code, 0);
  t.regex(r.stderr, /No such file/);
});

test('hard links: one inode, right st_nlink on each new name, shared content, real links in upper', async (t) => {
  const m = await mountWith(t);
  await m.ok('echo one > a && ln a b && mkdir d && ln a d/c');
  const ino = (await m.ok('stat -c %i a')).trim();
  t.is(await m.ok('stat -c %i:%h a; stat -c %i:%h b; stat -c %i:%h d/c'), `${ino}:3\n${ino}:3\n${ino}:3\n`);
  await m.ok('echo two >> d/c');
  t.is(await m.ok('cat d/c'), 'one\ntwo\n');
  const [a, b, c] = await Promise.all(['a', 'b', 'd/c'].map((p) => fs.stat(path.join(m.upper!, p))));
  t.deepEqual([a!.ino === b!.ino, b!.ino === c!.ino, a!.nlink], [true, true, 3]);
  t.is(await fs.readFile(path.join(m.upper!, 'b'), 'utf8'), 'one\ntwo\n');
});

// One kernel inode per union inode (the low-level binding): a name the kernel looked up before
// a change through another name sees the change at once (fuse-native's libfuse2 high-level API
// gives each name its own kernel inode and cannot).
test('hard links: names looked up before a change see the new st_nlink and content', async (t) => {
  const m = await mountWith(t);
  await m.ok('echo one > a && stat a >/dev/null && cat a >/dev/null && ln a b');
  t.is(await m.ok('stat -c %h a'), '2\n');
  await m.ok('echo two >> b');
  t.is(await m.ok('cat a'), 'one\ntwo\n');
  await m.ok('rm b');
  t.is(await m.ok('stat -c %h a'), '1\n');
});

test('chmod, chown, and their effect on stat, as on ext4', async (t) => {
  const setup = 'echo x > f; mkdir d';
  const script = `
    chown 1234:5678 f && chmod 4751 f && chmod 1777 d && chown :99 d && stat -c %a:%u:%g f d
    chown 42 f && stat -c %a:%u:%g f
    chmod 6755 f && chown 43 f && stat -c %a:%u:%g f
    ln -s f l && chown -h 7:8 l && stat -c %u:%g l && stat -L -c %u:%g l`;
  const plain = await tempDir(t);
  await fill(plain, setup);
  const expected = (await sh(script, { cwd: plain })).stdout;
  t.regex(expected, /^4751:1234:5678\n1777:0:99\n/);
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, setup) });
  t.is(await m.ok(script), expected);
});

test('utimens: touch -m, touch -a, touch -d, nanoseconds, UTIME_NOW/OMIT, symlinks', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'echo x > f; touch -d "2001-02-03 04:05:06.123456789" f; ln -s f l') });
  t.is(await m.ok('stat -c %y f'), '2001-02-03 04:05:06.123456789 +0000\n');
  await m.ok('touch -m -d "2010-01-01 00:00:00.5" f');
  t.is(await m.ok('stat -c "%x|%y" f'), '2001-02-03 04:05:06.123456789 +0000|2010-01-01 00:00:00.500000000 +0000\n');
  await m.ok('touch -a -d "2011-01-01 00:00:00.25" f');
  t.is(await m.ok('stat -c "%x|%y" f'), '2011-01-01 00:00:00.250000000 +0000|2010-01-01 00:00:00.500000000 +0000\n');
  // touch -m alone: mtime becomes now (UTIME_NOW), atime stays (UTIME_OMIT).
  await m.ok('touch -m f');
  const [atime, mtime] = (await m.ok('stat -c "%X %Y" f')).trim().split(' ').map(Number);
  t.is(atime, Date.UTC(2011, 0, 1) / 1000);
  t.true(Math.abs(mtime! - Date.now() / 1000) < 120);
  // On the link itself, not its target.
  await m.ok('touch -h -d "1999-09-09 09:09:09" l');
  t.is(await m.ok('stat -c %y l'), '1999-09-09 09:09:09.000000000 +0000\n');
  t.is(await m.ok('stat -L -c %X f'), `${atime}\n`);
  // touch of a new file creates it with now.
  await m.ok('touch new');
  t.true(Math.abs(Number(await m.ok('stat -c %Y new')) - Date.now() / 1000) < 120);
});

test('mknod: fifos, character and block devices as root, sockets via mknod', async (t) => {
  const m = await mountWith(t);
  await m.ok('mkfifo fifo && mknod null c 1 3 && mknod blk b 7 0');
  t.is(await m.ok('stat -c "%F %t %T" fifo null blk'), 'fifo 0 0\ncharacter special file 1 3\nblock special file 7 0\n');
  // The fifo works through the mount.
  t.is(await m.ok('(echo through > fifo &) ; cat fifo'), 'through\n');
  t.is(await m.ok('echo discard > null; stat -c %s null'), '0\n');
  const st = await fs.lstat(path.join(m.upper!, 'null'));
  t.true(st.isCharacterDevice());
  t.is(st.rdev, (1 << 8) | 3);
});

test('xattrs: set, get, list, remove; sizes and errors', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'echo x > f; setfattr -n user.lower -v low f') });
  t.is(await m.ok('getfattr --only-values -n user.lower f'), 'low');
  await m.ok('setfattr -n user.a -v hello f && setfattr -n user.b -v 0x00ff00 f && setfattr -n trusted.t -v tt f');
  const dump = (await m.ok('getfattr -d -m - f')).split('\n').filter((x) => x && !x.startsWith('#')).sort();
  t.deepEqual(dump, ['trusted.t="tt"', 'user.a="hello"', 'user.b=0sAP8A', 'user.lower="low"']);
  await m.ok('setfattr -x user.a f');
  const r = await m.sh('getfattr -n user.a f');
  t.not(r.code, 0);
  t.regex(r.stderr, /No such attribute/);
  const r2 = await m.sh('setfattr -x user.nope f');
  t.regex(r2.stderr, /No such attribute/);
  // A big value round-trips (size query, then read).
  const big = 'v'.repeat(3000);
  await m.ok(`setfattr -n user.big -v ${big} f`);
  t.is(await m.ok('getfattr --only-values -n user.big f'), big);
  // On a directory and on a symlink's target.
  await m.ok('mkdir d && setfattr -n user.dir -v 1 d');
  t.is(await m.ok('getfattr --only-values -n user.dir d'), '1');
  // POSIX ACLs are not supported (the kernel would not enforce them): tools fall back to chmod.
  const acl = await m.sh('setfattr -n system.posix_acl_access -v 0x0200000001000600ffffffff04000400ffffffff20000000ffffffff f');
  t.regex(acl.stderr, /Operation not supported/);
  // Private union metadata never shows.
  t.notRegex(await m.ok('getfattr -d -m - f d . 2>/dev/null'), /trusted\.ufs/);
});

test('statfs and access', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'echo x > f; chmod 0644 f') });
  const out = (await m.ok('stat -f -c "%b %S %l" .')).trim().split(' ').map(Number);
  t.true(out[0]! > 0, 'blocks');
  t.true(out[1]! > 0, 'block size');
  t.is(out[2], 255, 'name max');
  const df = await m.ok(`df -P ${m.mnt} | tail -1`);
  t.regex(df, /^ufs:/);
  const acc = await m.node<Record<string, string>>(`return {
    r: await tryCode(() => fs.access('f', fsc.constants.R_OK)),
    w: await tryCode(() => fs.access('f', fsc.constants.W_OK)),
    x: await tryCode(() => fs.access('f', fsc.constants.X_OK)),
    missing: await tryCode(() => fs.access('nope')),
  };`);
  t.deepEqual(acc, { r: 'ok', w: 'ok', x: 'EACCES', missing: 'ENOENT' });
});

test('rename: files, directories, across directories, replacing files and empty dirs', async (t) => {
  const m = await mountWith(t);
  await m.ok('mkdir -p a/b c && echo 1 > a/b/f && echo 2 > g && mkdir empty');
  await m.ok('mv a/b/f c/f && mv g c/f2 && mv c/f2 c/f && mv a/b c/b && mv -T c empty');
  t.is(await m.ok('find . | sort'), '.\n./a\n./empty\n./empty/b\n./empty/f\n');
  t.is(await m.ok('cat empty/f'), '2\n');
  const codes = await m.node<Record<string, string>>(`
    await fs.mkdir('full'); await fs.writeFile('full/x', '');
    await fs.mkdir('e2');
    return {
      overNonEmpty: await tryCode(() => fs.rename('e2', 'full')),
      dirOverFile: await tryCode(() => fs.rename('e2', 'empty/f')),
      fileOverDir: await tryCode(() => fs.rename('empty/f', 'e2')),
      intoItself: await tryCode(() => fs.rename('full', 'full/x2')),
    };`);
  t.deepEqual(codes, { overNonEmpty: 'ENOTEMPTY', dirOverFile: 'ENOTDIR', fileOverDir: 'EISDIR', intoItself: 'EINVAL' });
});

test('open file survives its unlink (served by handle)', async (t) => {
  const m = await mountWith(t);
  const out = await m.node<unknown>(`
    await fs.writeFile('f', 'abc');
    const h = await fs.open('f', 'r+');
    await fs.unlink('f');
    const gone = await tryCode(() => fs.stat('f'));
    await h.write('XY', 3);
    const st = await h.stat();
    const buf = Buffer.alloc(5);
    await h.read(buf, 0, 5, 0);
    await h.truncate(2);
    const st2 = await h.stat();
    await h.close();
    return [gone, st.size, buf.toString(), st2.size, (await fs.readdir('.')).length];
  `);
  t.deepEqual(out, ['ENOENT', 5, 'abcXY', 2, 0]);
  t.deepEqual((await fs.readdir(m.upper!)).filter((n) => !n.startsWith('.wh..wh..ufs')), []);
});

test('files created through the mount get the caller owner, the umask, and setgid dirs', async (t) => {
  const m = await mountWith(t);
  await m.ok('chmod 777 .');
  const r = await m.sh('umask 027; echo x > f; mkdir d; ln -s f l; mkfifo p; stat -c "%n %a %u %g" f d l p', {
    env: { ...process.env },
  });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'f 640 0 0\nd 750 0 0\nl 777 0 0\np 640 0 0\n');
  await m.ok('mkdir sg && chown 0:77 sg && chmod 2775 sg && mkdir sg/sub && touch sg/f');
  t.is(await m.ok('stat -c "%a %g" sg/sub sg/f'), '2755 77\n644 77\n');
});

test('mmap, directory fsync, file locks and unix sockets work as programs use them', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'printf abcdefgh > mapped') });
  const py = `
import fcntl, mmap, os, socket
with open('mapped', 'r+b') as f:
    mm = mmap.mmap(f.fileno(), 0)
    mm[0:3] = b'XYZ'
    mm.flush()
    mm.close()
print(open('mapped', 'rb').read().decode())
fd = os.open('.', os.O_RDONLY)
os.fsync(fd)
os.close(fd)
with open('lockfile', 'w') as f:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print('locked')
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind('sock')
s.listen(1)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect('sock')
a, _ = s.accept()
c.sendall(b'ping')
print(a.recv(4).decode())
`;
  const r = await m.sh(`python3 -c "$PY"`, { env: { ...process.env, PY: py } });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'XYZdefgh\nlocked\nping\n');
  t.is(await m.ok('stat -c %F sock'), 'socket\n');
  t.is(await fs.readFile(path.join(m.upper!, 'mapped'), 'utf8'), 'XYZdefgh');
  t.is(await fs.readFile(path.join(m.lowers[0]!, 'mapped'), 'utf8'), 'abcdefgh');
});

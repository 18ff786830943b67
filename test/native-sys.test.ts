// The syscall addon (native/sys/ufs_native.c through src/sys/index.ts), on a real filesystem
// under os.tmpdir(). Runs as root (trusted.* xattrs, device nodes, RENAME_WHITEOUT).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  MNT_DETACH, RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, sys, UTIME_NOW, UTIME_OMIT, XATTR_CREATE,
  XATTR_REPLACE,
} from '../src/sys/index.js';
import { PROJECT_ROOT } from '../src/common/paths.js';

// The addon itself, for a child process that loads it with require.
const SYS_CJS = path.join(PROJECT_ROOT, 'native', 'build', 'Release', 'ufs_native.node');

// glibc's makedev (what st_rdev holds).
function makedev(major: number, minor: number): number {
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12);
}

async function tmpdir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ufs-test-sys-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

function nodeError(fn: () => unknown): NodeJS.ErrnoException & { dest?: string } {
  try {
    fn();
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  throw new Error('expected a throw');
}

test('xattrs round trip: binary user.*, trusted.* as root, empty values, list and remove', async (t) => {
  const dir = await tmpdir(t);
  const file = path.join(dir, 'f');
  await fsp.writeFile(file, 'x');
  const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

  sys.lsetxattr(file, 'user.bin', binary, 0);
  sys.lsetxattr(file, 'trusted.ufs.origin', Buffer.from('o'), 0);
  sys.lsetxattr(file, 'user.empty', Buffer.alloc(0), 0);

  t.deepEqual(sys.lgetxattr(file, 'user.bin'), binary);
  t.deepEqual(sys.lgetxattr(file, 'trusted.ufs.origin'), Buffer.from('o'));
  t.deepEqual(sys.lgetxattr(file, 'user.empty'), Buffer.alloc(0));
  t.deepEqual(sys.llistxattr(file).sort(), ['trusted.ufs.origin', 'user.bin', 'user.empty']);

  sys.lremovexattr(file, 'user.bin');
  t.deepEqual(sys.llistxattr(file).sort(), ['trusted.ufs.origin', 'user.empty']);

  // Larger than a small fixed buffer would hold (ext4 keeps all xattrs in one 4 KiB block).
  const big = Buffer.alloc(3000, 7);
  sys.lsetxattr(file, 'user.big', big, 0);
  t.deepEqual(sys.lgetxattr(file, 'user.big'), big);
});

test('xattr errors are Node-style: ENODATA, EEXIST on XATTR_CREATE, ENODATA on XATTR_REPLACE', async (t) => {
  const dir = await tmpdir(t);
  const file = path.join(dir, 'f');
  await fsp.writeFile(file, 'x');

  const missing = nodeError(() => sys.lgetxattr(file, 'user.missing'));
  t.true(missing instanceof Error);
  t.is(missing.code, 'ENODATA');
  t.is(missing.errno, -os.constants.errno.ENODATA);
  t.is(missing.syscall, 'lgetxattr');
  t.is(missing.path, file);
  t.is(missing.message, `ENODATA: no data available, lgetxattr '${file}'`);

  sys.lsetxattr(file, 'user.a', Buffer.from('1'), XATTR_CREATE);
  t.is(nodeError(() => sys.lsetxattr(file, 'user.a', Buffer.from('2'), XATTR_CREATE)).code, 'EEXIST');
  t.is(nodeError(() => sys.lsetxattr(file, 'user.b', Buffer.from('2'), XATTR_REPLACE)).code, 'ENODATA');
  sys.lsetxattr(file, 'user.a', Buffer.from('3'), XATTR_REPLACE);
  t.deepEqual(sys.lgetxattr(file, 'user.a'), Buffer.from('3'));
  t.is(nodeError(() => sys.lremovexattr(file, 'user.b')).code, 'ENODATA');

  const gone = path.join(dir, 'nope');
  const enoent = nodeError(() => sys.llistxattr(gone));
  t.is(enoent.code, 'ENOENT');
  t.is(enoent.message, `ENOENT: no such file or directory, llistxattr '${gone}'`);

  t.throws(() => sys.lsetxattr(file, 'user.a', 'text' as unknown as Buffer, 0), { instanceOf: TypeError });
});

test('xattrs act on a symlink itself, never on its target', async (t) => {
  const dir = await tmpdir(t);
  const target = path.join(dir, 'target');
  const link = path.join(dir, 'link');
  await fsp.writeFile(target, 'x');
  await fsp.symlink('target', link);

  sys.lsetxattr(link, 'trusted.ufs.link', Buffer.from('L'), 0);
  t.deepEqual(sys.lgetxattr(link, 'trusted.ufs.link'), Buffer.from('L'));
  t.deepEqual(sys.llistxattr(target), []);
  t.is(nodeError(() => sys.lgetxattr(target, 'trusted.ufs.link')).code, 'ENODATA');
});

test('mknod makes a FIFO and a character device with the given dev', async (t) => {
  const dir = await tmpdir(t);
  const fifo = path.join(dir, 'fifo');
  const chr = path.join(dir, 'null');
  const wide = path.join(dir, 'wide');

  sys.mknod(fifo, 0o010640, 0);
  sys.mknod(chr, 0o020666, makedev(1, 3));
  sys.mknod(wide, 0o020600, makedev(300, 70000));

  const f = await fsp.lstat(fifo);
  t.true(f.isFIFO());
  t.is(f.mode & 0o777, 0o640 & ~process.umask());
  const c = await fsp.lstat(chr);
  t.true(c.isCharacterDevice());
  t.is(c.rdev, makedev(1, 3));
  t.is((await fsp.lstat(wide)).rdev, makedev(300, 70000));

  const exists = nodeError(() => sys.mknod(fifo, 0o010644, 0));
  t.is(exists.code, 'EEXIST');
  t.is(exists.syscall, 'mknod');
  t.is(nodeError(() => sys.mknod(path.join(dir, 'no', 'x'), 0o010644, 0)).code, 'ENOENT');
});

test('utimensat sets nanosecond times, honours UTIME_OMIT and UTIME_NOW, and never follows a symlink', async (t) => {
  const dir = await tmpdir(t);
  const file = path.join(dir, 'f');
  const link = path.join(dir, 'l');
  await fsp.writeFile(file, 'x');
  await fsp.symlink('f', link);

  sys.utimensat(file, 1000000000, 123456789, 1100000000, 987654321);
  let st = await fsp.lstat(file, { bigint: true });
  t.is(st.atimeNs, 1000000000123456789n);
  t.is(st.mtimeNs, 1100000000987654321n);

  // OMIT keeps the other time exactly.
  sys.utimensat(file, 1200000000, 1, 0, UTIME_OMIT);
  st = await fsp.lstat(file, { bigint: true });
  t.is(st.atimeNs, 1200000000000000001n);
  t.is(st.mtimeNs, 1100000000987654321n);
  sys.utimensat(file, 0, UTIME_OMIT, 1300000000, 2);
  st = await fsp.lstat(file, { bigint: true });
  t.is(st.atimeNs, 1200000000000000001n);
  t.is(st.mtimeNs, 1300000000000000002n);

  // NOW: the current time (the kernel's coarse clock may trail ours by a tick).
  const before = BigInt(Date.now()) * 1000000n - 1000000000n;
  sys.utimensat(file, 0, UTIME_NOW, 0, UTIME_NOW);
  const after = BigInt(Date.now()) * 1000000n + 1000000000n;
  st = await fsp.lstat(file, { bigint: true });
  for (const ns of [st.atimeNs, st.mtimeNs]) {
    t.true(ns >= before && ns <= after, `${ns} is not now`);
  }

  // On a symlink: the link's own times change, the target's do not.
  const targetBefore = await fsp.lstat(file, { bigint: true });
  sys.utimensat(link, 1400000000, 5, 1400000001, 6);
  const l = await fsp.lstat(link, { bigint: true });
  t.is(l.atimeNs, 1400000000000000005n);
  t.is(l.mtimeNs, 1400000001000000006n);
  const targetAfter = await fsp.lstat(file, { bigint: true });
  t.is(targetAfter.mtimeNs, targetBefore.mtimeNs);
  t.is(targetAfter.atimeNs, targetBefore.atimeNs);

  t.is(nodeError(() => sys.utimensat(path.join(dir, 'none'), 0, 0, 0, 0)).code, 'ENOENT');
});

test('renameat2: NOREPLACE, EXCHANGE and WHITEOUT', async (t) => {
  const dir = await tmpdir(t);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  const c = path.join(dir, 'c');
  await fsp.writeFile(a, 'A');
  await fsp.writeFile(b, 'B');

  const clash = nodeError(() => sys.renameat2(a, b, RENAME_NOREPLACE));
  t.is(clash.code, 'EEXIST');
  t.is(clash.syscall, 'renameat2');
  t.is(clash.path, a);
  t.is(clash.dest, b);
  t.is(clash.message, `EEXIST: file already exists, renameat2 '${a}' -> '${b}'`);
  t.is(await fsp.readFile(b, 'utf8'), 'B');

  sys.renameat2(a, c, RENAME_NOREPLACE);
  t.is(await fsp.readFile(c, 'utf8'), 'A');
  await t.throwsAsync(fsp.access(a), { code: 'ENOENT' });

  sys.renameat2(b, c, RENAME_EXCHANGE);
  t.is(await fsp.readFile(b, 'utf8'), 'A');
  t.is(await fsp.readFile(c, 'utf8'), 'B');
  t.is(nodeError(() => sys.renameat2(b, a, RENAME_EXCHANGE)).code, 'ENOENT');

  // WHITEOUT leaves a 0/0 character device where the source was (overlayfs' whiteout).
  sys.renameat2(b, a, RENAME_WHITEOUT);
  t.is(await fsp.readFile(a, 'utf8'), 'A');
  const wh = await fsp.lstat(b);
  t.true(wh.isCharacterDevice());
  t.is(wh.rdev, 0);

  sys.renameat2(c, path.join(dir, 'd'), 0);
  t.is(await fsp.readFile(path.join(dir, 'd'), 'utf8'), 'B');
});

test('bindNetns makes a network namespace of its own held by a bind mount, gone with its unmount', async (t) => {
  const dir = await tmpdir(t);
  const file = path.join(dir, 'ns');
  await fsp.writeFile(file, '');
  // The directory becomes a mount of its own (shared, as /run/netns): undone before the rm.
  t.teardown(() => {
    for (const m of [file, dir]) {
      try {
        sys.umount2(m, MNT_DETACH);
      } catch {
        // not mounted
      }
    }
  });
  sys.bindNetns(file);
  const ns = await fsp.stat(file);
  const ours = await fsp.stat('/proc/self/ns/net');
  t.not(ns.ino, ours.ino, 'a namespace other than ours');
  // This process (every thread of it that runs JS) stayed in its own namespace.
  t.is((await fsp.stat('/proc/thread-self/ns/net')).ino, ours.ino);
  const links = execFileSync('nsenter', [`--net=${file}`, 'ip', '-o', 'link'], { encoding: 'utf8' }).trim().split('\n');
  t.is(links.length, 1);
  t.regex(links[0]!, /: lo: /);
  t.regex(execFileSync('findmnt', ['-n', '-o', 'PROPAGATION', dir], { encoding: 'utf8' }), /shared/);
  sys.umount2(file, MNT_DETACH);
  t.not((await fsp.stat(file)).dev, ns.dev, 'the file is a plain file again');
  t.is(nodeError(() => sys.bindNetns(path.join(dir, 'missing'))).code, 'ENOENT');
});

test('openTreeClone reaches a mount through a detached copy that does not keep the mount busy', async (t) => {
  const dir = await tmpdir(t);
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(mnt);
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mnt]);
  t.teardown(() => {
    try {
      sys.umount2(mnt, MNT_DETACH);
    } catch {
      // unmounted by the test
    }
  });
  await fsp.writeFile(path.join(mnt, 'f'), 'inside');
  const fd = sys.openTreeClone(mnt);
  try {
    const root = `/proc/self/fd/${fd}`;
    t.deepEqual(await fsp.readdir(root), ['f']);
    const file = await fsp.open(`${root}/f`, 'r');
    try {
      // The copy is mounted nowhere, and does not hold the mount itself.
      const listed = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((x) => x.split(' ')[4] === mnt);
      t.is(listed.length, 1);
      sys.umount2(mnt, 0);
      t.deepEqual(await fsp.readdir(mnt), [], 'the mountpoint is a plain directory again');
      t.is(await file.readFile('utf8'), 'inside', 'the file system lives on through the copy');
    } finally {
      await file.close();
    }
  } finally {
    fs.closeSync(fd);
  }
  t.is(nodeError(() => sys.openTreeClone(path.join(dir, 'missing'))).code, 'ENOENT');
});

test('unmapCleanCode unmaps the clean pages of the node binary and the process runs on', (t) => {
  const script = `
    const fs = require('node:fs');
    const sys = require(process.argv[1]);
    const file = () => Number(/RssFile:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
    const before = file();
    const dropped = sys.unmapCleanCode(fs.realpathSync(process.execPath));
    const after = file();
    // Code and data of the binary mapped back as it runs: the same answers as before.
    const hash = require('node:crypto').createHash('sha256').update('ufs').digest('hex');
    const sorted = [3, 1, 2].sort().join();
    console.log(JSON.stringify({ before, dropped, after, hash, sorted, re: /a+b/.test('xaab') }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script, SYS_CJS], { encoding: 'utf8' })) as Record<string, unknown>;
  t.true((out.dropped as number) > 5000, `dropped ${String(out.dropped)} kB`);
  t.true((out.after as number) < (out.before as number) - 5000, `RssFile ${String(out.before)} -> ${String(out.after)} kB`);
  t.is(out.hash, crypto.createHash('sha256').update('ufs').digest('hex'));
  t.is(out.sorted, '1,2,3');
  t.is(out.re, true);
  t.is(sys.unmapCleanCode('/no/such/binary'), 0);
});

test('warmDirs reads directories ahead on a thread of its own and leaves their atimes alone', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ufs-warm-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const dirs = [dir];
  for (let i = 0; i < 20; i++) {
    const sub = path.join(dir, `d${i}`);
    await fsp.mkdir(sub);
    dirs.push(sub);
    for (let j = 0; j < 100; j++) await fsp.writeFile(path.join(sub, `f${j}`), '');
  }
  await fsp.symlink('/etc', path.join(dir, 'link'));
  const old = new Date('2001-02-03T04:05:06Z');
  for (const d of dirs) await fsp.utimes(d, old, (await fsp.stat(d)).mtime); // older than mtime: relatime would update it
  const script = `
    const fs = require('node:fs');
    const sys = require(process.argv[1]);
    let typeError = false;
    try { sys.warmDirs('not a list'); } catch (e) { typeError = e instanceof TypeError; }
    sys.warmDirs([]);
    sys.warmDirs(['/no/such/dir', process.argv[2] + '/link', process.argv[2]]);
    const task = () => fs.readdirSync('/proc/self/task').find((id) => fs.readFileSync('/proc/self/task/' + id + '/comm', 'utf8').trim() === 'ufs-warm');
    const runtime = (id) => Number(fs.readFileSync('/proc/self/task/' + id + '/schedstat', 'utf8').split(' ')[0]);
    const tid = task();
    let last = -1, now = tid ? runtime(tid) : 0;
    const until = Date.now() + 5000;
    while (tid && now !== last && Date.now() < until) { last = now; Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200); now = runtime(tid); }
    console.log(JSON.stringify({ typeError, thread: Boolean(tid), runtimeNs: now }));`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script, SYS_CJS, dir], { encoding: 'utf8' })) as { typeError: boolean; thread: boolean; runtimeNs: number };
  t.true(out.typeError, 'a bad argument is a TypeError');
  t.true(out.thread, 'the read-ahead thread runs');
  t.true(out.runtimeNs > 0, 'and did some work');
  for (const d of dirs) t.is((await fsp.stat(d)).atime.getTime(), old.getTime(), `${d}: atime untouched`);
});

test('lstatInto and fstatInto give what lstat and fstat give, for names of any bytes, without following links', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ufs-lstat-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const latin1 = Buffer.from([0x66, 0xe9, 0x0a, 0xff]); // "f\xe9\n\xff": not UTF-8
  const file = Buffer.concat([Buffer.from(`${dir}/`), latin1]);
  await fsp.writeFile(file, 'data');
  await fsp.symlink('/etc/passwd', path.join(dir, 'link'));
  const nums = new Float64Array(7);
  const bigs = new BigInt64Array(6);
  for (const p of [file, Buffer.from(path.join(dir, 'link')), Buffer.from(dir)]) {
    t.is(sys.lstatInto(p.toString('latin1'), nums, bigs), 0);
    const st = await fsp.lstat(p, { bigint: true });
    t.deepEqual([...nums], [st.dev, st.mode, st.nlink, st.uid, st.gid, st.rdev, st.blksize].map(Number));
    t.deepEqual([...bigs], [st.ino, st.size, st.blocks, st.atimeNs, st.mtimeNs, st.ctimeNs]);
  }
  t.is(sys.lstatInto(`${dir}/missing`, nums, bigs), os.constants.errno.ENOENT);
  t.is(sys.lstatInto(`${dir}/link/x`, nums, bigs), os.constants.errno.ENOTDIR);
  t.is(sys.lstatInto(`/${'a'.repeat(5000)}`, nums, bigs), os.constants.errno.ENAMETOOLONG);
  t.throws(() => sys.lstatInto(dir, new Float64Array(2), bigs), { instanceOf: TypeError });
  // fstatInto: the same fields, of an open fd
  const fd = fs.openSync(file, 'r');
  try {
    t.is(sys.fstatInto(fd, nums, bigs), 0);
    const st = fs.fstatSync(fd, { bigint: true });
    t.deepEqual([...nums], [st.dev, st.mode, st.nlink, st.uid, st.gid, st.rdev, st.blksize].map(Number));
    t.deepEqual([...bigs], [st.ino, st.size, st.blocks, st.atimeNs, st.mtimeNs, st.ctimeNs]);
  } finally {
    fs.closeSync(fd);
  }
  t.is(sys.fstatInto(fd, nums, bigs), os.constants.errno.EBADF);
  t.throws(() => sys.fstatInto(fd, nums, new BigInt64Array(1)), { instanceOf: TypeError });
});

test('readdirNames and lstatNamesInto list and lstat a whole directory, names of any bytes', async (t) => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ufs-dirnames-'));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  t.is(sys.readdirNames(dir), '', 'an empty directory');
  const latin1 = Buffer.from([0x66, 0xe9, 0x0a, 0xff]).toString('latin1'); // not UTF-8
  await fsp.writeFile(Buffer.from(`${dir}/${latin1}`, 'latin1'), 'data');
  await fsp.symlink('/etc/passwd', path.join(dir, 'link'));
  await fsp.mkdir(path.join(dir, 'sub'));
  // enough long names to grow the native name buffer (16 KiB at first) several times
  const many = Array.from({ length: 600 }, (_, i) => `${String(i).padStart(4, '0')}-${'n'.repeat(120)}`);
  for (const n of many) await fsp.writeFile(path.join(dir, n), '');
  const listed = sys.readdirNames(dir);
  t.is(typeof listed, 'string');
  const expected = fs.readdirSync(Buffer.from(dir), { encoding: 'buffer' }).map((b) => b.toString('latin1'));
  t.deepEqual((listed as string).split('\0'), expected, 'sorted as readdirSync sorts, byte names, no dot entries');
  t.is(sys.readdirNames(`${dir}/missing`), os.constants.errno.ENOENT);
  t.is(sys.readdirNames(`${dir}/link`), os.constants.errno.ENOTDIR);

  const names = [latin1, 'link', 'missing', 'sub', ...many];
  const nums = new Float64Array(7 * names.length);
  const bigs = new BigInt64Array(6 * names.length);
  const errs = new Int32Array(names.length).fill(-1);
  t.is(sys.lstatNamesInto(dir, names.join('\0'), nums, bigs, errs), 0);
  t.deepEqual([...errs.slice(0, 4)], [0, 0, os.constants.errno.ENOENT, 0]);
  t.true(errs.slice(4).every((e) => e === 0));
  for (const i of [0, 1, 3, 4 + 599]) {
    const st = await fsp.lstat(Buffer.from(`${dir}/${names[i]}`, 'latin1'), { bigint: true });
    t.deepEqual([...nums.slice(i * 7, i * 7 + 7)], [st.dev, st.mode, st.nlink, st.uid, st.gid, st.rdev, st.blksize].map(Number), names[i]);
    t.deepEqual([...bigs.slice(i * 6, i * 6 + 6)], [st.ino, st.size, st.blocks, st.atimeNs, st.mtimeNs, st.ctimeNs], names[i]);
  }
  t.is(sys.lstatNamesInto(`${dir}/missing`, 'x', nums, bigs, errs), os.constants.errno.ENOENT);
  t.is(sys.lstatNamesInto(dir, '', nums, bigs, errs), 0, 'no names: nothing to do');
  t.throws(() => sys.lstatNamesInto(dir, 'x', nums, bigs, new Float64Array(1) as unknown as Int32Array), { instanceOf: TypeError });
});

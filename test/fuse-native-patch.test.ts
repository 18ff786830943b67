// Our patch to fuse-native (native/patches/), through real mounts: each test mounts the
// passthrough fixture (test/fixtures/fuse-passthrough.ts) in a process of its own, drives the
// mount from here with real tools, and checks what arrived both on disk and in the fixture's
// record of its handlers (written when the FUSE loop ends).
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sys } from '../src/sys/index.js';
import type { FixtureConfig, FixtureState } from './fixtures/fuse-passthrough.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'fuse-passthrough.js');
const NS = 1000000000n;

interface Mounted {
  dir: string;
  source: string;
  mnt: string;
  stateFile: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, env: { ...process.env, TZ: 'UTC' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

async function mountInfo(mnt: string): Promise<string[] | undefined> {
  const lines = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n');
  return lines.map((l) => l.split(' ')).find((f) => f[4] === mnt);
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// Unmount (if still mounted), make sure the server is gone, then remove the temp dir; never
// recurse into a mount that is still there.
async function cleanup(m: Mounted): Promise<void> {
  if (await mountInfo(m.mnt)) await run('fusermount', ['-u', m.mnt]).catch(() => run('fusermount', ['-uz', m.mnt]).catch(() => {}));
  if (m.child.exitCode === null && m.child.signalCode === null) {
    await within(m.exited, 5000, 'fixture exit').catch(() => {
      m.child.kill('SIGKILL');
      return m.exited;
    });
  }
  if (await mountInfo(m.mnt)) await run('fusermount', ['-uz', m.mnt]).catch(() => {});
  if (!(await mountInfo(m.mnt))) await fsp.rm(m.dir, { recursive: true, force: true });
}

async function mountFixture(t: ExecutionContext, options: string[], extra: Partial<FixtureConfig> = {},
  prepare?: (source: string) => Promise<void>): Promise<Mounted> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ufs-test-fnp-'));
  await fsp.chmod(dir, 0o755);
  const source = path.join(dir, 'src');
  const mnt = path.join(dir, 'mnt');
  await fsp.mkdir(source);
  await fsp.mkdir(mnt);
  if (prepare) await prepare(source);
  const stateFile = path.join(dir, 'state.json');
  const config: FixtureConfig = { source, mountpoint: mnt, options, stateFile, ...extra };

  const child = spawn(process.execPath, [FIXTURE, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const m: Mounted = { dir, source, mnt, stateFile, child, exited };
  t.teardown(() => cleanup(m));

  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await within(new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    void exited.then((code) => reject(new Error(`fixture exited (${code}) before mounting: ${stderr.trim()}`)));
  }), 15000, 'fixture mount');
  return m;
}

// Unmount from outside, as `ufs umount` or a user would; the fixture then exits by itself.
async function unmountAndWait(m: Mounted): Promise<FixtureState> {
  await run('fusermount', ['-u', m.mnt]);
  const code = await within(m.exited, 15000, 'fixture exit after fusermount -u');
  if (code !== 0) throw new Error(`fixture exited with ${code}`);
  return JSON.parse(await fsp.readFile(m.stateFile, 'utf8')) as FixtureState;
}

function utcNs(iso: string, nsFraction: bigint): bigint {
  return BigInt(Date.parse(iso)) * 1000000n + nsFraction;
}

test('utimens: both times in nanoseconds, UTIME_OMIT keeps the other (touch -a, -m, -d, now)', async (t) => {
  const m = await mountFixture(t, [], {}, (src) => fsp.writeFile(path.join(src, 'f'), 'x'));
  const f = path.join(m.mnt, 'f');

  const A = utcNs('2001-02-03T04:05:06Z', 123456789n);
  const M = utcNs('2002-03-04T05:06:07Z', 987654321n);
  await run('touch', ['-a', '-d', '2001-02-03 04:05:06.123456789', f]);
  await run('touch', ['-m', '-d', '2002-03-04 05:06:07.987654321', f]);
  for (const file of [f, path.join(m.source, 'f')]) {
    const st = await fsp.stat(file, { bigint: true });
    t.is(st.atimeNs, A, `atime of ${file}`);
    t.is(st.mtimeNs, M, `mtime of ${file}`);
  }

  const D = utcNs('2003-04-05T06:07:08Z', 111111111n);
  await run('touch', ['-d', '2003-04-05 06:07:08.111111111', f]);
  const st = await fsp.stat(f, { bigint: true });
  t.is(st.atimeNs, D);
  t.is(st.mtimeNs, D);

  const before = BigInt(Date.now()) * 1000000n - NS;
  await run('touch', [f]);
  const after = BigInt(Date.now()) * 1000000n + NS;
  const now = await fsp.stat(f, { bigint: true });
  for (const ns of [now.atimeNs, now.mtimeNs]) t.true(ns >= before && ns <= after, `${ns} is not now`);

  const state = await unmountAndWait(m);
  t.deepEqual(state.utimens.slice(0, 3), [
    { path: '/f', atime: String(A), mtime: 'omit' },
    { path: '/f', atime: 'omit', mtime: String(M) },
    { path: '/f', atime: String(D), mtime: String(D) },
  ]);
});

test('caller context: a non-root user\'s create, mkdir, mknod and symlink carry its uid, gid, pid and umask', async (t) => {
  const m = await mountFixture(t, ['allow_other', 'default_permissions'], {}, (src) => fsp.chmod(src, 0o1777));
  const { stdout } = await run('setpriv', ['--reuid', '1000', '--regid', '1000', '--clear-groups', 'sh', '-c',
    'umask 027; echo hi > f; mkdir d; mkfifo p; ln -s f l; echo $$'], { cwd: m.mnt });
  const shellPid = Number(stdout.trim());

  const expected: [string, number][] = [['f', 0o100640], ['d', 0o040750], ['p', 0o010640]];
  for (const [name, mode] of expected) {
    const st = await fsp.lstat(path.join(m.mnt, name));
    t.is(st.uid, 1000, `uid of ${name}`);
    t.is(st.gid, 1000, `gid of ${name}`);
    t.is(st.mode, mode, `mode of ${name}`);
  }
  const link = await fsp.lstat(path.join(m.mnt, 'l'));
  t.true(link.isSymbolicLink());
  t.is(link.uid, 1000);
  t.is(link.gid, 1000);
  t.is(await fsp.readFile(path.join(m.mnt, 'f'), 'utf8'), 'hi\n');

  const state = await unmountAndWait(m);
  const byOp = new Map(state.callers.map((c) => [c.op, c]));
  t.deepEqual([...byOp.keys()].sort(), ['create', 'mkdir', 'mknod', 'symlink']);
  for (const c of state.callers) {
    t.is(c.ctx.uid, 1000, `${c.op} uid`);
    t.is(c.ctx.gid, 1000, `${c.op} gid`);
    t.true(c.ctx.pid > 0, `${c.op} pid`);
  }
  // The shell itself opens `f` for `>`; the others are its children.
  const create = byOp.get('create')!;
  t.is(create.ctx.pid, shellPid);
  t.is(create.ctx.umask, 0o027);
  t.is(create.flags! & 3 /* O_ACCMODE */, constants.O_WRONLY);
  t.is(byOp.get('mkdir')!.ctx.umask, 0o027);
  t.is(byOp.get('mknod')!.ctx.umask, 0o027);
  t.is(byOp.get('mknod')!.mode & constants.S_IFMT, constants.S_IFIFO);
});

test('mount options reach the kernel verbatim, beyond upstream\'s 1024-byte limit', async (t) => {
  const fsname = `ufs-test-${'x'.repeat(1100)}`;
  const options = ['allow_other', 'default_permissions', 'ro', 'max_read=131072', `fsname=${fsname}`,
    'subtype=ufstest', 'use_ino', 'big_writes', 'max_write=131072', 'entry_timeout=5', 'attr_timeout=5',
    'negative_timeout=5', 'kernel_cache'];
  t.true(options.join(',').length > 1024);
  const m = await mountFixture(t, options, {}, (src) => fsp.writeFile(path.join(src, 'f'), 'x'));

  const info = await mountInfo(m.mnt);
  t.truthy(info);
  const sep = info!.indexOf('-');
  const [fstype, source, superOpts] = info!.slice(sep + 1);
  t.is(fstype, 'fuse.ufstest');
  t.is(source, fsname);
  t.true(info![5]!.split(',').includes('ro'));
  const sopts = superOpts!.split(',');
  for (const o of ['default_permissions', 'allow_other', 'max_read=131072']) t.true(sopts.includes(o), o);

  t.is(await fsp.readFile(path.join(m.mnt, 'f'), 'utf8'), 'x');
  await t.throwsAsync(fsp.writeFile(path.join(m.mnt, 'g'), 'y'), { code: 'EROFS' });
});

test('64-bit inode numbers and sizes, and readdir takes d_ino and d_type from the stats (use_ino)', async (t) => {
  const inoOffset = 1n << 40n;
  const readdirInoOffset = 1n << 41n;
  const size = 5n << 30n;
  const m = await mountFixture(t, ['use_ino'], { inoOffset: String(inoOffset), readdirInoOffset: String(readdirInoOffset) },
    async (src) => {
      await fsp.writeFile(path.join(src, 'sparse'), '');
      await fsp.truncate(path.join(src, 'sparse'), Number(size));
      await fsp.mkdir(path.join(src, 'dir'));
    });

  const srcSt = await fsp.stat(path.join(m.source, 'sparse'), { bigint: true });
  const st = await fsp.stat(path.join(m.mnt, 'sparse'), { bigint: true });
  t.is(st.ino, srcSt.ino + inoOffset);
  t.true(st.ino > 0xffffffffn);
  t.is(st.size, size);
  t.is(st.blocks, srcSt.blocks);
  t.is((await run('stat', ['-c', '%i %s', path.join(m.mnt, 'sparse')])).stdout.trim(), `${st.ino} ${size}`);

  // os.scandir reports d_ino/d_type straight from getdents, without a stat.
  const { stdout } = await run('python3', ['-c',
    'import json,os,sys; print(json.dumps({e.name: [e.inode(), e.is_dir(follow_symlinks=False)] for e in os.scandir(sys.argv[1])}))',
    m.mnt]);
  const entries = JSON.parse(stdout) as Record<string, [number, boolean]>;
  for (const [name, isDir] of [['sparse', false], ['dir', true]] as const) {
    const ino = (await fsp.lstat(path.join(m.source, name), { bigint: true })).ino;
    t.is(BigInt(entries[name]![0]), ino + readdirInoOffset, `d_ino of ${name}`);
    t.is(entries[name]![1], isDir, `d_type of ${name}`);
  }
});

test('passthrough: a 40 MB file is written and read back byte-for-byte, and no file data goes through JS', async (t) => {
  const m = await mountFixture(t, ['big_writes', 'max_write=131072', 'max_read=131072']);
  const data = randomBytes(40 << 20);
  const big = path.join(m.mnt, 'big');

  await fsp.writeFile(big, data);
  t.true((await fsp.readFile(path.join(m.source, 'big'))).equals(data), 'on disk');
  t.true((await fsp.readFile(big)).equals(data), 'read back');

  const fh = await fsp.open(big, 'r+');
  try {
    // A read across the end of the file is short only there.
    const buf = Buffer.alloc(100);
    const { bytesRead } = await fh.read(buf, 0, 100, data.length - 10);
    t.is(bytesRead, 10);
    t.true(buf.subarray(0, 10).equals(data.subarray(data.length - 10)));
    t.is((await fh.read(buf, 0, 100, data.length)).bytesRead, 0);
    await fh.write(Buffer.from('HELLO'), 0, 5, 1000);
    await fh.sync();
    await fh.datasync();
  } finally {
    await fh.close();
  }
  const onDisk = await fsp.readFile(path.join(m.source, 'big'));
  t.is(onDisk.subarray(1000, 1005).toString(), 'HELLO');
  t.is(onDisk.length, data.length);

  const state = await unmountAndWait(m);
  for (const op of ['read', 'write', 'flush', 'fsync']) t.is(state.counts[op] ?? 0, 0, `${op} reached JS`);
  t.true((state.counts.create ?? 0) >= 1);
  t.true((state.counts.open ?? 0) >= 2);
  t.is(state.counts.release, (state.counts.open ?? 0) + (state.counts.create ?? 0));
});

test('hard_remove: an unlinked open file stays readable through its handle, with null paths', async (t) => {
  const m = await mountFixture(t, ['hard_remove', 'use_ino'], {}, (src) => fsp.writeFile(path.join(src, 'f'), 'hello world'));
  const fh = await fsp.open(path.join(m.mnt, 'f'), 'r+');
  try {
    await fsp.unlink(path.join(m.mnt, 'f'));
    t.deepEqual(await fsp.readdir(m.mnt), []);
    const buf = Buffer.alloc(32);
    const { bytesRead } = await fh.read(buf, 0, 32, 0);
    t.is(buf.subarray(0, bytesRead).toString(), 'hello world');
    await fh.truncate(5);
    t.is((await fh.stat()).size, 5);
  } finally {
    await fh.close();
  }
  t.deepEqual(await fsp.readdir(m.source), []);

  const state = await unmountAndWait(m);
  t.true(state.nullPaths.includes('ftruncate'));
  t.true(state.nullPaths.includes('release'));
});

test('without hard_remove, an unlinked open file is hidden natively: fstat works and no hidden name is ever made', async (t) => {
  const m = await mountFixture(t, ['use_ino'], {}, async (src) => {
    await fsp.writeFile(path.join(src, 'f'), 'hello world');
    await fsp.writeFile(path.join(src, 'old'), 'old content');
  });
  const fh = await fsp.open(path.join(m.mnt, 'f'), 'r+');
  const old = await fsp.open(path.join(m.mnt, 'old'), 'r');
  try {
    await fsp.unlink(path.join(m.mnt, 'f'));
    const st = await fh.stat();
    t.is(st.size, 11);
    t.is(st.nlink, 0);
    const buf = Buffer.alloc(32);
    t.is(buf.subarray(0, (await fh.read(buf, 0, 32, 0)).bytesRead).toString(), 'hello world');
    await fh.write(Buffer.from('HELLO'), 0, 5, 0);
    t.is(buf.subarray(0, (await fh.read(buf, 0, 32, 0)).bytesRead).toString(), 'HELLO world');

    // Renaming over an open file hides it the same way.
    await fsp.writeFile(path.join(m.mnt, 'new'), 'new');
    await fsp.rename(path.join(m.mnt, 'new'), path.join(m.mnt, 'old'));
    t.is((await old.stat()).size, 11);
    t.is(await fsp.readFile(path.join(m.mnt, 'old'), 'utf8'), 'new');

    t.deepEqual(await fsp.readdir(m.mnt), ['old']);
    t.deepEqual(await fsp.readdir(m.source), ['old']);
  } finally {
    await fh.close();
    await old.close();
  }
  t.deepEqual(await fsp.readdir(m.source), ['old']);

  const state = await unmountAndWait(m);
  t.is(state.counts.unlink, 2, 'the hides became real unlinks');
  t.is(state.counts.rename, 1, 'only the user\'s rename reached JS');
  t.true(state.nullPaths.includes('fgetattr'));
  t.true(state.nullPaths.includes('release'));
});

test('onUnmount fires when unmounted from outside (fusermount -u), and the server exits by itself', async (t) => {
  const m = await mountFixture(t, []);
  await fsp.writeFile(path.join(m.mnt, 'f'), 'x');
  const state = await unmountAndWait(m);
  t.true(state.unmounted);
  t.is(m.child.exitCode, 0);
  t.is(await mountInfo(m.mnt), undefined);
});

test('a request that takes 16 s is not timed out', async (t) => {
  const m = await mountFixture(t, [], { slowPath: '/slow', slowMs: 16000 });
  await fsp.mkdir(path.join(m.mnt, 'slow'));
  t.true((await fsp.stat(path.join(m.mnt, 'slow'))).isDirectory());
  t.true((await fsp.stat(path.join(m.source, 'slow'))).isDirectory());
});

test('xattrs through the mount: binary values, exact size query, ERANGE, exact listxattr', async (t) => {
  const m = await mountFixture(t, [], {}, (src) => fsp.writeFile(path.join(src, 'f'), 'x'));
  const f = path.join(m.mnt, 'f');
  const value = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

  sys.lsetxattr(f, 'user.bin', value, 0);
  sys.lsetxattr(f, 'trusted.t', Buffer.from('T'), 0);
  t.deepEqual(sys.lgetxattr(f, 'user.bin'), value);
  t.deepEqual(sys.lgetxattr(path.join(m.source, 'f'), 'user.bin'), value);
  t.deepEqual(sys.llistxattr(f).sort(), ['trusted.t', 'user.bin']);
  t.throws(() => sys.lgetxattr(f, 'user.none'), { code: 'ENODATA' });

  // The raw calls: size 0 asks for the length; a buffer too small is ERANGE.
  const script = [
    'import ctypes, json, os, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'p = sys.argv[1].encode()',
    'def call(fn, *a):',
    '    r = fn(*a)',
    '    return r if r >= 0 else -ctypes.get_errno()',
    'small = ctypes.create_string_buffer(16)',
    'print(json.dumps({',
    '  "size": call(libc.lgetxattr, p, b"user.bin", None, 0),',
    '  "small": call(libc.lgetxattr, p, b"user.bin", small, 16),',
    '  "listSize": call(libc.llistxattr, p, None, 0),',
    '  "listSmall": call(libc.llistxattr, p, small, 4),',
    '}))',
  ].join('\n');
  const r = JSON.parse((await run('python3', ['-c', script, f])).stdout) as Record<string, number>;
  t.is(r.size, 256);
  t.is(r.small, -os.constants.errno.ERANGE);
  t.is(r.listSize, 'trusted.t\0user.bin\0'.length);
  t.is(r.listSmall, -os.constants.errno.ERANGE);

  sys.lremovexattr(f, 'user.bin');
  t.deepEqual(sys.llistxattr(f), ['trusted.t']);
});

test('mknod through the mount: a FIFO and a character device with a wide dev number', async (t) => {
  const m = await mountFixture(t, []);
  await run('mknod', [path.join(m.mnt, 'c'), 'c', '300', '70000']);
  await run('mkfifo', [path.join(m.mnt, 'p')]);
  const expected = (70000 & 0xff) | (300 << 8) | ((70000 & ~0xff) << 12);
  for (const dir of [m.mnt, m.source]) {
    const c = await fsp.lstat(path.join(dir, 'c'));
    t.true(c.isCharacterDevice());
    t.is(c.rdev, expected);
    t.true((await fsp.lstat(path.join(dir, 'p'))).isFIFO());
  }
});

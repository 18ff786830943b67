// Coherence of what the server answers from caches, and what the low-level binding answers
// without calling JS (native/fuse/ufs_fuse.c): attributes of stable lower objects, read-only opens of lower files, names known
// absent, and calls made through an open file or a pinned upper directory. The mounts here
// keep nothing in the kernel's caches (UFS_FUSE_CACHE_TIMEOUT=0): every path walk and stat
// reaches the server, so an answer the C side gives from a stale cache shows at once. Each
// test changes the union through the mount and checks what it sees against the layers on disk.
import test, { type ExecutionContext } from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fill, type Layers, type Mount, mountWith } from './helpers/mount.js';

function mountUncached(t: ExecutionContext, setup?: (l: Layers) => Promise<void>): Promise<Mount> {
  return mountWith(t, {
    setup: async (l) => {
      l.env.UFS_FUSE_CACHE_TIMEOUT = '0';
      if (setup) await setup(l);
    },
  });
}

// `stat -c` of names in the mount: "%n %F %a %u %s %i %h" per line; "-" for a missing name.
async function stats(m: Mount, names: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const r = await m.sh(`stat -c '%F %a %u %s %i %h' ${n}`);
    out[n] = r.code === 0 ? r.stdout.trim() : '-';
  }
  return out;
}

test('stable lower attributes follow copy-up, writes, chmod, unlink, recreate and rename', async (t) => {
  const m = await mountUncached(t, (l) => fill(l.lowers[0]!, 'mkdir -p d/sub; printf abc > d/f; echo g > d/g; chmod 644 d/f d/g; echo h > d/sub/h'));
  await m.ok('ls -lR d > /dev/null'); // readdir: the C side now knows d's entries
  const before = await stats(m, ['d/f', 'd/g', 'd/sub/h']);
  const inoF = before['d/f']!.split(' ')[5]; // "regular file MODE UID SIZE INO NLINK"
  await m.ok('printf more >> d/f; chmod 600 d/g; rm d/sub/h');
  const after = await stats(m, ['d/f', 'd/g', 'd/sub/h', 'd/sub']);
  t.is(after['d/f'], `regular file 644 0 7 ${inoF} 1`);
  t.regex(after['d/g']!, /^regular file 600 0 2 /);
  t.is(after['d/sub/h'], '-');
  t.is((await m.ok('ls -A d/sub')).trim(), '');
  // The directories were copied up on the way (and now merge with the lower ones: st_nlink 1);
  // the whiteout changed d/sub's mtime.
  for (const dir of ['d', 'd/sub']) {
    const host = await fs.stat(path.join(m.upper!, dir));
    t.is((await m.ok(`stat -c '%h %Y' ${dir}`)).trim(), `1 ${Math.floor(host.mtimeMs / 1000)}`, dir);
  }
  await m.ok('echo new > d/sub/h; mv d/g d/g2');
  const again = await stats(m, ['d/sub/h', 'd/g', 'd/g2']);
  t.regex(again['d/sub/h']!, /^regular file 644 0 4 /);
  t.is(again['d/g'], '-');
  t.is(again['d/g2']!.split(' ').slice(0, 3).join(' '), 'regular file 600');
  t.is(await fs.readFile(path.join(m.upper!, 'd/f'), 'utf8'), 'abcmore');
  t.is((await m.ok('cat d/f d/sub/h')), 'abcmorenew\n');
});

test('names known to be absent: new directories, failed creates, renames and links', async (t) => {
  const m = await mountUncached(t, (l) => fill(l.lowers[0]!, 'mkdir low; echo x > low/x'));
  await m.ok('mkdir k; touch k/x; ls low > /dev/null');
  // A create that fails (O_EXCL on an existing name) must not make the name look absent.
  t.not((await m.sh('set -C; echo y > k/x')).code, 0);
  t.not((await m.sh('set -C; echo y > low/x')).code, 0);
  const first = await stats(m, ['k/x', 'k/nope', 'low/x', 'low/nope']);
  t.regex(first['k/x']!, /^regular empty file 644 0 0 /);
  t.regex(first['low/x']!, /^regular file 644 0 2 /);
  t.is(first['k/nope'], '-');
  t.is(first['low/nope'], '-');
  await m.ok('mv k/x k2x; mv k2x k/y; ln k/y k/z; rm k/y; mkdir k/sub; echo w > low/w; rm low/x; ln -s w low/l');
  const s = await stats(m, ['k/x', 'k/y', 'k/z', 'k/sub', 'k2x', 'low/w', 'low/x', 'low/l']);
  t.deepEqual(Object.entries(s).filter(([, v]) => v === '-').map(([k]) => k).sort(), ['k/x', 'k/y', 'k2x', 'low/x']);
  t.deepEqual((await m.ok('ls -A k')).trim().split('\n'), ['sub', 'z']);
  t.deepEqual((await m.ok('ls -A low')).trim().split('\n'), ['l', 'w']);
  t.is(await m.ok('cat low/l'), 'w\n');
});

// Directories' attributes and negative lookups are answered in C from the directory's host
// path: for a lower directory only until anything changes the union (a copy-up moves it to
// upper without a request on its node), for an upper one until a rename or rmdir.
test('directory attributes and absent names follow copy-up, rename and rmdir of directories', async (t) => {
  const m = await mountUncached(t, (l) => fill(l.lowers[0]!, 'mkdir -p a/b; echo x > a/b/x; touch -d @1000000000 a/b a'));
  await m.ok('ls -lR a > /dev/null; ls a/b/nope a/nope 2>/dev/null; true'); // C now knows a and a/b
  // fstat of an open directory asks for its node's attributes with no lookup first.
  const fstats = `
import os, subprocess
fd = os.open('a/b', os.O_RDONLY | os.O_DIRECTORY)
st = os.fstat(fd)
print(st.st_nlink, int(st.st_mtime))
subprocess.run(['touch', 'a/b/new'], check=True)  # copies a and a/b up
st = os.fstat(fd)
print(st.st_nlink, int(st.st_mtime))
`;
  const lines = (await m.ok(`python3 -c "${fstats}"`)).trim().split('\n');
  const host = await fs.stat(path.join(m.upper!, 'a/b'));
  t.deepEqual(lines, ['2 1000000000', `1 ${Math.floor(host.mtimeMs / 1000)}`]);
  t.is((await m.ok('ls a/b')).trim().split('\n').join(' '), 'new x');
  await m.ok('mkdir u; touch u/one; ls u/two 2>/dev/null; mv u v; mkdir u; touch v/two');
  t.is((await m.sh('stat u/one')).code === 0, false);
  t.is((await m.ok('ls v')).trim().split('\n').join(' '), 'one two');
  t.is((await m.ok("stat -c '%h' u v")).trim().split('\n').join(' '), '2 2');
  await m.ok('rm v/one v/two; rmdir v; mkdir v; touch v/three');
  t.is((await m.ok('ls v')).trim(), 'three');
});

test('calls through a path whose file is open act on that file, as on ext4', async (t) => {
  const m = await mountUncached(t, (l) => fill(l.lowers[0]!, 'echo lower > lf'));
  // While each file is open for writing: chmod, chown, utimens, truncate and xattrs by path.
  const script = `
import os, sys
for name in ['nf', 'lf']:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, b'data')
    os.truncate(name, 3)
    os.chmod(name, 0o751)
    os.chown(name, 1234, 5678)
    os.utime(name, ns=(1_000_000_007, 2_000_000_009))
    st = os.stat(name)
    fs = os.fstat(fd)
    try:
        os.getxattr(name, 'security.capability')
        cap = 'present'
    except OSError as e:
        cap = e.errno
    os.setxattr(name, 'security.capability', bytes.fromhex('0100000200200000000000000000000000000000'))
    cap2 = len(os.getxattr(name, 'security.capability'))
    os.removexattr(name, 'security.capability')
    try:
        os.getxattr(name, 'security.capability')
        cap3 = 'present'
    except OSError as e:
        cap3 = e.errno
    os.close(fd)
    print(name, oct(st.st_mode), st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ino == fs.st_ino, cap, cap2, cap3)
`;
  const out = (await m.ok(`python3 -c "${script.replace(/"/g, '\\"')}"`)).trim().split('\n');
  const ENODATA = 61;
  t.deepEqual(out, [
    `nf 0o100751 1234 5678 3 2000000009 True ${ENODATA} 20 ${ENODATA}`,
    `lf 0o100751 1234 5678 3 2000000009 True ${ENODATA} 20 ${ENODATA}`,
  ]);
  for (const name of ['nf', 'lf']) {
    const host = await fs.stat(path.join(m.upper!, name), { bigint: true });
    const st = await fs.stat(path.join(m.mnt, name), { bigint: true });
    t.is(st.mode, host.mode, name);
    t.is(st.uid, 1234n, name);
    t.is(st.size, 3n, name);
    t.is(st.mtimeNs, 2_000_000_009n, name);
  }
});

test('an xattr set through one hard link shows through the other; upper dirs follow their contents', async (t) => {
  const m = await mountUncached(t);
  // getcap: both names are now known to lack security.capability.
  await m.ok('mkdir d; echo a > d/a; ln d/a d/b; getcap d/a d/b; getfattr -n user.x d/a d/b 2>/dev/null || true; stat d > /dev/null');
  await m.ok('setfattr -n user.x -v 1 d/a; setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 d/a');
  t.regex(await m.ok('getfattr --absolute-names -n user.x d/b'), /user.x="1"/);
  t.is((await m.ok('getcap d/b')).trim() !== '', true);
  await m.ok('touch d/c d/e; rm d/c; mkdir d/s');
  const host = await fs.stat(path.join(m.upper!, 'd'), { bigint: true });
  const st = await fs.stat(path.join(m.mnt, 'd'), { bigint: true });
  t.is(st.mtimeNs, host.mtimeNs);
  t.is(st.nlink, host.nlink);
  t.is(st.size, host.size);
});

// The low-level binding opens and stats lower files on its own (native/fuse, "Lower files")
// until a request changes the node; every such change must hand the node back to JS.
test('lower files served by C: reads and stats follow writes, truncate, chmod, xattrs, links and renames', async (t) => {
  const m = await mountUncached(t, (l) => fill(l.lowers[0]!, 'echo old > f; echo gee > g; echo aitch > h; echo eye > i; mkdir d; echo jay > d/j'));
  t.is(await m.ok('cat f g h i d/j'), 'old\ngee\naitch\neye\njay\n'); // now known to C
  await m.ok('echo new > f; truncate -s 2 g; chmod 600 h; setfattr -n user.x -v 1 i; ln d/j k; mv d e');
  t.is(await m.ok('cat f; cat g; echo; stat -c %a h; getfattr --only-values -n user.x i; echo; cat k e/j'), 'new\nge\n600\n1\njay\njay\n');
  await m.ok('echo more >> k');
  t.is(await m.ok('cat e/j; stat -c %s:%h e/j k'), 'jay\nmore\n9:2\n9:2\n');
  t.is(await fs.readFile(path.join(m.upper!, 'f'), 'utf8'), 'new\n');
});

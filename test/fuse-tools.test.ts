// Real programs through a mount: cp -p, tar x, touch, and an unprivileged user's view
// (allow_other + default_permissions: the mode bits decide, as on ext4).
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fill, mountWith, remount, sh, shAs, tempDir } from './helpers/mount.js';

// Every entry's type, mode, owner, mtime (ns), link count, size (not for dirs) and link target.
const LISTING = `find . -mindepth 1 -printf '%p %y %m %U %G %T@ %n %l\\n' | sort; find . -mindepth 1 ! -type d -printf '%p %s\\n' | sort`;

// A tree with everything tar can carry: modes, owners, sub-second times, links, fifos, devices.
const TREE = `
  mkdir -p src/dir/sub src/empty
  echo hello > src/dir/file; chmod 0640 src/dir/file; chown 1001:1002 src/dir/file
  printf 'x%.0s' $(seq 1 5000) > src/dir/sub/big
  chmod 4755 src/dir/sub/big
  ln src/dir/file src/dir/hardlink
  ln -s ../file src/dir/sub/symlink
  mkfifo src/fifo; mknod src/dev c 1 7
  setfattr -n user.tarred -v yes src/dir/file
  chmod 0700 src/empty; chown 5:6 src/empty
  find src -exec touch -h -d '2005-06-07 08:09:10.123456789' {} +
`;

test('tar x into the mount gives the same tree as on ext4', async (t) => {
  const work = await tempDir(t);
  await fill(work, `${TREE}\ntar --xattrs --xattrs-include='user.*' -C src -cf tree.tar .`);
  const plain = path.join(work, 'plain');
  await fs.mkdir(plain);
  await fill(plain, `tar --xattrs --xattrs-include='user.*' -xpf ../tree.tar`);
  const first = await mountWith(t);
  await first.ok(`tar --xattrs --xattrs-include='user.*' -xpf ${work}/tree.tar`);
  // Through a fresh kernel cache: st_nlink of the first name of a hard link is stale in the
  // mount that made the link (see the test.failing in fuse-ops).
  const m = await remount(t, first);
  const expected = (await sh(LISTING, { cwd: plain })).stdout;
  t.regex(expected, /\.\/dir\/file f 640 1001 1002 1118131750\.1234567890? 2/);
  t.is(await m.ok(LISTING), expected);
  t.is(await m.ok('getfattr --only-values -n user.tarred dir/file'), 'yes');
  t.is(await m.ok('cat dir/sub/symlink'), 'hello\n');
});

test('cp -p and cp -a keep mode, owner and nanosecond times, in and out of the mount', async (t) => {
  const work = await tempDir(t);
  await fill(work, TREE);
  const first = await mountWith(t);
  await first.ok(`cp -a ${work}/src copied && cp -p ${work}/src/dir/file single`);
  const m = await remount(t, first); // fresh st_nlink, as in the tar test
  const expected = (await sh(LISTING, { cwd: path.join(work, 'src') })).stdout;
  t.is(await m.ok(`cd copied && ${LISTING}`), expected);
  t.is(await m.ok('stat -c "%a %u %g %y" single'), '640 1001 1002 2005-06-07 08:09:10.123456789 +0000\n');
  // And back out.
  await fill(work, `cp -a ${m.mnt}/copied back`);
  t.is((await sh(LISTING, { cwd: path.join(work, 'back') })).stdout, expected);
});

test('touch -m -d and touch -d on lower files copy up with the given times', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'echo x > f; echo y > g; touch -d "2000-01-01" f g') });
  await m.ok('touch -m -d "2020-05-05 05:05:05.5" f && touch -d "2021-06-06 06:06:06" g');
  t.is(await m.ok('stat -c "%x|%y" f g'), [
    '2000-01-01 00:00:00.000000000 +0000|2020-05-05 05:05:05.500000000 +0000',
    '2021-06-06 06:06:06.000000000 +0000|2021-06-06 06:06:06.000000000 +0000',
  ].join('\n') + '\n');
  const st = await fs.stat(path.join(m.upper!, 'f'), { bigint: true });
  t.is(st.mtimeNs, BigInt(Date.UTC(2020, 4, 5, 5, 5, 5)) * 1000000n + 500000000n);
});

test('a non-root user gets the permission checks the mode bits say', async (t) => {
  const m = await mountWith(t, {
    setup: async (l) =>
      fill(
        l.lowers[0]!,
        `echo secret > secret; chmod 0600 secret
         echo public > public; chmod 0644 public
         mkdir open; chmod 0777 open
         mkdir closed; chmod 0755 closed
         mkdir sticky; chmod 1777 sticky; echo r > sticky/rootfile; chmod 0666 sticky/rootfile
         mkdir private; echo p > private/f; chmod 0700 private
         echo '#!/bin/sh' > script; echo 'echo ran' >> script; chmod 0755 script`,
      ),
  });
  const as = (script: string) => shAs(1000, 1000, script, { cwd: m.mnt });
  const r1 = await as('cat secret');
  t.not(r1.code, 0);
  t.regex(r1.stderr, /Permission denied/);
  t.is((await as('cat public')).stdout, 'public\n');
  t.regex((await as('echo x >> public')).stderr, /Permission denied/);
  t.regex((await as('touch closed/new')).stderr, /Permission denied/);
  t.regex((await as('ls private')).stderr, /Permission denied/);
  t.regex((await as('rm public')).stderr, /Permission denied/);
  t.regex((await as('chmod 777 public')).stderr, /Operation not permitted/);
  t.regex((await as('rm -f sticky/rootfile')).stderr, /Operation not permitted/);
  t.is((await as('./script')).stdout, 'ran\n');
  // Allowed: writing where the mode says so, and what it makes is the user's own.
  const ok = await as('echo mine > open/mine && mkdir open/d && ln -s mine open/l && mkfifo open/p && stat -c "%n %u %g" open/mine open/d open/l open/p && chmod 600 open/mine && cat open/mine && echo more > sticky/user && rm sticky/user');
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, 'open/mine 1000 1000\nopen/d 1000 1000\nopen/l 1000 1000\nopen/p 1000 1000\nmine\n');
  const st = await fs.lstat(path.join(m.upper!, 'open', 'mine'));
  t.deepEqual([st.uid, st.gid, st.mode & 0o777], [1000, 1000, 0o600]);
  // root still sees everything.
  t.is(await m.ok('cat secret open/mine'), 'secret\nmine\n');
});

test('a non-root user cannot change times or xattrs of a file they do not own', async (t) => {
  const m = await mountWith(t, { setup: async (l) => fill(l.lowers[0]!, 'echo x > f; chmod 0644 f') });
  const r = await shAs(1000, 1000, 'touch -d 2000-01-01 f', { cwd: m.mnt });
  t.not(r.code, 0);
  const r2 = await shAs(1000, 1000, 'setfattr -n user.x -v 1 f', { cwd: m.mnt });
  t.not(r2.code, 0);
  t.not(await m.ok('stat -c %Y f'), '946684800\n');
  t.is(await m.ok('getfattr -d f'), '');
});

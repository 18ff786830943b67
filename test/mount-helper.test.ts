// mount.fuse.ufs as the C helper (native/sys/ufs_mount_helper.c): one Node start per mount,
// ready when it returns, mount(8)'s exit statuses, nothing of ours kept on its stdio, and the
// mount is ufs's own (listed, `ufs umount` ends its server).
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fill, isMounted, makeLayers, records, run, sh, ufs } from './helpers/mount.js';
import { SERVING_NODE_ARGS } from '../src/common/serving.js';
import { pidAlive } from './helpers/runtime.js'; // a zombie counts as gone (pid 1 here may reap late)

const HELPER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'Release', 'ufs-mount-helper');

test('the C helper mounts, returns ready, keeps no stdio, and ufs umount ends its server', async (t) => {
  const l = await makeLayers(t, { lowers: 2 });
  t.teardown(async () => {
    if (await isMounted(l.mnt)) await run('fusermount', ['-uz', l.mnt]);
  });
  await fill(l.lowers[0]!, 'echo top > a');
  await fill(l.lowers[1]!, 'echo bottom > a; echo b > b');
  const work = path.join(l.base, 'work');
  await fs.mkdir(work);
  // run() waits for stdout and stderr to close: a server holding them would hang it.
  const r = await run(HELPER, ['ufs', l.mnt, '-o', `lowerdir=${l.lowers.join(':')},upperdir=${l.upper},workdir=${work}`], { env: l.env, timeoutMs: 60_000 });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout + r.stderr, '');
  t.is(await fs.readFile(path.join(l.mnt, 'a'), 'utf8'), 'top\n', 'ready on return');
  await fs.writeFile(path.join(l.mnt, 'c'), 'new');
  t.is(await fs.readFile(path.join(l.upper!, 'c'), 'utf8'), 'new');
  const [rec] = await records(l.runDir);
  t.truthy(rec);
  t.regex((await fs.readFile(`/proc/${rec!.pid}/cmdline`, 'utf8')).replace(/\0/g, ' '), /server\.js --mount-helper /, 'the helper exec\'d the server itself');
  const argv = (await fs.readFile(`/proc/${rec!.pid}/cmdline`, 'utf8')).split('\0');
  t.deepEqual(argv.slice(1, 1 + SERVING_NODE_ARGS.length), [...SERVING_NODE_ARGS], 'with a serving process\'s flags');
  const listed = await ufs(['mounts'], l.env);
  t.true(listed.stdout.includes(l.mnt), listed.stdout);
  const u = await ufs(['umount', l.mnt], l.env);
  t.is(u.code, 0, u.stderr);
  t.false(await isMounted(l.mnt));
  t.false(pidAlive(rec!.pid));
});

// native/fuse/ufs_fuse.c, "the end, seen from aside": once umount(8) has returned, the server
// holds nothing in the layers, also when the kernel dropped the release of a file just closed
// and while the server still warms up (mount(8) returns the moment it is ready).
// unionmount-testsuite unmounts the layers' file systems right after the union, without
// retrying; so does this test.
test('after an unmount the layers\' file systems unmount at once', async (t) => {
  const l = await makeLayers(t);
  const lower = l.lowers[0]!;
  const upper = path.join(l.base, 'upperfs');
  await fs.mkdir(upper);
  t.teardown(async () => {
    if (await isMounted(l.mnt)) await run('fusermount', ['-uz', l.mnt]);
    for (const d of [lower, upper]) await sh(`while mountpoint -q ${d}; do umount -l ${d}; done`);
  });
  for (let i = 0; i < 20; i++) {
    const r = await sh(`set -e
      mount -t tmpfs ufs-test ${lower}; mount -t tmpfs ufs-test ${upper}
      mkdir ${lower}/d ${upper}/u ${upper}/w; echo lower > ${lower}/d/f; echo lower > ${lower}/g
      ${HELPER} ufs ${l.mnt} -o lowerdir=${lower},upperdir=${upper}/u,workdir=${upper}/w
      # a read-only open of a lower file (C's, passthrough) and an append that copies one up
      # (JS's handle): the kernel may drop their releases with the connection
      cat ${l.mnt}/d/f >/dev/null; echo more >> ${l.mnt}/g
      umount ${l.mnt}; umount ${lower}; umount ${upper}`, { env: l.env });
    t.is(r.code, 0, `round ${i}: ${r.stderr}`);
    if (r.code !== 0) return;
  }
  // Each server drops its own record as it exits, which umount(8) does not wait for.
  const end = Date.now() + 10_000;
  while ((await records(l.runDir)).length > 0 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(await records(l.runDir), []);
});

test('the C helper: usage errors exit 1, a mount that cannot be made exits 32, -f checks only', async (t) => {
  const l = await makeLayers(t);
  const usage = await run(HELPER, ['ufs'], { env: l.env });
  t.is(usage.code, 1);
  t.regex(usage.stderr, /^mount\.fuse\.ufs: usage: /);
  const missing = await run(HELPER, ['ufs', l.mnt, '-o', `lowerdir=${path.join(l.base, 'nope')}`], { env: l.env });
  t.is(missing.code, 32);
  t.regex(missing.stderr, /^mount\.fuse\.ufs: lower .*nope does not exist\n$/);
  const fake = await run(HELPER, ['ufs', l.mnt, '-f', '-o', `lowerdir=${l.lowers[0]}`], { env: l.env });
  t.is(fake.code, 0, fake.stderr);
  t.false(await isMounted(l.mnt));
  t.deepEqual(await records(l.runDir), []);
});

// listChanges: a layer over the layers beneath it, in `docker diff` form.
import test from 'ava';
import path from 'node:path';
import { listChanges } from '../src/unionfs/index.js';
import { C, ROOT, mkdirIn, opaque, put, stack, tempDir, write } from './helpers/unionfs.js';

const lines = (cs: { kind: string; path: string }[]): string[] => cs.map((c) => `${c.kind} ${c.path}`);

test('the changes a container makes, as docker diff lists them', async (t) => {
  const { u, upper, lowers } = await stack(t, {
    lowers: 2,
    setup: async ({ lowers: [l0, l1] }) => {
      await put(l1!, 'etc/passwd', 'root:x:0:0');
      await put(l1!, 'etc/hosts', '127.0.0.1 localhost');
      await put(l1!, 'etc/ssl/certs/ca.pem', 'pem');
      await put(l1!, 'usr/bin/tool', 'bin', 0o755);
      await mkdirIn(l1!, 'var/log');
      await put(l1!, 'opt/app/a', 'a');
      await put(l0!, 'opt/app/b', 'b');
      await put(l0!, 'home/user/.profile', 'p');
    },
  });
  await write(u, '/etc/passwd', 'R');
  await u.release(await u.create('/etc/new.conf', 0o644, C.O_WRONLY, ROOT));
  await u.unlink('/etc/hosts');
  await u.unlink('/opt/app/a');
  await u.unlink('/opt/app/b');
  await u.rmdir('/opt/app');
  await u.mkdir('/opt/app', 0o755, ROOT);
  await u.release(await u.create('/opt/app/a', 0o644, C.O_WRONLY, ROOT));
  await u.release(await u.create('/opt/app/c', 0o644, C.O_WRONLY, ROOT));
  await u.mkdir('/newdir', 0o755, ROOT);
  await u.mkdir('/newdir/sub', 0o755, ROOT);
  await u.symlink('../x', '/newdir/sub/link', ROOT);
  await u.chmod('/usr/bin/tool', 0o700);
  await u.rename('/home/user', '/home/person');
  await u.release(await u.create('/var/log/tmp', 0o644, C.O_WRONLY, ROOT));
  await u.unlink('/var/log/tmp');
  await u.getattr('/etc/ssl/certs/ca.pem'); // reading changes nothing

  t.deepEqual(lines(await listChanges(upper, lowers)), [
    'C /etc',
    'D /etc/hosts',
    'A /etc/new.conf',
    'C /etc/passwd',
    'C /home',
    'A /home/person',
    'A /home/person/.profile',
    'D /home/user',
    'A /newdir',
    'A /newdir/sub',
    'A /newdir/sub/link',
    'C /opt',
    'C /opt/app',
    'A /opt/app/a',
    'A /opt/app/c',
    'C /usr',
    'C /usr/bin',
    'C /usr/bin/tool',
    'C /var',
    'C /var/log',
  ]);
});

test('an OCI layer directory over its lowers; temp names and markers skipped', async (t) => {
  const root = await tempDir(t);
  const low = path.join(root, 'low');
  const layer = path.join(root, 'layer');
  await put(low, 'a/keep', 'k');
  await put(low, 'a/del', 'd');
  await put(low, 'b/x', 'x');
  await put(low, 'file-to-dir', 'f');
  await mkdirIn(low, 'same');
  await put(layer, 'a/.wh.del', '');
  await put(layer, 'a/.wh.never-existed', '');
  await put(layer, 'b/y', 'y');
  await opaque(layer, 'b');
  await put(layer, 'file-to-dir/inner', 'i');
  await put(layer, '.wh..wh..ufs.work/tmp.123', 'junk');
  await put(layer, 'c/.wh..wh..opq', '');
  t.deepEqual(lines(await listChanges(layer, [low])), ['C /a', 'D /a/del', 'C /b', 'A /b/y', 'A /c', 'C /file-to-dir', 'A /file-to-dir/inner']);
  // over nothing, everything is added and whiteouts delete nothing
  t.deepEqual(lines(await listChanges(layer, [])), ['A /a', 'A /b', 'A /b/y', 'A /c', 'A /file-to-dir', 'A /file-to-dir/inner']);
});

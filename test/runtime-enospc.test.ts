// A full disk never wedges the store: on a small loop-mounted ext4 store that a container
// fills, ps, stop, rm and rm -f still work, rm frees the space, and no temp record is left.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promises as fs, statfsSync } from 'node:fs';
import path from 'node:path';
import { makeEnv, mountedUnder, waitFor } from './helpers/runtime.js';

function sh(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, (err, _o, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr}`)) : resolve()));
  });
}

const freeBytes = (dir: string) => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

async function tempRecords(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const id of await fs.readdir(path.join(root, 'containers')).catch(() => [] as string[])) {
    for (const f of await fs.readdir(path.join(root, 'containers', id)).catch(() => [] as string[])) if (f.endsWith('.tmp')) out.push(f);
  }
  return out;
}

test('a store whose disk a container filled: ps, stop, rm and rm -f work and free it', async (t) => {
  const u = await makeEnv(t);
  const image = path.join(u.dir, 'store.img');
  await fs.mkdir(u.root);
  await sh('truncate', ['-s', '40M', image]);
  await sh('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
  await sh('mount', ['-o', 'loop', image, u.root]);
  t.teardown(async () => {
    // Ours first: the containers and their FUSE mounts, then the loop mount, then the dir
    // (the common teardown leaves a dir with a mount in it alone).
    await u.ufs(['rm', '-f', ...(await fs.readdir(path.join(u.root, 'containers')).catch(() => [] as string[])).filter((n) => /^[0-9a-f]{64}$/.test(n))]).catch(() => undefined);
    for (const mp of mountedUnder(u.root)) await sh('fusermount', ['-uz', mp]).catch(() => undefined);
    await sh('umount', [u.root]).catch(() => sh('umount', ['-l', u.root]).catch(() => undefined));
    if (mountedUnder(u.dir).length === 0) await fs.rm(u.dir, { recursive: true, force: true });
  });

  const fill = 'dd if=/dev/zero of=/big bs=1M 2>/dev/null; echo full; while :; do echo spam; sleep 0.05; done';
  const a = (await u.ok(['run', '-d', '--name', 'filler', 'busybox', 'sh', '-c', fill])).trim();
  await waitFor('the disk to fill', async () => (freeBytes(u.root) < 2 * 1024 * 1024 ? true : undefined));
  t.true(freeBytes(u.root) < 2 * 1024 * 1024, `free: ${freeBytes(u.root)}`);

  const ps = await u.ufs(['ps', '-a']);
  t.is(ps.code, 0, ps.stderr);
  t.regex(ps.stdout, /filler/);
  const stop = await u.ufs(['stop', '-t', '1', 'filler']);
  t.is(stop.code, 0, stop.stderr);
  const psAfter = await u.ufs(['ps', '-a', '-q']);
  t.is(psAfter.code, 0, psAfter.stderr);
  const rm = await u.ufs(['rm', 'filler']);
  t.is(rm.code, 0, rm.stderr);
  t.true(freeBytes(u.root) > 10 * 1024 * 1024, 'rm freed the space');
  await t.throwsAsync(fs.access(path.join(u.root, 'containers', a)));

  // rm -f of a running container on a full disk
  await u.ok(['run', '-d', '--name', 'filler2', 'busybox', 'sh', '-c', fill]);
  await waitFor('the disk to fill again', async () => (freeBytes(u.root) < 2 * 1024 * 1024 ? true : undefined));
  const rmf = await u.ufs(['rm', '-f', 'filler2']);
  t.is(rmf.code, 0, rmf.stderr);
  t.true(freeBytes(u.root) > 10 * 1024 * 1024);
  t.deepEqual(await tempRecords(u.root), []);
  t.is(await u.ok(['ps', '-a', '-q']), '');
  t.deepEqual(mountedUnder(u.root), []);
});

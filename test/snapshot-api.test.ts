// Snapshots (src/snapshot) on real FUSE mounts in a temp store: a writable root whose
// changes commit as a layer, a read-only view, leases that image GC respects, and the sweep
// of snapshots whose owner process died or whose mount is gone.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { imageEnv, run } from './helpers/images.js';
import { commit, list, mount, prepare, remove, unmount, view } from '../src/snapshot/index.js';
import { pruneImages } from '../src/image/gc.js';
import { resolveImage } from '../src/image/resolve.js';
import { Store } from '../src/store/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SNAPSHOT_JS = path.resolve(here, '..', 'src', 'snapshot', 'index.js');
const STORE_JS = path.resolve(here, '..', 'src', 'store', 'index.js');

async function setup(t: Parameters<typeof imageEnv>[0]) {
  const e = await imageEnv(t);
  process.env.UFS_RUN_DIR = e.env.UFS_RUN_DIR;
  const store = await Store.open(e.root);
  const busybox = await resolveImage(store, 'busybox:latest');
  const layers = [...busybox.diffIds].reverse();
  t.teardown(async () => {
    for (const s of await list(store).catch(() => [])) await remove(store, s.key).catch(() => {});
  });
  return { e, store, layers };
}

test.serial('prepare gives a writable root; commit turns its changes into a layer; remove ends it', async (t) => {
  const { store, layers } = await setup(t);
  const snap = await prepare(store, 'step-1', layers);
  t.true(fs.existsSync(path.join(snap.mountpoint, 'bin', 'busybox')));
  fs.writeFileSync(path.join(snap.mountpoint, 'hello.txt'), 'hi\n');
  fs.rmSync(path.join(snap.mountpoint, 'etc', 'group'));
  t.true(fs.existsSync(path.join(snap.upper, 'hello.txt')));
  const listed = await list(store);
  t.deepEqual(listed.map((s) => [s.key, s.kind, s.layers]), [['step-1', 'active', layers]]);
  const { diffId, size } = await commit(store, 'step-1');
  t.is(size, 3);
  const dir = store.layerDir(diffId);
  t.is(fs.readFileSync(path.join(dir, 'hello.txt'), 'utf8'), 'hi\n');
  t.true(fs.existsSync(path.join(dir, 'etc', '.wh.group')));
  t.deepEqual(await list(store), [], 'commit removes the snapshot');
  t.false(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(snap.mountpoint));
  await t.throwsAsync(commit(store, 'step-1'), { message: /no snapshot step-1/ });
  await remove(store, 'step-1'); // idempotent
});

test.serial('a view is read-only; the same key twice is refused; a scratch root is empty', async (t) => {
  const { store, layers } = await setup(t);
  const v = await view(store, 'ro', layers);
  t.throws(() => fs.writeFileSync(path.join(v.mountpoint, 'x'), 'x'), { code: 'EROFS' });
  await t.throwsAsync(view(store, 'ro', layers), { message: /already exists/ });
  await t.throwsAsync(commit(store, 'ro'), { message: /read-only view/ });
  const scratch = await prepare(store, 'scratch', []);
  t.deepEqual(fs.readdirSync(scratch.mountpoint), []);
  await t.throwsAsync(prepare(store, 'bad', ['sha256:' + '0'.repeat(64)]), { message: /not in the store/ });
  t.deepEqual((await list(store)).map((s) => s.key), ['ro', 'scratch']);
  await remove(store, 'ro');
  await remove(store, 'scratch');
  t.deepEqual(await list(store), []);
});

test.serial('image GC keeps the layers a snapshot leases, and collects them after remove', async (t) => {
  const { e, store, layers } = await setup(t);
  const v = await view(store, 'keep', layers);
  await e.ok(['rmi', 'busybox:latest']);
  await pruneImages(store, true);
  for (const d of layers) t.true(store.hasLayer(d), 'leased layer survives rmi + prune');
  t.true(fs.existsSync(path.join(v.mountpoint, 'bin', 'busybox')));
  await remove(store, 'keep');
  await pruneImages(store, true);
  for (const d of layers) t.false(store.hasLayer(d), 'unleased layer is collected');
});

test.serial('a snapshot whose owner died is swept (unmounted, removed) by list()', async (t) => {
  const { e, store, layers } = await setup(t);
  const script = `
    const { prepare } = await import(${JSON.stringify(SNAPSHOT_JS)});
    const { Store } = await import(${JSON.stringify(STORE_JS)});
    const store = await Store.open(${JSON.stringify(e.root)});
    const s = await prepare(store, 'orphan', ${JSON.stringify(layers)}, { owner: process.pid });
    process.stdout.write(s.mountpoint);
    process.exit(0);`;
  const r = await run(process.execPath, ['--input-type=module', '-e', script], { env: e.env });
  t.is(r.code, 0, r.stderr);
  const mp = r.stdout.trim();
  t.true(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(mp), 'mounted after the owner exits');
  t.deepEqual(await list(store), []);
  t.false(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(mp), 'the sweep unmounted it');
  t.deepEqual(fs.readdirSync(path.join(e.root, 'snapshots')), []);
});

test.serial('ufs mount IMAGE is a view snapshot that ends with ufs umount', async (t) => {
  const { e, store, layers } = await setup(t);
  const mp = fs.mkdtempSync(path.join(e.dir, 'mp-'));
  t.teardown(() => run('fusermount', ['-uz', mp]));
  await e.ok(['mount', 'busybox', mp]);
  const snaps = await list(store);
  t.is(snaps.length, 1);
  t.is(snaps[0]!.kind, 'view');
  t.deepEqual(snaps[0]!.layers, layers);
  await e.ok(['umount', mp]);
  t.deepEqual(await list(store), []);
});

test.serial('init: the mountpoints a process needs are a lower, never in the upper or the commit; unmount/mount keep the upper', async (t) => {
  const { store, layers } = await setup(t);
  const snap = await prepare(store, 'with-init', layers, { init: true });
  for (const p of ['proc', 'sys', 'dev', 'etc/hosts', 'etc/resolv.conf', 'etc/hostname']) t.true(fs.existsSync(path.join(snap.mountpoint, p)), p);
  t.deepEqual(fs.readdirSync(snap.upper).filter((n) => !n.startsWith('.wh..wh..ufs.')), []);
  fs.writeFileSync(path.join(snap.mountpoint, 'kept'), 'k');
  await unmount(store, 'with-init');
  t.false(fs.existsSync(path.join(snap.mountpoint, 'kept')));
  t.true(fs.existsSync(path.join(snap.upper, 'kept')));
  await mount(store, 'with-init');
  t.is(fs.readFileSync(path.join(snap.mountpoint, 'kept'), 'utf8'), 'k');
  const { diffId } = await commit(store, 'with-init');
  t.deepEqual(fs.readdirSync(store.layerDir(diffId)), ['kept']);
});

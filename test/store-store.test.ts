// The store: layout, the mutation lock (across processes, released when its holder is
// killed, re-entrant within one call chain), and the sweep of dead processes' temp files.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Store } from '../src/store/index.js';
import { run, tempDir } from './helpers/images.js';

const storeModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'store', 'index.js');

test('open makes the layout', async (t) => {
  const root = path.join(await tempDir(t, 'store'), 'root');
  const store = await Store.open(root);
  for (const d of ['blobs/sha256', 'layers', 'containers', 'tmp', 'leases']) t.true(fs.statSync(path.join(root, d)).isDirectory(), d);
  t.is(store.containersDir(), path.join(root, 'containers'));
  const digest = store.writeBlob(Buffer.from('hello'));
  t.is(digest, 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  t.is(store.readBlob(digest).toString(), 'hello');
  t.deepEqual(fs.readdirSync(path.join(root, 'tmp')), [], 'atomic writes leave no temp file');
});

test('the lock is exclusive across processes and released when its holder is killed', async (t) => {
  const root = path.join(await tempDir(t, 'lock'), 'root');
  const store = await Store.open(root);
  const holder = spawn(
    process.execPath,
    ['--input-type=module', '-e', `const { Store } = await import(${JSON.stringify(storeModule)}); const s = await Store.open(${JSON.stringify(root)}); await s.withLock(async () => { console.log('locked'); await new Promise(() => setInterval(() => {}, 1000)); });`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => {
    if (holder.exitCode === null) holder.kill('SIGKILL');
  });
  await new Promise<void>((resolve) => holder.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve()));
  let got = false;
  const mine = store.withLock(async () => {
    got = true;
  });
  await new Promise((r) => setTimeout(r, 300));
  t.false(got, 'another process holds the lock');
  holder.kill('SIGKILL');
  await mine;
  t.true(got, 'a killed holder releases the lock');
});

test('the lock is re-entrant within a call chain and serialises writers', async (t) => {
  const root = path.join(await tempDir(t, 'lock2'), 'root');
  const store = await Store.open(root);
  const nested = await store.withLock(() => store.withLock(async () => store.holdsLock()));
  t.true(nested);
  t.false(store.holdsLock());
  const counter = path.join(root, 'counter');
  fs.writeFileSync(counter, '0');
  const script = `const { Store } = await import(${JSON.stringify(storeModule)}); const fs = await import('node:fs');
    const s = await Store.open(${JSON.stringify(root)});
    for (let i = 0; i < 15; i++) await s.withLock(async () => { const n = Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8')); await new Promise((r) => setTimeout(r, 2)); fs.writeFileSync(${JSON.stringify(counter)}, String(n + 1)); });`;
  const results = await Promise.all([1, 2, 3].map(() => run(process.execPath, ['--input-type=module', '-e', script])));
  for (const r of results) t.is(r.code, 0, r.stderr);
  // and in-process concurrency too
  await Promise.all(
    [1, 2, 3, 4, 5].map(() =>
      store.withLock(async () => {
        const n = Number(fs.readFileSync(counter, 'utf8'));
        await new Promise((r) => setTimeout(r, 2));
        fs.writeFileSync(counter, String(n + 1));
      }),
    ),
  );
  t.is(fs.readFileSync(counter, 'utf8'), '50');
});

test('a child started while the lock is held does not inherit it', async (t) => {
  const root = path.join(await tempDir(t, 'lock3'), 'root');
  const store = await Store.open(root);
  const lockFile = path.join(root, 'lock');
  // A child that outlives the critical section would keep an inherited lock: `flock -n`
  // from outside must get it as soon as we let go, while that child still runs.
  let sleeper: ReturnType<typeof spawn> | undefined;
  t.teardown(() => {
    sleeper?.kill('SIGKILL');
  });
  await store.withLock(async () => {
    const busy = await run('flock', ['-n', lockFile, 'true']);
    t.not(busy.code, 0, 'held while inside withLock');
    sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  });
  t.true(fs.existsSync(lockFile));
  const free = await run('flock', ['-n', lockFile, 'true']);
  t.is(free.code, 0, 'released on leaving withLock although the child runs');
});

test("open sweeps dead processes' temp files and keeps live ones", async (t) => {
  const root = path.join(await tempDir(t, 'sweep'), 'root');
  await Store.open(root);
  const dead = spawn('true');
  await new Promise((r) => dead.on('close', r));
  fs.mkdirSync(path.join(root, 'tmp', `${dead.pid}-abc-layer`, 'x'), { recursive: true });
  fs.writeFileSync(path.join(root, 'tmp', `${process.pid}-def-blob`), 'mine');
  fs.writeFileSync(path.join(root, 'tmp', 'stray'), 'no pid');
  await Store.open(root);
  t.deepEqual(fs.readdirSync(path.join(root, 'tmp')), [`${process.pid}-def-blob`]);
});

// bin/ufs.cjs, the command users run: the CLI bundled as one CommonJS file with a V8 code
// cache (scripts/bundle-cli.mjs). Its output must be byte for byte that of the unbundled
// dist/src/cli/main.js (which the other tests drive), its code cache must be accepted, and a
// container must run through it (paths from import.meta.url, the native addon, the mount
// server and the monitor all resolve from the bundle).
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { CLI, imageEnv, run } from './helpers/images.js';

const repo = path.resolve(path.dirname(CLI), '..', '..', '..');
const BIN = path.join(repo, 'bin', 'ufs.cjs');
const bundled = fs.existsSync(path.join(repo, 'dist', 'ufs.cjs'));

test('the bundle prints what dist/src prints, and its code cache is accepted', async (t) => {
  if (!bundled) return t.pass('esbuild is not installed: bin/ufs.cjs runs dist/src (nothing bundled to compare)');
  t.true(fs.statSync(path.join(repo, 'dist', 'ufs.cjs.cache')).size > 10_000);
  const e = await imageEnv(t);
  await e.ok(['inspect', '-f', '{{.Id}}', 'busybox']); // busybox in the store
  await e.ok(['volume', 'create', 'v1']);
  const cases = [
    ['--help'],
    ['version', '--format', '{{.Client.Version}}'],
    ['images'],
    ['images', '--format', '{{json .}}'],
    ['ps', '-a'],
    ['inspect', 'busybox'],
    ['volume', 'ls'],
    ['system', 'df'],
    ['history', 'busybox'],
    ['completion', 'bash'],
    ['nosuch'],
    ['inspect', 'nosuch'],
    ['run', '--nosuch', 'busybox'],
  ];
  for (const args of cases) {
    const a = await run(process.execPath, [BIN, '--root', e.root, ...args], { env: { ...e.env, UFS_DEBUG: '1' } });
    const b = await e.ufs(args);
    t.is(a.stdout, b.stdout, args.join(' '));
    t.is(a.stderr.replace(/^ufs: code cache rejected\n/, 'REJECTED'), b.stderr, args.join(' '));
    t.is(a.code, b.code, args.join(' '));
  }
});

test('a container runs through bin/ufs.cjs, in the foreground and detached', async (t) => {
  const e = await imageEnv(t);
  const ufs = (args: string[]) => run(process.execPath, [BIN, '--root', e.root, ...args], { env: e.env, timeoutMs: 120_000 });
  const fg = await ufs(['run', '--rm', 'busybox', 'sh', '-c', 'echo hi; exit 3']);
  t.is(fg.stdout, 'hi\n');
  t.is(fg.code, 3);
  const id = (await ufs(['run', '-d', 'busybox', 'sleep', '30'])).stdout.trim();
  t.regex(id, /^[0-9a-f]{64}$/);
  try {
    t.regex((await ufs(['ps', '--format', '{{.ID}} {{.Status}}'])).stdout, new RegExp(`^${id.slice(0, 12)} Up `));
    t.is((await ufs(['exec', id, 'cat', '/etc/hostname'])).stdout, `${id.slice(0, 12)}\n`);
  } finally {
    t.is((await ufs(['rm', '-f', id])).code, 0);
  }
});

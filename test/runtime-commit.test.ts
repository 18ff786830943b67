// `ufs diff` and `ufs commit`: Docker's A/C/D lines, layers with whiteouts and opaque
// directories, images that run with the changes, chains of commits, deterministic layers,
// -c changes, and committing a running container.
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { makeEnv, type Env } from './helpers/runtime.js';

interface ImageInspect {
  Id: string;
  Author?: string;
  Comment?: string;
  Config: { Cmd?: string[] | null; Env?: string[]; WorkingDir?: string };
  RootFS: { Layers: string[] };
}

async function inspect(u: Env, ref: string): Promise<ImageInspect> {
  const out = JSON.parse(await u.ok(['inspect', ref])) as ImageInspect[] | ImageInspect;
  return Array.isArray(out) ? out[0] : out;
}

test('diff and commit: whiteouts, opaque directories, a chain of layers, -c changes', async (t) => {
  const u = await makeEnv(t);
  await u.ok(['run', '--name', 'c1', 'busybox', 'sh', '-c',
    'mkdir -p /d/sub /opq/old && echo 1 > /d/sub/f && echo keep > /keep && echo old > /opq/old/x && echo k > /d/k']);
  t.is(await u.ok(['diff', 'c1']), ['A /d', 'A /d/k', 'A /d/sub', 'A /d/sub/f', 'A /keep', 'A /opq', 'A /opq/old', 'A /opq/old/x', ''].join('\n'));
  const img1 = (await u.ok(['commit', '-m', 'first commit', '-a', 'Tester <t@example.com>', 'c1', 'img:one'])).trim();
  t.regex(img1, /^sha256:[0-9a-f]{64}$/);

  await u.ok(['run', '--name', 'c2', 'img:one', 'sh', '-c',
    'rm -rf /d/sub; rm /keep; rm -rf /opq; mkdir /opq; echo new > /opq/n; echo changed > /d/k; echo more >> /etc/passwd; rm /bin/vi']);
  const diff2 = (await u.ok(['diff', 'c2'])).split('\n').filter(Boolean);
  for (const line of ['C /bin', 'D /bin/vi', 'C /d', 'C /d/k', 'D /d/sub', 'C /etc', 'C /etc/passwd', 'D /keep', 'A /opq/n']) {
    t.true(diff2.includes(line), `${line} missing from:\n${diff2.join('\n')}`);
  }
  t.true(diff2.some((l) => / \/opq$/.test(l)), diff2.join('\n'));
  t.false(diff2.some((l) => l.includes('.wh.')), diff2.join('\n'));
  const img2 = (await u.ok(['commit', 'c2', 'img:two'])).trim();

  const check = 'ls /d; ls -A /opq; test -e /keep && echo keep; test -e /opq/old && echo old; test -e /bin/vi && echo vi; cat /d/k; tail -1 /etc/passwd';
  const expected = 'k\nn\nchanged\nmore\n';
  t.is(await u.ok(['run', '--rm', 'img:two', 'sh', '-c', check]), expected);
  t.is(await u.ok(['run', '--rm', img2, 'sh', '-c', check]), expected);

  // Committed again on top: a chain of layers, each image one layer more.
  await u.ok(['run', '--name', 'c3', 'img:two', 'sh', '-c', 'echo three > /three']);
  const img3 = (await u.ok(['commit', '-c', 'CMD ["cat", "/three"]', '-c', 'ENV A=b', '-c', 'WORKDIR /d', 'c3', 'img:three'])).trim();
  t.is(await u.ok(['run', '--rm', 'img:three']), 'three\n');
  t.is(await u.ok(['run', '--rm', 'img:three', 'sh', '-c', `echo "$A $(pwd)"; ${check}`]), `b /d\n${expected}`);

  const [i1, i2, i3, base] = await Promise.all([inspect(u, 'img:one'), inspect(u, 'img:two'), inspect(u, img3), inspect(u, 'busybox')]);
  t.is(i1.RootFS.Layers.length, base.RootFS.Layers.length + 1);
  t.deepEqual(i2.RootFS.Layers.slice(0, -1), i1.RootFS.Layers);
  t.deepEqual(i3.RootFS.Layers.slice(0, -1), i2.RootFS.Layers);
  t.is(i1.Author, 'Tester <t@example.com>');
  t.is(i1.Comment, 'first commit');
  // As Docker does, the container's command became the image's.
  t.deepEqual(i1.Config.Cmd?.slice(0, 2), ['sh', '-c']);
  t.deepEqual(i3.Config.Cmd, ['cat', '/three']);
  t.true(i3.Config.Env?.includes('A=b'));
  t.is(i3.Config.WorkingDir, '/d');

  // The same changes give the same layer: commit c2 again.
  const again = await inspect(u, (await u.ok(['commit', 'c2'])).trim());
  t.is(again.RootFS.Layers.at(-1), i2.RootFS.Layers.at(-1));

  // Bad input: a clear error, nothing made.
  const bad = await u.ufs(['commit', '-c', 'FROB x', 'c2', 'img:bad']);
  t.not(bad.code, 0);
  t.regex(bad.stderr, /^ufs: .*FROB/m);
  t.not((await u.ufs(['inspect', 'img:bad'])).code, 0);
  t.is((await u.ufs(['commit', 'no-such-container'])).code, 1);
});

test('commit works on a running container', async (t) => {
  const u = await makeEnv(t);
  await u.ok(['run', '-d', '--name', 'live', 'busybox', 'sleep', '1000']);
  await u.ok(['exec', 'live', 'sh', '-c', 'mkdir /data && seq 1 1000 > /data/numbers && rm /etc/group']);
  t.is(await u.ok(['diff', 'live']), 'A /data\nA /data/numbers\nC /etc\nD /etc/group\n');
  const img = (await u.ok(['commit', 'live', 'live:snap'])).trim();
  t.regex(img, /^sha256:/);
  t.is(await u.ok(['run', '--rm', 'live:snap', 'sh', '-c', 'wc -l < /data/numbers; test -e /etc/group || echo no-group']), '1000\nno-group\n');
  // The container goes on running, unaffected.
  t.is(await u.ok(['exec', 'live', 'tail', '-1', '/data/numbers']), '1000\n');
  await u.ok(['rm', '-f', 'live']);
});

test('commit of a running container waits for a background copy-up and commits the whole file', async (t) => {
  const u = await makeEnv(t);
  u.env.UFS_BACKGROUND_COPY_MIN = String(1 << 20); // 1 MiB counts as big: the copy goes on after the write
  await u.ok(['run', '--name', 'mk', 'busybox', 'sh', '-c', 'head -c 200000000 /dev/urandom > /big']);
  await u.ok(['commit', 'mk', 'big:base']);
  await u.ok(['run', '-d', '--name', 'writer', 'big:base', 'sh', '-c', 'printf HEAD | dd of=/big conv=notrunc 2>/dev/null; echo > /written; sleep 1000']);
  let written = false;
  for (let i = 0; i < 200 && !written; i++) {
    written = (await u.ufs(['exec', 'writer', 'test', '-e', '/written'])).code === 0;
    if (!written) await new Promise((r) => setTimeout(r, 25));
  }
  t.true(written, 'the container wrote its file');
  await u.ok(['commit', 'writer', 'big:after']);
  const sums = 'head -c 4 /big; echo; tail -c +5 /big | md5sum; stat -c %s /big';
  const base = (await u.ok(['run', '--rm', 'big:base', 'sh', '-c', sums])).split('\n');
  const after = (await u.ok(['run', '--rm', 'big:after', 'sh', '-c', sums])).split('\n');
  t.is(after[0], 'HEAD');
  t.deepEqual(after.slice(1), base.slice(1), 'the rest of the file is the lower\'s, whole');
  await u.ok(['rm', '-f', 'writer']);
});

test('commit of a busy container pauses it: every commit succeeds, the container goes on (--pause=false skips)', async (t) => {
  const u = await makeEnv(t);
  // Rewrites a file (truncate, then several writes) as fast as it can.
  await u.ok(['run', '-d', '--name', 'busy', 'busybox', 'sh', '-c', 'while :; do seq 1 3000 > /f; done']);
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < 4; i++) {
    const r = await u.ufs(['commit', 'busy', `busy:${i}`]);
    t.is(r.code, 0, r.stderr);
  }
  // The container was thawed after each commit and still rewrites its file.
  const rec = JSON.parse(await fs.readFile(path.join(u.root, 'containers', (await u.record('busy')).Id, 'config.json'), 'utf8')) as { State: { Paused?: boolean; Status: string } };
  t.is(rec.State.Status, 'running');
  t.falsy(rec.State.Paused);
  const state = await u.ok(['exec', 'busy', 'cat', '/sys/fs/cgroup/freezer/freezer.state']);
  t.is(state.trim(), 'THAWED');
  // The committed file is the container's file at one moment (a prefix of the sequence it
  // was writing, as Docker's pause gives: frozen between two writes), never a mix.
  const committed = await u.ok(['run', '--rm', 'busy:3', 'sh', '-c', 'seq 1 3000 | head -c $(wc -c < /f) | cmp - /f && echo same']);
  t.is(committed, 'same\n');
  t.is((await u.ufs(['commit', '--pause=maybe', 'busy'])).code, 1);
  await u.ok(['kill', 'busy']);
  t.is(await u.ok(['wait', 'busy']), '137\n');
  t.regex(await u.ok(['commit', '--pause=false', 'busy', 'busy:np']), /^sha256:/);
  await u.ok(['rm', '-f', 'busy']);
});

test('users are looked up in the container root, through its own symlinks, never the host', async (t) => {
  const u = await makeEnv(t);
  // /etc/passwd becomes an absolute symlink, meaningful only inside the container's root.
  await u.ok(['run', '--name', 'users', 'busybox', 'sh', '-c',
    'mkdir /secret && cp /etc/passwd /secret/passwd && echo "alice:x:1500:1600::/home/alice:/bin/sh" >> /secret/passwd && rm /etc/passwd && ln -s ../../../../secret/passwd /etc/passwd && echo "team:x:1700:alice" >> /etc/group']);
  await u.ok(['commit', '-c', 'USER alice', 'users', 'users:img']);
  t.is(await u.ok(['run', '--rm', 'users:img', 'sh', '-c', 'id -u; id -g; id -G; echo $HOME']), '1500\n1600\n1600 1700\n/home/alice\n');
  t.is(await u.ok(['run', '--rm', '-u', 'alice:team', 'users:img', 'id', '-g']), '1700\n');
});

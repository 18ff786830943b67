// The image commands as a person uses them: images, tag, rmi, history, inspect, import with
// --change, image prune, Docker's names and errors, and the built-in busybox.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { dockerArchive, imageEnv, type ImageEnv, must, rawTar, sha256, snapshot } from './helpers/images.js';

const base = rawTar([{ name: 'etc/', type: '5' }, { name: 'etc/base', content: 'base\n' }]);
const topA = rawTar([{ name: 'a', content: 'a'.repeat(3000) }]);
const topB = rawTar([{ name: 'b', content: 'b'.repeat(5000) }]);

async function loadTwo(e: ImageEnv): Promise<{ a: string; b: string }> {
  const archive = path.join(e.dir, 'two.tar');
  fs.writeFileSync(
    archive,
    dockerArchive([
      { layers: [base, topA], tags: ['app:a'], config: { created: '2020-01-01T00:00:00Z', history: [{ created: '2020-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:base in / ' }, { created: '2020-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true }, { created: '2020-01-01T00:00:00Z', created_by: '/bin/sh -c echo a > /a && a very long command line that goes on', comment: 'made a' }] } },
      { layers: [base, topB], tags: ['app:b'] },
    ]),
  );
  await e.ok(['load', '-i', archive]);
  const a = (await e.ok(['inspect', '-f', '{{.Id}}', 'app:a'])).trim();
  const b = (await e.ok(['inspect', '-f', '{{.Id}}', 'app:b'])).trim();
  return { a, b };
}

function layerNames(root: string): string[] {
  return fs.readdirSync(path.join(root, 'layers')).filter((n) => /^[a-f0-9]{64}$/.test(n)).sort();
}

test('images: columns, -q, --digests, --json, --no-trunc and a repository filter', async (t) => {
  const e = await imageEnv(t);
  const { a, b } = await loadTwo(e);
  const ls = await e.ok(['images']);
  const lines = ls.trimEnd().split('\n');
  t.regex(lines[0]!, /^REPOSITORY\s{3,}TAG\s{3,}IMAGE ID\s{3,}CREATED\s{3,}SIZE$/);
  t.true(lines.some((l) => new RegExp(`^app\\s+a\\s+${a.slice(7, 19)}\\s+\\d+ years ago\\s+3kB$`).test(l)), ls);
  t.true(lines.some((l) => new RegExp(`^app\\s+b\\s+${b.slice(7, 19)}\\s`).test(l)), ls);
  t.deepEqual((await e.ok(['images', '-q'])).trim().split('\n').sort(), [a.slice(7, 19), b.slice(7, 19)].sort());
  t.regex(await e.ok(['images', '--digests']), /^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE\n/);
  t.regex(await e.ok(['images', '--no-trunc']), new RegExp(a));
  const json = (await e.ok(['images', '--json'])).trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
  t.deepEqual(json.map((j) => `${j.Repository}:${j.Tag}`).sort(), ['app:a', 'app:b']);
  t.is(json.find((j) => j.Tag === 'a')!.Size, '3kB');
  t.is((await e.ok(['images', 'app:b'])).trim().split('\n').length, 2);
  t.is((await e.ok(['images', 'nothing'])).trim().split('\n').length, 1);
  t.regex(await e.ok(['image', 'ls']), /app\s+a/);
});

test("names: Docker's reference grammar, short IDs, clear errors", async (t) => {
  const e = await imageEnv(t);
  const { a } = await loadTwo(e);
  await e.ok(['tag', 'app:a', 'example.com:5000/team/app:v1.2']);
  await e.ok(['tag', a.slice(7, 15), 'myapp']);
  for (const ref of ['app:a', 'docker.io/library/app:a', 'example.com:5000/team/app:v1.2', 'myapp', 'myapp:latest', 'docker.io/library/myapp', a, a.slice(7), a.slice(7, 12), `sha256:${a.slice(7, 14)}`]) {
    t.is((await e.ok(['inspect', '-f', '{{.Id}}', ref])).trim(), a, ref);
  }
  const tags = JSON.parse(await e.ok(['inspect', '-f', '{{json .RepoTags}}', 'myapp'])) as string[];
  t.deepEqual(tags, ['app:a', 'example.com:5000/team/app:v1.2', 'myapp:latest']);
  const cases: [string[], string][] = [
    [['image', 'inspect', 'nosuch'], 'ufs: No such image: nosuch:latest\n'],
    [['image', 'inspect', 'nosuch:1.0'], 'ufs: No such image: nosuch:1.0\n'],
    [['inspect', 'nosuch'], 'ufs: No such object: nosuch\n'],
    [['inspect', '--type', 'image', 'nosuch:1.0'], 'ufs: No such image: nosuch:1.0\n'],
    [['inspect', 'Upper'], 'ufs: invalid reference format: repository name must be lowercase: "Upper"\n'],
    [['tag', 'app:a', 'bad tag'], 'ufs: invalid reference format: "bad tag"\n'],
    [['tag', 'app:a', `app@sha256:${'a'.repeat(64)}`], `ufs: invalid reference format: a tag is needed here, not a digest: "app@sha256:${'a'.repeat(64)}"\n`],
    [['history', 'deadbeef'], 'ufs: No such image: deadbeef:latest\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = await e.ufs(args);
    t.is(r.code, 1, args.join(' '));
    t.is(r.stderr, stderr, args.join(' '));
  }
});

test('rmi: untags, refuses what needs force, removes layers no image or container uses', async (t) => {
  const e = await imageEnv(t);
  const { a, b } = await loadTwo(e);
  await e.ok(['tag', 'app:a', 'other:a']);
  t.is(await e.ok(['rmi', 'other:a']), 'Untagged: other:a\n');
  await e.ok(['tag', 'app:a', 'other:a']);
  const conflict = await e.ufs(['rmi', a.slice(7, 19)]);
  t.is(conflict.code, 1);
  t.is(conflict.stderr, `ufs: conflict: unable to delete ${a.slice(7, 19)} (must be forced) - image is referenced in multiple repositories\n`);
  const allLayers = layerNames(e.root);
  t.is(allLayers.length, 3);
  const out = await e.ok(['rmi', '-f', a.slice(7, 19)]);
  t.is(out, `Untagged: app:a\nUntagged: other:a\nDeleted: ${a}\nDeleted: ${sha256(topA)}\n`);
  t.deepEqual(layerNames(e.root), [sha256(base).slice(7), sha256(topB).slice(7)].sort(), 'the shared base stays');
  t.false(fs.existsSync(path.join(e.root, 'blobs', 'sha256', a.slice(7))));
  // a container uses app:b: refused without -f; with -f untagged but its layers stay
  const cdir = path.join(e.root, 'containers', 'c0ffee'.padEnd(64, '0'));
  fs.mkdirSync(cdir, { recursive: true });
  fs.writeFileSync(path.join(cdir, 'config.json'), JSON.stringify({ Id: 'c0ffee'.padEnd(64, '0'), Image: b }));
  const used = await e.ufs(['rmi', 'app:b']);
  t.is(used.code, 1);
  t.is(used.stderr, `ufs: conflict: unable to remove repository reference "app:b" (must force) - container c0ffee000000 is using its referenced image ${b.slice(7, 19)}\n`);
  t.is(await e.ok(['rmi', '-f', 'app:b']), 'Untagged: app:b\n');
  t.is(layerNames(e.root).length, 2);
  t.regex(await e.ok(['image', 'prune', '-a', '-f']), /^Total reclaimed space: 0B\n$/);
  t.is(layerNames(e.root).length, 2, 'prune keeps what a container uses');
  fs.rmSync(cdir, { recursive: true });
  const pruned = await e.ok(['image', 'prune', '-f']);
  t.regex(pruned, new RegExp(`^Deleted Images:\\ndeleted: ${b}\\ndeleted: sha256:[0-9a-f]{64}\\ndeleted: sha256:[0-9a-f]{64}\\n\\nTotal reclaimed space: \\d`));
  t.deepEqual(layerNames(e.root), []);
  t.deepEqual(fs.readdirSync(path.join(e.root, 'blobs', 'sha256')), []);
  const missing = await e.ufs(['rmi', 'app:a', 'nosuch']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'ufs: No such image: app:a\nufs: No such image: nosuch:latest\n');
});

test('image prune removes dangling images; -a every image no container uses', async (t) => {
  const e = await imageEnv(t);
  const { a } = await loadTwo(e);
  await e.ok(['tag', 'app:b', 'app:a']); // app:a moves: image a is left dangling
  t.regex(await e.ok(['images']), /<none>\s+<none>/);
  const out = await e.ok(['image', 'prune', '--force']);
  t.true(out.startsWith(`Deleted Images:\ndeleted: ${a}\ndeleted: ${sha256(topA)}\n\nTotal reclaimed space: `), out);
  t.is(layerNames(e.root).length, 2);
  t.regex(await e.ok(['image', 'prune', '-a', '-f']), /untagged: app:a\nuntagged: app:b\ndeleted: sha256:/);
  t.deepEqual(layerNames(e.root), []);
  t.is((await e.ok(['images', '-q'])).trim(), '');
});

test('history: one row per entry, newest first, <missing> below the top, sizes', async (t) => {
  const e = await imageEnv(t);
  const { a } = await loadTwo(e);
  const out = await e.ok(['history', 'app:a']);
  const lines = out.trimEnd().split('\n');
  t.regex(lines[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  t.is(lines.length, 4);
  t.regex(lines[1]!, new RegExp(`^${a.slice(7, 19)}\\s+\\d+ years ago\\s+/bin/sh -c echo a > /a && a very long comman…\\s+3kB\\s+made a$`));
  t.regex(lines[2]!, /^<missing>\s+\d+ years ago\s+\/bin\/sh -c #\(nop\)  CMD \["sh"\]\s+0B\s*$/);
  t.regex(lines[3]!, /^<missing>\s+\d+ years ago\s+\/bin\/sh -c #\(nop\) ADD file:base in \/\s+5B\s*$/);
  const full = await e.ok(['history', '--no-trunc', 'app:a']);
  t.true(full.includes(a));
  t.true(full.includes('a very long command line that goes on'));
  t.deepEqual((await e.ok(['history', '-q', 'app:a'])).trim().split('\n'), [a.slice(7, 19), '<missing>', '<missing>']);
});

test('inspect: the Docker shape, several images, a template', async (t) => {
  const e = await imageEnv(t);
  const { a, b } = await loadTwo(e);
  const out = JSON.parse(await e.ok(['inspect', 'app:a', 'app:b'])) as Record<string, unknown>[];
  t.is(out.length, 2);
  const x = out[0]!;
  for (const k of ['Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'Author', 'Config', 'Architecture', 'Os', 'Size', 'RootFS', 'Metadata']) t.true(k in x, k);
  t.is(x.Id, a);
  t.deepEqual(x.RepoTags, ['app:a']);
  t.is(x.Created, '2020-01-01T00:00:00Z');
  t.is(x.Size, 3005);
  t.deepEqual(x.RootFS, { Type: 'layers', Layers: [sha256(base), sha256(topA)] });
  t.deepEqual((x.Config as { Cmd: string[] }).Cmd, ['sh']);
  t.is((await e.ok(['inspect', '-f', '{{.Id}} {{.Os}} {{json .Config.Cmd}}', 'app:b'])).trim(), `${b} linux ["sh"]`);
  const r = await e.ufs(['inspect', 'app:a', 'nosuch']);
  t.is(r.code, 1);
  t.is(r.stderr, 'ufs: No such object: nosuch\n');
  t.is((JSON.parse(r.stdout) as unknown[]).length, 1);
});

test('import: a rootfs tar (file, stdin, gzip) with --change, as docker import', async (t) => {
  const e = await imageEnv(t);
  const rootfs = rawTar([{ name: './', type: '5' }, { name: './bin/', type: '5' }, { name: './bin/tool', content: '#!/bin/sh\necho hi\n', mode: 0o755 }]);
  const file = path.join(e.dir, 'rootfs.tar');
  fs.writeFileSync(file, rootfs);
  const id = (
    await e.ok([
      'import',
      '--change', 'CMD ["/bin/tool", "--flag"]',
      '-c', 'ENV A=1 B="two words"',
      '-c', 'ENV C $A-x',
      '-c', 'WORKDIR /app',
      '-c', 'WORKDIR sub',
      '-c', 'USER nobody:nogroup',
      '-c', 'EXPOSE 80 53/udp 8000-8001',
      '-c', 'LABEL a=b "c d"=e',
      '-c', 'ENTRYPOINT /bin/tool start',
      '-c', 'VOLUME ["/data"]',
      '-c', 'STOPSIGNAL SIGINT',
      '-m', 'first import',
      file,
      'imported:v1',
    ])
  ).trim();
  t.regex(id, /^sha256:[0-9a-f]{64}$/);
  const x = (JSON.parse(await e.ok(['inspect', 'imported:v1'])) as { Id: string; Config: Record<string, unknown>; RootFS: { Layers: string[] }; Comment: string }[])[0]!;
  t.is(x.Id, id);
  t.deepEqual(x.RootFS.Layers, [sha256(rootfs)]);
  t.is(x.Comment, 'first import');
  t.deepEqual(x.Config.Cmd, ['/bin/tool', '--flag']);
  t.deepEqual(x.Config.Entrypoint, ['/bin/sh', '-c', '/bin/tool start']);
  t.deepEqual(x.Config.Env, ['A=1', 'B=two words', 'C=1-x']);
  t.is(x.Config.WorkingDir, '/app/sub');
  t.is(x.Config.User, 'nobody:nogroup');
  t.deepEqual(x.Config.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} });
  t.deepEqual(x.Config.Labels, { a: 'b', 'c d': 'e' });
  t.deepEqual(x.Config.Volumes, { '/data': {} });
  t.is(x.Config.StopSignal, 'SIGINT');
  const layer = path.join(e.root, 'layers', sha256(rootfs).slice(7));
  t.is(fs.readFileSync(path.join(layer, 'bin', 'tool'), 'utf8'), '#!/bin/sh\necho hi\n');
  t.is(fs.statSync(path.join(layer, 'bin', 'tool')).mode & 0o777, 0o755);
  t.regex(await e.ok(['history', 'imported:v1']), /first import/);
  // from stdin, gzip-compressed: same layer, the default comment
  const id2 = (await e.ok(['import', '-', 'piped'], { input: zlib.gzipSync(rootfs) })).trim();
  t.deepEqual(JSON.parse(await e.ok(['inspect', '-f', '{{json .RootFS.Layers}}', id2])), [sha256(rootfs)]);
  t.regex(await e.ok(['history', '--no-trunc', 'piped']), /Imported from -/);
  // refusals: a bad change (nothing read), a hostile tar (nothing stored)
  const before = snapshot(e.root);
  const bad = await e.ufs(['import', '-c', 'RUN rm -rf /', file]);
  t.is(bad.code, 1);
  t.is(bad.stderr, 'ufs: invalid change "RUN rm -rf /": RUN is not a valid change (use one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)\n');
  const evil = path.join(e.dir, 'evil.tar');
  fs.writeFileSync(evil, rawTar([{ name: 'ok', content: 'x' }, { name: '/etc/evil', content: 'x' }]));
  const r = await e.ufs(['import', evil, 'evil']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^ufs: layer sha256:[0-9a-f]{64}: entry "\/etc\/evil": absolute path\n$/);
  t.deepEqual(snapshot(e.root), before);
});

test('busybox:latest is built from the host busybox-static on first use, the same every time', async (t) => {
  const e = await imageEnv(t);
  t.is((await e.ok(['images', '-q'])).trim(), '', 'nothing before it is needed');
  const x = (JSON.parse(await e.ok(['inspect', 'busybox'])) as { Id: string; Config: { Cmd: string[]; Env: string[] }; RootFS: { Layers: string[] }; RepoTags: string[] }[])[0]!;
  t.deepEqual(x.RepoTags, ['busybox:latest']);
  t.deepEqual(x.Config.Cmd, ['sh']);
  t.true(x.Config.Env.some((v) => v.startsWith('PATH=') && v.includes('/bin')));
  t.is(x.RootFS.Layers.length, 1);
  const layer = path.join(e.root, 'layers', x.RootFS.Layers[0]!.slice(7));
  t.true(fs.readFileSync(path.join(layer, 'bin', 'busybox')).equals(fs.readFileSync('/bin/busybox')));
  const applets = (await must('/bin/busybox', ['--list'])).trim().split('\n');
  for (const a of applets.filter((n) => n !== 'busybox')) t.is(fs.statSync(path.join(layer, 'bin', a)).ino, fs.statSync(path.join(layer, 'bin', 'busybox')).ino, a);
  t.regex(fs.readFileSync(path.join(layer, 'etc', 'passwd'), 'utf8'), /^root:x:0:0:root:\/root:\/bin\/sh\n/);
  t.regex(fs.readFileSync(path.join(layer, 'etc', 'group'), 'utf8'), /^root:x:0:\n/);
  t.is(fs.statSync(path.join(layer, 'tmp')).mode & 0o7777, 0o1777);
  t.regex(await e.ok(['images']), /\nbusybox\s+latest\s+/);
  const e2 = await imageEnv(t);
  t.is((await e2.ok(['inspect', '-f', '{{.Id}}', 'busybox:latest'])).trim(), x.Id, 'deterministic');
  // concurrent first uses agree on one image
  const e3 = await imageEnv(t);
  const ids = await Promise.all([1, 2, 3].map(() => e3.ok(['inspect', '-f', '{{.Id}}', 'busybox'])));
  t.deepEqual(ids.map((s) => s.trim()), [x.Id, x.Id, x.Id]);
  t.is(layerNames(e3.root).length, 1);
});

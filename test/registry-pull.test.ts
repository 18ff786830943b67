// ufs pull against a real registry (Debian's docker-registry, started per test on a free
// loopback port): images pushed there by skopeo (OCI, Docker v2s2, a two-platform index) are
// pulled and compared file by file with umoci's unpacking of the same image; the errors a
// pull can meet each give one line, a non-zero exit and an untouched store.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { imageEnv, makeBusyboxRootfs, must, run, snapshot, tempDir, umociStaged, type ImageEnv } from './helpers/images.js';
import { ensureImage } from '../src/registry/ensure.js';
import { Store } from '../src/store/index.js';
import { skopeoCopy, startRegistry, treeListing } from './helpers/registry.js';

async function staged(t: Parameters<typeof tempDir>[0]): Promise<{ layout: string; rootfs: string }> {
  const dir = await tempDir(t, 'regsrc');
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  const layout = await umociStaged(dir, rootfs);
  // what the image's filesystem is, by umoci
  await must('umoci', ['unpack', '--image', `${layout}:staged`, path.join(dir, 'bundle')]);
  return { layout, rootfs: path.join(dir, 'bundle', 'rootfs') };
}

async function mounted(t: Parameters<typeof tempDir>[0], e: ImageEnv, image: string): Promise<string> {
  const mp = path.join(e.dir, `mp-${Math.random().toString(36).slice(2)}`);
  fs.mkdirSync(mp);
  await e.ok(['mount', image, mp]);
  t.teardown(() => run('fusermount', ['-uz', mp]));
  return mp;
}

test('pulls OCI and Docker v2s2 images pushed by skopeo; the same files as umoci unpacks; RepoDigests kept', async (t) => {
  const reg = await startRegistry(t);
  const src = await staged(t);
  await skopeoCopy(`oci:${src.layout}:staged`, `docker://${reg.host}/ufs/staged:oci`);
  await skopeoCopy(`oci:${src.layout}:staged`, `docker://${reg.host}/ufs/staged:v2s2`, ['-f', 'v2s2']);
  const e = await imageEnv(t);
  const want = treeListing(src.rootfs);
  for (const tag of ['oci', 'v2s2']) {
    const r = await e.ufs(['pull', `${reg.host}/ufs/staged:${tag}`]);
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, new RegExp(`^${tag}: Pulling from ufs/staged\n`));
    t.regex(r.stdout, /\nDigest: sha256:[a-f0-9]{64}\nStatus: Downloaded newer image for 127\.0\.0\.1:\d+\/ufs\/staged:\w+\n127\.0\.0\.1:\d+\/ufs\/staged:\w+\n$/);
    const mp = await mounted(t, e, `${reg.host}/ufs/staged:${tag}`);
    t.deepEqual(treeListing(mp), want, `${tag}: file by file as umoci unpacks it`);
    await e.ok(['umount', mp]);
  }
  // the second pull found every layer in the store (same diff_ids)
  const inspect = JSON.parse(await e.ok(['inspect', `${reg.host}/ufs/staged:v2s2`])) as { RepoDigests: string[]; RepoTags: string[] }[];
  const digest = (await must('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${reg.host}/ufs/staged:v2s2`])).trim();
  // one image (the same config) with two repo digests: the OCI and the v2s2 manifest
  t.is(inspect[0]!.RepoDigests.length, 2);
  t.true(inspect[0]!.RepoDigests.includes(`${reg.host}/ufs/staged@${digest}`));
  t.deepEqual(inspect[0]!.RepoTags, [`${reg.host}/ufs/staged:oci`, `${reg.host}/ufs/staged:v2s2`]);
  t.regex(await e.ok(['images', '--digests']), new RegExp(`ufs/staged +v2s2 +${digest}`));
  // pulled by digest: found by digest
  const r = await e.ufs(['pull', `${reg.host}/ufs/staged@${digest}`]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /Status: Image is up to date/);
  // rmi, Docker's rule: a tag with another tag of its repository left goes alone; the last
  // tag takes the repository's digests along, and the image with them.
  const host = reg.host;
  t.is(await e.ok(['rmi', `${host}/ufs/staged:oci`]), `Untagged: ${host}/ufs/staged:oci\n`);
  const last = await e.ok(['rmi', `${host}/ufs/staged:v2s2`]);
  const untagged = last.split('\n').filter((l) => l.startsWith('Untagged: '));
  t.deepEqual(untagged.sort(), [`Untagged: ${host}/ufs/staged:v2s2`, ...inspect[0]!.RepoDigests.map((d) => `Untagged: ${d}`)].sort());
  t.regex(last, /\nDeleted: sha256:[0-9a-f]{64}\n/);
  t.is(await e.ok(['images', '-q']), '');
});

test('pull of an unchanged tag fetches only the manifest; layers the store has are not fetched', async (t) => {
  const reg = await startRegistry(t, { tokenAuth: true });
  const src = await staged(t);
  await skopeoCopy(`oci:${src.layout}:staged`, `docker://${reg.host}/public/staged:1`, ['--dest-creds', 'alice:secret']);
  await skopeoCopy(`oci:${src.layout}:staged`, `docker://${reg.host}/public/other:1`, ['--dest-creds', 'alice:secret', '-f', 'v2s2']);
  const e = await imageEnv(t);
  const skopeoTokens = reg.tokenRequests.length;
  const first = await e.ufs(['pull', `${reg.host}/public/staged:1`]);
  t.is(first.code, 0, first.stderr);
  t.is((first.stdout.match(/: Pull complete\n/g) ?? []).length, 5, first.stdout);
  const before = snapshot(e.root);
  const again = await e.ufs(['pull', `${reg.host}/public/staged:1`]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /Status: Image is up to date for 127\.0\.0\.1:\d+\/public\/staged:1\n/);
  t.notRegex(again.stdout, /Pull complete/);
  t.deepEqual(snapshot(e.root), before, 'nothing changed in the store');
  // another repository with the same layers (v2s2 this time): all "Already exists"
  const other = await e.ufs(['pull', `${reg.host}/public/other:1`]);
  t.is(other.code, 0, other.stderr);
  t.is((other.stdout.match(/: Already exists\n/g) ?? []).length, 5, other.stdout);
  t.notRegex(other.stdout, /Pull complete/);
  const ours = reg.tokenRequests.slice(skopeoTokens);
  t.true(ours.length >= 3 && ours.every((q) => !q.user && q.scope.every((s) => /^repository:public\/\w+:pull$/.test(s))), 'anonymous pull tokens, one per scope and run');
});

test('ensureImage (INTERFACES.md §4): missing pulls once, never refuses, always re-checks; busybox:latest stays built in', async (t) => {
  const reg = await startRegistry(t);
  const src = await staged(t);
  await skopeoCopy(`oci:${src.layout}:staged`, `docker://${reg.host}/ufs/ensure:1`);
  const e = await imageEnv(t);
  const store = await Store.open(e.root);
  const ref = `${reg.host}/ufs/ensure:1`;
  await t.throwsAsync(ensureImage(store, ref, { pull: 'never' }), { message: /^No such image: 127\.0\.0\.1:\d+\/ufs\/ensure:1$/ });
  const events: string[] = [];
  const id = await ensureImage(store, ref, { pull: 'missing', onProgress: (ev) => events.push(ev.status) });
  t.regex(id, /^sha256:[a-f0-9]{64}$/);
  t.true(events.includes('Pull complete'));
  t.is(await ensureImage(store, ref, { pull: 'never' }), id);
  const again: string[] = [];
  t.is(await ensureImage(store, ref, { pull: 'always', onProgress: (ev) => again.push(ev.status) }), id);
  t.deepEqual(again, [], 'always: the manifest is unchanged, nothing fetched');
  const bb = await ensureImage(store, 'busybox', { pull: 'missing' });
  t.is(store.readImageDb().tags['docker.io/library/busybox:latest']?.id, bb, 'the built-in busybox, no network');
});

test('zstd-compressed layers (pushed by skopeo) pull and unpack as their gzip twins do', async (t) => {
  const reg = await startRegistry(t);
  const src = await staged(t);
  await skopeoCopy(`oci:${src.layout}:staged`, `docker://${reg.host}/ufs/zstd:1`, ['--dest-compress-format', 'zstd', '--dest-compress', '-f', 'oci']);
  const raw = JSON.parse(await must('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/ufs/zstd:1`])) as { layers: { mediaType: string }[] };
  t.true(raw.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+zstd'), 'skopeo pushed zstd layers');
  const e = await imageEnv(t);
  const r = await e.ufs(['pull', `${reg.host}/ufs/zstd:1`]);
  t.is(r.code, 0, r.stderr);
  const mp = await mounted(t, e, `${reg.host}/ufs/zstd:1`);
  t.deepEqual(treeListing(mp), treeListing(src.rootfs));
  await e.ok(['umount', mp]);
  // and out again: --format v2s2 needs gzip, made from the zstd layers once
  const pushed = await e.ufs(['push', '--format', 'v2s2', `${reg.host}/ufs/zstd:1`]);
  t.is(pushed.code, 0, pushed.stderr);
  const back = JSON.parse(await must('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/ufs/zstd:1`])) as { layers: { mediaType: string }[] };
  t.true(back.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
});

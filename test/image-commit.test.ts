// The API the runtime and builder use (Contract 5): commitLayer, createImage, resolveImage,
// leases against a concurrent prune, and the parsers behind names and --change.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import { applyChanges } from '../src/image/changes.js';
import { collectGarbage, commitLayer, createImage, pruneImages, resolveImage } from '../src/image/index.js';
import { hasNativeXattrs } from '../src/image/native.js';
import { compressedLayerBlob } from '../src/image/writer/blobs.js';
import { familiarName, normalizeTagged, parseReference } from '../src/image/reference.js';
import { lookupImage } from '../src/image/records.js';
import { emptyImageDb, Store } from '../src/store/index.js';
import { imageEnv, must, run, sha256, tempDir } from './helpers/images.js';

async function xattrOf(file: string, name: string): Promise<string | undefined> {
  const r = await run('getfattr', ['-h', '-n', name, '--only-values', file]);
  return r.code === 0 ? r.stdout : undefined;
}

// An upper dir as the union leaves it: new files, a whiteout, an opaque dir, a union temp
// file and the union's private xattr.
async function makeUpper(dir: string): Promise<string> {
  const up = path.join(dir, 'upper');
  fs.mkdirSync(path.join(up, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(up, 'opt', 'app'), { recursive: true });
  fs.writeFileSync(path.join(up, 'etc', 'motd'), 'hello\n');
  fs.writeFileSync(path.join(up, 'etc', '.wh.issue'), '');
  fs.writeFileSync(path.join(up, 'opt', 'app', '.wh..wh..opq'), '');
  fs.writeFileSync(path.join(up, 'opt', 'app', 'run'), '#!/bin/sh\n', { mode: 0o755 });
  fs.chmodSync(path.join(up, 'opt', 'app', 'run'), 0o755);
  fs.writeFileSync(path.join(up, '.wh..wh..ufs.tmp.1234'), 'in-flight copy-up');
  fs.symlinkSync('motd', path.join(up, 'etc', 'motd.link'));
  await must('setfattr', ['-n', 'trusted.ufs.origin', '-v', '0x0102', path.join(up, 'etc', 'motd')]);
  await must('setfattr', ['-n', 'user.kept', '-v', 'yes', path.join(up, 'etc', 'motd')]);
  fs.utimesSync(path.join(up, 'etc', 'motd'), 1_700_000_000.75, 1_700_000_000.75);
  return up;
}

test('commitLayer: no gzip at commit; the gzip blob made once from the layer directory, remembered', async (t) => {
  t.true(hasNativeXattrs(), 'the sys addon provides xattrs');
  const dir = await tempDir(t, 'commit');
  const store = await Store.open(path.join(dir, 'root'));
  const up = await makeUpper(dir);
  const { diffId } = await commitLayer(store, up);
  const again = await commitLayer(store, up);
  t.is(again.diffId, diffId, 'same tree, same diff_id');
  const meta = store.layerMeta(diffId)!;
  t.is(meta.blob.mediaType, 'application/vnd.oci.image.layer.v1.tar', 'commit compresses nothing (INTERFACES.md §5)');
  t.is(meta.blob.digest, diffId);
  t.false(store.hasBlob(meta.blob.digest), 'and stores no blob');
  const gz = await compressedLayerBlob(store, diffId);
  t.is(gz.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  t.deepEqual(store.layerMeta(diffId)!.blob, { digest: gz.digest, size: gz.size, mediaType: gz.mediaType }, 'remembered in layers/<hex>.json');
  const blobStat = fs.statSync(store.blobPath(gz.digest));
  t.is((await compressedLayerBlob(store, diffId)).digest, gz.digest, 'asked again: the same blob');
  t.is(fs.statSync(store.blobPath(gz.digest)).mtimeMs, blobStat.mtimeMs, 'not made again');
  const blob = fs.readFileSync(store.blobPath(gz.digest));
  t.is(sha256(blob), gz.digest);
  const tar = zlib.gunzipSync(blob);
  t.is(sha256(tar), diffId, 'diff_id is the sha256 of the uncompressed tar');
  const names = (await must('tar', ['-tvf', '-'], { input: tar })).trim().split('\n');
  t.deepEqual(
    names.map((l) => l.split(/\s+/).slice(5).join(' ')),
    ['etc/', 'etc/.wh.issue', 'etc/motd', 'etc/motd.link -> motd', 'opt/', 'opt/app/', 'opt/app/.wh..wh..opq', 'opt/app/run'],
  );
  t.true(names.every((l) => / 0\/0 /.test(l)), 'numeric owners, no user names');
  const layer = store.layerDir(diffId);
  t.true(fs.existsSync(path.join(layer, 'etc', '.wh.issue')));
  t.true(fs.existsSync(path.join(layer, 'opt', 'app', '.wh..wh..opq')));
  t.false(fs.existsSync(path.join(layer, '.wh..wh..ufs.tmp.1234')));
  t.is(await xattrOf(path.join(layer, 'etc', 'motd'), 'user.kept'), 'yes');
  t.is(await xattrOf(path.join(layer, 'etc', 'motd'), 'trusted.ufs.origin'), undefined);
  t.is(fs.statSync(path.join(layer, 'etc', 'motd')).mtimeMs, 1_700_000_000_000, 'mtime in whole seconds');
  t.is(fs.statSync(path.join(layer, 'opt', 'app', 'run')).mode & 0o777, 0o755);
  t.deepEqual(fs.readdirSync(store.tmpDir()), []);
});

test('createImage on busybox: config, history with the parent, changes, tag; a lease until then', async (t) => {
  const dir = await tempDir(t, 'create');
  const store = await Store.open(path.join(dir, 'root'));
  const parent = await resolveImage(store, 'busybox');
  const { diffId } = await commitLayer(store, await makeUpper(dir));
  // a prune between commit and createImage must not take the fresh layer
  await store.withLock(async () => collectGarbage(store));
  t.true(store.hasLayer(diffId), 'leased layers survive garbage collection');
  const id = await createImage(store, {
    parent: parent.id,
    addDiffIds: [diffId],
    history: [{ created_by: 'sh -c echo hello > /etc/motd', comment: 'a commit' }, { created_by: '/bin/sh -c #(nop)  CMD ["cat","/etc/motd"]', empty_layer: true }],
    changes: ['CMD ["cat", "/etc/motd"]', 'ENV GREETING=hello'],
    author: 'Tester <t@example.com>',
    tag: 'mine:v1',
  });
  t.deepEqual(fs.readdirSync(store.leasesDir()), [], 'createImage drops the lease');
  const img = await resolveImage(store, 'mine:v1');
  t.is(img.id, id);
  t.deepEqual(img.refs, ['mine:v1']);
  t.deepEqual(img.diffIds, [...parent.diffIds, diffId]);
  t.deepEqual(img.layerDirs, [store.layerDir(diffId), ...parent.layerDirs], 'top first');
  t.deepEqual(img.config.config?.Cmd, ['cat', '/etc/motd']);
  t.true(img.config.config?.Env?.includes('GREETING=hello'));
  t.true(img.config.config?.Env?.some((e) => e.startsWith('PATH=')), 'parent config kept');
  t.is(img.config.author, 'Tester <t@example.com>');
  t.is(img.config.history!.length, parent.config.history!.length + 2);
  t.is(img.config.history!.at(-2)!.comment, 'a commit');
  t.is(img.config.history!.at(-2)!.author, 'Tester <t@example.com>');
  await t.throwsAsync(createImage(store, { addDiffIds: [diffId], history: [] }), { message: /1 new layers but 0 non-empty history entries/ });
  // prune -a keeps nothing that is not used; the image is tagged so plain prune keeps it
  t.deepEqual((await pruneImages(store, false)).lines, []);
  t.true(store.hasLayer(diffId));
});

test('the CLI shows a committed image with its parent in history', async (t) => {
  const e = await imageEnv(t);
  await e.ok(['images']);
  const store = await Store.open(e.root);
  const parent = await resolveImage(store, 'busybox');
  const { diffId } = await commitLayer(store, await makeUpper(e.dir));
  const id = await createImage(store, { parent: parent.id, addDiffIds: [diffId], history: [{ created_by: 'commit' }], tag: 'child' });
  const rows = (await e.ok(['history', 'child'])).trimEnd().split('\n').slice(1);
  t.is(rows.length, 3);
  t.true(rows[0]!.startsWith(id.slice(7, 19)));
  t.true(rows[1]!.startsWith(parent.id.slice(7, 19)), 'the parent image shows on its own top row');
  t.true(rows[2]!.startsWith('<missing>'));
  t.is((await e.ok(['inspect', '-f', '{{.Parent}}', 'child'])).trim(), parent.id);
  // rmi the parent name: the child still works, and its layers stay
  await e.ok(['rmi', 'busybox']);
  t.true(fs.existsSync(parent.layerDirs[0]!));
  const out = await e.ok(['save', '-o', path.join(e.dir, 'child.tar'), 'child']);
  t.is(out, '');
});

test('reference grammar and normalisation', (t) => {
  t.is(normalizeTagged('busybox'), 'docker.io/library/busybox:latest');
  t.is(normalizeTagged('user/app:1.0'), 'docker.io/user/app:1.0');
  t.is(normalizeTagged('localhost/app'), 'localhost/app:latest');
  t.is(normalizeTagged('localhost:5000/a/b/c:t_1.x-y'), 'localhost:5000/a/b/c:t_1.x-y');
  t.is(normalizeTagged('index.docker.io/library/alpine:3'), 'docker.io/library/alpine:3');
  t.is(normalizeTagged('[::1]:5000/app'), '[::1]:5000/app:latest');
  t.deepEqual(parseReference(`app@sha256:${'b'.repeat(64)}`), { domain: 'docker.io', path: 'library/app', digest: `sha256:${'b'.repeat(64)}` });
  t.is(familiarName('docker.io/library/busybox'), 'busybox');
  t.is(familiarName('docker.io/user/app'), 'user/app');
  t.is(familiarName('quay.io/x/y'), 'quay.io/x/y');
  for (const bad of ['', 'UPPER', 'a:b:c', 'a/', '-a', 'a..b', `a:${'t'.repeat(129)}`, 'a@sha256:123', 'b'.repeat(64)]) {
    t.throws(() => parseReference(bad), { message: /^invalid reference format/ }, bad);
  }
});

test('lookup: full and short IDs, names, digests, ambiguity', (t) => {
  const db = emptyImageDb();
  const id1 = `sha256:abc1${'0'.repeat(60)}`;
  const id2 = `sha256:abc2${'0'.repeat(60)}`;
  db.images[id1] = { manifest: `sha256:${'d'.repeat(64)}`, added: '' };
  db.images[id2] = { manifest: `sha256:${'e'.repeat(64)}`, added: '' };
  db.tags['docker.io/library/app:latest'] = { id: id1, manifest: `sha256:${'d'.repeat(64)}` };
  db.digests[`docker.io/library/app@sha256:${'f'.repeat(64)}`] = { id: id2, manifest: `sha256:${'f'.repeat(64)}` };
  t.is(lookupImage(db, 'app').id, id1);
  t.is(lookupImage(db, 'docker.io/library/app:latest').id, id1);
  t.is(lookupImage(db, `app@sha256:${'f'.repeat(64)}`).id, id2);
  t.is(lookupImage(db, `app@sha256:${'d'.repeat(64)}`).id, id1, 'a tag of that repository with that manifest');
  t.is(lookupImage(db, 'abc1').id, id1);
  t.is(lookupImage(db, id2).id, id2);
  t.is(lookupImage(db, 'sha256:abc2').id, id2);
  t.throws(() => lookupImage(db, 'abc'), { message: 'ambiguous image ID "abc": it matches 2 images' });
  t.deepEqual(lookupImage(db, 'other'), { full: 'docker.io/library/other:latest' });
  t.deepEqual(lookupImage(db, 'fff'), { full: 'docker.io/library/fff:latest' });
});

test('--change parsing: JSON and shell forms, quoting, $VAR, errors', (t) => {
  const c = applyChanges({ Env: ['PATH=/bin', 'HOME=/root'] }, [
    'CMD echo "hi there"',
    'ENTRYPOINT ["/init", "--"]',
    `ENV A="quoted value" B=plain C='single $HOME' D=$HOME/x E=\${PATH}:/usr/bin`,
    'ENV LEGACY a value with spaces',
    'LABEL "com.example.key"="v 1" other=2',
    'EXPOSE 8080/TCP',
    'VOLUME /a /b',
    'WORKDIR /srv',
    'WORKDIR $HOME',
    'USER 1000:1000',
    'ONBUILD RUN make',
  ]);
  t.deepEqual(c.Cmd, ['/bin/sh', '-c', 'echo "hi there"']);
  t.deepEqual(c.Entrypoint, ['/init', '--']);
  t.deepEqual(c.Env, ['PATH=/bin', 'HOME=/root', 'A=quoted value', 'B=plain', 'C=single $HOME', 'D=/root/x', 'E=/bin:/usr/bin', 'LEGACY=a value with spaces']);
  t.deepEqual(c.Labels, { 'com.example.key': 'v 1', other: '2' });
  t.deepEqual(c.ExposedPorts, { '8080/tcp': {} });
  t.deepEqual(c.Volumes, { '/a': {}, '/b': {} });
  t.is(c.WorkingDir, '/root');
  t.is(c.User, '1000:1000');
  t.deepEqual(c.OnBuild, ['RUN make']);
  t.throws(() => applyChanges({}, ['FROM scratch']), { message: /^invalid change "FROM scratch": FROM is not a valid change/ });
  t.throws(() => applyChanges({}, ['EXPOSE http']), { message: 'invalid change "EXPOSE http": invalid port "http"' });
  t.throws(() => applyChanges({}, ['ENV A="open']), { message: 'invalid change "ENV A=\\"open": unterminated quote' });
  t.throws(() => applyChanges({}, ['LABEL novalue']), { message: 'invalid change "LABEL novalue": LABEL needs key=value' });
});

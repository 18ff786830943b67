// ufs push, login and logout against a real registry: what ufs pushes is read back by skopeo
// and unpacked by umoci; blobs the registry has are skipped or mounted; a layer made here is
// compressed once; with token auth, anonymous pushes are denied with a hint, wrong passwords
// are refused and stored nowhere, credentials go to config.json (0600) or a credential helper.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import test from 'ava';
import { RegistryClient } from '../src/registry/client.js';
import { imageEnv, makeBusyboxRootfs, must, tempDir } from './helpers/images.js';
import { PASSWORD, startRegistry, treeListing, USER } from './helpers/registry.js';

async function rootfsTar(t: Parameters<typeof tempDir>[0]): Promise<{ rootfs: string; tar: string }> {
  const dir = await tempDir(t, 'pushsrc');
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  fs.writeFileSync(path.join(rootfs, 'etc', 'motd'), 'pushed by ufs\n');
  const tar = path.join(dir, 'rootfs.tar');
  await must('tar', ['-C', rootfs, '--numeric-owner', '-cf', tar, '.']);
  return { rootfs, tar };
}

async function umociUnpack(t: Parameters<typeof tempDir>[0], image: string, extra: string[] = []): Promise<{ rootfs: string; raw: string }> {
  const dir = await tempDir(t, 'pushchk');
  const layout = path.join(dir, 'layout');
  const raw = await must('skopeo', ['inspect', '--raw', '--tls-verify=false', ...extra, `docker://${image}`]);
  await must('skopeo', ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', ...extra, `docker://${image}`, `oci:${layout}:x`]);
  await must('umoci', ['unpack', '--image', `${layout}:x`, path.join(dir, 'bundle')]);
  return { rootfs: path.join(dir, 'bundle', 'rootfs'), raw };
}

test('push: skopeo reads it and umoci unpacks the same files; v2s2 by default, --format oci; skipped, mounted, compressed once', async (t) => {
  const reg = await startRegistry(t);
  const { rootfs, tar } = await rootfsTar(t);
  const e = await imageEnv(t);
  await e.ok(['import', tar, `${reg.host}/ufs/app:1`, '--change', 'CMD ["sh"]']);
  const first = await e.ufs(['push', `${reg.host}/ufs/app:1`]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, new RegExp(`^The push refers to repository \\[${reg.host}/ufs/app\\]\n[a-f0-9]{12}: Pushed\n1: digest: (sha256:[a-f0-9]{64}) size: \\d+\n$`));
  const digest = /digest: (sha256:[a-f0-9]{64})/.exec(first.stdout)![1]!;
  const got = await umociUnpack(t, `${reg.host}/ufs/app:1`);
  t.is((JSON.parse(got.raw) as { mediaType: string }).mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  t.deepEqual(treeListing(got.rootfs), treeListing(rootfs), 'file by file as imported');
  // the gzip blob made for the push is remembered with the layer
  const metas = fs.readdirSync(path.join(e.root, 'layers')).filter((n) => n.endsWith('.json'));
  t.is(metas.length, 1);
  const meta = JSON.parse(fs.readFileSync(path.join(e.root, 'layers', metas[0]!), 'utf8')) as { blob: { mediaType: string; digest: string } };
  t.is(meta.blob.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const blobStat = fs.statSync(path.join(e.root, 'blobs', 'sha256', meta.blob.digest.slice(7)));
  // again: nothing uploaded
  const again = await e.ufs(['push', `${reg.host}/ufs/app:1`]);
  t.regex(again.stdout, /[a-f0-9]{12}: Layer already exists\n/);
  t.regex(again.stdout, new RegExp(`1: digest: ${digest} `));
  // to another repository of the same registry: mounted from the first
  await e.ok(['tag', `${reg.host}/ufs/app:1`, `${reg.host}/ufs/copy:2`]);
  const mounted = await e.ufs(['push', `${reg.host}/ufs/copy:2`]);
  t.is(mounted.code, 0, mounted.stderr);
  t.regex(mounted.stdout, /[a-f0-9]{12}: Mounted from ufs\/app\n/);
  // OCI on request; the layer was not compressed again
  await e.ok(['tag', `${reg.host}/ufs/app:1`, `${reg.host}/ufs/oci:1`]);
  await e.ok(['push', '--format', 'oci', `${reg.host}/ufs/oci:1`]);
  const oci = await umociUnpack(t, `${reg.host}/ufs/oci:1`);
  t.is((JSON.parse(oci.raw) as { mediaType: string }).mediaType, 'application/vnd.oci.image.manifest.v1+json');
  t.deepEqual(treeListing(oci.rootfs), treeListing(rootfs));
  t.is(fs.statSync(path.join(e.root, 'blobs', 'sha256', meta.blob.digest.slice(7))).mtimeMs, blobStat.mtimeMs, 'the gzip blob was made once');
  const inspect = JSON.parse(await e.ok(['inspect', `${reg.host}/ufs/app:1`])) as { RepoDigests: string[] }[];
  t.true(inspect[0]!.RepoDigests.includes(`${reg.host}/ufs/app@${digest}`), 'push records the repo digest');
  // errors: no such local image, bad format
  const none = await e.ufs(['push', `${reg.host}/ufs/none:1`]);
  t.is(none.code, 1);
  t.regex(none.stderr, /^ufs: No such image: 127\.0\.0\.1:\d+\/ufs\/none:1\n$/);
  const bad = await e.ufs(['push', '--format', 'v1', `${reg.host}/ufs/app:1`]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^ufs: unknown --format "v1": use v2s2 or oci\n$/);
});

test('token auth: anonymous push denied with a hint, wrong password refused, login/logout in config.json (0600)', async (t) => {
  const reg = await startRegistry(t, { tokenAuth: true });
  const { tar } = await rootfsTar(t);
  const e = await imageEnv(t);
  const cfgDir = path.join(e.dir, 'docker');
  const env = { DOCKER_CONFIG: cfgDir };
  await e.ok(['import', tar, `${reg.host}/team/app:1`]);
  const anon = await e.ufs(['push', `${reg.host}/team/app:1`], { env });
  t.is(anon.code, 1);
  t.regex(anon.stderr, /^ufs: .*access denied.*`ufs login 127\.0\.0\.1:\d+`\n$/);
  const wrong = await e.ufs(['login', '-u', USER, '--password-stdin', reg.host], { env, input: 'nope\n' });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /^ufs: unauthorized: incorrect username or password for 127\.0\.0\.1:\d+\n$/);
  t.false(fs.existsSync(path.join(cfgDir, 'config.json')), 'nothing stored');
  const ok = await e.ufs(['login', '-u', USER, '--password-stdin', reg.host], { env, input: `${PASSWORD}\n` });
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, 'Login Succeeded\n');
  const file = path.join(cfgDir, 'config.json');
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as { auths: Record<string, { auth: string }> };
  t.is(Buffer.from(cfg.auths[reg.host]!.auth, 'base64').toString(), `${USER}:${PASSWORD}`);
  const pushed = await e.ufs(['push', `${reg.host}/team/app:1`], { env });
  t.is(pushed.code, 0, pushed.stderr);
  // a private repository: pulled with the login, denied without
  const other = await imageEnv(t);
  const pulled = await other.ufs(['pull', `${reg.host}/team/app:1`], { env });
  t.is(pulled.code, 0, pulled.stderr);
  t.is((await e.ufs(['logout', reg.host], { env })).stdout, `Removing login credentials for ${reg.host}\n`);
  t.deepEqual((JSON.parse(fs.readFileSync(file, 'utf8')) as { auths: object }).auths, {});
  t.is((await e.ufs(['logout', reg.host], { env })).stdout, `Not logged in to ${reg.host}\n`);
  const third = await imageEnv(t);
  const denied = await third.ufs(['pull', `${reg.host}/team/app:1`], { env });
  t.is(denied.code, 1);
  t.regex(denied.stderr, /^ufs: pull .*access denied.*`ufs login 127\.0\.0\.1:\d+`\n$/);
  t.is(await third.ok(['images', '-q']), '', 'nothing half-pulled');
});

test('credential helpers: credsStore is used for login, pull and logout', async (t) => {
  const reg = await startRegistry(t, { tokenAuth: true });
  const e = await imageEnv(t);
  const bin = path.join(e.dir, 'bin');
  const vault = path.join(e.dir, 'vault');
  fs.mkdirSync(bin);
  fs.mkdirSync(vault);
  // docker-credential-NAME: get/store/erase with the server on stdin (the helper protocol)
  fs.writeFileSync(
    path.join(bin, 'docker-credential-ufstest'),
    `#!/bin/sh
set -e
V=${vault}
case "$1" in
store) cat > "$V/in.json"; node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1]));require("fs").writeFileSync(process.argv[2]+"/"+encodeURIComponent(j.ServerURL),JSON.stringify(j))' "$V/in.json" "$V"; rm "$V/in.json";;
get) s=$(cat); f="$V/$(node -p 'encodeURIComponent(process.argv[1])' "$s")"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi;;
erase) s=$(cat); f="$V/$(node -p 'encodeURIComponent(process.argv[1])' "$s")"; if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi;;
esac
`,
    { mode: 0o755 },
  );
  const cfgDir = path.join(e.dir, 'docker');
  fs.mkdirSync(cfgDir);
  fs.writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ credsStore: 'ufstest' }));
  const env = { DOCKER_CONFIG: cfgDir, PATH: `${bin}:${process.env.PATH}` };
  const { tar } = await rootfsTar(t);
  await e.ok(['import', tar, `${reg.host}/team/h:1`]);
  const ok = await e.ufs(['login', '-u', USER, '-p', PASSWORD, reg.host], { env });
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stderr, /WARNING! Using --password via the CLI is insecure/);
  const stored = JSON.parse(fs.readFileSync(path.join(vault, encodeURIComponent(reg.host)), 'utf8')) as { Username: string; Secret: string };
  t.deepEqual(stored, { ServerURL: reg.host, Username: USER, Secret: PASSWORD });
  t.false(JSON.stringify(JSON.parse(fs.readFileSync(path.join(cfgDir, 'config.json'), 'utf8'))).includes(PASSWORD), 'no password in config.json');
  const pushed = await e.ufs(['push', `${reg.host}/team/h:1`], { env });
  t.is(pushed.code, 0, pushed.stderr);
  t.is((await e.ufs(['logout', reg.host], { env })).code, 0);
  t.false(fs.existsSync(path.join(vault, encodeURIComponent(reg.host))), 'erased from the helper');
});

test('tokens are cached per scope and asked for again when they expire', async (t) => {
  const reg = await startRegistry(t, { tokenAuth: true, tokenLife: 2 });
  const client = await RegistryClient.connect(reg.host, reg.host, { credentials: { username: USER, password: PASSWORD } });
  t.is(client.authScheme, 'bearer');
  const get = async (repo: string) => {
    const res = await client.send('GET', `/v2/${repo}/tags/list`, [`repository:${repo}:pull`]);
    res.body.resume();
    return res.status;
  };
  const start = reg.tokenRequests.length;
  t.is(await get('team/a'), 404, 'authorised (the repository does not exist)');
  t.is(await get('team/a'), 404);
  t.is(reg.tokenRequests.length - start, 1, 'one token for one scope');
  await get('team/b');
  t.is(reg.tokenRequests.length - start, 2, 'another scope, another token');
  await new Promise((r) => setTimeout(r, 2100));
  t.is(await get('team/a'), 404);
  t.is(reg.tokenRequests.length - start, 3, 'expired: asked again');
  t.deepEqual(reg.tokenRequests.slice(start).map((q) => q.scope.join(' ')), ['repository:team/a:pull', 'repository:team/b:pull', 'repository:team/a:pull']);
});

test('chunked upload when the registry asks for a minimum chunk size (OCI-Chunk-Min-Length)', async (t) => {
  const reg = await startRegistry(t);
  // distribution 2.8 takes chunks but never asks for them: a proxy adds the header to the
  // answers that start an upload, and counts what comes through
  const seen: string[] = [];
  const proxy = http.createServer((req, res) => {
    if (req.method === 'PATCH' || req.method === 'PUT') seen.push(`${req.method} ${req.headers['content-range'] ?? ''} ${req.headers['content-length'] ?? ''}`);
    const up = http.request({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (ur) => {
      const headers = { ...ur.headers };
      if (req.method === 'POST' && ur.statusCode === 202) headers['oci-chunk-min-length'] = String(1 << 20);
      if (typeof headers.location === 'string') headers.location = headers.location.replace(reg.host, host);
      res.writeHead(ur.statusCode ?? 502, headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  const host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const dir = await tempDir(t, 'chunksrc');
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  fs.writeFileSync(path.join(rootfs, 'etc', 'big'), crypto.randomBytes(20 << 20));
  const tar = path.join(dir, 'rootfs.tar');
  await must('tar', ['-C', rootfs, '--numeric-owner', '-cf', tar, '.']);
  const e = await imageEnv(t);
  await e.ok(['import', tar, `${host}/ufs/chunked:1`]);
  const r = await e.ufs(['push', `${host}/ufs/chunked:1`]);
  t.is(r.code, 0, r.stderr);
  const patches = seen.filter((s) => s.startsWith('PATCH'));
  t.is(patches.length, 2, seen.join('\n'));
  t.regex(patches[0]!, /^PATCH 0-16777215 16777216$/);
  t.true(seen.some((s) => /^PUT {2}0$/.test(s)), 'closed by an empty PUT with the digest');
  const got = await umociUnpack(t, `${reg.host}/ufs/chunked:1`);
  t.true(fs.readFileSync(path.join(got.rootfs, 'etc', 'big')).equals(fs.readFileSync(path.join(rootfs, 'etc', 'big'))));
});

test('Basic auth (a registry behind a proxy that asks for it, as nginx setups do): login checks /v2/, pull and push send it', async (t) => {
  const reg = await startRegistry(t);
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  let anonymous = 0;
  const proxy = http.createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      anonymous++;
      req.resume();
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="ufs-test"', 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (ur) => {
      const headers = { ...ur.headers };
      if (typeof headers.location === 'string') headers.location = headers.location.replace(reg.host, host);
      res.writeHead(ur.statusCode ?? 502, headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  const host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const { tar } = await rootfsTar(t);
  const e = await imageEnv(t);
  const env = { DOCKER_CONFIG: path.join(e.dir, 'docker') };
  await e.ok(['import', tar, `${host}/ufs/basic:1`]);
  const denied = await e.ufs(['push', `${host}/ufs/basic:1`], { env });
  t.is(denied.code, 1);
  t.regex(denied.stderr, /access denied.*`ufs login 127\.0\.0\.1:\d+`\n$/);
  const wrong = await e.ufs(['login', '-u', USER, '--password-stdin', host], { env, input: 'bad' });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /^ufs: unauthorized: incorrect username or password for 127\.0\.0\.1:\d+\n$/);
  t.is((await e.ufs(['login', '-u', USER, '--password-stdin', host], { env, input: PASSWORD })).code, 0);
  const pushed = await e.ufs(['push', `${host}/ufs/basic:1`], { env });
  t.is(pushed.code, 0, pushed.stderr);
  const other = await imageEnv(t);
  const pulled = await other.ufs(['pull', `${host}/ufs/basic:1`], { env });
  t.is(pulled.code, 0, pulled.stderr);
  t.true(anonymous > 0);
});

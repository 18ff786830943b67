// What a pull meets besides success: an index with two platforms (the host's by default,
// --platform, none matching), a blob corrupted in the registry's storage, an unknown tag or
// repository, a dead port; two concurrent pulls of one image into one store. Every failure is
// one line, a non-zero exit, and a store left as it was.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { goArch } from '../src/image/types.js';
import { imageEnv, makeBusyboxRootfs, must, snapshot, tempDir } from './helpers/images.js';
import { freePort, skopeoCopy, startRegistry } from './helpers/registry.js';

// An OCI layout with tag `multi`: an index of an amd64 and an arm64 image (each says its
// architecture in /etc/arch and its config), and the amd64 image alone as `amd`.
async function twoPlatforms(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t, 'multi');
  const layout = path.join(dir, 'layout');
  await must('umoci', ['init', '--layout', layout]);
  const digests: { arch: string; digest: string; size: number }[] = [];
  for (const arch of ['amd64', 'arm64']) {
    const rootfs = makeBusyboxRootfs(path.join(dir, `rootfs-${arch}`));
    fs.writeFileSync(path.join(rootfs, 'etc', 'arch'), `${arch}\n`);
    const img = `${layout}:${arch}`;
    await must('umoci', ['new', '--image', img]);
    await must('umoci', ['insert', '--image', img, rootfs, '/']);
    await must('umoci', ['config', '--image', img, '--architecture', arch, '--os', 'linux']);
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number; annotations?: Record<string, string> }[] };
    const m = index.manifests.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === arch)!;
    digests.push({ arch, digest: m.digest, size: m.size });
  }
  const inner = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: digests.map((d) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d.digest, size: d.size, platform: { os: 'linux', architecture: d.arch } })),
    }),
  );
  const hex = crypto.createHash('sha256').update(inner).digest('hex');
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), inner);
  const indexFile = path.join(layout, 'index.json');
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { manifests: object[] };
  index.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${hex}`, size: inner.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } });
  fs.writeFileSync(indexFile, JSON.stringify(index));
  return layout;
}

test('an index with two platforms: the host one by default, --platform, none matching names those there are', async (t) => {
  const reg = await startRegistry(t);
  const layout = await twoPlatforms(t);
  await skopeoCopy(`oci:${layout}:multi`, `docker://${reg.host}/ufs/multi:1`, ['--all']);
  const e = await imageEnv(t);
  const archOf = async (ref: string) => (JSON.parse(await e.ok(['inspect', ref])) as { Architecture: string }[])[0]!.Architecture;
  const host = await e.ufs(['pull', `${reg.host}/ufs/multi:1`]);
  t.is(host.code, 0, host.stderr);
  if (goArch() === 'amd64' || goArch() === 'arm64') t.is(await archOf(`${reg.host}/ufs/multi:1`), goArch());
  const other = goArch() === 'arm64' ? 'amd64' : 'arm64';
  const r = await e.ufs(['pull', '--platform', `linux/${other}`, `${reg.host}/ufs/multi:1`]);
  t.is(r.code, 0, r.stderr);
  t.is(await archOf(`${reg.host}/ufs/multi:1`), other, 'the tag now names the other platform');
  const before = snapshot(e.root);
  const none = await e.ufs(['pull', '--platform', 'linux/s390x', `${reg.host}/ufs/multi:1`]);
  t.is(none.code, 1);
  t.regex(none.stderr, /^ufs: no matching manifest for linux\/s390x in 127\.0\.0\.1:\d+\/ufs\/multi:1: it has linux\/amd64, linux\/arm64\n$/);
  t.deepEqual(snapshot(e.root), before);
  const badPlatform = await e.ufs(['pull', '--platform', 'linux', `${reg.host}/ufs/multi:1`]);
  t.is(badPlatform.code, 1);
  t.regex(badPlatform.stderr, /^ufs: invalid platform "linux"/);
});

test('a corrupted blob in the registry, an unknown tag or repository, a dead port: one line, exit 1, store untouched', async (t) => {
  const reg = await startRegistry(t);
  const dir = await tempDir(t, 'errsrc');
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  fs.writeFileSync(path.join(rootfs, 'etc', 'big'), crypto.randomBytes(300_000));
  const layout = path.join(dir, 'layout');
  await must('umoci', ['init', '--layout', layout]);
  await must('umoci', ['new', '--image', `${layout}:x`]);
  await must('umoci', ['insert', '--image', `${layout}:x`, rootfs, '/']);
  await skopeoCopy(`oci:${layout}:x`, `docker://${reg.host}/ufs/bad:1`);
  await skopeoCopy(`oci:${layout}:x`, `docker://${reg.host}/ufs/good:1`);
  const e = await imageEnv(t);
  await e.ok(['images']); // the store exists
  const before = snapshot(e.root);
  // flip a byte in the middle of the layer blob (the largest file) in the registry's storage
  const blobs = path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  let largest = '';
  for (const p of fs.readdirSync(blobs)) for (const h of fs.readdirSync(path.join(blobs, p))) {
    const f = path.join(blobs, p, h, 'data');
    if (!largest || fs.statSync(f).size > fs.statSync(largest).size) largest = f;
  }
  const good = fs.readFileSync(largest);
  const bad = Buffer.from(good);
  bad[bad.length >> 1]! ^= 0xff;
  fs.writeFileSync(largest, bad);
  const corrupt = await e.ufs(['pull', `${reg.host}/ufs/bad:1`]);
  t.is(corrupt.code, 1);
  t.regex(corrupt.stderr, /^ufs: digest mismatch for layer sha256:[a-f0-9]{64}: the content is sha256:[a-f0-9]{64}\n$/);
  t.deepEqual(snapshot(e.root), before, 'nothing half-pulled, no tag');
  fs.writeFileSync(largest, good);

  const tag = await e.ufs(['pull', `${reg.host}/ufs/good:nope`]);
  t.is(tag.code, 1);
  t.regex(tag.stderr, /^ufs: manifest for 127\.0\.0\.1:\d+\/ufs\/good:nope not found: manifest unknown\n$/);
  const repo = await e.ufs(['pull', `${reg.host}/ufs/nosuch`]);
  t.is(repo.code, 1);
  t.regex(repo.stderr, /^ufs: (manifest for 127\.0\.0\.1:\d+\/ufs\/nosuch:latest not found: manifest unknown|.*repository ufs\/nosuch not found.*)\n$/);
  const port = await freePort();
  const dead = await e.ufs(['pull', `127.0.0.1:${port}/ufs/good:1`]);
  t.is(dead.code, 1);
  t.regex(dead.stderr, new RegExp(`^ufs: registry 127\\.0\\.0\\.1:${port} is not answering \\(connection refused\\)\n$`));
  const https = await e.ufs(['pull', `ufs-no-such-registry.invalid/x:1`]);
  t.is(https.code, 1);
  t.regex(https.stderr, /^ufs: registry ufs-no-such-registry\.invalid is not answering: cannot resolve ufs-no-such-registry\.invalid\n$/);
  t.deepEqual(snapshot(e.root), before);
});

test('two concurrent pulls of one image into one store both succeed, one copy of each layer', async (t) => {
  const reg = await startRegistry(t);
  const dir = await tempDir(t, 'concsrc');
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  fs.writeFileSync(path.join(rootfs, 'etc', 'big'), crypto.randomBytes(2_000_000));
  const layout = path.join(dir, 'layout');
  await must('umoci', ['init', '--layout', layout]);
  await must('umoci', ['new', '--image', `${layout}:x`]);
  await must('umoci', ['insert', '--image', `${layout}:x`, rootfs, '/']);
  await skopeoCopy(`oci:${layout}:x`, `docker://${reg.host}/ufs/conc:1`);
  const e = await imageEnv(t);
  const [a, b] = await Promise.all([e.ufs(['pull', `${reg.host}/ufs/conc:1`]), e.ufs(['pull', `${reg.host}/ufs/conc:1`])]);
  t.is(a.code, 0, a.stderr);
  t.is(b.code, 0, b.stderr);
  const layers = fs.readdirSync(path.join(e.root, 'layers')).filter((n) => /^[a-f0-9]{64}$/.test(n));
  t.is(layers.length, 1);
  t.deepEqual(fs.readdirSync(path.join(e.root, 'tmp')), []);
  const ids = (await e.ok(['images', '-q'])).trim().split('\n');
  t.is(ids.length, 1);
});

// A non-loopback address of this machine (loopback registries may always use plain HTTP or
// unverified TLS, as with Docker, so TLS verification needs another address).
function outsideAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

test('HTTPS: an untrusted certificate is one TLS error line; trusted by SSL_CERT_FILE or --insecure-registry it pulls', async (t) => {
  const ip = outsideAddress();
  if (!ip) {
    t.log('no non-loopback IPv4 address here: TLS verification cannot be tested');
    t.pass();
    return;
  }
  const reg = await startRegistry(t, { tlsIp: ip });
  const dir = await tempDir(t, 'tlssrc');
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  const layout = path.join(dir, 'layout');
  await must('umoci', ['init', '--layout', layout]);
  await must('umoci', ['new', '--image', `${layout}:x`]);
  await must('umoci', ['insert', '--image', `${layout}:x`, rootfs, '/']);
  await skopeoCopy(`oci:${layout}:x`, `docker://${reg.host}/ufs/tls:1`);
  const e = await imageEnv(t);
  const env = { UFS_INSECURE_REGISTRIES: '' };
  const untrusted = await e.ufs(['pull', `${reg.host}/ufs/tls:1`], { env });
  t.is(untrusted.code, 1);
  t.regex(untrusted.stderr, /^ufs: TLS error talking to [\d.]+:\d+: self[- ]signed certificate\n$/);
  const trusted = await e.ufs(['pull', `${reg.host}/ufs/tls:1`], { env: { ...env, SSL_CERT_FILE: reg.cert! } });
  t.is(trusted.code, 0, trusted.stderr);
  await e.ok(['rmi', `${reg.host}/ufs/tls:1`]);
  const insecure = await e.ufs(['pull', '--insecure-registry', reg.host, `${reg.host}/ufs/tls:1`], { env });
  t.is(insecure.code, 0, insecure.stderr);
});

test('a docker.io mirror answers docker.io names (UFS_REGISTRY_MIRROR)', async (t) => {
  const mirror = await startRegistry(t);
  const dir = await tempDir(t, 'mirrorsrc');
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  const layout = path.join(dir, 'layout');
  await must('umoci', ['init', '--layout', layout]);
  await must('umoci', ['new', '--image', `${layout}:x`]);
  await must('umoci', ['insert', '--image', `${layout}:x`, rootfs, '/']);
  await skopeoCopy(`oci:${layout}:x`, `docker://${mirror.host}/library/ufs-mirror-test:1`);
  const e = await imageEnv(t);
  const r = await e.ufs(['pull', 'ufs-mirror-test:1'], { env: { UFS_REGISTRY_MIRROR: `http://${mirror.host}` } });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /Status: Downloaded newer image for ufs-mirror-test:1\ndocker\.io\/library\/ufs-mirror-test:1\n$/);
  t.regex(await e.ok(['images']), /^ufs-mirror-test +1 /m);
});

test('a connection broken in the middle of a layer is resumed with a Range request', async (t) => {
  const reg = await startRegistry(t);
  const dir = await tempDir(t, 'resumesrc');
  const rootfs = makeBusyboxRootfs(path.join(dir, 'rootfs'));
  fs.writeFileSync(path.join(rootfs, 'etc', 'big'), crypto.randomBytes(3_000_000));
  const layout = path.join(dir, 'layout');
  await must('umoci', ['init', '--layout', layout]);
  await must('umoci', ['new', '--image', `${layout}:x`]);
  await must('umoci', ['insert', '--image', `${layout}:x`, rootfs, '/']);
  await skopeoCopy(`oci:${layout}:x`, `docker://${reg.host}/ufs/resume:1`);
  // A proxy in front of the registry that cuts the first answer for a large blob half-way
  // (a broken network cannot be had otherwise here) and passes everything else through.
  const seen: string[] = [];
  let cut = false;
  const proxy = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (ur) => {
      const len = Number(ur.headers['content-length'] ?? 0);
      if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '')) seen.push(`${ur.statusCode} ${req.headers.range ?? 'all'}`);
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!cut && req.method === 'GET' && ur.statusCode === 200 && len > 1_000_000) {
        cut = true;
        let sent = 0;
        ur.on('data', (c: Buffer) => {
          if (sent >= len / 2) return;
          res.write(c);
          sent += c.length;
          if (sent >= len / 2) {
            ur.destroy();
            res.socket?.destroy();
          }
        });
        return;
      }
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
  const e = await imageEnv(t);
  const r = await e.ufs(['pull', `${host}/ufs/resume:1`]);
  t.is(r.code, 0, r.stderr);
  t.true(cut, 'the proxy broke a transfer');
  t.true(seen.some((s) => /^206 bytes=\d+-$/.test(s)), `resumed with a Range request: ${seen.join(', ')}`);
  const mp = path.join(e.dir, 'mp');
  fs.mkdirSync(mp);
  await e.ok(['mount', `${host}/ufs/resume:1`, mp]);
  try {
    t.true(fs.readFileSync(path.join(mp, 'etc', 'big')).equals(fs.readFileSync(path.join(rootfs, 'etc', 'big'))));
  } finally {
    await e.ok(['umount', mp]);
  }
});

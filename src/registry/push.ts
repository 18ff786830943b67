// `ufs push`: blobs the registry has are skipped (HEAD), blobs another repository of the
// same registry has are mounted (the repositories this store pulled the image from or
// pushed it to), the rest uploaded (monolithic PUT, or PATCH chunks when the registry asks
// for a minimum chunk size); the manifest goes last. Layers made here are gzipped once and
// remembered (writer/blobs.ts), so a second push of them compresses nothing.
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { UfsError } from '../common/errors.js';
import { layerId } from '../image/ingest.js';
import { DEFAULT_TAG, parseReference, repoName, splitStoredRef } from '../image/reference.js';
import { lookupImage, noSuchImage } from '../image/records.js';
import type { Descriptor, ImageManifest } from '../image/types.js';
import { type ManifestFormat, outgoingImage } from '../image/writer/manifest.js';
import type { Store } from '../store/index.js';
import type { ClientOptions, RegistryClient } from './client.js';
import { connect } from './connect.js';

export type PushStatus = 'Preparing' | 'Waiting' | 'Pushing' | 'Pushed' | 'Layer already exists' | 'Mounted from';
export interface PushEvent {
  id: string;
  status: PushStatus;
  current?: number;
  total?: number;
  from?: string;
}

export interface PushOptions extends ClientOptions {
  format?: ManifestFormat;
  onLayer?: (e: PushEvent) => void;
}

export interface PushResult {
  repository: string; // full repo name
  tag: string;
  digest: string;
  size: number;
}

const CHUNK = 16 << 20;

// Repositories on `domain` this store knows to have `digest` (other than `repo`).
function mountSources(store: Store, domain: string, repo: string, digest: string): string[] {
  const db = store.readImageDb();
  const out = new Set<string>();
  for (const [name, rec] of Object.entries(db.digests)) {
    const { repo: r } = splitStoredRef(name);
    if (!r.startsWith(`${domain}/`) || r === `${domain}/${repo}`) continue;
    try {
      const m = store.readJsonBlob<ImageManifest>(rec.manifest);
      if (m.config?.digest === digest || m.layers?.some((l) => l.digest === digest)) out.add(r.slice(domain.length + 1));
    } catch {
      // manifest gone
    }
  }
  return [...out];
}

function withDigest(location: URL, digest: string): URL {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u;
}

async function expect(client: RegistryClient, res: Awaited<ReturnType<RegistryClient['send']>>, ok: number[], what: string, repo: string): Promise<void> {
  if (ok.includes(res.status)) {
    res.body.resume();
    return;
  }
  await client.fail(res, what, repo);
}

async function pushBlob(client: RegistryClient, store: Store, repo: string, desc: Descriptor, file: string | Buffer, onEvent: (e: PushEvent) => void): Promise<void> {
  const scopes = [`repository:${repo}:pull,push`];
  const id = layerId(desc.digest);
  const head = await client.send('HEAD', `/v2/${repo}/blobs/${desc.digest}`, scopes);
  head.body.resume();
  if (head.status === 200) {
    onEvent({ id, status: 'Layer already exists' });
    return;
  }
  let start: Awaited<ReturnType<RegistryClient['send']>> | undefined;
  for (const from of mountSources(store, client.domain, repo, desc.digest)) {
    const res = await client.send('POST', `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`, [...scopes, `repository:${from}:pull`], { body: Buffer.alloc(0) });
    if (res.status === 201) {
      res.body.resume();
      onEvent({ id, status: 'Mounted from', from });
      return;
    }
    if (res.status === 202) {
      start = res;
      break;
    }
    res.body.resume();
  }
  start ??= await client.send('POST', `/v2/${repo}/blobs/uploads/`, scopes, { body: Buffer.alloc(0) });
  if (start.status !== 202) await client.fail(start, `push blob ${desc.digest}`, repo);
  start.body.resume();
  let location = new URL(String(start.headers.location ?? ''), start.url);
  if (!start.headers.location) throw new UfsError(`push: ${client.domain} started an upload without a Location`);
  const size = desc.size;
  const minChunk = Number(start.headers['oci-chunk-min-length'] ?? 0);
  const open = (from: number, end: number): (() => Readable) | Buffer =>
    Buffer.isBuffer(file) ? file.subarray(from, end) : () => fs.createReadStream(file, { start: from, end: end - 1, highWaterMark: 1 << 20 });
  let sent = 0;
  const progress = (n: number) => {
    sent += n;
    onEvent({ id, status: 'Pushing', current: Math.min(sent, size), total: size });
  };
  onEvent({ id, status: 'Pushing', current: 0, total: size });
  const counted = (src: (() => Readable) | Buffer): (() => Readable) | Buffer => {
    if (Buffer.isBuffer(src)) return src;
    return () => {
      const r = src();
      r.on('data', (c: Buffer) => progress(c.length));
      return r;
    };
  };
  if (minChunk > 0 && size > minChunk) {
    const chunk = Math.max(minChunk, CHUNK);
    for (let off = 0; off < size; off += chunk) {
      const end = Math.min(size, off + chunk);
      const res = await client.send('PATCH', '', scopes, {
        absolute: location,
        body: counted(open(off, end)),
        contentLength: end - off,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${end - 1}` },
        timeoutMs: 300_000,
      });
      await expect(client, res, [202], `push blob ${desc.digest}`, repo);
      location = new URL(String(res.headers.location ?? location.href), res.url);
    }
    const fin = await client.send('PUT', '', scopes, { absolute: withDigest(location, desc.digest), body: Buffer.alloc(0) });
    await expect(client, fin, [201, 204], `push blob ${desc.digest}`, repo);
  } else {
    const res = await client.send('PUT', '', scopes, {
      absolute: withDigest(location, desc.digest),
      body: counted(open(0, size)),
      contentLength: size,
      headers: { 'Content-Type': 'application/octet-stream' },
      timeoutMs: 300_000,
    });
    await expect(client, res, [201, 204], `push blob ${desc.digest}`, repo);
  }
  onEvent({ id, status: 'Pushed' });
}

async function eachLimited<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}

export async function pushImage(store: Store, input: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref = parseReference(input);
  if (ref.digest) throw new UfsError('push takes NAME[:TAG], not a digest');
  const tag = ref.tag ?? DEFAULT_TAG;
  const repo = repoName(ref);
  const found = lookupImage(store.readImageDb(), `${repo}:${tag}`);
  if (!found.id) throw noSuchImage(input, `${repo}:${tag}`);
  const client = await connect(ref.domain, opts);
  // Docker pushes v2s2 for what it builds; a pulled image goes out with its own manifest.
  const image = await outgoingImage(store, found.id, opts.format, 'v2s2');
  const onEvent = opts.onLayer ?? (() => {});
  for (const l of image.layers) onEvent({ id: layerId(l.desc.digest), status: 'Preparing' });
  for (const l of image.layers) onEvent({ id: layerId(l.desc.digest), status: 'Waiting' });
  await eachLimited(image.layers, 3, (l) => pushBlob(client, store, ref.path, l.desc, l.file, onEvent));
  await pushBlob(client, store, ref.path, image.config, image.configBytes, () => {});
  const res = await client.send('PUT', `/v2/${ref.path}/manifests/${tag}`, [`repository:${ref.path}:pull,push`], {
    body: image.manifestBytes,
    headers: { 'Content-Type': image.mediaType },
  });
  await expect(client, res, [201, 200], `push manifest ${input}`, ref.path);
  const announced = res.headers['docker-content-digest'];
  if (typeof announced === 'string' && announced !== image.manifestDigest) {
    throw new UfsError(`push ${input}: ${client.domain} stored the manifest as ${announced}, not ${image.manifestDigest}`);
  }
  // Remembered as a repo digest (as Docker does); the manifest is kept for `ufs save` and mounts.
  await store.withLock(async () => {
    const m = store.writeBlob(image.manifestBytes);
    store.updateImageDb((db) => {
      if (db.images[found.id!]) db.digests[`${repo}@${image.manifestDigest}`] = { id: found.id!, manifest: m };
    });
  });
  return { repository: repo, tag, digest: image.manifestDigest, size: image.manifestBytes.length };
}

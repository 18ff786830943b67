// The one way images enter the store, shared by `load` and `pull`: from any ImageSource,
//  1. outside the lock: check every config against its manifest digest and every layer blob
//     against its descriptor (digest, size), check its diff_id while unpacking it into tmp/;
//     layers the store already has are not fetched at all. Any mismatch rejects everything
//     here, before the store is touched.
//  2. under the lock: rename blobs and layer directories into place (skipping what is there
//     by now), then replace images.json (tags, repo digests) in one rename.
// A killed ingest leaves only tmp/ leftovers, which the store sweeps.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { UfsError } from '../common/errors.js';
import type { Store } from '../store/index.js';
import { discardPrepared, installLayer, type PreparedLayer, prepareLayerFromBlob } from './layer.js';
import { setTag } from './records.js';
import type { FetchedBlob, ImageSource, SourceImage } from './source/types.js';
import { GrowingFile } from './follow.js';
import { type Descriptor, MT, type OciImageConfig } from './types.js';

// Docker's per-layer states, keyed by the first 12 hex digits of the layer's blob digest.
export type LayerStatus = 'Already exists' | 'Waiting' | 'Pulling fs layer' | 'Downloading' | 'Verifying Checksum' | 'Download complete' | 'Extracting' | 'Pull complete';
export interface LayerEvent {
  id: string;
  status: LayerStatus;
  current?: number;
  total?: number;
}

export interface IngestOptions {
  onLayer?: (e: LayerEvent) => void;
  onBytes?: (n: number) => void; // blob bytes read while unpacking (load's progress)
  onUnpackTotal?: (n: number) => void;
  signal?: AbortSignal;
}

export interface IngestedImage {
  id: string;
  manifestDigest: string;
  tags: { full: string; replaced?: string }[]; // replaced: the image id the tag pointed at before
  repoDigests: string[];
}

const LAYER_TYPES = new Set<string>([
  MT.ociLayer,
  MT.ociLayerGzip,
  MT.ociLayerZstd,
  MT.ociLayerNondist,
  MT.ociLayerNondistGzip,
  MT.dockerLayer,
  MT.dockerLayerGzip,
  MT.dockerForeignLayerGzip,
]);

export function sha256(b: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
}

function sha256File(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return `sha256:${hash.digest('hex')}`;
}

export function layerId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

function checkImage(img: SourceImage): void {
  const m = img.manifest;
  const cfgDigest = sha256(img.configBytes);
  if (!m.config || m.config.digest !== cfgDigest) throw new UfsError(`config digest mismatch: the manifest says ${m.config?.digest}, the config is ${cfgDigest}`);
  const config: OciImageConfig = img.config;
  if (!config?.rootfs || !Array.isArray(config.rootfs.diff_ids)) throw new UfsError(`config ${cfgDigest} is not an image config (no rootfs.diff_ids)`);
  if (config.rootfs.diff_ids.length !== m.layers.length) {
    throw new UfsError(`image ${cfgDigest}: its config has ${config.rootfs.diff_ids.length} diff_ids for ${m.layers.length} layers`);
  }
  for (const d of config.rootfs.diff_ids) if (typeof d !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d)) throw new UfsError(`image ${cfgDigest}: unsupported diff_id ${JSON.stringify(d)}`);
  for (const l of m.layers) {
    if (typeof l.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(l.digest)) throw new UfsError(`image ${cfgDigest}: unsupported layer digest ${JSON.stringify(l.digest)}`);
    if (l.mediaType && !LAYER_TYPES.has(l.mediaType)) throw new UfsError(`layer ${l.digest}: unsupported media type ${l.mediaType}`);
  }
}

// Runs `fn` over `items`, at most `n` at once; the first failure stops new starts and is thrown
// after the running ones settle.
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

export async function ingest(store: Store, source: ImageSource, opts: IngestOptions = {}): Promise<IngestedImage[]> {
  const prepared = new Map<string, PreparedLayer>();
  try {
    const images = await source.images();
    for (const img of images) checkImage(img);

    // Layers: each diff_id once; fetched, verified and unpacked unless the store has it.
    const layers: { desc: Descriptor; diffId: string }[] = [];
    for (const img of images) {
      img.manifest.layers.forEach((desc, i) => {
        const diffId = img.config.rootfs.diff_ids[i]!;
        if (!layers.some((l) => l.diffId === diffId)) layers.push({ desc, diffId });
      });
    }
    const todo = layers.filter((l) => {
      if (!store.hasLayer(l.diffId)) return true;
      opts.onLayer?.({ id: layerId(l.desc.digest), status: 'Already exists' });
      return false;
    });
    for (const l of todo) opts.onLayer?.({ id: layerId(l.desc.digest), status: 'Waiting' });
    opts.onUnpackTotal?.(todo.reduce((s, l) => s + (l.desc.size ?? 0), 0));
    await eachLimited(todo, source.parallel, async (l) => {
      opts.signal?.throwIfAborted();
      const id = layerId(l.desc.digest);
      let done = 0;
      // The layer is unpacked while it downloads (into tmp/, nothing installed): it starts when
      // the source has made the blob's file, or at the first bytes it writes, or when the
      // blob is complete for a source that says neither. Digest, size and diff_id are all checked before it is used.
      const growing = new GrowingFile();
      let unpacking: Promise<PreparedLayer> | undefined;
      let follower = false; // the unpacking follows the file from its start: it hashes the blob
      const unpack = (file: string) => {
        unpacking ??= prepareLayerFromBlob(store, file, {
          blobDigest: l.desc.digest,
          checkBlob: follower,
          expectDiffId: l.diffId,
          unpack: true,
          // several layers at once: unpack each on a thread of its own
          worker: source.parallel > 1 && todo.length > 1 && (l.desc.size ?? 0) > 4 << 20,
          follow: growing.shared,
          ...(opts.onBytes ? { onBytes: opts.onBytes } : {}),
        });
        unpacking.catch(() => {}); // awaited below
      };
      let blob: FetchedBlob;
      try {
        blob = await source.fetchBlob(l.desc, {
          onStart: (total) => opts.onLayer?.({ id, status: 'Downloading', current: 0, total }),
          onBytes: (n) => {
            done += n;
            opts.onLayer?.({ id, status: 'Downloading', current: done, total: l.desc.size });
          },
          onFile: (file) => {
            follower = !unpacking;
            unpack(file);
          },
          onWritten: (file, bytes) => {
            growing.written(bytes);
            unpack(file);
          },
          readerHashes: true,
        });
      } catch (err) {
        growing.fail();
        await unpacking?.catch(() => {});
        throw err;
      }
      // The blob's digest: from the source, or from the unpacking that followed the file.
      const fileDigest = () => blob.digest ?? sha256File(blob.path);
      try {
        opts.onLayer?.({ id, status: 'Verifying Checksum' });
        if (blob.digest === undefined && !follower) blob.digest = sha256File(blob.path); // (not expected: no one hashed it)
        if (blob.digest !== undefined && blob.digest !== l.desc.digest) throw new UfsError(`digest mismatch for layer ${l.desc.digest}: the content is ${blob.digest}`);
        if (typeof l.desc.size === 'number' && blob.size !== l.desc.size) throw new UfsError(`layer ${l.desc.digest}: size ${blob.size}, the manifest says ${l.desc.size}`);
        opts.onLayer?.({ id, status: 'Download complete' });
        opts.onLayer?.({ id, status: 'Extracting' });
        growing.complete(blob.size);
        unpack(blob.path);
        let p: PreparedLayer;
        try {
          p = await unpacking!;
        } catch (err) {
          // a blob that is not what the manifest says fails as that, whatever its unpacking met
          const got = err instanceof UfsError && err.message.startsWith('digest mismatch') ? undefined : fileDigest();
          if (got !== undefined && got !== l.desc.digest) throw new UfsError(`digest mismatch for layer ${l.desc.digest}: the content is ${got}`);
          throw err;
        }
        await blob.durable;
        p.tmpBlob = blob.path;
        prepared.set(l.diffId, p);
      } catch (err) {
        growing.fail();
        await unpacking?.catch(() => {});
        await blob.durable?.catch(() => {});
        fs.rmSync(blob.path, { force: true });
        throw err;
      }
    });

    // The unpacked files were written without an fsync each: one syncfs of the store's file
    // system makes them durable before any of them is installed (blobs were fsynced already).
    if (todo.length) spawnSync('sync', ['-f', store.tmpDir()], { stdio: 'ignore', timeout: 600_000 });

    return await store.withLock(async () => {
      for (const l of todo) {
        await installLayer(store, prepared.get(l.diffId)!);
        opts.onLayer?.({ id: layerId(l.desc.digest), status: 'Pull complete' });
      }
      const out: IngestedImage[] = [];
      for (const img of images) {
        const id = store.writeBlob(img.configBytes);
        const manifestDigest = store.writeBlob(img.manifestBytes);
        out.push({ id, manifestDigest, tags: [], repoDigests: img.repoDigests });
      }
      store.updateImageDb((db) => {
        images.forEach((img, n) => {
          const res = out[n]!;
          const prior = db.images[res.id];
          db.images[res.id] = { ...(prior ?? {}), manifest: prior?.manifest ?? res.manifestDigest, added: prior?.added ?? new Date().toISOString() };
          for (const t of img.tags) {
            const replaced = setTag(db, t, res.id, res.manifestDigest);
            res.tags.push({ full: t, ...(replaced ? { replaced } : {}) });
          }
          for (const d of img.repoDigests) db.digests[d] = { id: res.id, manifest: res.manifestDigest };
        });
      });
      return out;
    });
  } finally {
    for (const p of prepared.values()) discardPrepared(p);
    source.close();
  }
}

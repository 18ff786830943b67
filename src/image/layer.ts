// Layers between blob and directory: verify a layer blob (its diff_id) and unpack it into a
// temp dir (outside the lock), then install it under the lock: meta first, the directory
// renamed into place last, so `layers/<hex>/` appears whole or not at all.
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { type Compression, sniffCompression } from './compression.js';
import { UfsError } from '../common/errors.js';
import { fsyncDirSync } from '../store/fsutil.js';
import { type LayerMeta, rmTreeSync, type Store } from '../store/index.js';
import { readTar } from './tar/reader.js';
import { MT } from './types.js';
import { unpackEntries, type UnpackStats } from './unpack.js';
import { type ReadLayerResult, readLayerBlob, tap } from './layer-read.js';

export type { Compression };

export interface PreparedLayer {
  diffId: string;
  blob: { digest: string; size: number; mediaType: string };
  tarSize: number;
  stats?: UnpackStats; // set when unpacked
  tmpDir?: string; // the unpacked layer, waiting for install
  tmpBlob?: string; // the blob file, waiting for install (made here, or fetched by ingest)
}


export function detectCompression(head: Buffer, what: string): Compression {
  return sniffCompression(head, what);
}

export function fileHead(file: string, n = 8): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = fs.readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

export function mediaTypeFor(c: Compression): string {
  return c === 'gzip' ? MT.ociLayerGzip : c === 'zstd' ? MT.ociLayerZstd : MT.ociLayer;
}

// readLayerBlob in a worker thread: layers pulled together unpack on several CPUs.
function readLayerBlobInWorker(blobFile: string, tmpDir: string | undefined, what: string, onBytes?: (n: number) => void, follow?: SharedArrayBuffer, hashBlob = false): Promise<ReadLayerResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./unpack-worker.js', import.meta.url), { workerData: { blobFile, tmpDir, what, follow, hashBlob } });
    let settled = false;
    w.on('message', (m: { type: 'bytes'; n: number } | { type: 'done'; result: ReadLayerResult } | { type: 'error'; message: string; ufs: boolean }) => {
      if (m.type === 'bytes') onBytes?.(m.n);
      else if (m.type === 'done') {
        settled = true;
        resolve(m.result);
      } else {
        settled = true;
        reject(m.ufs ? new UfsError(m.message) : new Error(m.message));
      }
    });
    w.on('error', (err) => {
      if (!settled) reject(err);
      settled = true;
    });
    w.on('exit', (code) => {
      if (!settled) reject(new Error(`${what}: the unpacking worker exited with ${code}`));
      settled = true;
    });
  });
}

// Reads a stored or spooled blob: checks its diff_id and, when `unpack`, unpacks it to tmp/
// (in a worker thread with `worker`). With `checkBlob`, the blob's digest is computed here
// too and must be `blobDigest` (checked before the diff_id: the likelier fault comes first).
export async function prepareLayerFromBlob(
  store: Store,
  blobFile: string,
  opts: { blobDigest: string; checkBlob?: boolean; expectDiffId?: string; unpack: boolean; onBytes?: (n: number) => void; worker?: boolean; follow?: SharedArrayBuffer },
): Promise<PreparedLayer> {
  const what = `layer ${opts.blobDigest}`;
  const tmpDir = opts.unpack ? store.tmpPath('layer') : undefined;
  if (tmpDir) fs.mkdirSync(tmpDir, 0o700);
  try {
    const r = await (opts.worker ? readLayerBlobInWorker : readLayerBlob)(blobFile, tmpDir, what, opts.onBytes, opts.follow, !!opts.checkBlob);
    const size = fs.statSync(blobFile).size; // complete now, followed or not
    if (opts.checkBlob && r.blobDigest !== opts.blobDigest) throw new UfsError(`digest mismatch for layer ${opts.blobDigest}: the content is ${r.blobDigest}`);
    if (opts.expectDiffId && opts.expectDiffId !== r.diffId) {
      throw new UfsError(`${what}: diff_id mismatch: the config says ${opts.expectDiffId}, the content is ${r.diffId}`);
    }
    return {
      diffId: r.diffId,
      blob: { digest: opts.blobDigest, size, mediaType: mediaTypeFor(r.compression) },
      tarSize: r.tarSize,
      ...(r.stats ? { stats: r.stats } : {}),
      ...(tmpDir ? { tmpDir } : {}),
    };
  } catch (err) {
    if (tmpDir) rmTreeSync(tmpDir);
    throw err;
  }
}

// Makes a layer from a tar stream we produce (busybox; commit copies a directory instead,
// layer-copy.ts): one pass that hashes the tar (diff_id) and unpacks it to a temp dir (the
// stored layer directory is exactly what the tar says, by the same code path as `load`).
// With `gzip`, the pass also writes the compressed blob; without, the layer's blob is its
// plain tar, not stored: writer/blobs.ts makes it again from the directory the first time
// save or push needs it.
export async function prepareLayerFromTar(store: Store, tar: AsyncIterable<Buffer>, opts: { gzip: boolean } = { gzip: true }): Promise<PreparedLayer> {
  const tmpDir = store.tmpPath('layer');
  const tmpBlob = opts.gzip ? store.tmpPath('blob') : undefined;
  fs.mkdirSync(tmpDir, 0o700);
  const diffHash = crypto.createHash('sha256');
  const blobHash = crypto.createHash('sha256');
  const tarCount = { n: 0 };
  const blobCount = { n: 0 };
  const gz = tmpBlob ? zlib.createGzip({ level: 6, chunkSize: 256 * 1024 }) : undefined;
  const written = gz && tmpBlob ? pipeline(gz, tap(blobHash, blobCount), fs.createWriteStream(tmpBlob, { flags: 'wx', mode: 0o644 })) : undefined;
  written?.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
  try {
    async function* tee(): AsyncGenerator<Buffer> {
      for await (const chunk of tar) {
        diffHash.update(chunk);
        tarCount.n += chunk.length;
        if (gz && !gz.write(chunk)) await once(gz, 'drain');
        yield chunk;
      }
      gz?.end();
    }
    const stats = await unpackEntries(readTar(tee()), tmpDir);
    const diffId = `sha256:${diffHash.digest('hex')}`;
    if (!tmpBlob) {
      return { diffId, blob: { digest: diffId, size: tarCount.n, mediaType: MT.ociLayer }, tarSize: tarCount.n, stats, tmpDir };
    }
    await written;
    const fd = fs.openSync(tmpBlob, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    return {
      diffId,
      blob: { digest: `sha256:${blobHash.digest('hex')}`, size: blobCount.n, mediaType: MT.ociLayerGzip },
      tarSize: tarCount.n,
      stats,
      tmpDir,
      tmpBlob,
    };
  } catch (err) {
    gz?.destroy();
    rmTreeSync(tmpDir);
    if (tmpBlob) fs.rmSync(tmpBlob, { force: true });
    throw err;
  }
}

// Under the store lock: puts a prepared layer (and its blob, if we made it) in place, or
// drops ours if the store already has it. If the layer vanished since we checked (removed
// meanwhile) and we did not unpack it, it is unpacked now from its stored blob.
export async function installLayer(store: Store, layer: PreparedLayer): Promise<LayerMeta> {
  if (!store.holdsLock()) throw new Error('installLayer without the store lock');
  if (layer.tmpBlob) {
    store.installBlobFile(layer.tmpBlob, layer.blob.digest);
    delete layer.tmpBlob;
  }
  const existing = store.hasLayer(layer.diffId) ? store.layerMeta(layer.diffId) : undefined;
  if (existing) {
    if (layer.tmpDir) rmTreeSync(layer.tmpDir);
    delete layer.tmpDir;
    return existing;
  }
  if (!layer.tmpDir) {
    const again = await prepareLayerFromBlob(store, store.blobPath(layer.blob.digest), {
      blobDigest: layer.blob.digest,
      expectDiffId: layer.diffId,
      unpack: true,
    });
    layer.tmpDir = again.tmpDir!;
    layer.stats = again.stats!;
  }
  const meta: LayerMeta = {
    diffId: layer.diffId,
    size: layer.stats?.size ?? 0,
    tarSize: layer.tarSize,
    entries: layer.stats?.entries ?? 0,
    blob: layer.blob,
    created: new Date().toISOString(),
  };
  const dir = store.layerDir(layer.diffId);
  rmTreeSync(dir); // a directory without its meta is a leftover, never a layer
  store.writeLayerMeta(meta);
  fs.renameSync(layer.tmpDir, dir);
  fsyncDirSync(store.layersDir());
  delete layer.tmpDir;
  return meta;
}

// Removes whatever temp files a prepared layer still owns (on failure paths).
export function discardPrepared(layer: PreparedLayer): void {
  if (layer.tmpDir) rmTreeSync(layer.tmpDir);
  if (layer.tmpBlob) fs.rmSync(layer.tmpBlob, { force: true });
}

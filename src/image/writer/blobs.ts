// Layer blobs on the way out (save, push). A layer is stored unpacked with the blob it came
// in as; a layer made here (commit, build) has no blob at all (INTERFACES.md §5). The plain
// tar is read from whatever the store has: a plain blob, a compressed one (decompressed), or
// the layer directory itself (re-tarred deterministically, its diff_id checked). The gzip
// blob is made the first time it is needed and remembered in layers/<hex>.json.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { UfsError } from '../../common/errors.js';
import type { LayerBlobRef, LayerMeta, Store } from '../../store/index.js';
import { decompressor, sniffCompression } from '../compression.js';
import { fileHead } from '../layer.js';
import { tarDirectory } from '../tar/pack-dir.js';
import { MT } from '../types.js';

function meta(store: Store, diffId: string): LayerMeta {
  const m = store.layerMeta(diffId);
  if (!m || !store.hasLayer(diffId)) throw new UfsError(`layer ${diffId} is missing from the store`);
  return m;
}

// The stored blob of a layer, if there is one: its file and compression.
function storedBlob(store: Store, m: LayerMeta): { file: string; ref: LayerBlobRef; compression: ReturnType<typeof sniffCompression> } | undefined {
  if (!store.hasBlob(m.blob.digest)) return undefined;
  const file = store.blobPath(m.blob.digest);
  return { file, ref: m.blob, compression: sniffCompression(fileHead(file), `layer ${m.diffId}`) };
}

// Checks the bytes passing through against the diff_id; throws at the end on a mismatch.
async function* checked(diffId: string, size: number, source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const hash = crypto.createHash('sha256');
  let n = 0;
  for await (const c of source) {
    hash.update(c);
    n += c.length;
    yield c;
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== diffId || n !== size) {
    throw new UfsError(`layer ${diffId}: the stored layer no longer gives its diff_id (got ${got}, ${n} bytes): the store is damaged`);
  }
}

// The layer's uncompressed tar (its sha256 is the diff_id), checked as it streams.
export function plainLayer(store: Store, diffId: string): { size: number; open: () => AsyncIterable<Buffer> } {
  const m = meta(store, diffId);
  const stored = storedBlob(store, m);
  const open = (): AsyncIterable<Buffer> => {
    if (!stored) return checked(diffId, m.tarSize, tarDirectory(store.layerDir(diffId)));
    const file = fs.createReadStream(stored.file, { highWaterMark: 1 << 20 });
    const unz = decompressor(stored.compression, `layer ${diffId}`);
    return checked(diffId, m.tarSize, unz ? file.pipe(unz) : file);
  };
  return { size: m.tarSize, open };
}

// The layer's blob as stored, if the store has it (any compression).
export function storedLayerBlob(store: Store, diffId: string): (LayerBlobRef & { file: string }) | undefined {
  const m = meta(store, diffId);
  return store.hasBlob(m.blob.digest) ? { ...m.blob, file: store.blobPath(m.blob.digest) } : undefined;
}

const COMPRESSED = new Set<string>([MT.ociLayerGzip, MT.dockerLayerGzip, MT.ociLayerZstd, MT.ociLayerNondistGzip, MT.dockerForeignLayerGzip]);

// A compressed blob for the layer (gzip unless `allowZstd` and the store has zstd), made
// and recorded now if the store has none. The caller must not hold the lock (this may
// take a while); the record is updated under it.
export async function compressedLayerBlob(store: Store, diffId: string, opts: { allowZstd?: boolean } = {}): Promise<LayerBlobRef & { file: string }> {
  const m = meta(store, diffId);
  const stored = storedBlob(store, m);
  if (stored && (stored.compression === 'gzip' || (stored.compression === 'zstd' && opts.allowZstd))) {
    const mediaType = COMPRESSED.has(m.blob.mediaType) ? m.blob.mediaType : stored.compression === 'gzip' ? MT.ociLayerGzip : MT.ociLayerZstd;
    return { ...m.blob, mediaType, file: stored.file };
  }
  const tmp = store.tmpPath('gzblob');
  const hash = crypto.createHash('sha256');
  let size = 0;
  try {
    await pipeline(
      Readable.from(plainLayer(store, diffId).open()),
      zlib.createGzip({ level: 6, chunkSize: 256 * 1024 }),
      async function* (src: AsyncIterable<Buffer>) {
        for await (const c of src) {
          hash.update(c);
          size += c.length;
          yield c;
        }
      },
      fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644 }),
    );
    const fd = fs.openSync(tmp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const ref: LayerBlobRef = { digest: `sha256:${hash.digest('hex')}`, size, mediaType: MT.ociLayerGzip };
    await store.withLock(async () => {
      store.installBlobFile(tmp, ref.digest);
      const now = store.layerMeta(diffId);
      // Remembered unless the layer went meanwhile or already got a compressed blob.
      if (now && !(store.hasBlob(now.blob.digest) && COMPRESSED.has(now.blob.mediaType) && now.blob.digest !== ref.digest)) store.writeLayerMeta({ ...now, blob: ref });
    });
    return { ...ref, file: store.blobPath(ref.digest) };
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

// Reading a layer blob: decompressed, its tar hashed (the diff_id) and, when asked, unpacked.
// Kept apart from layer.ts (which installs into the store) so that the worker threads that run
// it (unpack-worker.ts) load only what reading needs.
import crypto, { type Hash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { UfsError } from '../common/errors.js';
import { type Compression, decompressor, sniffCompression } from './compression.js';
import { type ChunkReader, FileChunkReader, FollowChunkReader, GrowingFileFailed } from './follow.js';
import { gunzipChunks } from './inflate.js';
import { readTar } from './tar/reader.js';
import { unpackEntries, type UnpackStats } from './unpack.js';

const CHUNK = 1 << 20;

export function tap(hash: Hash, count: { n: number }) {
  return async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      hash.update(chunk);
      count.n += chunk.length;
      yield chunk;
    }
  };
}

export interface ReadLayerResult {
  diffId: string;
  tarSize: number;
  compression: Compression;
  stats?: UnpackStats;
  blobDigest?: string; // with hashBlob: the digest of every byte of the blob file, in order
}

// Decompresses a layer blob, hashing the tar (its diff_id) and, with `tmpDir`, unpacking it
// there. Runs on this thread or in a worker (unpack-worker.ts).
// With `follow`, the blob is still being written (follow.ts): read as it grows.
// Every step is synchronous per chunk (read, gunzip, hash, parse, write the files), and the
// read and gunzip buffers are used over and over: the tar reader and the unpacker are done
// with a chunk before they ask for the next. zstd runs in a child process, which is fed
// fresh buffers.
// With `hashBlob`, the blob's own digest too, of all its bytes (what the tar did not need is
// read to the end): a pull hashes the compressed bytes here, off the thread that downloads.
export async function readLayerBlob(blobFile: string, tmpDir: string | undefined, what: string, onBytes?: (n: number) => void, follow?: SharedArrayBuffer, hashBlob = false): Promise<ReadLayerResult> {
  const reader: ChunkReader = follow ? new FollowChunkReader(blobFile, follow) : new FileChunkReader(blobFile);
  const blobHash = hashBlob ? crypto.createHash('sha256') : undefined;
  const diffHash = crypto.createHash('sha256');
  const count = { n: 0 };
  let stats: UnpackStats | undefined;
  let compression: Compression | undefined;
  try {
    let buf = Buffer.allocUnsafeSlow(CHUNK);
    let have = 0;
    let ended = false;
    while (have < 8 && !ended) {
      const n = await reader.read(buf.subarray(have));
      if (n === 0) ended = true;
      have += n;
    }
    compression = sniffCompression(buf.subarray(0, Math.min(have, 8)), what);
    const reuse = compression !== 'zstd';
    let source: AsyncIterable<Buffer> = (async function* () {
      if (have > 0) yield buf.subarray(0, have);
      if (ended) return;
      for (;;) {
        if (!reuse) buf = Buffer.allocUnsafe(CHUNK);
        const n = await reader.read(buf);
        if (n === 0) return;
        yield buf.subarray(0, n);
      }
    })();
    if (onBytes || blobHash) {
      const inner = source;
      source = (async function* () {
        for await (const c of inner) {
          onBytes?.(c.length);
          blobHash?.update(c);
          yield c;
        }
      })();
    }
    const consume = async (tarBytes: AsyncIterable<Buffer>) => {
      if (tmpDir) stats = await unpackEntries(readTar(tarBytes), tmpDir);
      else for await (const _ of tarBytes);
    };
    if (compression === 'zstd') await pipeline(source, decompressor(compression, what)!, tap(diffHash, count), consume);
    else {
      const tarBytes = tap(diffHash, count)(compression === 'gzip' ? gunzipChunks(source, CHUNK) : source);
      try {
        await consume(tarBytes);
      } finally {
        await tarBytes.return(undefined); // ends the chain (the gunzip's zlib handle) if the tar was not read to its end
      }
    }
    if (blobHash) {
      // whatever follows the compressed stream (the readers above stop at its end)
      const rest = Buffer.allocUnsafe(CHUNK);
      for (let n = await reader.read(rest); n > 0; n = await reader.read(rest)) {
        onBytes?.(n);
        blobHash.update(rest.subarray(0, n));
      }
    }
  } catch (err) {
    if (err instanceof GrowingFileFailed) throw err;
    if (err instanceof UfsError) throw new UfsError(`${what}: ${err.message}`);
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('Z_')) throw new UfsError(`${what}: corrupt gzip data`);
    throw err;
  } finally {
    reader.close();
  }
  return {
    diffId: `sha256:${diffHash.digest('hex')}`,
    tarSize: count.n,
    compression: compression!,
    ...(stats ? { stats } : {}),
    ...(blobHash ? { blobDigest: `sha256:${blobHash.digest('hex')}` } : {}),
  };
}


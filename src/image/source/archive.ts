// An image archive from a stream (plain or gzip-compressed tar): spooled, then read by the
// adapter its files call for (docker-archive: manifest.json; OCI: oci-layout + index.json).
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { UfsError } from '../../common/errors.js';
import type { Store } from '../../store/index.js';
import { dockerArchiveSource } from './docker-archive.js';
import { ociLayoutSource } from './oci-layout.js';
import { spoolArchive } from './spool.js';
import type { SpoolSource } from './spooled.js';

export async function openArchiveSource(store: Store, input: Readable, onBytes: (n: number) => void, onGzip: () => void): Promise<SpoolSource> {
  let stream: AsyncIterable<Buffer> = input;
  // `docker save | gzip` is common: accept a gzip-compressed archive too.
  const first = await peek(input);
  if (first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b) {
    onGzip();
    const gz = input.pipe(zlib.createGunzip({ chunkSize: 256 * 1024 }));
    input.on('error', (e) => gz.destroy(e));
    stream = gz;
  }
  let sp;
  try {
    sp = await spoolArchive(store, stream, onBytes);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('Z_')) throw new UfsError('bad archive: corrupt gzip data');
    throw err;
  }
  try {
    if (sp.files.size === 0 && sp.links.size === 0) throw new UfsError('bad archive: empty (is this a docker save or OCI archive?)');
    if (sp.has('manifest.json')) return dockerArchiveSource(sp);
    if (sp.has('index.json') && sp.has('oci-layout')) return ociLayoutSource(sp);
    throw new UfsError('bad archive: neither manifest.json (docker-archive) nor index.json + oci-layout (OCI) in it');
  } catch (err) {
    sp.cleanup();
    throw err;
  }
}

function peek(input: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onReadable = () => {
      const chunk = input.read() as Buffer | null;
      cleanup();
      if (chunk) input.unshift(chunk);
      resolve(chunk ?? Buffer.alloc(0));
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      input.off('readable', onReadable);
      input.off('end', onEnd);
      input.off('error', onError);
    };
    input.on('readable', onReadable);
    input.on('end', onEnd);
    input.on('error', onError);
  });
}

// ADD's two special sources: a URL (downloaded; its name from the URL's last path component,
// its mtime from Last-Modified) and a local tar archive (plain, gzip, bzip2 or xz: extracted
// by the store's own safe unpacker into a staging directory, never straight into the root).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { UfsError } from '../common/errors.js';
import { readTar } from '../image/tar/reader.js';
import { unpackEntries } from '../image/unpack.js';

export async function fetchUrl(url: string, file: string, signal?: AbortSignal): Promise<{ name: string; sha256: string; mtime?: number }> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', ...(signal ? { signal } : {}) });
  } catch (err) {
    throw new UfsError(`ADD ${url}: ${(err as Error).message}`);
  }
  if (!res.ok || !res.body) throw new UfsError(`ADD ${url}: HTTP ${res.status} ${res.statusText}`);
  const hash = crypto.createHash('sha256');
  const out = fs.createWriteStream(file, { mode: 0o600 });
  await pipeline(
    Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
    async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        hash.update(c);
        yield c;
      }
    },
    out,
  );
  const lm = res.headers.get('last-modified');
  const mtime = lm ? Math.floor(Date.parse(lm) / 1000) : undefined;
  let name = path.posix.basename(new URL(url).pathname);
  if (!name || name === '/') name = '__unnamed__';
  return { name, sha256: hash.digest('hex'), ...(mtime !== undefined && !Number.isNaN(mtime) ? { mtime } : {}) };
}

type Kind = 'gzip' | 'bzip2' | 'xz' | 'tar';

function kindOf(file: string): Kind | undefined {
  const fd = fs.openSync(file, 'r');
  const b = Buffer.alloc(512);
  let n: number;
  try {
    n = fs.readSync(fd, b, 0, 512, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (n >= 3 && b.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (n >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (n === 512 && b.toString('latin1', 257, 262) === 'ustar') return 'tar';
  return undefined;
}

export function isArchive(file: string): boolean {
  return kindOf(file) !== undefined;
}

function decompressor(kind: Kind, file: string): AsyncIterable<Buffer> {
  const src = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  if (kind === 'tar') return src;
  if (kind === 'gzip') return src.pipe(zlib.createGunzip());
  const child = spawn(kind === 'bzip2' ? 'bzip2' : 'xz', ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  src.destroy();
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new UfsError(`${path.basename(file)}: ${kind} failed: ${err.trim() || `exit ${code}`}`))));
  });
  return (async function* () {
    for await (const c of child.stdout!) yield c as Buffer;
    await done;
  })();
}

// A compressed file that is not a tar inside is copied as it is (Docker's rule): the
// caller checks isArchive first; here a compressed non-tar fails and the caller copies.
export async function extractArchive(file: string, dest: string): Promise<void> {
  const kind = kindOf(file);
  if (!kind) throw new UfsError(`${path.basename(file)} is not an archive`);
  try {
    await unpackEntries(readTar(decompressor(kind, file)), dest);
  } catch (err) {
    throw new UfsError(`ADD ${path.basename(file)}: cannot extract: ${(err as Error).message}`);
  }
}

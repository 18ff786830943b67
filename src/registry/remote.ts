// Reading a repository: manifests and indexes by tag or digest (OCI and Docker v2s2, checked
// against the digest asked for or announced), the platform's manifest out of an index, small
// blobs in memory, layer blobs into a file (hashed as they stream, resumed with a Range
// request or retried when the connection breaks).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { UfsError } from '../common/errors.js';
import type { BlobProgress, FetchedBlob } from '../image/source/types.js';
import { choosePlatform, formatPlatform, type Platform } from '../image/source/platform.js';
import { type Descriptor, type ImageIndex, type ImageManifest, MT } from '../image/types.js';
import type { RegistryClient } from './client.js';
import { NetworkError, readBody } from './transport.js';

export const MANIFEST_ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerManifestList, MT.dockerManifest].join(', ');

export function sha256(b: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
}

export function pullScope(repo: string): string {
  return `repository:${repo}:pull`;
}

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

// `ref` is a tag or a digest. `display` names it in errors (busybox:latest).
export async function fetchManifest(client: RegistryClient, repo: string, ref: string, display: string): Promise<FetchedManifest> {
  const res = await client.send('GET', `/v2/${repo}/manifests/${ref}`, [pullScope(repo)], { headers: { Accept: MANIFEST_ACCEPT } });
  if (res.status === 404) {
    res.body.resume();
    throw new UfsError(`manifest for ${display} not found: manifest unknown`);
  }
  if (res.status !== 200) return client.fail(res, `pull ${display}`, repo);
  const bytes = await readBody(res, 4 << 20);
  const digest = sha256(bytes);
  if (ref.startsWith('sha256:') && ref !== digest) throw new UfsError(`digest mismatch: the manifest of ${display} has digest ${digest}`);
  const announced = res.headers['docker-content-digest'];
  if (typeof announced === 'string' && announced.startsWith('sha256:') && announced !== digest) {
    throw new UfsError(`digest mismatch: ${client.domain} announced ${announced} for ${display}, the manifest is ${digest}`);
  }
  let mediaType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
  try {
    const j = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; schemaVersion?: number; manifests?: unknown; config?: unknown };
    if (j.schemaVersion === 1) throw new UfsError(`${display}: schema 1 manifests are not supported`);
    if (j.mediaType) mediaType = j.mediaType;
    else if (!mediaType || mediaType === 'application/json') mediaType = j.manifests ? MT.ociIndex : MT.ociManifest;
  } catch (err) {
    if (err instanceof UfsError) throw err;
    throw new UfsError(`${display}: the manifest is not valid JSON`);
  }
  return { digest, mediaType, bytes };
}

export function isIndex(mediaType: string): boolean {
  return mediaType === MT.ociIndex || mediaType === MT.dockerManifestList;
}

export interface Resolved {
  top: FetchedManifest; // what the tag or digest names (its digest is the repo digest)
  image: FetchedManifest; // the image manifest (the top one, or the one picked from an index)
  manifest: ImageManifest;
  platforms: string[]; // the index's, if any
}

export async function resolveImageManifest(client: RegistryClient, repo: string, ref: string, display: string, want: Platform, fetchedTop?: FetchedManifest): Promise<Resolved> {
  const top = fetchedTop ?? (await fetchManifest(client, repo, ref, display));
  let image = top;
  let platforms: string[] = [];
  if (isIndex(top.mediaType)) {
    const index = JSON.parse(top.bytes.toString('utf8')) as ImageIndex;
    const list = (index.manifests ?? []).filter((m) => !m.mediaType || !isIndex(m.mediaType));
    platforms = list.filter((m) => m.platform).map((m) => formatPlatform(m.platform));
    const pick = choosePlatform(list, want, display);
    image = await fetchManifest(client, repo, pick.digest, display);
    if (isIndex(image.mediaType)) throw new UfsError(`${display}: nested indexes are not supported`);
  }
  if (image.mediaType !== MT.ociManifest && image.mediaType !== MT.dockerManifest) throw new UfsError(`${display}: unsupported manifest type ${image.mediaType}`);
  const manifest = JSON.parse(image.bytes.toString('utf8')) as ImageManifest;
  if (!manifest.config || !Array.isArray(manifest.layers)) throw new UfsError(`${display}: the manifest has no config or layers`);
  return { top, image, manifest, platforms };
}

// A small blob (the config), verified.
export async function fetchSmallBlob(client: RegistryClient, repo: string, desc: Descriptor, display: string): Promise<Buffer> {
  const res = await client.send('GET', `/v2/${repo}/blobs/${desc.digest}`, [pullScope(repo)]);
  if (res.status !== 200) return client.fail(res, `pull ${display}: blob ${desc.digest}`, repo);
  const bytes = await readBody(res, 64 << 20);
  const got = sha256(bytes);
  if (got !== desc.digest) throw new UfsError(`digest mismatch for blob ${desc.digest} of ${display}: the content is ${got}`);
  return bytes;
}

const RETRIES = 4;

function broken(err: unknown): boolean {
  if (err instanceof NetworkError) return err.code !== 'ABORT_ERR' && !err.tls;
  const code = (err as { code?: string })?.code ?? '';
  return ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UFS_TIMEOUT', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED'].includes(code) || (err as Error)?.message === 'aborted';
}

// Streams a blob into `dest` (a new file), hashing as it goes; on a broken connection asks
// for the rest (Range) or, if the registry ignores that, starts over. The caller compares
// the digest (the ingest does); a short or long body never passes.
// With progress.readerHashes the follower of the file hashes it instead (see BlobProgress).
// The body is gathered into 1 MiB and written with a plain write on this thread: a write to
// the page cache takes microseconds, and a round trip through the thread pool per socket
// chunk (64 KiB) costs a thread wake-up each, which is what a loaded machine makes slow.
// The file's follower (onWritten) likewise hears of it once per MiB.
const STAGE = 1 << 20;

export async function downloadBlob(client: RegistryClient, repo: string, desc: Descriptor, dest: string, progress: BlobProgress, signal?: AbortSignal): Promise<FetchedBlob> {
  const fd = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
  progress.onFile?.(dest);
  // not hashed here when the file's follower does it (it reads every byte), until a
  // transfer starts over and rewrites the file: then hashed here from the start
  let hash = progress.readerHashes ? undefined : crypto.createHash('sha256');
  let got = 0; // bytes received (and hashed)
  let written = 0; // bytes in the file (got less what is staged)
  let started = false;
  const stage = Buffer.allocUnsafe(STAGE);
  let staged = 0;
  const writeAt = (b: Buffer, start: number, end: number) => {
    while (start < end) {
      const n = fs.writeSync(fd, b, start, end - start, written);
      start += n;
      written += n;
    }
  };
  const flush = () => {
    if (staged === 0) return;
    writeAt(stage, 0, staged);
    staged = 0;
    progress.onWritten?.(dest, written);
  };
  try {
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      try {
        const headers: Record<string, string> = got > 0 ? { Range: `bytes=${got}-` } : {};
        const res = await client.send('GET', `/v2/${repo}/blobs/${desc.digest}`, [pullScope(repo)], { headers });
        if (res.status === 200 && got > 0) {
          // no range support: from the start
          progress.onWritten?.(dest, 0);
          fs.ftruncateSync(fd, 0);
          progress.onBytes?.(-got);
          hash = crypto.createHash('sha256');
          got = written = 0;
        } else if (res.status !== 200 && res.status !== 206) {
          if (res.status >= 500 && attempt < RETRIES) {
            res.body.resume();
            await sleep(300 * 2 ** attempt);
            continue;
          }
          return await client.fail(res, `blob ${desc.digest}`, repo);
        }
        if (!started) {
          started = true;
          progress.onStart?.(desc.size);
        }
        for await (const chunk of res.body) {
          const c = chunk as Buffer;
          if (typeof desc.size === 'number' && got + c.length > desc.size) throw new UfsError(`blob ${desc.digest} is longer than its ${desc.size} bytes`);
          hash?.update(c);
          got += c.length;
          if (staged + c.length > STAGE) flush();
          if (c.length >= STAGE) {
            writeAt(c, 0, c.length);
            progress.onWritten?.(dest, written);
          } else {
            c.copy(stage, staged);
            staged += c.length;
            if (staged === STAGE) flush();
          }
          progress.onBytes?.(c.length);
        }
        flush();
        if (typeof desc.size === 'number' && got < desc.size) {
          const e = new Error('aborted') as Error & { code: string };
          e.code = 'ECONNRESET';
          throw e;
        }
        break;
      } catch (err) {
        flush(); // what was received is good: a retry asks for the rest
        if (attempt < RETRIES && broken(err)) {
          await sleep(300 * 2 ** attempt);
          continue;
        }
        if (broken(err) && !(err instanceof UfsError)) throw new UfsError(`blob ${desc.digest}: the connection to ${client.domain} broke (${(err as Error).message})`);
        throw err;
      }
    }
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      // closing is all that is left to do
    }
    await fs.promises.rm(dest, { force: true });
    throw err;
  }
  // fsynced while the ingest unpacks it (on the thread pool); awaited before it is installed
  const durable = new Promise<void>((resolve, reject) => {
    fs.fsync(fd, (err) => fs.close(fd, () => (err ? reject(err) : resolve())));
  });
  durable.catch(() => {});
  return { path: dest, ...(hash ? { digest: `sha256:${hash.digest('hex')}` } : {}), size: got, durable };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// All tags of a repository (`pull -a`), following Link pagination.
export async function listTags(client: RegistryClient, repo: string): Promise<string[]> {
  const tags: string[] = [];
  let path: string | undefined = `/v2/${repo}/tags/list?n=1000`;
  for (let pages = 0; path && pages < 100; pages++) {
    const res = await client.send('GET', path, [pullScope(repo)]);
    if (res.status !== 200) return client.fail(res, `list tags of ${repo}`, repo);
    const j = JSON.parse((await readBody(res, 16 << 20)).toString('utf8')) as { tags?: string[] | null };
    tags.push(...(j.tags ?? []));
    const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''))?.[1];
    path = link ? (link.startsWith('/') ? link : new URL(link).pathname + new URL(link).search) : undefined;
  }
  return tags;
}

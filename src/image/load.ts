// `ufs load`: docker-archive (`docker save`, skopeo docker-archive:) and OCI archives (an
// OCI image layout as a tar: skopeo oci-archive:, umoci, Docker 25+), layers plain or gzip,
// one or many images, all tags. Two phases:
//  1. outside the lock: spool the archive into tmp/ (hashing every file as it passes), check
//     every blob digest and descriptor size, check every layer's diff_id while unpacking it
//     into tmp/. Any mismatch rejects the whole archive here, before the store is touched.
//  2. under the lock: rename blobs and layer directories into place (skipping what is
//     already there), then replace images.json. A killed load leaves only tmp/ leftovers.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { UfsError } from '../common/errors.js';
import { type Progress, startProgress } from '../common/progress.js';
import { digestHex, spoolToFile, type Store } from '../store/index.js';
import { ociManifest } from './commit.js';
import { detectCompression, discardPrepared, fileHead, installLayer, type PreparedLayer, prepareLayerFromBlob } from './layer.js';
import { familiarName, normalizeTagged } from './reference.js';
import { setTag } from './records.js';
import { readTar, TarFormatError } from './tar/reader.js';
import { type Descriptor, goArch, type ImageIndex, type ImageManifest, MT, type OciImageConfig } from './types.js';

const IN_MEMORY = 4 << 20; // files up to this size are kept in memory (json, small layers)

interface SpoolFile {
  name: string;
  digest: string;
  size: number;
  data?: Buffer;
  path?: string; // tmp file (fsynced)
}

class Spool {
  files = new Map<string, SpoolFile>();
  links = new Map<string, string>(); // archive name -> archive name it points to
  tmpFiles: string[] = [];

  get(name: string, what: string): SpoolFile {
    let n = archiveName(name);
    for (let hops = 0; hops < 32; hops++) {
      const f = this.files.get(n);
      if (f) return f;
      const next = this.links.get(n);
      if (next === undefined) break;
      n = next;
    }
    throw new UfsError(`bad archive: ${what} ${JSON.stringify(name)} is not in it`);
  }
  has(name: string): boolean {
    return this.files.has(name) || this.links.has(name);
  }
  bytes(f: SpoolFile): Buffer {
    return f.data ?? fs.readFileSync(f.path!);
  }
  json<T>(f: SpoolFile, what: string): T {
    if (f.size > 64 << 20) throw new UfsError(`bad archive: ${what} is too large`);
    try {
      return JSON.parse(this.bytes(f).toString('utf8')) as T;
    } catch {
      throw new UfsError(`bad archive: ${what} (${f.name}) is not valid JSON`);
    }
  }
  cleanup(): void {
    for (const p of this.tmpFiles) fs.rmSync(p, { force: true });
  }
}

function archiveName(raw: string): string {
  const parts: string[] = [];
  for (const p of raw.replace(/^\/+/, '').split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (!parts.length) throw new UfsError(`bad archive: entry ${JSON.stringify(raw)} escapes the archive`);
      parts.pop();
    } else parts.push(p);
  }
  return parts.join('/');
}

function dirOf(name: string): string {
  const i = name.lastIndexOf('/');
  return i < 0 ? '' : name.slice(0, i);
}

async function spool(store: Store, input: AsyncIterable<Buffer>, progress: Progress): Promise<Spool> {
  const sp = new Spool();
  try {
    for await (const entry of readTar(input)) {
      const h = entry.header;
      const name = archiveName(h.name);
      if (h.type === 'symlink') {
        const target = h.linkname.startsWith('/') ? h.linkname : `${dirOf(name)}/${h.linkname}`;
        sp.links.set(name, archiveName(target));
        continue;
      }
      if (h.type === 'link') {
        sp.links.set(name, archiveName(h.linkname));
        continue;
      }
      if (h.type !== 'file') continue;
      const hash = crypto.createHash('sha256');
      const file: SpoolFile = { name, digest: '', size: h.size };
      if (h.size <= IN_MEMORY) {
        const chunks: Buffer[] = [];
        for await (const c of entry.body()) {
          hash.update(c);
          chunks.push(Buffer.from(c));
          progress.add(c.length);
        }
        file.data = Buffer.concat(chunks);
      } else {
        const p = store.tmpPath('spool');
        sp.tmpFiles.push(p);
        await spoolToFile(entry.body(), p, (c) => {
          hash.update(c);
          progress.add(c.length);
        });
        file.path = p;
      }
      file.digest = `sha256:${hash.digest('hex')}`;
      sp.files.set(name, file);
    }
  } catch (err) {
    sp.cleanup();
    if (err instanceof TarFormatError) throw new UfsError(`bad archive: ${err.message}`);
    throw err;
  }
  return sp;
}

// One image found in the archive, checked, waiting for phase 2.
interface Found {
  id: string;
  configBytes: Buffer;
  config: OciImageConfig;
  manifestBytes: Buffer; // as in the archive (OCI) or made here (docker-archive)
  layers: { file: SpoolFile; descriptor: Descriptor; diffId: string }[];
  tags: string[]; // full name:tag
}

function checkConfig(config: OciImageConfig, what: string): void {
  if (!config || typeof config !== 'object' || !config.rootfs || !Array.isArray(config.rootfs.diff_ids)) {
    throw new UfsError(`bad archive: ${what} is not an image config (no rootfs.diff_ids)`);
  }
  for (const d of config.rootfs.diff_ids) {
    if (typeof d !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d)) throw new UfsError(`bad archive: ${what}: unsupported diff_id ${JSON.stringify(d)}`);
  }
}

// A name like blobs/sha256/<hex>, <hex>.json or <hex>.tar says its digest (for a layer, the
// hex may also be its diff_id: skopeo names uncompressed layers so).
function digestFromName(name: string): string | undefined {
  const m = /^(?:blobs\/sha256\/([a-f0-9]{64})|([a-f0-9]{64})\.(?:json|tar))$/.exec(name);
  return m ? `sha256:${m[1] ?? m[2]}` : undefined;
}

function layerMediaType(f: SpoolFile): string {
  const head = f.data ? f.data.subarray(0, 8) : fileHead(f.path!);
  return detectCompression(head, `layer ${f.name}`) === 'gzip' ? MT.ociLayerGzip : MT.ociLayer;
}

function fromDockerArchive(sp: Spool): Found[] {
  type Entry = { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
  const list = sp.json<Entry[]>(sp.get('manifest.json', 'file'), 'manifest.json');
  if (!Array.isArray(list) || list.length === 0) throw new UfsError('bad archive: manifest.json lists no images');
  return list.map((e, n) => {
    if (typeof e.Config !== 'string' || !Array.isArray(e.Layers)) throw new UfsError(`bad archive: manifest.json entry ${n} has no Config/Layers`);
    const cfgFile = sp.get(e.Config, 'config');
    const named = digestFromName(archiveName(e.Config));
    if (named && named !== cfgFile.digest) throw new UfsError(`bad archive: config ${e.Config} has digest ${cfgFile.digest}`);
    const config = sp.json<OciImageConfig>(cfgFile, `config ${e.Config}`);
    checkConfig(config, `config ${e.Config}`);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== e.Layers.length) {
      throw new UfsError(`bad archive: ${e.Config} has ${diffIds.length} diff_ids but manifest.json lists ${e.Layers.length} layers`);
    }
    const layers = (e.Layers as unknown[]).map((l, i) => {
      if (typeof l !== 'string') throw new UfsError('bad archive: manifest.json has a non-string layer');
      const file = sp.get(l, 'layer');
      const named = digestFromName(archiveName(l));
      if (named && named !== file.digest && named !== diffIds[i]) throw new UfsError(`bad archive: blob ${l} has digest ${file.digest}`);
      return { file, diffId: diffIds[i]!, descriptor: { mediaType: layerMediaType(file), digest: file.digest, size: file.size } };
    });
    const tags = Array.isArray(e.RepoTags) ? e.RepoTags.map((t) => normalizeTagged(String(t))) : [];
    const configBytes = sp.bytes(cfgFile);
    const manifestBytes = Buffer.from(JSON.stringify(ociManifest(cfgFile.digest, configBytes.length, layers.map((l) => l.descriptor))));
    return { id: cfgFile.digest, configBytes, config, manifestBytes, layers, tags };
  });
}

function blob(sp: Spool, d: Descriptor, what: string): SpoolFile {
  if (typeof d?.digest !== 'string') throw new UfsError(`bad archive: ${what} has no digest`);
  const hex = (() => {
    try {
      return digestHex(d.digest);
    } catch {
      throw new UfsError(`bad archive: ${what}: unsupported digest ${JSON.stringify(d.digest)}`);
    }
  })();
  const f = sp.get(`blobs/sha256/${hex}`, `${what} blob`);
  if (f.digest !== d.digest) throw new UfsError(`bad archive: blob ${d.digest} has digest ${f.digest}`);
  if (typeof d.size === 'number' && d.size !== f.size) throw new UfsError(`bad archive: blob ${d.digest} has size ${f.size}, descriptor says ${d.size}`);
  return f;
}

function nameFromAnnotations(a: Record<string, string> | undefined): string | undefined {
  const full = a?.['io.containerd.image.name'];
  if (full) return normalizeTagged(full);
  const ref = a?.['org.opencontainers.image.ref.name'];
  // A bare tag ("latest") names no repository: the image stays untagged, as Docker does; so
  // does a ref.name that is no valid reference (the annotation is free-form).
  if (!ref || !(ref.includes(':') || ref.includes('/'))) return undefined;
  try {
    return normalizeTagged(ref);
  } catch {
    return undefined;
  }
}

function fromOciLayout(sp: Spool): Found[] {
  const layout = sp.json<{ imageLayoutVersion?: string }>(sp.get('oci-layout', 'file'), 'oci-layout');
  if (!layout.imageLayoutVersion) throw new UfsError('bad archive: oci-layout has no imageLayoutVersion');
  const index = sp.json<ImageIndex>(sp.get('index.json', 'file'), 'index.json');
  if (!Array.isArray(index.manifests)) throw new UfsError('bad archive: index.json has no manifests');
  const byId = new Map<string, Found>();
  const order: Found[] = [];
  const visit = (d: Descriptor, name: string | undefined, depth: number): void => {
    if (depth > 4) throw new UfsError('bad archive: indexes nested too deeply');
    if (d.mediaType === MT.ociIndex || d.mediaType === MT.dockerManifestList) {
      const f = blob(sp, d, 'index');
      const inner = sp.json<ImageIndex>(f, `index ${d.digest}`);
      const arch = goArch();
      const match = (inner.manifests ?? []).filter((m) => !m.platform || (m.platform.os === 'linux' && m.platform.architecture === arch));
      if (match.length === 0) throw new UfsError(`bad archive: index ${d.digest} has no image for linux/${arch}`);
      visit(match[0]!, name, depth + 1);
      return;
    }
    if (d.mediaType && d.mediaType !== MT.ociManifest && d.mediaType !== MT.dockerManifest) {
      throw new UfsError(`bad archive: unsupported manifest type ${d.mediaType}`);
    }
    const mf = blob(sp, d, 'manifest');
    const manifest = sp.json<ImageManifest>(mf, `manifest ${d.digest}`);
    if (!manifest.config || !Array.isArray(manifest.layers)) throw new UfsError(`bad archive: manifest ${d.digest} has no config/layers`);
    const cfgFile = blob(sp, manifest.config, 'config');
    const config = sp.json<OciImageConfig>(cfgFile, `config ${cfgFile.digest}`);
    checkConfig(config, `config ${cfgFile.digest}`);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw new UfsError(`bad archive: config ${cfgFile.digest} has ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`);
    }
    let found = byId.get(cfgFile.digest);
    if (!found) {
      const layers = manifest.layers.map((l, i) => {
        if (l.mediaType === MT.ociLayerZstd) throw new UfsError(`layer ${l.digest}: zstd-compressed layers are not supported`);
        return { file: blob(sp, l, 'layer'), diffId: config.rootfs.diff_ids[i]!, descriptor: l };
      });
      found = { id: cfgFile.digest, configBytes: sp.bytes(cfgFile), config, manifestBytes: sp.bytes(mf), layers, tags: [] };
      byId.set(found.id, found);
      order.push(found);
    }
    if (name && !found.tags.includes(name)) found.tags.push(name);
  };
  for (const d of index.manifests) visit(d, nameFromAnnotations(d.annotations), 0);
  if (order.length === 0) throw new UfsError('bad archive: index.json lists no images');
  return order;
}

// Every file under blobs/ must hash to its name, referenced or not.
function checkAllBlobs(sp: Spool): void {
  for (const f of sp.files.values()) {
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(f.name);
    if (m && f.digest !== `sha256:${m[1]}`) throw new UfsError(`bad archive: blob sha256:${m[1]} has digest ${f.digest}`);
    if (!m && /^blobs\/sha256\//.test(f.name)) throw new UfsError(`bad archive: malformed blob name ${f.name}`);
  }
}

export interface LoadResult {
  lines: string[]; // what `ufs load` prints
  images: { id: string; tags: string[] }[];
}

export async function loadArchive(store: Store, input: Readable, opts: { totalBytes?: number; quiet?: boolean } = {}): Promise<LoadResult> {
  const progress = startProgress('Loading', opts.totalBytes, { quiet: !!opts.quiet });
  let stream: AsyncIterable<Buffer> = input;
  // `docker save | gzip` is common: accept a gzip-compressed archive too.
  const first = await peek(input);
  if (first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b) {
    progress.setTotal(undefined);
    stream = input.pipe(zlib.createGunzip({ chunkSize: 256 * 1024 }));
    input.on('error', (e) => (stream as zlib.Gunzip).destroy(e));
  }
  let sp: Spool;
  try {
    sp = await spool(store, stream, progress);
  } catch (err) {
    progress.done();
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('Z_')) throw new UfsError('bad archive: corrupt gzip data');
    throw err;
  }
  const prepared = new Map<string, PreparedLayer>();
  try {
    if (sp.files.size === 0 && sp.links.size === 0) throw new UfsError('bad archive: empty (is this a docker save or OCI archive?)');
    let found: Found[];
    if (sp.has('manifest.json')) found = fromDockerArchive(sp);
    else if (sp.has('index.json') && sp.has('oci-layout')) found = fromOciLayout(sp);
    else throw new UfsError('bad archive: neither manifest.json (docker-archive) nor index.json + oci-layout (OCI) in it');
    checkAllBlobs(sp);

    // Layers: each diff_id once; verified (and unpacked, unless the store has it) here.
    const allLayers = found.flatMap((f) => f.layers);
    const todo = allLayers.filter((l, i) => allLayers.findIndex((x) => x.diffId === l.diffId) === i);
    progress.phase('Unpacking', todo.reduce((s, l) => s + l.file.size, 0));
    for (const l of todo) {
      const meta = store.hasLayer(l.diffId) ? store.layerMeta(l.diffId) : undefined;
      if (meta && meta.blob.digest === l.file.digest) {
        prepared.set(l.diffId, { diffId: l.diffId, blob: l.descriptor, tarSize: meta.tarSize });
        progress.add(l.file.size);
        continue;
      }
      const file = l.file.path ?? writeSpoolTmp(store, sp, l.file);
      prepared.set(
        l.diffId,
        await prepareLayerFromBlob(store, file, {
          blobDigest: l.file.digest,
          expectDiffId: l.diffId,
          unpack: !meta,
          onBytes: (n) => progress.add(n),
        }),
      );
    }
    progress.done();

    return await store.withLock(async () => {
      for (const f of found) {
        for (const l of f.layers) installSpooled(store, l.file);
        store.writeBlob(f.configBytes);
        store.writeBlob(f.manifestBytes);
      }
      for (const p of prepared.values()) await installLayer(store, p);
      const lines: string[] = [];
      store.updateImageDb((db) => {
        for (const f of found) {
          const manifest = `sha256:${crypto.createHash('sha256').update(f.manifestBytes).digest('hex')}`;
          const prior = db.images[f.id];
          db.images[f.id] = { ...(prior ?? {}), manifest: prior?.manifest ?? manifest, added: prior?.added ?? new Date().toISOString() };
          for (const t of f.tags) {
            const old = setTag(db, t, f.id, manifest);
            if (old) lines.push(`The image ${familiarName(t)} already exists, renaming the old one with ID ${old} to empty string`);
            lines.push(`Loaded image: ${familiarName(t)}`);
          }
          if (f.tags.length === 0) lines.push(`Loaded image ID: ${f.id}`);
        }
      });
      return { lines, images: found.map((f) => ({ id: f.id, tags: f.tags.map(familiarName) })) };
    });
  } finally {
    progress.done();
    for (const p of prepared.values()) discardPrepared(p);
    sp.cleanup();
  }
}

// Small layers were kept in memory while spooling: give them a file to unpack from.
function writeSpoolTmp(store: Store, sp: Spool, f: SpoolFile): string {
  const p = store.tmpPath('spool');
  sp.tmpFiles.push(p);
  const fd = fs.openSync(p, 'wx', 0o644);
  try {
    fs.writeFileSync(fd, f.data!);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  f.path = p;
  return p;
}

function installSpooled(store: Store, f: SpoolFile): void {
  if (store.hasBlob(f.digest)) return;
  if (f.path) store.installBlobFile(f.path, f.digest); // fsynced when spooled; renamed, not copied
  else store.writeBlob(f.data!);
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


// `ufs save`: images as a docker-archive (default; what `docker load`, skopeo
// docker-archive: and podman read) or an OCI archive (an OCI image layout as a tar, read by
// skopeo oci-archive:, umoci and Docker 25+). Deterministic: sorted, fixed headers, mtime 0.
//  docker: <config hex>.json, <diff_id hex>.tar (uncompressed layers), manifest.json
//  oci:    oci-layout, index.json, blobs/sha256/* (blobs as stored), plus Docker's
//          manifest.json so that older `docker load` reads it too (as Docker 25 writes).
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import zlib from 'node:zlib';
import { UfsError } from '../common/errors.js';
import { startProgress } from '../common/progress.js';
import { digestHex, type Store } from '../store/index.js';
import { ociManifest } from './commit.js';
import { detectCompression, fileHead } from './layer.js';
import { familiarName, splitStoredRef } from './reference.js';
import { lookupImage, readImageConfig } from './records.js';
import { resolveImageId } from './resolve.js';
import { encodeHeader, padding, TAR_END } from './tar/writer.js';
import { type Descriptor, type ImageIndex, type ImageManifest, MT } from './types.js';

export type SaveFormat = 'docker' | 'oci';

interface Member {
  name: string;
  size: number;
  write: (emit: (b: Buffer) => Promise<void>) => Promise<void>;
}

interface Chosen {
  id: string;
  tags: string[]; // full name:tag, in the order asked
}

async function choose(store: Store, refs: string[]): Promise<Chosen[]> {
  const out: Chosen[] = [];
  for (const ref of refs) {
    const id = await resolveImageId(store, ref);
    const db = store.readImageDb();
    const found = lookupImage(db, ref);
    // Docker: saved by name keeps that name; saved by ID keeps no name.
    const tag = found.full && db.tags[found.full]?.id === id ? found.full : undefined;
    let c = out.find((x) => x.id === id);
    if (!c) out.push((c = { id, tags: [] }));
    if (tag && !c.tags.includes(tag)) c.tags.push(tag);
  }
  return out;
}

function fileMember(name: string, file: string): Member {
  const size = fs.statSync(file).size;
  return {
    name,
    size,
    write: async (emit) => {
      let got = 0;
      for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
        got += (chunk as Buffer).length;
        await emit(chunk as Buffer);
      }
      if (got !== size) throw new UfsError(`${file} changed size while being saved`);
    },
  };
}

function bufferMember(name: string, data: Buffer): Member {
  return { name, size: data.length, write: (emit) => emit(data) };
}

// The layer as an uncompressed tar, whatever form its blob is stored in.
function plainLayerMember(store: Store, name: string, diffId: string, manifestDigest?: string): Member {
  const meta = store.layerMeta(diffId);
  if (!meta) throw new UfsError(`layer ${diffId} is missing from the store`);
  const candidates = [manifestDigest, meta.blob.digest].filter((d): d is string => !!d && store.hasBlob(d));
  if (candidates.length === 0) throw new UfsError(`layer ${diffId}: its blob is missing from the store`);
  const plain = candidates.find((d) => detectCompression(fileHead(store.blobPath(d)), d) === 'none');
  if (plain) return fileMember(name, store.blobPath(plain));
  const file = store.blobPath(candidates[0]!);
  return {
    name,
    size: meta.tarSize,
    write: async (emit) => {
      let got = 0;
      const gz = fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(zlib.createGunzip({ chunkSize: 256 * 1024 }));
      for await (const chunk of gz) {
        got += (chunk as Buffer).length;
        if (got > meta.tarSize) break;
        await emit(chunk as Buffer);
      }
      if (got !== meta.tarSize) throw new UfsError(`layer ${diffId}: stored blob does not match its recorded size`);
    },
  };
}

function repoTag(full: string): string {
  return familiarName(full);
}

function dockerMembers(store: Store, images: Chosen[]): Member[] {
  const members = new Map<string, Member>();
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const db = store.readImageDb();
  for (const img of images) {
    const config = readImageConfig(store, img.id);
    const stored = db.images[img.id] ? store.readJsonBlob<ImageManifest>(db.images[img.id]!.manifest) : undefined;
    const cfgName = `${digestHex(img.id)}.json`;
    members.set(cfgName, bufferMember(cfgName, store.readBlob(img.id)));
    const layers = config.rootfs.diff_ids.map((d, i) => {
      const name = `${digestHex(d)}.tar`;
      if (!members.has(name)) members.set(name, plainLayerMember(store, name, d, stored?.layers[i]?.digest));
      return name;
    });
    manifest.push({ Config: cfgName, RepoTags: img.tags.length ? img.tags.map(repoTag) : null, Layers: layers });
  }
  members.set('manifest.json', bufferMember('manifest.json', Buffer.from(`${JSON.stringify(manifest)}\n`)));
  return [...members.values()];
}

const OCI_LAYER: Record<string, string> = {
  [MT.dockerLayer]: MT.ociLayer,
  [MT.dockerLayerGzip]: MT.ociLayerGzip,
  [MT.dockerForeignLayerGzip]: MT.ociLayerNondistGzip,
};

// The stored manifest if it is OCI and complete here, else an OCI one made from the layers.
function ociManifestFor(store: Store, id: string): { bytes: Buffer; manifest: ImageManifest } {
  const db = store.readImageDb();
  const rec = db.images[id];
  const config = readImageConfig(store, id);
  if (rec) {
    const bytes = store.readBlob(rec.manifest);
    const m = JSON.parse(bytes.toString('utf8')) as ImageManifest;
    const isOci = (m.mediaType ?? MT.ociManifest) === MT.ociManifest && m.config.mediaType === MT.ociConfig;
    if (isOci && m.config.digest === id && m.layers.every((l) => store.hasBlob(l.digest))) return { bytes, manifest: m };
  }
  const layers: Descriptor[] = config.rootfs.diff_ids.map((d) => {
    const meta = store.layerMeta(d);
    if (!meta || !store.hasBlob(meta.blob.digest)) throw new UfsError(`layer ${d}: its blob is missing from the store`);
    return { mediaType: OCI_LAYER[meta.blob.mediaType] ?? meta.blob.mediaType, digest: meta.blob.digest, size: meta.blob.size };
  });
  const manifest = ociManifest(id, store.readBlob(id).length, layers);
  return { bytes: Buffer.from(JSON.stringify(manifest)), manifest };
}

function ociMembers(store: Store, images: Chosen[]): Member[] {
  const blobs = new Map<string, Member>();
  const index: ImageIndex = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] };
  const legacy: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const blobMember = (digest: string) => {
    const name = `blobs/sha256/${digestHex(digest)}`;
    if (!blobs.has(name)) blobs.set(name, fileMember(name, store.blobPath(digest)));
    return name;
  };
  for (const img of images) {
    const { bytes, manifest } = ociManifestFor(store, img.id);
    const mDigest = sha256(bytes);
    const mName = `blobs/sha256/${digestHex(mDigest)}`;
    blobs.set(mName, bufferMember(mName, bytes));
    const cfg = blobMember(img.id);
    const layers = manifest.layers.map((l) => blobMember(l.digest));
    const desc: Descriptor = { mediaType: MT.ociManifest, digest: mDigest, size: bytes.length };
    if (img.tags.length === 0) index.manifests.push(desc);
    for (const t of img.tags) {
      const { tag } = splitStoredRef(t);
      index.manifests.push({ ...desc, annotations: { 'io.containerd.image.name': t, 'org.opencontainers.image.ref.name': tag ?? 'latest' } });
    }
    legacy.push({ Config: cfg, RepoTags: img.tags.length ? img.tags.map(repoTag) : null, Layers: layers });
  }
  return [
    ...[...blobs.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    bufferMember('index.json', Buffer.from(`${JSON.stringify(index)}\n`)),
    bufferMember('manifest.json', Buffer.from(`${JSON.stringify(legacy)}\n`)),
    bufferMember('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}\n')),
  ];
}

function sha256(b: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
}

async function writeTar(members: Member[], out: Writable, dirs: string[]): Promise<void> {
  const total = members.reduce((s, m) => s + m.size, 0);
  const progress = startProgress('Saving', total);
  let failed: Error | null = null;
  const onError = (e: Error) => (failed = e);
  out.on('error', onError);
  const emit = async (b: Buffer) => {
    if (failed) throw failed;
    if (!out.write(b)) {
      await new Promise<void>((resolve, reject) => {
        const ok = () => {
          out.off('error', bad);
          resolve();
        };
        const bad = (e: Error) => {
          out.off('drain', ok);
          reject(e);
        };
        out.once('drain', ok);
        out.once('error', bad);
      });
    }
  };
  try {
    for (const d of dirs) await emit(encodeHeader({ name: d, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeSec: 0 }));
    for (const m of members) {
      await emit(encodeHeader({ name: m.name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeSec: 0, size: m.size }));
      await m.write(async (b) => {
        await emit(b);
        progress.add(b.length);
      });
      const pad = padding(m.size);
      if (pad.length) await emit(pad);
    }
    await emit(TAR_END);
  } finally {
    progress.done();
    out.off('error', onError);
  }
}

export async function saveImages(store: Store, refs: string[], format: SaveFormat, out: Writable): Promise<void> {
  if (refs.length === 0) throw new UfsError('save needs at least one image');
  const images = await choose(store, refs);
  const members = format === 'docker' ? dockerMembers(store, images) : ociMembers(store, images);
  await writeTar(members, out, format === 'oci' ? ['blobs', 'blobs/sha256'] : []);
}

// `ufs save`: images as a docker-archive (default; what `docker load`, skopeo
// docker-archive: and podman read) or an OCI archive (an OCI image layout as a tar, read by
// skopeo oci-archive:, umoci and Docker 25+). Deterministic: sorted, fixed headers, mtime 0.
//  docker: <config hex>.json, <diff_id hex>.tar (uncompressed layers), manifest.json
//  oci:    oci-layout, index.json, blobs/sha256/* (blobs as stored; a layer made here is
//          gzipped once, see writer/), plus Docker's
//          manifest.json so that older `docker load` reads it too (as Docker 25 writes).
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { UfsError } from '../common/errors.js';
import { type Progress, QUIET_PROGRESS } from '../common/progress.js';
import { digestHex, type Store } from '../store/index.js';
import { plainLayer } from './writer/blobs.js';
import { outgoingImage } from './writer/manifest.js';
import { familiarName, splitStoredRef } from './reference.js';
import { lookupImage, readImageConfig } from './records.js';
import { resolveImageId } from './resolve.js';
import { encodeHeader, padding, TAR_END } from './tar/writer.js';
import { type Descriptor, type ImageIndex, MT } from './types.js';

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

// The layer as an uncompressed tar, whatever form the store has it in (writer/blobs.ts).
function plainLayerMember(store: Store, name: string, diffId: string): Member {
  const plain = plainLayer(store, diffId);
  return {
    name,
    size: plain.size,
    write: async (emit) => {
      for await (const chunk of plain.open()) await emit(chunk);
    },
  };
}

function repoTag(full: string): string {
  return familiarName(full);
}

function dockerMembers(store: Store, images: Chosen[]): Member[] {
  const members = new Map<string, Member>();
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  for (const img of images) {
    const config = readImageConfig(store, img.id);
    const cfgName = `${digestHex(img.id)}.json`;
    members.set(cfgName, bufferMember(cfgName, store.readBlob(img.id)));
    const layers = config.rootfs.diff_ids.map((d) => {
      const name = `${digestHex(d)}.tar`;
      if (!members.has(name)) members.set(name, plainLayerMember(store, name, d));
      return name;
    });
    manifest.push({ Config: cfgName, RepoTags: img.tags.length ? img.tags.map(repoTag) : null, Layers: layers });
  }
  members.set('manifest.json', bufferMember('manifest.json', Buffer.from(`${JSON.stringify(manifest)}\n`)));
  return [...members.values()];
}

async function ociMembers(store: Store, images: Chosen[]): Promise<Member[]> {
  const blobs = new Map<string, Member>();
  const index: ImageIndex = { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] };
  const legacy: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const blobMember = (digest: string) => {
    const name = `blobs/sha256/${digestHex(digest)}`;
    if (!blobs.has(name)) blobs.set(name, fileMember(name, store.blobPath(digest)));
    return name;
  };
  for (const img of images) {
    const out = await outgoingImage(store, img.id, 'oci', 'oci', { acceptPlain: true });
    const bytes = out.manifestBytes;
    const mDigest = out.manifestDigest;
    const mName = `blobs/sha256/${digestHex(mDigest)}`;
    blobs.set(mName, bufferMember(mName, bytes));
    const cfg = blobMember(img.id);
    const layers = out.layers.map((l) => blobMember(l.desc.digest));
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


async function writeTar(members: Member[], out: Writable, dirs: string[], progress: Progress): Promise<void> {
  const total = members.reduce((s, m) => s + m.size, 0);
  progress.phase('Saving', total);
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

export async function saveImages(store: Store, refs: string[], format: SaveFormat, out: Writable, progress: Progress = QUIET_PROGRESS): Promise<void> {
  if (refs.length === 0) throw new UfsError('save needs at least one image');
  const images = await choose(store, refs);
  const members = format === 'docker' ? dockerMembers(store, images) : await ociMembers(store, images);
  await writeTar(members, out, format === 'oci' ? ['blobs', 'blobs/sha256'] : [], progress);
}

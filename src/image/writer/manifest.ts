// The manifest an image goes out with (push, OCI save): the stored one when it has the asked
// format and every blob it names is here (so a pulled image keeps its digest), else one made
// from the layers' compressed blobs (made once, see blobs.ts).
import { UfsError } from '../../common/errors.js';
import type { Store } from '../../store/index.js';
import { sha256 } from '../ingest.js';
import { readImageConfig } from '../records.js';
import { type Descriptor, type ImageManifest, MT } from '../types.js';
import { compressedLayerBlob, storedLayerBlob } from './blobs.js';

export type ManifestFormat = 'oci' | 'v2s2';

export interface OutgoingLayer {
  desc: Descriptor;
  diffId: string;
  file: string; // the blob in the store
}

export interface OutgoingImage {
  id: string;
  configBytes: Buffer;
  config: Descriptor;
  layers: OutgoingLayer[];
  manifestBytes: Buffer;
  manifestDigest: string;
  mediaType: string;
}

const TO_OCI: Record<string, string> = {
  [MT.dockerLayer]: MT.ociLayer,
  [MT.dockerLayerGzip]: MT.ociLayerGzip,
  [MT.dockerForeignLayerGzip]: MT.ociLayerNondistGzip,
};
const TO_DOCKER: Record<string, string> = {
  [MT.ociLayer]: MT.dockerLayer,
  [MT.ociLayerGzip]: MT.dockerLayerGzip,
  [MT.ociLayerNondistGzip]: MT.dockerForeignLayerGzip,
};

function formatOf(mediaType: string | undefined): ManifestFormat | undefined {
  if (mediaType === MT.dockerManifest) return 'v2s2';
  if (mediaType === MT.ociManifest || mediaType === undefined) return 'oci';
  return undefined;
}

// `format` undefined: the stored manifest's format if it can go out as it is, else `fallback`.
// `acceptPlain` (save): uncompressed layer blobs may go out as they are.
export async function outgoingImage(
  store: Store,
  id: string,
  format: ManifestFormat | undefined,
  fallback: ManifestFormat,
  opts: { acceptPlain?: boolean } = {},
): Promise<OutgoingImage> {
  const db = store.readImageDb();
  const rec = db.images[id];
  if (!rec) throw new UfsError(`No such image: ${id}`);
  const config = readImageConfig(store, id);
  const configBytes = store.readBlob(id);
  if (store.hasBlob(rec.manifest)) {
    const bytes = store.readBlob(rec.manifest);
    const m = JSON.parse(bytes.toString('utf8')) as ImageManifest;
    const f = formatOf(m.mediaType);
    const usable =
      f !== undefined &&
      (format === undefined || format === f) &&
      m.config?.digest === id &&
      (f === 'v2s2' || m.config.mediaType === MT.ociConfig) &&
      m.layers.length === config.rootfs.diff_ids.length &&
      m.layers.every((l) => store.hasBlob(l.digest) && (opts.acceptPlain || (l.mediaType !== MT.ociLayer && l.mediaType !== MT.dockerLayer)));
    if (usable) {
      return {
        id,
        configBytes,
        config: m.config,
        layers: m.layers.map((desc, i) => ({ desc, diffId: config.rootfs.diff_ids[i]!, file: store.blobPath(desc.digest) })),
        manifestBytes: bytes,
        manifestDigest: rec.manifest,
        mediaType: m.mediaType ?? MT.ociManifest,
      };
    }
  }
  const fmt = format ?? fallback;
  const layers: OutgoingLayer[] = [];
  for (const diffId of config.rootfs.diff_ids) {
    const plain = opts.acceptPlain ? storedLayerBlob(store, diffId) : undefined;
    const b = plain ?? (await compressedLayerBlob(store, diffId, { allowZstd: fmt === 'oci' }));
    const mediaType = fmt === 'oci' ? (TO_OCI[b.mediaType] ?? b.mediaType) : (TO_DOCKER[b.mediaType] ?? MT.dockerLayerGzip);
    layers.push({ desc: { mediaType, digest: b.digest, size: b.size }, diffId, file: b.file });
  }
  const configDesc: Descriptor = { mediaType: fmt === 'oci' ? MT.ociConfig : MT.dockerConfig, digest: id, size: configBytes.length };
  const mediaType = fmt === 'oci' ? MT.ociManifest : MT.dockerManifest;
  const manifest: ImageManifest = { schemaVersion: 2, mediaType, config: configDesc, layers: layers.map((l) => l.desc) };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { id, configBytes, config: configDesc, layers, manifestBytes, manifestDigest: sha256(manifestBytes), mediaType };
}

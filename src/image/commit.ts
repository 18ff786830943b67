// Making layers and images in the store (Contract 5): commitLayer turns a directory (a
// container's upper) into a stored layer; createImage stacks layers on a parent image.
import fs from 'node:fs';
import { UfsError } from '../common/errors.js';
import { settleCopies, toBytes } from '../unionfs/index.js';
import { digestHex, rmTreeSync, type Store } from '../store/index.js';
import { applyChanges } from './changes.js';
import { discardPrepared, installLayer, type PreparedLayer } from './layer.js';
import { copyDirectoryAsLayer } from './layer-copy.js';
import { normalizeTagged } from './reference.js';
import { readImageConfig, setTag } from './records.js';
import { type ContainerConfig, type Descriptor, goArch, type HistoryEntry, type ImageManifest, MT, type OciImageConfig } from './types.js';

// `dir` (OCI whiteouts as they are) copied as a layer, its diff_id the sha256 of the
// deterministic tar of it (layer-copy.ts: hashed, never written), not compressed
// (INTERFACES.md §5: save/push make the blob once, later). The layer is leased to this
// process until createImage uses it, so a concurrent rmi/prune cannot collect it in between.
export async function commitLayer(store: Store, dir: string): Promise<{ diffId: string }> {
  // A big file copied up in the background may still be on its way into `dir`.
  await settleCopies(toBytes(dir), { wait: true });
  const tmpDir = store.tmpPath('layer');
  fs.mkdirSync(tmpDir, 0o700);
  let prepared: PreparedLayer;
  try {
    const copied = copyDirectoryAsLayer(dir, tmpDir);
    prepared = {
      diffId: copied.diffId,
      blob: { digest: copied.diffId, size: copied.tarSize, mediaType: MT.ociLayer },
      tarSize: copied.tarSize,
      stats: copied.stats,
      tmpDir,
    };
  } catch (err) {
    rmTreeSync(tmpDir);
    throw err;
  }
  try {
    await store.withLock(async () => {
      await installLayer(store, prepared);
      store.addLease(prepared.diffId);
    });
  } finally {
    discardPrepared(prepared);
  }
  return { diffId: prepared.diffId };
}

export interface CreateImageOptions {
  parent?: string; // image id
  addDiffIds: string[];
  // one entry per new layer (in order) plus empty_layer entries for config-only steps
  history: HistoryEntry[];
  changes?: string[]; // Dockerfile-style: 'CMD ["sh"]', 'ENV A=b', ...
  config?: ContainerConfig; // replaces the runtime config wholesale (the builder), before changes
  author?: string;
  created?: string; // ISO time; default now
  tag?: string; // name[:tag]
}

// Writes config and manifest blobs and records the image; returns its id (sha256 of config).
export async function createImage(store: Store, opts: CreateImageOptions): Promise<string> {
  const layersInHistory = opts.history.filter((h) => !h.empty_layer).length;
  if (layersInHistory !== opts.addDiffIds.length) {
    throw new Error(`createImage: ${opts.addDiffIds.length} new layers but ${layersInHistory} non-empty history entries`);
  }
  const full = opts.tag ? normalizeTagged(opts.tag) : undefined;
  return store.withLock(async () => {
    const db = store.readImageDb();
    const now = opts.created ?? new Date().toISOString();
    let config: OciImageConfig;
    let parentLayers: Descriptor[] = [];
    if (opts.parent) {
      if (!db.images[opts.parent]) throw new UfsError(`No such image: ${opts.parent}`);
      config = structuredClone(readImageConfig(store, opts.parent));
      const manifest = store.readJsonBlob<ImageManifest>(db.images[opts.parent]!.manifest);
      parentLayers = manifest.layers;
      for (const k of ['container', 'container_config', 'docker_version', 'config_digest', 'id', 'parent']) delete config[k];
      if (parentLayers.length !== config.rootfs.diff_ids.length) parentLayers = [];
    } else {
      config = { architecture: goArch(), os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
    }
    const runtime: ContainerConfig = opts.config ? structuredClone(opts.config) : { ...(config.config ?? {}) };
    applyChanges(runtime, opts.changes ?? []);
    config.config = runtime;
    config.created = now;
    if (opts.author) config.author = opts.author;
    else delete config.author;
    for (const d of opts.addDiffIds) {
      digestHex(d);
      if (!store.hasLayer(d)) throw new UfsError(`layer ${d} is not in the store`);
    }
    config.rootfs = { type: 'layers', diff_ids: [...config.rootfs.diff_ids, ...opts.addDiffIds] };
    config.history = [
      ...(config.history ?? []),
      ...opts.history.map((h) => {
        const e: HistoryEntry = { created: h.created ?? now };
        const author = h.author ?? opts.author;
        if (author) e.author = author;
        if (h.created_by !== undefined) e.created_by = h.created_by;
        if (h.comment) e.comment = h.comment;
        if (h.empty_layer) e.empty_layer = true;
        return e;
      }),
    ];
    const layers = config.rootfs.diff_ids.map((d, i) => parentLayers[i] ?? layerDescriptor(store, d));
    const configBytes = Buffer.from(JSON.stringify(config));
    const id = store.writeBlob(configBytes);
    const manifestDigest = store.writeBlob(Buffer.from(JSON.stringify(ociManifest(id, configBytes.length, layers))));
    store.updateImageDb((db2) => {
      db2.images[id] = {
        manifest: manifestDigest,
        ...(opts.parent ? { parent: opts.parent } : {}),
        added: new Date().toISOString(),
      };
      if (full) setTag(db2, full, id, manifestDigest);
    });
    for (const d of opts.addDiffIds) store.dropLease(d);
    return id;
  });
}

export function layerDescriptor(store: Store, diffId: string): Descriptor {
  const meta = store.layerMeta(diffId);
  if (!meta) throw new UfsError(`layer ${diffId} is not in the store`);
  return { mediaType: meta.blob.mediaType, digest: meta.blob.digest, size: meta.blob.size };
}

export function ociManifest(configDigest: string, configSize: number, layers: Descriptor[]): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: configDigest, size: configSize },
    layers,
  };
}

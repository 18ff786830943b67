// What is in use, and removing the rest: images (rmi, prune) and the layers and blobs that
// no image, container or live lease still needs. Always under the store lock.
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, UfsError } from '../common/errors.js';
import { leasedLayers as snapshotLeases } from '../snapshot/index.js';
import { digestHex, type ImageDb, rmTreeSync, type Store } from '../store/index.js';
import { familiarName } from './reference.js';
import { imageRepoDigests, imageTags, lookupImage, noSuchImage } from './records.js';
import type { ImageManifest, OciImageConfig } from './types.js';

// Container id -> image id, from <root>/containers/<id>/config.json ("Image": "sha256:...").
export function containerImages(store: Store): Map<string, string> {
  const out = new Map<string, string>();
  let names: string[];
  try {
    names = fs.readdirSync(store.containersDir());
  } catch {
    return out;
  }
  for (const name of names) {
    try {
      const cfg = JSON.parse(fs.readFileSync(path.join(store.containersDir(), name, 'config.json'), 'utf8')) as { Image?: unknown; Id?: unknown };
      if (typeof cfg.Image === 'string') out.set(typeof cfg.Id === 'string' ? cfg.Id : name, cfg.Image);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') continue; // half-written: skip
    }
  }
  return out;
}

// Ids of the containers whose image is `imageId`.
export function imageUsedByContainers(store: Store, imageId: string): string[] {
  return [...containerImages(store)].filter(([, img]) => img === imageId).map(([c]) => c);
}

export interface GcResult {
  layers: string[]; // diff_ids removed
  blobs: string[];
  bytes: number;
}

function tryJson<T>(store: Store, digest: string): T | undefined {
  try {
    return store.readJsonBlob<T>(digest);
  } catch {
    return undefined;
  }
}

// Removes layers and blobs nothing refers to. Roots: every image record, every container's
// image, live leases (layers committed by a process that has not yet made its image), and
// the layers that snapshots lease (mounts, containers' roots, build steps): src/snapshot.
export async function collectGarbage(store: Store): Promise<GcResult> {
  if (!store.holdsLock()) throw new Error('collectGarbage without the store lock');
  const db = store.readImageDb();
  const keepBlobs = new Set<string>();
  const keepLayers = store.leasedLayers();
  for (const d of await snapshotLeases(store)) keepLayers.add(d);
  const roots = new Set<string>([...Object.keys(db.images), ...containerImages(store).values()]);
  const manifests = new Set<string>([
    ...Object.values(db.images).map((r) => r.manifest),
    ...Object.values(db.tags).map((t) => t.manifest),
    ...Object.values(db.digests).map((t) => t.manifest),
  ]);
  for (const id of roots) {
    if (!/^sha256:[a-f0-9]{64}$/.test(id)) continue;
    keepBlobs.add(id);
    const config = tryJson<OciImageConfig>(store, id);
    for (const d of config?.rootfs?.diff_ids ?? []) keepLayers.add(d);
  }
  for (const m of manifests) {
    keepBlobs.add(m);
    const manifest = tryJson<ImageManifest>(store, m);
    for (const l of manifest?.layers ?? []) keepBlobs.add(l.digest);
  }
  const result: GcResult = { layers: [], blobs: [], bytes: 0 };
  for (const d of keepLayers) {
    const meta = store.layerMeta(d);
    if (meta) keepBlobs.add(meta.blob.digest);
  }
  for (const d of store.listLayerIds()) {
    if (keepLayers.has(d)) continue;
    const meta = store.layerMeta(d);
    // Rename first: the layer disappears in one step, then the slow delete.
    const trash = store.tmpPath('trash');
    fs.renameSync(store.layerDir(d), trash);
    fs.rmSync(store.layerMetaPath(d), { force: true });
    rmTreeSync(trash);
    result.layers.push(d);
    result.bytes += meta?.size ?? 0;
  }
  for (const name of fs.readdirSync(store.layersDir())) {
    const m = /^([a-f0-9]{64})\.json$/.exec(name);
    if (m && !fs.existsSync(path.join(store.layersDir(), m[1]!))) fs.rmSync(path.join(store.layersDir(), name), { force: true });
  }
  for (const hex of fs.readdirSync(store.blobsDir())) {
    const digest = `sha256:${hex}`;
    if (keepBlobs.has(digest)) continue;
    const file = store.blobPath(digest);
    try {
      result.bytes += fs.statSync(file).size;
      fs.rmSync(file, { force: true });
      result.blobs.push(digest);
    } catch {
      // not a blob name: leave it
    }
  }
  return result;
}

// The repository a stored reference names: NAME of NAME:TAG or NAME@DIGEST.
function repositoryOf(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref;
}

function untagAll(db: ImageDb, id: string): string[] {
  const lines: string[] = [];
  for (const t of imageTags(db, id)) {
    delete db.tags[t];
    lines.push(`Untagged: ${familiarName(t)}`);
  }
  for (const t of imageRepoDigests(db, id)) {
    delete db.digests[t];
    lines.push(`Untagged: ${familiarName(t)}`);
  }
  return lines;
}

export interface RemoveOutcome {
  lines: string[]; // Untagged:/Deleted: lines, in Docker's order
  errors: string[]; // one line per image that could not be removed
}

// `ufs rmi`: untag, and delete images left without a name (Docker's rules).
export async function removeImages(store: Store, inputs: string[], force: boolean): Promise<RemoveOutcome> {
  return store.withLock(async () => {
    const out: RemoveOutcome = { lines: [], errors: [] };
    const users = containerImages(store);
    let deletedAny = false;
    for (const input of inputs) {
      try {
        store.updateImageDb((db) => {
          const found = lookupImage(db, input);
          if (!found.id) throw noSuchImage(input, found.full);
          const id = found.id;
          const tags = imageTags(db, id);
          const byName = found.full !== undefined && (db.tags[found.full]?.id === id || db.digests[found.full]?.id === id);
          const names = tags.length + imageRepoDigests(db, id).length;
          if (byName && names > 1) {
            const gone = [found.full!];
            // Docker's rule: a tag removed with no other tag of its repository left takes that
            // repository's digest references along (they named the same pull).
            const repo = repositoryOf(found.full!);
            if (db.tags[found.full!] && !tags.some((t) => t !== found.full && repositoryOf(t) === repo)) {
              gone.push(...imageRepoDigests(db, id).filter((d) => repositoryOf(d) === repo));
            }
            if (gone.length < names) {
              for (const ref of gone) {
                delete db.tags[ref];
                delete db.digests[ref];
                out.lines.push(`Untagged: ${familiarName(ref)}`);
              }
              return;
            }
          }
          const using = [...users].filter(([, img]) => img === id).map(([c]) => c);
          const short = digestHex(id).slice(0, 12);
          if (using.length && !force) {
            const c = using[0]!.slice(0, 12);
            if (byName) throw new UfsError(`conflict: unable to remove repository reference ${JSON.stringify(input)} (must force) - container ${c} is using its referenced image ${short}`);
            throw new UfsError(`conflict: unable to delete ${short} (must be forced) - image is being used by container ${c}`);
          }
          if (!byName && names > 1 && !force) {
            throw new UfsError(`conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`);
          }
          out.lines.push(...untagAll(db, id));
          if (using.length) return; // forced while a container uses it: stays, untagged (as Docker)
          delete db.images[id];
          out.lines.push(`Deleted: ${id}`);
          deletedAny = true;
        });
      } catch (err) {
        if (!(err instanceof UfsError)) throw err;
        out.errors.push(err.message);
      }
    }
    if (deletedAny) for (const d of (await collectGarbage(store)).layers) out.lines.push(`Deleted: ${d}`);
    return out;
  });
}

export interface PruneOutcome {
  lines: string[];
  bytes: number;
}

// `ufs image prune [-a]`: images without a name (or, with all, every image) that no container
// uses and that are not the parent of an image that stays; then unreferenced layers and blobs.
export async function pruneImages(store: Store, all: boolean): Promise<PruneOutcome> {
  return store.withLock(async () => {
    const users = new Set(containerImages(store).values());
    const lines: string[] = [];
    store.updateImageDb((db) => {
      for (;;) {
        const parents = new Set(Object.values(db.images).map((r) => r.parent).filter((p): p is string => !!p));
        const victims = Object.keys(db.images).filter((id) => {
          if (users.has(id) || parents.has(id)) return false;
          return all || (imageTags(db, id).length === 0 && imageRepoDigests(db, id).length === 0);
        });
        if (victims.length === 0) break;
        for (const id of victims) {
          for (const l of untagAll(db, id)) lines.push(l.replace('Untagged:', 'untagged:'));
          delete db.images[id];
          lines.push(`deleted: ${id}`);
        }
      }
    });
    const gc = await collectGarbage(store);
    for (const d of gc.layers) lines.push(`deleted: ${d}`);
    return { lines, bytes: gc.bytes };
  });
}

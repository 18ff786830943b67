// Image records in images.json: tags, repo digests, and finding an image by what a user types
// (name[:tag][@digest], a full or short image ID).
import { UfsError } from '../common/errors.js';
import type { ImageDb, Store } from '../store/index.js';
import { DEFAULT_TAG, familiarName, parseReference, repoName } from './reference.js';
import type { ImageManifest, OciImageConfig } from './types.js';

export function imageTags(db: ImageDb, id: string): string[] {
  return Object.keys(db.tags)
    .filter((t) => db.tags[t]!.id === id)
    .sort();
}

export function imageRepoDigests(db: ImageDb, id: string): string[] {
  return Object.keys(db.digests)
    .filter((t) => db.digests[t]!.id === id)
    .sort();
}

// Points `full` (name:tag) at image `id`; returns the image it pointed at before, if another.
export function setTag(db: ImageDb, full: string, id: string, manifest: string): string | undefined {
  const before = db.tags[full]?.id;
  db.tags[full] = { id, manifest };
  const rec = db.images[id];
  if (rec) rec.lastTagTime = new Date().toISOString();
  return before && before !== id ? before : undefined;
}

export function readImageConfig(store: Store, id: string): OciImageConfig {
  const config = store.readJsonBlob<OciImageConfig>(id);
  if (!config.rootfs || !Array.isArray(config.rootfs.diff_ids)) throw new UfsError(`image ${id}: config has no rootfs.diff_ids`);
  return config;
}

export function readImageManifest(store: Store, db: ImageDb, id: string): ImageManifest {
  const rec = db.images[id];
  if (!rec) throw new UfsError(`No such image: ${id}`);
  return store.readJsonBlob<ImageManifest>(rec.manifest);
}

export interface Lookup {
  id?: string; // found
  full?: string; // the normalised name:tag asked for (when the input was a name)
}

// Finds an image by ID (full, sha256:-prefixed or a unique hex prefix) or reference.
export function lookupImage(db: ImageDb, input: string): Lookup {
  const s = input.trim();
  const ids = Object.keys(db.images);
  let m = /^sha256:([a-f0-9]{1,64})$/.exec(s);
  if (m) return { ...byPrefix(ids, m[1]!, s) };
  if (/^[a-f0-9]{64}$/.test(s)) {
    const id = `sha256:${s}`;
    return db.images[id] ? { id } : {};
  }
  let full: string | undefined;
  let parseError: unknown;
  try {
    const ref = parseReference(s);
    const repo = repoName(ref);
    if (ref.digest) {
      const byDigest = db.digests[`${repo}@${ref.digest}`];
      if (byDigest) return { id: byDigest.id };
      // an image of that repository whose manifest is that digest
      const hit = Object.entries(db.tags).find(([t, r]) => t.startsWith(`${repo}:`) && r.manifest === ref.digest);
      if (hit) return { id: hit[1].id };
      full = `${repo}@${ref.digest}`;
    } else {
      full = `${repo}:${ref.tag ?? DEFAULT_TAG}`;
      const tagged = db.tags[full];
      if (tagged) return { id: tagged.id, full };
    }
  } catch (err) {
    parseError = err;
  }
  if (/^[a-f0-9]{1,63}$/.test(s)) {
    const found = byPrefix(ids, s, s);
    if (found.id) return { ...found, ...(full ? { full } : {}) };
  }
  if (parseError && !full) throw parseError;
  return full ? { full } : {};
}

function byPrefix(ids: string[], hex: string, input: string): Lookup {
  const hits = ids.filter((id) => id.startsWith(`sha256:${hex}`));
  if (hits.length > 1) throw new UfsError(`ambiguous image ID ${JSON.stringify(input)}: it matches ${hits.length} images`);
  return hits.length === 1 ? { id: hits[0]! } : {};
}

export function noSuchImage(input: string, full?: string): UfsError {
  return new UfsError(`No such image: ${full ? familiarName(full) : input}`);
}

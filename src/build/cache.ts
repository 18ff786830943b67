// The build cache: step cache key -> the image that step made, in <root>/build-cache/<hex>.
// Every step is an image, so a hit is an image that still exists with all its layers; the
// cache survives restarts and `ufs image prune` ends it (the image goes, the entry misses).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Store, writeFileAtomicSync } from '../store/index.js';
import { readImageConfig } from '../image/records.js';

function dir(store: Store): string {
  return path.join(store.root, 'build-cache');
}

export function cacheKey(parts: unknown[]): string {
  return crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export function cacheLookup(store: Store, key: string): string | undefined {
  let id: string;
  try {
    id = fs.readFileSync(path.join(dir(store), key), 'utf8').trim();
  } catch {
    return undefined;
  }
  const db = store.readImageDb();
  if (!db.images[id]) return undefined;
  try {
    const config = readImageConfig(store, id);
    if (!config.rootfs.diff_ids.every((d) => store.hasLayer(d))) return undefined;
  } catch {
    return undefined;
  }
  return id;
}

export function cacheStore(store: Store, key: string, imageId: string): void {
  fs.mkdirSync(dir(store), { recursive: true, mode: 0o700 });
  writeFileAtomicSync(store.tmpPath('cache'), path.join(dir(store), key), `${imageId}\n`);
}

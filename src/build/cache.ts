// The build cache: step cache key -> the image that step made, in <root>/build-cache/<hex>.
// Every step is an image, so a hit is an image that still exists with all its layers; the
// cache survives restarts and `ufs image prune` ends it (the image goes, the entry misses).
// One BuildCache lives for one build and reads images.json and each image config once.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type ImageDb, type Store, writeFileAtomicSync } from '../store/index.js';
import { readImageConfig } from '../image/records.js';
import type { OciImageConfig } from '../image/types.js';

export function cacheKey(parts: unknown[]): string {
  return crypto.createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

export class BuildCache {
  private db?: ImageDb;
  private configs = new Map<string, OciImageConfig>();

  constructor(private readonly store: Store) {}

  private get dir(): string {
    return path.join(this.store.root, 'build-cache');
  }

  // images.json as read at the first question; an image it lacks may be newer: read again.
  private hasImage(id: string): boolean {
    if (this.db?.images[id]) return true;
    this.db = this.store.readImageDb();
    return !!this.db.images[id];
  }

  // An image's config (immutable: its id is its digest).
  config(id: string): OciImageConfig {
    let c = this.configs.get(id);
    if (!c) {
      c = readImageConfig(this.store, id);
      this.configs.set(id, c);
    }
    return c;
  }

  lookup(key: string): string | undefined {
    let id: string;
    try {
      id = fs.readFileSync(path.join(this.dir, key), 'utf8').trim();
    } catch {
      return undefined;
    }
    if (!this.hasImage(id)) return undefined;
    try {
      if (!this.config(id).rootfs.diff_ids.every((d) => this.store.hasLayer(d))) return undefined;
    } catch {
      return undefined;
    }
    return id;
  }

  remember(key: string, imageId: string): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomicSync(this.store.tmpPath('cache'), path.join(this.dir, key), `${imageId}\n`);
  }
}

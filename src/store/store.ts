// The on-disk store (DESIGN.md, "The store"):
//   blobs/sha256/<hex>       every blob, content-addressed
//   layers/<hex>/            a layer unpacked once (hex = its diff_id), never written after
//   layers/<hex>.json        its metadata (sizes, the blob it came from)
//   images.json              image records and name:tag -> image, replaced atomically
//   containers/<id>/         containers (the runtime's)
//   leases/                  layers a live process made but has not yet put in an image
//   tmp/                     work in progress, named <pid>-...: a dead pid's leftovers are swept
//   lock                     the mutation lock (flock)
// Readers never lock: every visible change is a rename of a complete file or directory.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, UfsError } from '../common/errors.js';
import { existsSync, fsyncDirSync, readJsonSync, rmTreeSync, writeFileAtomicSync } from './fsutil.js';
import { holdsFileLock, withFileLock } from './lock.js';

export interface LayerBlobRef {
  digest: string; // sha256:... of the blob as stored (compressed or not)
  size: number;
  mediaType: string;
}

export interface LayerMeta {
  diffId: string;
  size: number; // bytes of regular file content (what `docker images` adds up)
  tarSize: number; // bytes of the uncompressed tar (its sha256 is the diff_id)
  entries: number;
  blob: LayerBlobRef;
  created: string;
}

export interface ImageRecord {
  manifest: string; // digest of the manifest blob that describes this image
  parent?: string; // image id this one was made from (commit/build), for history
  added: string;
  lastTagTime?: string;
}

export interface TagRecord {
  id: string; // image id: sha256 of the config blob
  manifest: string;
}

export interface ImageDb {
  version: 1;
  images: Record<string, ImageRecord>;
  tags: Record<string, TagRecord>; // full name:tag (docker.io/library/busybox:latest)
  digests: Record<string, TagRecord>; // full name@sha256:... (registry manifests)
}

export function emptyImageDb(): ImageDb {
  return { version: 1, images: {}, tags: {}, digests: {} };
}

const HEX64 = /^[a-f0-9]{64}$/;

export function digestHex(digest: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new UfsError(`unsupported or malformed digest: ${digest}`);
  return m[1]!;
}

export class Store {
  private constructor(readonly root: string) {}

  static async open(root: string): Promise<Store> {
    const store = new Store(path.resolve(root));
    for (const dir of [store.root, store.blobsDir(), store.layersDir(), store.containersDir(), store.tmpDir(), store.leasesDir()]) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    store.sweepTmp();
    return store;
  }

  blobsDir(): string {
    return path.join(this.root, 'blobs', 'sha256');
  }
  blobPath(digest: string): string {
    return path.join(this.blobsDir(), digestHex(digest));
  }
  layersDir(): string {
    return path.join(this.root, 'layers');
  }
  layerDir(diffId: string): string {
    return path.join(this.layersDir(), digestHex(diffId));
  }
  layerMetaPath(diffId: string): string {
    return path.join(this.layersDir(), `${digestHex(diffId)}.json`);
  }
  containersDir(): string {
    return path.join(this.root, 'containers');
  }
  tmpDir(): string {
    return path.join(this.root, 'tmp');
  }
  leasesDir(): string {
    return path.join(this.root, 'leases');
  }
  imagesFile(): string {
    return path.join(this.root, 'images.json');
  }
  lockFile(): string {
    return path.join(this.root, 'lock');
  }

  // The store mutation lock: re-entrant within one async call chain.
  withLock<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.lockFile(), fn);
  }
  holdsLock(): boolean {
    return holdsFileLock(this.lockFile());
  }

  // A fresh name under tmp/ that the sweep recognises as ours while we live.
  tmpPath(purpose: string): string {
    return path.join(this.tmpDir(), `${process.pid}-${crypto.randomBytes(6).toString('hex')}-${purpose}`);
  }

  // Removes what dead processes left in tmp/ (a killed load, unpack or commit).
  sweepTmp(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.tmpDir());
    } catch {
      return;
    }
    for (const name of names) {
      const pid = Number(/^(\d+)-/.exec(name)?.[1]);
      if (pid && pidAlive(pid)) continue;
      rmTreeSync(path.join(this.tmpDir(), name));
    }
  }

  // --- blobs ---
  hasBlob(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }
  readBlob(digest: string): Buffer {
    try {
      return fs.readFileSync(this.blobPath(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new UfsError(`blob ${digest} is missing from the store`);
      throw err;
    }
  }
  readJsonBlob<T>(digest: string): T {
    return JSON.parse(this.readBlob(digest).toString('utf8')) as T;
  }
  // Stores a small blob made in memory (config, manifest); returns its digest.
  writeBlob(data: Buffer): string {
    const digest = `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
    if (!this.hasBlob(digest)) writeFileAtomicSync(this.tmpPath('blob'), this.blobPath(digest), data);
    return digest;
  }
  // Moves a verified, fsynced temp file into place as blob `digest` (no-op if present).
  installBlobFile(tmpFile: string, digest: string): void {
    if (this.hasBlob(digest)) {
      fs.rmSync(tmpFile, { force: true });
      return;
    }
    fs.renameSync(tmpFile, this.blobPath(digest));
    fsyncDirSync(this.blobsDir());
  }

  // --- layers ---
  hasLayer(diffId: string): boolean {
    return existsSync(this.layerDir(diffId)) && existsSync(this.layerMetaPath(diffId));
  }
  layerMeta(diffId: string): LayerMeta | undefined {
    return readJsonSync<LayerMeta>(this.layerMetaPath(diffId));
  }
  writeLayerMeta(meta: LayerMeta): void {
    writeFileAtomicSync(this.tmpPath('layermeta'), this.layerMetaPath(meta.diffId), `${JSON.stringify(meta, null, 2)}\n`);
  }
  listLayerIds(): string[] {
    return fs
      .readdirSync(this.layersDir())
      .filter((n) => HEX64.test(n))
      .map((n) => `sha256:${n}`);
  }

  // --- images.json ---
  readImageDb(): ImageDb {
    let db: ImageDb | undefined;
    try {
      db = readJsonSync<ImageDb>(this.imagesFile());
    } catch (err) {
      throw new UfsError(`${this.imagesFile()} is unreadable: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!db) return emptyImageDb();
    if (typeof db !== 'object' || !db.images || !db.tags) throw new UfsError(`${this.imagesFile()} is not an image database`);
    db.digests ??= {};
    return db;
  }
  // Read-modify-write of images.json; the caller must hold the lock.
  updateImageDb<T>(fn: (db: ImageDb) => T): T {
    if (!this.holdsLock()) throw new Error('updateImageDb without the store lock');
    const db = this.readImageDb();
    const result = fn(db);
    writeFileAtomicSync(this.tmpPath('images'), this.imagesFile(), `${JSON.stringify(db, null, 2)}\n`);
    return result;
  }

  // --- leases: layers made by a live process and not yet in an image (commit -> createImage) ---
  addLease(diffId: string): void {
    const file = path.join(this.leasesDir(), `${process.pid}-${digestHex(diffId)}`);
    fs.writeFileSync(file, `${diffId}\n`);
  }
  dropLease(diffId: string): void {
    fs.rmSync(path.join(this.leasesDir(), `${process.pid}-${digestHex(diffId)}`), { force: true });
  }
  // diff_ids protected by leases of live processes; stale leases are removed.
  leasedLayers(): Set<string> {
    const out = new Set<string>();
    for (const name of fs.readdirSync(this.leasesDir())) {
      const m = /^(\d+)-([a-f0-9]{64})$/.exec(name);
      if (m && pidAlive(Number(m[1]))) out.add(`sha256:${m[2]}`);
      else fs.rmSync(path.join(this.leasesDir(), name), { force: true });
    }
    return out;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

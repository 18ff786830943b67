// What the archive adapters share: a source whose blobs are files of a spooled archive.
import { UfsError } from '../../common/errors.js';
import type { Descriptor, OciImageConfig } from '../types.js';
import type { Spool, SpoolFile } from './spool.js';
import type { BlobProgress, FetchedBlob, ImageSource, SourceImage } from './types.js';

export class SpoolSource implements ImageSource {
  found: SourceImage[] = [];
  blobs = new Map<string, SpoolFile>(); // digest -> file
  readonly parallel = 1;

  constructor(readonly spool: Spool) {}

  async images(): Promise<SourceImage[]> {
    return this.found;
  }
  async fetchBlob(desc: Descriptor, progress: BlobProgress): Promise<FetchedBlob> {
    const f = this.blobs.get(desc.digest);
    if (!f) throw new UfsError(`bad archive: blob ${desc.digest} is not in it`);
    progress.onStart?.(f.size);
    const path = this.spool.takeFile(f);
    progress.onBytes?.(f.size);
    return { path, digest: f.digest, size: f.size };
  }
  close(): void {
    this.spool.cleanup();
  }
}

export function checkConfig(config: OciImageConfig, what: string): void {
  if (!config || typeof config !== 'object' || !config.rootfs || !Array.isArray(config.rootfs.diff_ids)) {
    throw new UfsError(`bad archive: ${what} is not an image config (no rootfs.diff_ids)`);
  }
  for (const d of config.rootfs.diff_ids) {
    if (typeof d !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d)) throw new UfsError(`bad archive: ${what}: unsupported diff_id ${JSON.stringify(d)}`);
  }
}

// A name like blobs/sha256/<hex>, <hex>.json or <hex>.tar says its digest (for a layer, the
// hex may also be its diff_id: skopeo names uncompressed layers so).
export function digestFromName(name: string): string | undefined {
  const m = /^(?:blobs\/sha256\/([a-f0-9]{64})|([a-f0-9]{64})\.(?:json|tar))$/.exec(name);
  return m ? `sha256:${m[1] ?? m[2]}` : undefined;
}

// Every file under blobs/ must hash to its name, referenced or not.
export function checkAllBlobs(sp: Spool): void {
  for (const f of sp.files.values()) {
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(f.name);
    if (m && f.digest !== `sha256:${m[1]}`) throw new UfsError(`bad archive: blob sha256:${m[1]} has digest ${f.digest}`);
    if (!m && /^blobs\/sha256\//.test(f.name)) throw new UfsError(`bad archive: malformed blob name ${f.name}`);
  }
}

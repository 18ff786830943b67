// `ufs import FILE|- [REF]` (docker import): a root filesystem tar becomes a one-layer image.
// The tar is stored as given (plain or gzip) and unpacked by the same checked path as load.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { UfsError } from '../common/errors.js';
import { type Progress, QUIET_PROGRESS } from '../common/progress.js';
import { spoolToFile, type Store } from '../store/index.js';
import { applyChanges } from './changes.js';
import { ociManifest } from './commit.js';
import { discardPrepared, installLayer, type PreparedLayer, prepareLayerFromBlob } from './layer.js';
import { normalizeTagged } from './reference.js';
import { setTag } from './records.js';
import { type ContainerConfig, goArch, type OciImageConfig } from './types.js';

export interface ImportOptions {
  ref?: string;
  changes?: string[];
  message?: string;
  source: string; // for the default history comment: "Imported from <source>"
  totalBytes?: number;
  progress?: Progress;
}

export async function importRootfs(store: Store, input: Readable, opts: ImportOptions): Promise<string> {
  const full = opts.ref ? normalizeTagged(opts.ref) : undefined;
  const runtime: ContainerConfig = applyChanges({}, opts.changes ?? []); // bad --change fails before reading
  const tmp = store.tmpPath('import');
  const hash = crypto.createHash('sha256');
  const progress = opts.progress ?? QUIET_PROGRESS;
  progress.phase('Importing', opts.totalBytes);
  let prepared: PreparedLayer | undefined;
  try {
    const size = await spoolToFile(input, tmp, (c) => {
      hash.update(c);
      progress.add(c.length);
    });
    progress.done();
    if (size === 0) throw new UfsError('import: the input is empty');
    const blobDigest = `sha256:${hash.digest('hex')}`;
    prepared = await prepareLayerFromBlob(store, tmp, { blobDigest, unpack: true });
    const layer = prepared;
    const now = new Date().toISOString();
    const config: OciImageConfig = {
      created: now,
      architecture: goArch(),
      os: 'linux',
      config: runtime,
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created: now, comment: opts.message ?? `Imported from ${opts.source}` }],
    };
    return await store.withLock(async () => {
      store.installBlobFile(tmp, blobDigest);
      await installLayer(store, layer);
      const configBytes = Buffer.from(JSON.stringify(config));
      const id = store.writeBlob(configBytes);
      const desc = { mediaType: layer.blob.mediaType, digest: blobDigest, size: layer.blob.size };
      const manifest = store.writeBlob(Buffer.from(JSON.stringify(ociManifest(id, configBytes.length, [desc]))));
      store.updateImageDb((db) => {
        db.images[id] = { manifest, added: now };
        if (full) setTag(db, full, id, manifest);
      });
      return id;
    });
  } finally {
    progress.done();
    if (prepared) discardPrepared(prepared);
    fs.rmSync(tmp, { force: true });
  }
}

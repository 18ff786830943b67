// `ufs load`: docker-archive (`docker save`, skopeo docker-archive:) and OCI archives (an
// OCI image layout as a tar: skopeo oci-archive:, umoci, Docker 25+), layers plain, gzip or
// zstd, one or many images, all tags. The archive is spooled and read by its adapter
// (source/), then installed by the ingest path `pull` uses too (ingest.ts).
import type { Readable } from 'node:stream';
import { type Progress, QUIET_PROGRESS } from '../common/progress.js';
import type { Store } from '../store/index.js';
import { ingest } from './ingest.js';
import { familiarName } from './reference.js';
import { openArchiveSource } from './source/archive.js';

export interface LoadResult {
  lines: string[]; // what `ufs load` prints
  images: { id: string; tags: string[] }[];
}

export async function loadArchive(store: Store, input: Readable, opts: { totalBytes?: number; progress?: Progress } = {}): Promise<LoadResult> {
  const progress = opts.progress ?? QUIET_PROGRESS;
  progress.phase('Loading', opts.totalBytes);
  try {
    const source = await openArchiveSource(
      store,
      input,
      (n) => progress.add(n),
      () => progress.setTotal(undefined),
    );
    const done = await ingest(store, source, {
      onUnpackTotal: (n) => progress.phase('Unpacking', n),
      onBytes: (n) => progress.add(n),
    });
    const lines: string[] = [];
    for (const img of done) {
      for (const t of img.tags) {
        if (t.replaced) lines.push(`The image ${familiarName(t.full)} already exists, renaming the old one with ID ${t.replaced} to empty string`);
        lines.push(`Loaded image: ${familiarName(t.full)}`);
      }
      if (img.tags.length === 0) lines.push(`Loaded image ID: ${img.id}`);
    }
    return { lines, images: done.map((d) => ({ id: d.id, tags: d.tags.map((t) => familiarName(t.full)) })) };
  } finally {
    progress.done();
  }
}

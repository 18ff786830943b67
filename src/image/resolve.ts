// From what a user typed to an image ready to mount: config, layers, their directories.
import type { Store } from '../store/index.js';
import { familiarName } from './reference.js';
import { imageTags, lookupImage, noSuchImage, readImageConfig } from './records.js';
import type { OciImageConfig } from './types.js';
import { UfsError } from '../common/errors.js';

export interface ResolvedImage {
  id: string; // sha256:<config digest>
  refs: string[]; // its tags, short form (busybox:latest)
  config: OciImageConfig;
  diffIds: string[]; // bottom first
  layerDirs: string[]; // TOP FIRST, ready for mountUnion
}

// The image id for `ref`; busybox:latest is built from the host on first use.
export async function resolveImageId(store: Store, ref: string): Promise<string> {
  const found = lookupImage(store.readImageDb(), ref);
  if (found.id) return found.id;
  // busybox.js, and the tar and unpack code it needs, load only when an image is missing
  const { BUSYBOX_REF, ensureBusybox } = await import('./busybox.js');
  if (found.full === BUSYBOX_REF) return ensureBusybox(store);
  throw noSuchImage(ref, found.full);
}

export async function resolveImage(store: Store, ref: string): Promise<ResolvedImage> {
  const id = await resolveImageId(store, ref);
  return describeImage(store, id);
}

export function describeImage(store: Store, id: string): ResolvedImage {
  const db = store.readImageDb();
  const config = readImageConfig(store, id);
  const diffIds = config.rootfs.diff_ids;
  for (const d of diffIds) {
    if (!store.hasLayer(d)) throw new UfsError(`image ${id}: layer ${d} is missing from the store`);
  }
  return {
    id,
    refs: imageTags(db, id).map(familiarName).sort(),
    config,
    diffIds: [...diffIds],
    layerDirs: diffIds.map((d) => store.layerDir(d)).reverse(),
  };
}

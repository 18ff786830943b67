// INTERFACES.md §4: the image for `run`/`build`, pulled when missing (or always), as Docker
// does. busybox:latest without a registry at hand is the built-in image (image/busybox.ts).
// The image being here already is the common case of `ufs run`: it loads nothing else (the
// built-in image, the registry client and their dependencies load only when needed).
import type { LayerEvent } from '../image/ingest.js';
import { lookupImage, noSuchImage } from '../image/records.js';
import type { Store } from '../store/index.js';
import type { ClientOptions } from './client.js';

export interface EnsureOptions extends ClientOptions {
  pull: 'missing' | 'always' | 'never';
  platform?: string;
  onProgress?: (e: LayerEvent) => void;
}

// Returns the image id.
export async function ensureImage(store: Store, ref: string, opts: EnsureOptions): Promise<string> {
  const found = lookupImage(store.readImageDb(), ref);
  if (opts.pull !== 'always' && found.id) return found.id;
  const { BUSYBOX_REF, ensureBusybox } = await import('../image/busybox.js');
  if (opts.pull === 'never') {
    if (found.full === BUSYBOX_REF) return ensureBusybox(store);
    throw noSuchImage(ref, found.full);
  }
  if (!found.full) throw noSuchImage(ref); // an image id that is not here: nothing to pull
  if (found.full === BUSYBOX_REF && opts.pull === 'missing') return ensureBusybox(store);
  const { pull: _p, onProgress, ...rest } = opts;
  const [{ registryOptionsFromEnv }, { pullImage }, { NetworkError }] = await Promise.all([import('./hosts.js'), import('./pull.js'), import('./transport.js')]);
  try {
    const [res] = await pullImage(store, ref, { ...registryOptionsFromEnv(), ...rest, ...(onProgress ? { onLayer: onProgress } : {}) });
    return res!.id;
  } catch (err) {
    // offline: the built-in busybox still runs (what ufs always did)
    if (found.full === BUSYBOX_REF && err instanceof NetworkError) return found.id ?? ensureBusybox(store);
    throw err;
  }
}

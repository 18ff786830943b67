// `ufs diff`: the writable layer's changes against the image, Docker's A/C/D lines. The init
// layer sits between them, so its paths are the runtime's, not the container's: hidden.
// The imports name modules, not package indexes: `ufs diff` is a short command, and what it
// loads is most of its time.
import { listChanges } from '../unionfs/changes.js';
import type { Change } from '../unionfs/types.js';
import { resolveImage } from '../image/resolve.js';
import type { Store } from '../store/index.js';
import { containerPaths, findRecord } from './container.js';
import { isInitPath } from './initlayer.js';

export async function diffContainer(store: Store, ref: string): Promise<Change[]> {
  const rec = findRecord(store.containersDir(), ref);
  const paths = containerPaths(store.containersDir(), rec.Id);
  const image = await resolveImage(store, rec.Image);
  const changes = await listChanges(paths.upper, [paths.init, ...image.layerDirs]);
  return changes.filter((c) => !isInitPath(c.path)).sort((a, b) => comparePaths(a.path, b.path));
}

// Depth-first walk order (a directory right before its contents), as Docker lists them.
function comparePaths(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

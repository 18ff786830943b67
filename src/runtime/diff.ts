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

// Depth-first walk order (a directory right before its contents), as Docker lists them:
// component by component, which is the paths' order with '/' below every other character
// (compared in place: a diff sorts thousands of paths).
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x === 0x2f ? -1 : y === 0x2f ? 1 : x - y;
  }
  return a.length - b.length;
}

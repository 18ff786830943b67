// The stack of layer directories, top first: the upper (if any), then the lowers.
import { toBytes } from './hostfs.js';
import { UPPER_TAG, lowerTag } from './inode.js';

export interface Layer {
  root: string; // host directory of the layer, a byte string (hostfs.ts)
  index: number; // position in the stack, 0 = top
  tag: bigint; // inode tag (inode.ts)
  upper: boolean;
}

export function makeLayers(lowers: readonly string[], upper?: string): Layer[] {
  const layers: Layer[] = [];
  if (upper !== undefined) layers.push({ root: toBytes(upper), index: 0, tag: UPPER_TAG, upper: true });
  lowers.forEach((root, i) => layers.push({ root: toBytes(root), index: layers.length, tag: lowerTag(i), upper: false }));
  return layers;
}

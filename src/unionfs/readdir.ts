// Merged directory listings: every contributing layer's names, top layer first, each name
// once, whiteouts of a layer applied to the layers beneath it, no `.wh.` names at all.
// (Opacity is already in `node.dirs`: it stops at the opaque layer.)
import type { Resolver, Node } from './lookup.js';
import { isReservedName, whitedOutName } from './whiteout.js';
import type { DirEntry } from './types.js';

export async function mergedNames(resolver: Resolver, node: Node): Promise<string[]> {
  const seen = new Set<string>();
  const hidden = new Set<string>();
  const out: string[] = [];
  for (const d of node.dirs) {
    const names = await resolver.layerNames(d);
    const whiteouts: string[] = [];
    for (const name of names) {
      if (isReservedName(name)) {
        const target = whitedOutName(name);
        if (target !== null) whiteouts.push(target);
        continue;
      }
      if (seen.has(name) || hidden.has(name)) continue;
      seen.add(name);
      out.push(name);
    }
    for (const name of whiteouts) hidden.add(name);
  }
  return out;
}

// The entries of the merged directory at `parts`, each with the inode number and type
// getattr reports for it.
export async function readMergedDir(resolver: Resolver, parts: readonly string[]): Promise<DirEntry[]> {
  const names = await resolver.listing(parts, (node) => mergedNames(resolver, node));
  const nodes = await resolver.children(parts, names);
  const out: DirEntry[] = [];
  names.forEach((name, i) => {
    const node = nodes[i];
    if (node) out.push({ name, ino: node.ino, mode: node.fmt });
  });
  return out;
}

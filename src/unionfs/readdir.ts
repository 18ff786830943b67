// Merged directory listings: every contributing layer's names, top layer first, each name
// once, whiteouts of a layer applied to the layers beneath it, no `.wh.` names at all.
// (Opacity is already in `node.dirs`: it stops at the opaque layer.)
import type { Resolver, Node } from './lookup.js';
import { isReservedName, whitedOutName } from './whiteout.js';
import type { DirEntry } from './types.js';

export function mergedNames(resolver: Resolver, node: Node): string[] {
  const seen = new Set<string>();
  const hidden = new Set<string>();
  const out: string[] = [];
  for (const d of node.dirs) {
    const names = resolver.layerNames(d);
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
// getattr reports for it, and its node.
export function readMergedDir(resolver: Resolver, parts: readonly string[]): { entry: DirEntry; node: Node }[] {
  const names = resolver.listing(parts, (node) => mergedNames(resolver, node));
  const nodes = resolver.children(parts, names);
  const out: { entry: DirEntry; node: Node }[] = [];
  names.forEach((name, i) => {
    const node = nodes[i];
    if (node) out.push({ entry: { name, ino: node.ino, mode: node.fmt }, node });
  });
  return out;
}

// Merged directory listings: every contributing layer's names, top layer first, each name
// once, whiteouts of a layer applied to the layers beneath it, no `.wh.` names at all.
// (Opacity is already in `node.dirs`: it stops at the opaque layer.)
import type { Resolver, Node } from './lookup.js';
import { isReservedName, whitedOutName } from './whiteout.js';
import type { HostStat } from './hostfs.js';
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
// getattr reports for it, its node, and the lstat of its object where resolving it made one
// just now (else the caller asks the resolver).
export function readMergedDir(resolver: Resolver, parts: readonly string[]): { entry: DirEntry; node: Node; st: HostStat | undefined }[] {
  const names = resolver.listing(parts, (node) => mergedNames(resolver, node));
  const stats: (HostStat | undefined)[] = new Array(names.length);
  const nodes = resolver.children(parts, names, stats);
  const out: { entry: DirEntry; node: Node; st: HostStat | undefined }[] = [];
  names.forEach((name, i) => {
    const node = nodes[i];
    if (node) out.push({ entry: { name, ino: node.ino, mode: node.fmt }, node, st: stats[i] });
  });
  return out;
}

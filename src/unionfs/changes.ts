// listChanges: what one layer (an upper, or a layer directory in OCI form) changes over the
// layers beneath it, in `docker diff` form, sorted by path:
//   A  added: the path does not exist in the merged view of the lowers;
//   C  changed: it exists below and the layer replaces it (a file, link or node, or a
//      directory of another type), or it is a directory that exists below and either
//      contains changes, is opaque, or has another mode, owner or mtime;
//   D  deleted: a whiteout `.wh.X` whose X exists below.
// An opaque directory is listed as C (or A) and everything in it as A, as Docker shows it:
// the lower entries it hides are not listed one by one. The union's temporary names
// (`.wh..wh..ufs.*`), the opaque marker and other `.wh..wh.` metadata are skipped.
import path from 'node:path';
import { fromBytes, hfs, lstatStrict, toBytes, type HostStat } from './hostfs.js';
import { makeLayers } from './layers.js';
import { Resolver, isDir, type Node } from './lookup.js';
import { OPAQUE_MARKER, WH_META_PREFIX, WH_PREFIX, whitedOutName } from './whiteout.js';
import type { Change } from './types.js';

class Below {
  private readonly resolver: Resolver | undefined;

  constructor(lowers: readonly string[]) {
    this.resolver = lowers.length > 0 ? new Resolver(makeLayers(lowers.map((l) => path.resolve(l)))) : undefined;
  }

  async lookup(parts: readonly string[]): Promise<Node | null> {
    if (!this.resolver) return null;
    try {
      return this.resolver.lookup(parts);
    } catch {
      return null; // ENOTDIR: a component below is not a directory, so the path is not there
    }
  }

  stat(node: Node): HostStat {
    return this.resolver!.statOf(node);
  }
}

function metadataDiffers(a: HostStat, b: HostStat): boolean {
  return a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.mtimeNs !== b.mtimeNs;
}

// Paths of changes are shown as UTF-8 (names are bytes inside the union: hostfs.ts); an
// ASCII path is the same either way.
function join(parts: readonly string[]): string {
  const p = '/' + parts.join('/');
  return /[^\x00-\x7f]/.test(p) ? fromBytes(p) : p;
}

// Walks the layer directory `host` (merged path `parts`). `below` says whether lower entries
// show through it. Returns whether anything inside was listed.
// Entries are typed from the listing: a file's own metadata is read only where a directory
// exists below it too (to compare them), not for each of a new tree's files.
async function walk(host: string, parts: string[], below: Below, showsBelow: boolean, out: Change[]): Promise<boolean> {
  const entries = hfs.readdirTypes(host);
  const present = new Set(entries.map((e) => e.name));
  let changed = false;
  for (const entry of entries) {
    const name = entry.name;
    if (name.startsWith(WH_META_PREFIX)) continue;
    const childParts = [...parts, name];
    if (name.startsWith(WH_PREFIX)) {
      const target = whitedOutName(name);
      if (target === null || present.has(target) || !showsBelow) continue;
      if (await below.lookup([...parts, target])) {
        out.push({ kind: 'D', path: join([...parts, target]) });
        changed = true;
      }
      continue;
    }
    const childHost = `${host}/${name}`;
    const dir = entry.isDirectory();
    const lower = showsBelow ? await below.lookup(childParts) : null;
    if (!lower || !dir || !isDir(lower)) changed = true;
    if (!lower) {
      out.push({ kind: 'A', path: join(childParts) });
      if (dir) await walk(childHost, childParts, below, false, out);
      continue;
    }
    if (!dir || !isDir(lower)) {
      out.push({ kind: 'C', path: join(childParts) });
      if (dir) await walk(childHost, childParts, below, false, out);
      continue;
    }
    const st = lstatStrict(childHost);
    const opaque = hfs.readdirSync(childHost).includes(OPAQUE_MARKER) || present.has(WH_PREFIX + name);
    const at = out.length;
    const inner = await walk(childHost, childParts, below, !opaque, out);
    if (inner || opaque || metadataDiffers(st, await below.stat(lower))) {
      out.splice(at, 0, { kind: 'C', path: join(childParts) });
      changed = true;
    }
  }
  return changed;
}

export async function listChanges(layer: string, lowers: string[]): Promise<Change[]> {
  const out: Change[] = [];
  const root = toBytes(path.resolve(layer));
  const rootOpaque = hfs.readdirSync(root).includes(OPAQUE_MARKER);
  await walk(root, [], new Below(lowers), !rootOpaque, out);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

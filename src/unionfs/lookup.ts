// Resolving a merged path across the layers, with a dentry-like cache.
//
// Rules (DESIGN.md, "The union"): the topmost layer that has a name wins; `.wh.NAME` in a
// layer hides NAME in every layer beneath; an opaque directory (`.wh..wh..opq` inside, or a
// directory next to its own `.wh.NAME`, as a tar holding both entries means) hides everything
// beneath; only directories merge, so a non-directory (a symlink too) hides the name below.
// A path is followed in a layer only through that layer's real directories, checked with
// lstat one component at a time: a symlink inside a layer is never followed.
//
// Caching: lower layers never change, so their lstat results and listings are kept forever.
// Upper changes only through this union, so resolved nodes (which layer wins, the host path,
// the contributing directories, the inode number) are kept in a tree keyed by name until
// a mutation invalidates that path (which drops its whole subtree). Attributes of upper
// objects are never cached: writes through passthrough fds change them behind our back.
import fs, { type BigIntStats } from 'node:fs';
import fsp from 'node:fs/promises';
import { fsError } from './errors.js';
import { fmtOf, lstatOrNull } from './hostfs.js';
import { composeIno, readOrigin } from './inode.js';
import { mapLimit } from './limit.js';
import type { Layer } from './layers.js';
import { OPAQUE_MARKER, isReservedName, whiteoutName } from './whiteout.js';

const S_IFDIR = fs.constants.S_IFDIR;

// A real directory of one layer that contributes to a merged directory.
export interface LayerDir {
  layer: Layer;
  host: string;
  ino: bigint; // underlying inode number
}

export interface Node {
  path: string; // merged path, '/a/b'
  layer: Layer; // the winning layer
  host: string; // host path of the winning object
  fmt: number; // S_IFMT bits of the winning object
  dirs: LayerDir[]; // for a directory: contributing layers, top first (winner first); else []
  ino: bigint; // the st_ino the union reports (inode.ts)
}

export function isDir(node: Node): boolean {
  return node.fmt === S_IFDIR;
}

// Does anything below upper show through this directory (or is this object a lower one)?
export function hasLower(node: Node): boolean {
  return !node.layer.upper || node.dirs.some((d) => !d.layer.upper);
}

interface Entry {
  node: Node | null; // null: the name does not exist in the merged view
  children?: Map<string, Entry>;
  listing?: string[]; // merged names of a directory, in order
}

const MAX_ENTRIES = 200_000;
const MAX_LOWER_STATS = 500_000;
const MAX_LOWER_LISTS = 50_000;

// Names of upper directories read once for a batch of lookups (readdir) under the lock.
export type Snapshot = Map<string, Set<string>>;

export class Resolver {
  private readonly lowerStats = new Map<string, BigIntStats | null>();
  private readonly lowerLists = new Map<string, { names: string[]; set: Set<string> }>();
  private rootEntry: Entry | undefined;
  private entries = 0;

  constructor(readonly layers: Layer[]) {}

  // ---- per-layer primitives -------------------------------------------------------------

  async stat(layer: Layer, host: string): Promise<BigIntStats | null> {
    if (layer.upper) return lstatOrNull(host);
    const known = this.lowerStats.get(host);
    if (known !== undefined) return known;
    const st = await lstatOrNull(host);
    if (this.lowerStats.size >= MAX_LOWER_STATS) this.lowerStats.clear();
    this.lowerStats.set(host, st);
    return st;
  }

  private async exists(layer: Layer, host: string): Promise<boolean> {
    return (await this.stat(layer, host)) !== null;
  }

  // Is `name` in the layer directory `d`? Lower directories answer from their cached listing
  // (one readdir instead of an lstat per name); upper from `snap` if given, else lstat.
  private async has(d: { layer: Layer; host: string }, name: string, snap?: Snapshot): Promise<boolean> {
    if (!d.layer.upper) return (await this.lowerListing(d.host)).set.has(name);
    const known = snap?.get(d.host);
    if (known) return known.has(name);
    return (await lstatOrNull(`${d.host}/${name}`)) !== null;
  }

  // lstat of `name` in the layer directory `d`, skipping the call when a listing says it is absent.
  private async entryStat(d: { layer: Layer; host: string }, name: string, host: string, snap?: Snapshot): Promise<BigIntStats | null> {
    const known = d.layer.upper ? snap?.get(d.host) : undefined;
    if (d.layer.upper && !known) return lstatOrNull(host);
    return (await this.has(d, name, snap)) ? this.stat(d.layer, host) : null;
  }

  private async lowerListing(host: string): Promise<{ names: string[]; set: Set<string> }> {
    let listing = this.lowerLists.get(host);
    if (!listing) {
      const names = await fsp.readdir(host);
      listing = { names, set: new Set(names) };
      if (this.lowerLists.size >= MAX_LOWER_LISTS) this.lowerLists.clear();
      this.lowerLists.set(host, listing);
    }
    return listing;
  }

  // Names in one layer's directory, whiteouts and markers included.
  async layerNames(d: { layer: Layer; host: string }): Promise<string[]> {
    if (d.layer.upper) return fsp.readdir(d.host);
    return (await this.lowerListing(d.host)).names;
  }

  // ---- resolution -----------------------------------------------------------------------

  private makeNode(path: string, first: LayerDir & { fmt: number }, dirs: LayerDir[]): Node {
    let ino: bigint;
    if (!first.layer.upper) {
      ino = composeIno(first.layer.tag, first.ino);
    } else {
      const origin = readOrigin(first.host);
      const lower = first.fmt === S_IFDIR ? dirs.find((d) => !d.layer.upper) : undefined;
      if (origin !== undefined) ino = origin;
      else if (lower) ino = composeIno(lower.layer.tag, lower.ino);
      else ino = composeIno(first.layer.tag, first.ino);
    }
    return { path, layer: first.layer, host: first.host, fmt: first.fmt, dirs, ino };
  }

  private async computeRoot(): Promise<Node> {
    const dirs: LayerDir[] = [];
    for (const layer of this.layers) {
      const st = await this.stat(layer, layer.root);
      if (!st || !st.isDirectory()) throw fsError('ENOTDIR', `layer ${layer.root} is not a directory`);
      dirs.push({ layer, host: layer.root, ino: st.ino });
      if (await this.exists(layer, `${layer.root}/${OPAQUE_MARKER}`)) break;
    }
    const top = dirs[0];
    if (!top) throw fsError('EINVAL', 'a union needs at least one layer');
    return this.makeNode('/', { ...top, fmt: S_IFDIR }, dirs);
  }

  // Resolves `name` inside the merged directory `parent`; null when it does not exist.
  async child(parent: Node, name: string, snap?: Snapshot): Promise<Node | null> {
    if (isReservedName(name)) return null;
    const path = parent.path === '/' ? `/${name}` : `${parent.path}/${name}`;
    const whiteout = whiteoutName(name);
    let first: (LayerDir & { fmt: number }) | undefined;
    const dirs: LayerDir[] = [];
    for (const d of parent.dirs) {
      const host = `${d.host}/${name}`;
      const st = await this.entryStat(d, name, host, snap);
      if (!st) {
        if (await this.has(d, whiteout, snap)) break;
        continue;
      }
      const dir = st.isDirectory();
      if (!first) {
        first = { layer: d.layer, host, ino: st.ino, fmt: fmtOf(st.mode) };
        if (!dir) break;
      } else if (!dir) {
        break; // a non-directory does not merge and hides what is beneath it
      }
      dirs.push({ layer: d.layer, host, ino: st.ino });
      if ((await this.exists(d.layer, `${host}/${OPAQUE_MARKER}`)) || (await this.has(d, whiteout, snap))) break;
    }
    return first ? this.makeNode(path, first, dirs) : null;
  }

  // Resolves many names of one directory at once (readdir), reading each upper directory once.
  async children(parts: readonly string[], names: readonly string[]): Promise<(Node | null)[]> {
    const parent = await this.resolveDir(parts);
    const entry = this.findEntry(parts);
    const snap: Snapshot = new Map();
    for (const d of parent.dirs) if (d.layer.upper) snap.set(d.host, new Set(await fsp.readdir(d.host)));
    return mapLimit(names, 32, async (name) => {
      const known = entry?.children?.get(name);
      if (known) return known.node;
      const node = await this.child(parent, name, snap);
      if (entry && entry.node === parent) {
        entry.children ??= new Map();
        if (!entry.children.has(name)) {
          entry.children.set(name, { node });
          this.entries++;
        }
      }
      return node;
    });
  }

  // The node at `parts`, or null if it does not exist; ENOTDIR when a component on the way
  // is not a directory (lstat semantics: a symlink is not one).
  async lookup(parts: readonly string[]): Promise<Node | null> {
    if (!this.rootEntry || this.entries > MAX_ENTRIES) {
      this.rootEntry = { node: await this.computeRoot() };
      this.entries = 0;
    }
    let entry = this.rootEntry;
    for (const name of parts) {
      const node = entry.node;
      if (!node) return null;
      if (!isDir(node)) throw fsError('ENOTDIR');
      entry.children ??= new Map();
      let next = entry.children.get(name);
      if (!next) {
        const found = await this.child(node, name);
        next = entry.children.get(name) ?? { node: found };
        entry.children.set(name, next);
        this.entries++;
      }
      entry = next;
    }
    return entry.node;
  }

  async resolve(parts: readonly string[]): Promise<Node> {
    const node = await this.lookup(parts);
    if (!node) throw fsError('ENOENT');
    return node;
  }

  async resolveDir(parts: readonly string[]): Promise<Node> {
    const node = await this.resolve(parts);
    if (!isDir(node)) throw fsError('ENOTDIR');
    return node;
  }

  // Is `name` visible in the lower layers of `parent` (ignoring upper)? This decides whether
  // removing or moving it from upper needs a whiteout, and whether a new dir must be opaque.
  async existsBelow(parent: Node, name: string): Promise<boolean> {
    for (const d of parent.dirs) {
      if (d.layer.upper) continue;
      if (await this.has(d, name)) return true;
      if (await this.has(d, whiteoutName(name))) return false;
    }
    return false;
  }

  // Attributes of a node's winning object: fresh for upper, cached for (immutable) lowers.
  async statOf(node: Node): Promise<BigIntStats> {
    const st = await this.stat(node.layer, node.host);
    if (!st) throw fsError('ENOENT');
    return st;
  }

  // The cached merged listing of the directory at `parts`, computed by `compute` if absent.
  async listing(parts: readonly string[], compute: (node: Node) => Promise<string[]>): Promise<string[]> {
    const node = await this.resolveDir(parts);
    const entry = this.findEntry(parts);
    if (entry?.listing && entry.node === node) return entry.listing;
    const names = await compute(node);
    const again = this.findEntry(parts);
    if (again && again.node === node) again.listing = names;
    return names;
  }

  private findEntry(parts: readonly string[]): Entry | undefined {
    let entry = this.rootEntry;
    for (const name of parts) {
      if (!entry) return undefined;
      entry = entry.children?.get(name);
    }
    return entry;
  }

  // Forgets what is known about `parts` and everything under it, and the parent's listing.
  // Every change to upper calls this for each merged path whose resolution it may change.
  invalidate(parts: readonly string[]): void {
    if (parts.length === 0) {
      this.rootEntry = undefined;
      return;
    }
    const parent = this.findEntry(parts.slice(0, -1));
    if (!parent) return;
    parent.listing = undefined;
    parent.children?.delete(parts[parts.length - 1]!);
  }

  // Forgets only a directory's listing (a whiteout or marker changed inside it).
  invalidateListing(parts: readonly string[]): void {
    const entry = this.findEntry(parts);
    if (entry) entry.listing = undefined;
  }
}

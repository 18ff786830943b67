// Resolving a merged path across the layers, with a dentry-like cache.
//
// Rules (DESIGN.md, "The union"): the topmost layer that has a name wins; `.wh.NAME` in a
// layer hides NAME in every layer beneath; an opaque directory (`.wh..wh..opq` inside, or a
// directory next to its own `.wh.NAME`, as a tar holding both entries means) hides everything
// beneath; only directories merge, so a non-directory (a symlink too) hides the name below.
// A path is followed in a layer only through that layer's real directories, checked with
// lstat one component at a time: a symlink inside a layer is never followed.
//
// Caching: lower layers never change, so their lstat results and listings stay valid; the
// most recent ones are kept (bounded.ts).
// Upper changes only through this union, so resolved nodes (which layer wins, the host path,
// the contributing directories, the inode number) are kept in a tree keyed by name until
// a mutation invalidates that path (which drops its whole subtree). Attributes of upper
// objects are never cached: writes through passthrough fds change them behind our back.
//
// Everything here is synchronous (see hostfs.ts): a resolution runs start to end without
// another request in between.
import { hfs as fs, type HostStat } from './hostfs.js';
import { BoundedMap } from './bounded.js';
import { fsError } from './errors.js';
import { fmtOf, lstatNames, lstatOrNull } from './hostfs.js';
import { UPPER_TAG, composeIno, readOrigin, readRedirect } from './inode.js';
import type { Layer } from './layers.js';
import { OPAQUE_MARKER, isReservedName, whiteoutName } from './whiteout.js';

const S_IFDIR = fs.constants.S_IFDIR;
// The `dirs` of every non-directory node: shared, never changed.
const NO_DIRS: LayerDir[] = Object.freeze([]) as unknown as LayerDir[];

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

// The resolved tree is dropped whole once it holds this many entries: a walk of a big root
// keeps the serving process's heap bounded, and what the walk needs next is resolved again
// from the layer caches below.
const MAX_ENTRIES = 16_384;
// Lower stats and listings are read again when forgotten: these bound the heap, not the
// work (a listing's lookups and a readdirplus's stats come in one batch per directory).
const MAX_LOWER_STATS = 1024;
const MAX_LOWER_LISTS = 256;

// Names of upper directories read once for a batch of lookups (readdir) under the lock.
export type Snapshot = Map<string, Set<string>>;
// lstats of a batch of names in one layer directory (Resolver.prestat).
type Prestat = (HostStat | null | undefined)[];

export class Resolver {
  private readonly lowerStats = new BoundedMap<string, HostStat | null>(MAX_LOWER_STATS);
  private readonly lowerLists = new BoundedMap<string, { names: string[]; set: Set<string> }>(MAX_LOWER_LISTS);
  private readonly lowerRedirects = new BoundedMap<string, string | null>(MAX_LOWER_STATS);
  private readonly below = new Map<number, Resolver>(); // the layers under layer index k
  private rootEntry: Entry | undefined;
  private entries = 0;

  constructor(readonly layers: Layer[]) {}

  // ---- per-layer primitives -------------------------------------------------------------

  stat(layer: Layer, host: string): HostStat | null {
    if (layer.upper) return lstatOrNull(host);
    const known = this.lowerStats.get(host);
    if (known !== undefined) return known;
    const st = lstatOrNull(host);
    this.lowerStats.set(host, st);
    return st;
  }

  private exists(layer: Layer, host: string): boolean {
    return this.stat(layer, host) !== null;
  }

  // Is `name` in the layer directory `d`? Lower directories answer from their cached listing
  // (one readdir instead of an lstat per name); upper from `snap` if given, else lstat.
  private has(d: { layer: Layer; host: string }, name: string, snap?: Snapshot): boolean {
    if (!d.layer.upper) return this.lowerListing(d.host).set.has(name);
    const known = snap?.get(d.host);
    if (known) return known.has(name);
    return lstatOrNull(`${d.host}/${name}`) !== null;
  }

  // lstat of `name` in the layer directory `d`, skipping the call when a listing says it is absent.
  private entryStat(d: { layer: Layer; host: string }, name: string, host: string, snap?: Snapshot): HostStat | null {
    const known = d.layer.upper ? snap?.get(d.host) : undefined;
    if (d.layer.upper && !known) return lstatOrNull(host);
    return this.has(d, name, snap) ? this.stat(d.layer, host) : null;
  }

  private lowerListing(host: string): { names: string[]; set: Set<string> } {
    let listing = this.lowerLists.get(host);
    if (!listing) {
      const names = fs.readdirSync(host);
      listing = { names, set: new Set(names) };
      this.lowerLists.set(host, listing);
    }
    return listing;
  }

  // Names in one layer's directory, whiteouts and markers included.
  layerNames(d: { layer: Layer; host: string }): string[] {
    if (d.layer.upper) return fs.readdirSync(d.host);
    return this.lowerListing(d.host).names;
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

  private computeRoot(): Node {
    const dirs: LayerDir[] = [];
    for (const layer of this.layers) {
      const st = this.stat(layer, layer.root);
      if (!st || !st.isDirectory()) throw fsError('ENOTDIR', `layer ${layer.root} is not a directory`);
      dirs.push({ layer, host: layer.root, ino: st.ino });
      if (this.exists(layer, `${layer.root}/${OPAQUE_MARKER}`)) break;
    }
    const top = dirs[0];
    if (!top) throw fsError('EINVAL', 'a union needs at least one layer');
    return this.makeNode('/', { ...top, fmt: S_IFDIR }, dirs);
  }

  // The redirect of a layer directory (inode.ts), cached for immutable lowers.
  private redirectOf(layer: Layer, host: string): string | undefined {
    if (layer.upper) return readRedirect(host);
    let known = this.lowerRedirects.get(host);
    if (known === undefined) {
      known = readRedirect(host) ?? null;
      this.lowerRedirects.set(host, known);
    }
    return known ?? undefined;
  }

  // The directories that merge at merged path `to` in the layers below `layer`: where a
  // redirect found in `layer` sends the lookup.
  private dirsBelow(layer: Layer, to: string): LayerDir[] {
    const rest = this.layers.filter((l) => l.index > layer.index);
    if (rest.length === 0) return [];
    let r = this.below.get(layer.index);
    if (!r) {
      r = new Resolver(rest);
      this.below.set(layer.index, r);
    }
    try {
      const node = r.lookup(to.split('/').filter((c) => c !== ''));
      return node && isDir(node) ? node.dirs : [];
    } catch {
      return []; // not a directory below any more: nothing merges
    }
  }

  // The lower part of the directory `d` (host path in its layer): its redirect target if it
  // has one, else its own merged position. For writing a redirect on a rename.
  lowerPathOf(d: LayerDir): string {
    const rel = d.host.slice(d.layer.root.length);
    return rel === '' ? '/' : rel;
  }

  // Resolves `name` inside the merged directory `parent`; null when it does not exist.
  // `pre[i][k]`, where given, is the lstat of `name` in the parent's directory i, made for a
  // batch of names (children): null when the name is not there.
  // `won.st` is set to the lstat of the winning object, where one was made.
  child(parent: Node, name: string, snap?: Snapshot, pre?: readonly (Prestat | undefined)[], k = 0, won?: { st: HostStat | undefined }): Node | null {
    if (isReservedName(name)) return null;
    const path = parent.path === '/' ? `/${name}` : `${parent.path}/${name}`;
    const whiteout = whiteoutName(name);
    let first: (LayerDir & { fmt: number }) | undefined;
    const dirs: LayerDir[] = [];
    const bottom = this.layers[this.layers.length - 1];
    const last = parent.dirs.length - 1;
    for (let i = 0; i <= last; i++) {
      const d = parent.dirs[i]!;
      const host = `${d.host}/${name}`;
      const given = pre?.[i]?.[k];
      const st = given !== undefined ? given : this.entryStat(d, name, host, snap);
      if (!st) {
        // A whiteout matters only to the parent's directories further down.
        if (i === last || this.has(d, whiteout, snap)) break;
        continue;
      }
      const dir = st.isDirectory();
      if (!first) {
        first = { layer: d.layer, host, ino: st.ino, fmt: fmtOf(st.mode) };
        if (won) won.st = st;
        if (!dir) break;
      } else if (!dir) {
        break; // a non-directory does not merge and hides what is beneath it
      }
      dirs.push({ layer: d.layer, host, ino: st.ino });
      // Nothing can merge beneath the bottom layer; beneath the parent's last directory only
      // through a redirect. Skipping the checks there saves a walk of a single-layer tree
      // an lstat and a listxattr per directory.
      if (d.layer === bottom) break;
      if (i === last && this.redirectOf(d.layer, host) === undefined) break;
      if (this.exists(d.layer, `${host}/${OPAQUE_MARKER}`) || this.has(d, whiteout, snap)) break;
      const redirect = this.redirectOf(d.layer, host);
      if (redirect !== undefined) {
        dirs.push(...this.dirsBelow(d.layer, redirect));
        break;
      }
    }
    return first ? this.makeNode(path, first, dirs.length === 0 ? NO_DIRS : dirs) : null;
  }

  // Resolves many names of one directory at once (readdir), reading each upper directory once.
  // `stats[k]`, if given, gets the lstat of node k's winning object where one was made.
  children(parts: readonly string[], names: readonly string[], stats?: (HostStat | undefined)[]): (Node | null)[] {
    const parent = this.resolveDir(parts);
    const entry = this.findEntry(parts);
    const snap: Snapshot = new Map();
    for (const d of parent.dirs) if (d.layer.upper) snap.set(d.host, new Set(fs.readdirSync(d.host)));
    // Each layer directory's entries lstat'ed in one call (a readdirplus sends them all).
    const pre = parent.dirs.map((d) => this.prestat(d, names, entry?.children, snap));
    const won: { st: HostStat | undefined } = { st: undefined };
    return names.map((name, k) => {
      const known = entry?.children?.get(name);
      if (known) return known.node;
      won.st = undefined;
      const node = this.child(parent, name, snap, pre, k, won);
      if (stats) stats[k] = won.st;
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

  // lstat of those of `names` (not yet resolved in `known`) that the layer directory `d` has,
  // in one call; by index in `names`, null for those it does not have.
  private prestat(d: LayerDir, names: readonly string[], known: Map<string, Entry> | undefined, snap: Snapshot): Prestat | undefined {
    const set = d.layer.upper ? snap.get(d.host) : this.lowerListing(d.host).set;
    if (!set) return undefined;
    const out: Prestat = new Array(names.length).fill(null);
    const want: string[] = [];
    const at: number[] = [];
    names.forEach((name, k) => {
      if (!known?.has(name) && set.has(name) && !isReservedName(name)) {
        want.push(name);
        at.push(k);
      }
    });
    if (want.length === 0) return out;
    const stats = lstatNames(d.host, want);
    if (!stats) return undefined;
    for (let j = 0; j < at.length; j++) out[at[j]!] = stats[j];
    return out;
  }

  // The node at `parts`, or null if it does not exist; ENOTDIR when a component on the way
  // is not a directory (lstat semantics: a symlink is not one).
  lookup(parts: readonly string[]): Node | null {
    if (!this.rootEntry || this.entries > MAX_ENTRIES) {
      this.rootEntry = { node: this.computeRoot() };
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
        const found = this.child(node, name);
        next = entry.children.get(name) ?? { node: found };
        entry.children.set(name, next);
        this.entries++;
      }
      entry = next;
    }
    return entry.node;
  }

  resolve(parts: readonly string[]): Node {
    const node = this.lookup(parts);
    if (!node) throw fsError('ENOENT');
    return node;
  }

  resolveDir(parts: readonly string[]): Node {
    const node = this.resolve(parts);
    if (!isDir(node)) throw fsError('ENOTDIR');
    return node;
  }

  // Is `name` visible in the lower layers of `parent` (ignoring upper)? This decides whether
  // removing or moving it from upper needs a whiteout, and whether a new dir must be opaque.
  existsBelow(parent: Node, name: string): boolean {
    for (const d of parent.dirs) {
      if (d.layer.upper) continue;
      if (this.has(d, name)) return true;
      if (this.has(d, whiteoutName(name))) return false;
    }
    return false;
  }

  // Attributes of a node's winning object: fresh for upper, cached for (immutable) lowers.
  statOf(node: Node): HostStat {
    const st = this.stat(node.layer, node.host);
    if (!st) throw fsError('ENOENT');
    return st;
  }

  // The cached merged listing of the directory at `parts`, computed by `compute` if absent.
  listing(parts: readonly string[], compute: (node: Node) => string[]): string[] {
    const node = this.resolveDir(parts);
    const entry = this.findEntry(parts);
    if (entry?.listing && entry.node === node) return entry.listing;
    const names = compute(node);
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

  // Records the non-directory just made in upper at `parts` (fresh: no origin, nothing
  // merges with it), instead of resolving it again on the next request.
  rememberNew(parts: readonly string[], host: string, mode: number, hostIno: bigint): Node | null {
    const upper = this.layers[0];
    if (!upper?.upper || parts.length === 0) return null;
    const fmt = fmtOf(mode);
    if (fmt === S_IFDIR) return null;
    const node: Node = { path: '/' + parts.join('/'), layer: upper, host, fmt, dirs: [], ino: composeIno(UPPER_TAG, hostIno) };
    const parent = this.findEntry(parts.slice(0, -1));
    if (!parent || !parent.node || !isDir(parent.node)) return node;
    parent.listing = undefined;
    parent.children ??= new Map();
    const name = parts[parts.length - 1]!;
    if (!parent.children.has(name)) this.entries++;
    parent.children.set(name, { node });
    return node;
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

// The kernel's inodes, as this mount hands them out: one node id per inode of the union (its
// st_ino), so hard links share one kernel inode and with it one st_nlink, one size and one
// page cache. A node remembers the names the kernel knows it by (a directory has one, a file
// with hard links may have several) and how many lookups the kernel holds on it; paths are
// rebuilt from those names, so renaming a directory moves everything under it at once.
import fs from 'node:fs';
import { fsError } from '../../unionfs/errors.js';

const S_IFMT = fs.constants.S_IFMT;
const S_IFDIR = fs.constants.S_IFDIR;
export const ROOT_ID = 1;

export interface Link { parent: LlNode; name: string }

// A walk of a big tree keeps one of these per inode the kernel holds: kept small (links is
// replaced, never grown in place, so its backing store has exactly its length; the set of
// open handles exists only while there are some).
const NO_LINKS: readonly Link[] = Object.freeze([]);

export class LlNode {
  nlookup = 0;
  links: readonly Link[] = NO_LINKS;
  handles: Set<number> | undefined = undefined; // open file handles (fds) of this node
  // A directory's children by name, as the kernel knows them (only while it knows some).
  children: Map<string, LlNode> | undefined = undefined;
  constructor(readonly id: number, readonly ino: bigint, readonly isDir: boolean) {}

  get openCount(): number {
    return this.handles?.size ?? 0;
  }
}

function named(parent: LlNode, name: string): LlNode | undefined {
  return parent.children?.get(name);
}

function unname(parent: LlNode, name: string): void {
  const children = parent.children;
  if (!children) return;
  children.delete(name);
  if (children.size === 0) parent.children = undefined;
}

export class NodeTable {
  readonly root: LlNode;
  private readonly byId = new Map<number, LlNode>();
  private readonly byIno = new Map<bigint, LlNode>();
  private nextId = ROOT_ID + 1; // never reused: a stale id can never name a newer inode

  // `onDrop`: called with the id of each node that leaves the table.
  constructor(rootIno: bigint, private readonly onDrop: (id: number) => void = () => {}) {
    this.root = new LlNode(ROOT_ID, rootIno, true);
    this.root.nlookup = 1; // the kernel never forgets the root
    this.byId.set(ROOT_ID, this.root);
    this.byIno.set(rootIno, this.root);
  }

  get size(): number {
    return this.byId.size;
  }

  // The node of an id the kernel sent. An unknown one would be a bug (ours or the kernel's).
  get(id: number): LlNode {
    const node = this.byId.get(id);
    if (!node) throw fsError('ESTALE', `unknown node id ${id}`);
    return node;
  }

  // The merged path of a node, through names whose parents the kernel still holds.
  path(node: LlNode): string {
    if (node === this.root) return '/';
    const names: string[] = [];
    let cur = node;
    for (let depth = 0; cur !== this.root; depth++) {
      const link = cur.links.find((l) => this.alive(l.parent));
      if (!link || depth > 4096) throw fsError('ENOENT', `node ${node.id} has no name`);
      names.push(link.name);
      cur = link.parent;
    }
    return '/' + names.reverse().join('/');
  }

  // The path of the name `name` in the directory `parent`.
  childPath(parent: LlNode, name: string): string {
    const dir = this.path(parent);
    return dir === '/' ? `/${name}` : `${dir}/${name}`;
  }

  // The node of the object with attributes `attr` just found at parent/name. Not counted as a
  // lookup: call `counted` once the kernel has been told.
  found(parent: LlNode, name: string, attr: { ino: bigint; mode: number }): LlNode {
    const isDir = (attr.mode & S_IFMT) === S_IFDIR;
    let node = this.byIno.get(attr.ino);
    if (node && node.isDir !== isDir) {
      this.byIno.delete(attr.ino);
      node = undefined;
    }
    if (!node) {
      node = new LlNode(this.nextId++, attr.ino, isDir);
      this.byId.set(node.id, node);
      this.byIno.set(attr.ino, node);
    }
    this.addLink(node, parent, name);
    return node;
  }

  counted(node: LlNode, n = 1): void {
    node.nlookup += n;
  }

  // A node `found` but never handed to the kernel goes again, unless something else holds it.
  dropIfUnused(node: LlNode): void {
    if (node.nlookup === 0 && node.openCount === 0 && node !== this.root) this.remove(node);
  }

  // The kernel dropped `n` lookups of node `id`.
  forget(id: number, n: number): void {
    const node = this.byId.get(id);
    if (!node || node === this.root) return;
    node.nlookup -= n;
    if (node.nlookup <= 0) {
      node.nlookup = 0;
      if (node.openCount === 0) this.remove(node);
    }
  }

  // The name parent/name is gone (unlink, rmdir, or the source or target of a rename). When
  // the object it named has no other name left (`lastName`), its inode number may be reused
  // by the host for a new file: it must not find this node again.
  unlinked(parent: LlNode, name: string, lastName: boolean): LlNode | undefined {
    const node = named(parent, name);
    if (!node) return undefined;
    unname(parent, name);
    node.links = node.links.filter((l) => !(l.parent === parent && l.name === name));
    if (lastName && this.byIno.get(node.ino) === node) this.byIno.delete(node.ino);
    return node;
  }

  // A rename done: what the kernel knew at `from` is now at `to`; with `exchange`, the other
  // way round too. `targetGone`: the object that `to` named had no other name.
  renamed(from: Link, to: Link, exchange: boolean, targetGone: boolean): void {
    const moving = this.unlinked(from.parent, from.name, false);
    const target = this.unlinked(to.parent, to.name, !exchange && targetGone);
    if (moving) this.addLink(moving, to.parent, to.name);
    if (exchange && target) this.addLink(target, from.parent, from.name);
  }

  // The next lookup of the node's names finds a new node for the same object; this one keeps
  // its names only to serve what is still open on it.
  detach(node: LlNode): void {
    if (node === this.root) return;
    if (this.byIno.get(node.ino) === node) this.byIno.delete(node.ino);
    for (const l of node.links) if (named(l.parent, l.name) === node) unname(l.parent, l.name);
  }

  opened(node: LlNode, fh: number): void {
    (node.handles ??= new Set()).add(fh);
  }

  closed(node: LlNode, fh: number): void {
    node.handles?.delete(fh);
    if (node.handles?.size === 0) node.handles = undefined;
    if (node.nlookup === 0) this.dropIfUnused(node);
  }

  // Any open handle of the node (for an object that has lost all its names).
  anyHandle(node: LlNode): number | undefined {
    for (const fh of node.handles ?? []) return fh;
    return undefined;
  }

  private alive(node: LlNode): boolean {
    return node === this.root || this.byId.get(node.id) === node;
  }

  private addLink(node: LlNode, parent: LlNode, name: string): void {
    const current = named(parent, name);
    if (current === node) return;
    if (current) current.links = current.links.filter((l) => !(l.parent === parent && l.name === name));
    (parent.children ??= new Map()).set(name, node);
    if (node.isDir) {
      // A directory has one name: the new one replaces whatever the kernel knew before.
      for (const l of node.links) if (named(l.parent, l.name) === node) unname(l.parent, l.name);
      node.links = [{ parent, name }];
    } else {
      node.links = node.links.length === 0 ? [{ parent, name }] : [...node.links, { parent, name }];
    }
  }

  private remove(node: LlNode): void {
    this.byId.delete(node.id);
    this.onDrop(node.id);
    if (this.byIno.get(node.ino) === node) this.byIno.delete(node.ino);
    for (const l of node.links) if (named(l.parent, l.name) === node) unname(l.parent, l.name);
    node.links = NO_LINKS;
  }
}

// rename(2) across the union, with ext4's answers, never EXDEV.
//
// A non-directory is copied up (if lower) and then renamed inside upper. A directory that
// only lives in upper (fresh or opaque) is renamed inside upper as is. A directory with lower
// contents, with UnionOptions.redirectDir, is copied up alone (not its contents) and gets a
// redirect naming where its lower part lies (inode.ts), as overlayfs's redirect_dir=on does;
// then it is renamed like any upper directory. Without redirectDir it is first made
// self-contained in place: every visible lower entry of it (recursively)
// is copied up into its upper directory (hard links between them kept), then it is marked
// opaque and its whiteouts, now meaningless, are dropped. Each of those steps leaves the merged
// view unchanged, so a crash part-way shows nothing odd. Then it is renamed like any upper
// directory, and the old name gets a whiteout if something below would show through it.
// A directory landing on a name that exists below is made opaque, so the lower one stays hidden.
// The exclusive lock is held throughout (a rename of a large lower tree blocks other operations
// while it copies).
import { hfs as fs } from './hostfs.js';
import path from 'node:path';
import type { UnionCtx } from './context.js';
import type { CopyUp } from './copyup.js';
import { fsError } from './errors.js';
import { lstatOrNull, removeTree, setTimes } from './hostfs.js';
import { readOrigin, readRedirect, writeOrigin, writeRedirect } from './inode.js';
import { hasLower, isDir, type Node } from './lookup.js';
import { isSameOrUnder, splitParent, splitPath } from './path.js';
import { mergedNames } from './readdir.js';
import { OPAQUE_MARKER, isReservedName, makeOpaque, makeWhiteout, removeWhiteout } from './whiteout.js';

// One attempt under the exclusive lock. Returns 'copyup' when the source is a lower
// non-directory: the caller copies it up without the lock (it may be big) and tries again.
export async function renameLocked(ctx: UnionCtx, copyUp: CopyUp, from: string[], to: string[]): Promise<'done' | 'copyup'> {
  const r = ctx.resolver;
  const { parent: toParent, name: toName } = splitParent(to);
  const { parent: fromParent, name: fromName } = splitParent(from);
  const src = r.resolve(from);
  r.resolveDir(toParent);
  if (to.length > from.length && isSameOrUnder(to, from)) throw fsError('EINVAL', 'cannot move a directory into itself');
  if (from.length === to.length && isSameOrUnder(to, from)) return 'done';
  const dst = r.lookup(to);
  if (dst) {
    if (isDir(src) && !isDir(dst)) throw fsError('ENOTDIR');
    if (!isDir(src) && isDir(dst)) throw fsError('EISDIR');
    if (isDir(dst) && mergedNames(r, dst).length > 0) throw fsError('ENOTEMPTY');
  }
  if (dst && !isDir(src) && sameObject(ctx, src, dst)) return 'done'; // hard links of one file

  if (!isDir(src) && !src.layer.upper) return 'copyup';
  let redirected = false;
  if (isDir(src) && hasLower(src)) {
    if (ctx.redirectDir && ctx.origins) {
      const host = copyUp.dirChainLocked(from);
      const lower = src.dirs.find((d) => !d.layer.upper);
      if (readRedirect(host) === undefined && lower) writeRedirect(host, r.lowerPathOf(lower));
      r.invalidate(from);
      redirected = true;
    } else {
      await selfContainLocked(ctx, copyUp, src);
    }
  }

  const belowFrom = r.existsBelow(r.resolveDir(fromParent), fromName);
  const dstParentHost = copyUp.dirChainLocked(toParent);
  const belowTo = r.existsBelow(r.resolveDir(toParent), toName);
  const source = r.resolve(from); // fresh: the steps above may have changed it
  const target = r.lookup(to);
  if (!source.layer.upper || (hasLower(source) && !redirected)) throw fsError('EIO', 'rename source not settled in upper');

  if (target && isDir(target) && target.layer.upper) emptyUpperDir(target.host);
  // A redirected directory merges only with what its redirect names: nothing to hide.
  if (isDir(source)) setOpaque(source.host, belowTo && !redirected);
  fs.renameSync(source.host, `${dstParentHost}/${toName}`);
  removeWhiteout(dstParentHost, toName);
  if (belowFrom) makeWhiteout(path.dirname(source.host), fromName);
  r.invalidate(from);
  r.invalidate(to);
  return 'done';
}

function sameObject(ctx: UnionCtx, a: Node, b: Node): boolean {
  if (a.layer !== b.layer) return false;
  const sa = ctx.resolver.statOf(a);
  const sb = ctx.resolver.statOf(b);
  return sa.dev === sb.dev && sa.ino === sb.ino;
}

// A directory landing where something exists below must hide it; elsewhere a marker would
// hide nothing and only show up in commits. The directory's own times are kept.
function setOpaque(host: string, opaque: boolean): void {
  const st = lstatOrNull(host);
  const marker = `${host}/${OPAQUE_MARKER}`;
  const has = lstatOrNull(marker) !== null;
  if (has === opaque) return;
  if (opaque) makeOpaque(host);
  else fs.unlinkSync(marker);
  if (st) setTimes(host, st.atimeNs, st.mtimeNs);
}

// An upper directory whose merged view is empty holds only whiteouts and markers.
function emptyUpperDir(host: string): void {
  for (const name of fs.readdirSync(host)) {
    if (!isReservedName(name)) throw fsError('ENOTEMPTY');
    removeTree(`${host}/${name}`);
  }
}

// Makes the directory `node` live wholly in upper, without changing the merged view.
export async function selfContainLocked(ctx: UnionCtx, copyUp: CopyUp, node: Node): Promise<void> {
  const parts = splitPath(node.path);
  const links = new Map<string, string>();
  await fillLocked(ctx, copyUp, parts, links);
  const top = ctx.resolver.resolveDir(parts);
  const st = lstatOrNull(top.host);
  makeOpaque(top.host);
  if (st) setTimes(top.host, st.atimeNs, st.mtimeNs);
  ctx.resolver.invalidate(parts);
  dropWhiteouts(top.host, true);
}

// Copies every visible lower entry under `parts` into its upper directory.
async function fillLocked(ctx: UnionCtx, copyUp: CopyUp, parts: string[], links: Map<string, string>): Promise<void> {
  const r = ctx.resolver;
  const before = r.resolveDir(parts);
  const upperHost = copyUp.dirChainLocked(parts);
  // It is about to stop merging: keep the number it reports now (inode.ts).
  if (ctx.origins && readOrigin(upperHost) === undefined) writeOrigin(upperHost, before.ino);
  r.invalidate(parts);
  const node = r.resolveDir(parts);
  for (const name of mergedNames(r, node)) {
    const child = r.resolve([...parts, name]);
    if (isDir(child)) {
      if (hasLower(child)) await fillLocked(ctx, copyUp, [...parts, name], links);
    } else if (!child.layer.upper) {
      await copyUp.copyInLocked(child, upperHost, name, links);
      r.invalidate([...parts, name]);
    }
  }
}

// Below an opaque directory that lives wholly in upper, whiteouts and inner opaque markers
// hide nothing: remove them (so commit and diff do not show them), keeping each dir's times.
function dropWhiteouts(host: string, top: boolean): void {
  const st = lstatOrNull(host);
  let changed = false;
  for (const entry of fs.readdirTypes(host)) {
    if (isReservedName(entry.name)) {
      if (top && entry.name === OPAQUE_MARKER) continue;
      removeTree(`${host}/${entry.name}`);
      changed = true;
    } else if (entry.isDirectory()) {
      dropWhiteouts(`${host}/${entry.name}`, false);
    }
  }
  if (changed && st) setTimes(host, st.atimeNs, st.mtimeNs);
}

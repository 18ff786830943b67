// Copy-up: bringing a lower object into upper before it is changed.
//
// An object is first built complete under a temporary name in upper's work dir (data, owner,
// mode, xattrs, nanosecond times, and the origin inode number, inode.ts), then renamed into
// place under the exclusive lock, so a crash never leaves a half-copied file or a directory
// with the wrong owner under a real name; init() deletes the leftovers. Regular files are
// copied by fs.copyFile (FICLONE where the file system can, else copy_file_range/sendfile in
// libuv's thread pool), so a file of several GiB never passes through memory nor blocks the
// event loop, and the lock is not held while the data moves. Missing parent directories are
// copied up too, with the lower's metadata. Placing an object must not change the merged
// parent's times, so the parent's atime/mtime are restored afterwards (as overlayfs does).
import fs, { type BigIntStats } from 'node:fs';
import fsp from 'node:fs/promises';
import { tempPath, upperOf, type UnionCtx } from './context.js';
import { fsError, hasCode } from './errors.js';
import { closeFd, fmtOf, getXattrStrict, hasNative, listXattrs, lstatOrNull, mknod, openFd, removeTree, setTimes, setXattr } from './hostfs.js';
import { isPrivateXattr, writeOrigin } from './inode.js';
import { isDir, type Node } from './lookup.js';
import { splitParent } from './path.js';

const C = fs.constants;

function copyXattrs(src: string, dst: string): void {
  if (!hasNative('llistxattr')) throw fsError('ENOTSUP', 'copy-up needs the native xattr calls');
  let names: string[];
  try {
    names = listXattrs(src);
  } catch (err) {
    if (hasCode(err, 'ENOTSUP', 'EOPNOTSUPP')) return; // the lower's file system keeps no xattrs
    throw err;
  }
  for (const name of names) {
    if (isPrivateXattr(name)) continue;
    setXattr(dst, name, getXattrStrict(src, name), 0);
  }
}

// Owner, mode, xattrs, origin, then times (anything after would touch them again). chown
// comes before chmod because chown clears set-id bits.
export async function copyMetadata(src: string, st: BigIntStats, dst: string, origin?: bigint): Promise<void> {
  const fmt = fmtOf(st.mode);
  await fsp.lchown(dst, Number(st.uid), Number(st.gid));
  if (fmt !== C.S_IFLNK) await fsp.chmod(dst, Number(st.mode) & 0o7777); // dst is ours, not a link
  copyXattrs(src, dst);
  if (origin !== undefined) writeOrigin(dst, origin);
  setTimes(dst, st.atimeNs, st.mtimeNs);
}

// Creates `dst` (which must not exist) as a copy of the lower object `src` whose lstat is
// `st`. Directories are created empty.
export async function materialize(src: string, st: BigIntStats, dst: string, opts: { data: boolean; origin?: bigint }): Promise<void> {
  switch (fmtOf(st.mode)) {
    case C.S_IFREG:
      if (opts.data) await fsp.copyFile(src, dst, C.COPYFILE_EXCL | C.COPYFILE_FICLONE);
      else await closeFd(await openFd(dst, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600));
      break;
    case C.S_IFLNK:
      await fsp.symlink(await fsp.readlink(src), dst);
      break;
    case C.S_IFDIR:
      await fsp.mkdir(dst, 0o700);
      break;
    default: // fifo, socket, character or block device
      mknod(dst, Number(st.mode), Number(st.rdev));
  }
  await copyMetadata(src, st, dst, opts.origin);
}

export class CopyUp {
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(private readonly ctx: UnionCtx) {}

  private origin(node: Node): bigint | undefined {
    return this.ctx.origins ? node.ino : undefined;
  }

  // Makes sure the object at `parts` lives in upper, copying it up if a lower one wins.
  // `data: false` skips the contents (the caller truncates to zero anyway). Call it without
  // holding the lock; concurrent callers for one path share one copy.
  async ensure(parts: readonly string[], opts: { data: boolean }): Promise<void> {
    upperOf(this.ctx);
    for (let round = 0; round < 16; round++) {
      const node = await this.ctx.lock.shared(() => this.ctx.resolver.resolve(parts));
      if (node.layer.upper) return;
      if (isDir(node)) {
        await this.ctx.lock.exclusive(() => this.dirChainLocked(parts));
        continue;
      }
      let job = this.inflight.get(node.path);
      if (!job) {
        job = this.copyFile(parts, node, opts).finally(() => this.inflight.delete(node.path));
        this.inflight.set(node.path, job);
      }
      await job;
    }
    throw fsError('EIO', `copy-up of ${parts.join('/')} did not settle`);
  }

  private async copyFile(parts: readonly string[], node: Node, opts: { data: boolean }): Promise<void> {
    const st = await this.ctx.resolver.statOf(node);
    const tmp = tempPath(this.ctx);
    let placed = false;
    try {
      await materialize(node.host, st, tmp, { data: opts.data, origin: this.origin(node) });
      await this.ctx.lock.exclusive(async () => {
        const now = await this.ctx.resolver.lookup(parts);
        if (!now || now.layer.upper || now.host !== node.host) return; // changed meanwhile
        const { parent, name } = splitParent(parts);
        const parentHost = await this.dirChainLocked(parent);
        await this.placeLocked(tmp, parentHost, name);
        placed = true;
        this.ctx.resolver.invalidate(parts);
      });
    } finally {
      if (!placed) await removeTree(tmp).catch(() => undefined);
    }
  }

  // Renames a finished temporary object into place, keeping the parent's times. For a
  // directory, `dirStat` gives the times to set on it once in place.
  async placeLocked(tmp: string, parentHost: string, name: string, dirStat?: BigIntStats): Promise<void> {
    const pst = await lstatOrNull(parentHost);
    const dest = `${parentHost}/${name}`;
    await fsp.rename(tmp, dest);
    if (dirStat) setTimes(dest, dirStat.atimeNs, dirStat.mtimeNs);
    if (pst) setTimes(parentHost, pst.atimeNs, pst.mtimeNs);
  }

  // Makes every directory of `parts` exist in upper (copying missing ones up with their
  // lower's metadata) and returns the upper host path of the last. Lock held exclusive.
  async dirChainLocked(parts: readonly string[]): Promise<string> {
    const upper = upperOf(this.ctx);
    let host = upper.root;
    for (let i = 0; i < parts.length; i++) {
      const sub = parts.slice(0, i + 1);
      const node = await this.ctx.resolver.resolve(sub);
      if (!isDir(node)) throw fsError('ENOTDIR');
      if (node.layer.upper) {
        host = node.host;
        continue;
      }
      const st = await this.ctx.resolver.statOf(node);
      const tmp = tempPath(this.ctx);
      try {
        await materialize(node.host, st, tmp, { data: false, origin: this.origin(node) });
        await this.placeLocked(tmp, host, parts[i]!, st);
      } catch (err) {
        await removeTree(tmp).catch(() => undefined);
        throw err;
      }
      this.ctx.resolver.invalidate(sub);
      host = `${host}/${parts[i]!}`;
    }
    return host;
  }

  // Copies the lower non-directory `node` to `${parentHost}/${name}` in upper, data and all,
  // while the exclusive lock is held (used when a merged directory is made self-contained).
  // `links` maps a lower inode to its first copy so hard links stay hard links.
  async copyInLocked(node: Node, parentHost: string, name: string, links: Map<string, string>): Promise<void> {
    const st = await this.ctx.resolver.statOf(node);
    const dest = `${parentHost}/${name}`;
    const key = `${node.layer.index}:${st.ino}`;
    const first = st.nlink > 1n ? links.get(key) : undefined;
    if (first) {
      const pst = await lstatOrNull(parentHost);
      await fsp.link(first, dest);
      if (pst) setTimes(parentHost, pst.atimeNs, pst.mtimeNs);
      return;
    }
    const tmp = tempPath(this.ctx);
    try {
      await materialize(node.host, st, tmp, { data: true, origin: this.origin(node) });
      await this.placeLocked(tmp, parentHost, name);
    } catch (err) {
      await removeTree(tmp).catch(() => undefined);
      throw err;
    }
    if (st.nlink > 1n) links.set(key, dest);
  }
}

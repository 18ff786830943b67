// Copy-up: bringing a lower object into upper before it is changed.
//
// An object is first built complete under a temporary name in upper's work dir (data, owner,
// mode, xattrs, nanosecond times, and the origin inode number, inode.ts), then renamed into
// place under the exclusive lock, so a crash never leaves a half-copied file or a directory
// with the wrong owner under a real name; init() deletes the leftovers. Regular files are
// copied by fs.copyFile (FICLONE where the file system can, else copy_file_range/sendfile in
// libuv's thread pool for files over 1 MiB), so a file of several GiB never passes through
// memory nor blocks the event loop, and the lock is not held while the data moves. The
// metadata calls are synchronous (hostfs.ts). Missing parent directories are
// copied up too, with the lower's metadata. Placing an object must not change the merged
// parent's times, so the parent's atime/mtime are restored afterwards (as overlayfs does).
//
// Background copy-up: where the union is served by a binding that can copy on a thread of its
// own (ctx.background, the FUSE binding's), a regular file of ctx.backgroundMin bytes or more
// is placed at once instead, at its full size with all its metadata, and its data moves
// afterwards, front to back: the open that asked for the copy-up is answered in milliseconds
// instead of after the whole file. The binding makes reads and writes of the file wait until
// the copy has passed their range, and whole-file requests (fsync, truncate, times) until its
// end; in the union, truncate, utimens and O_TRUNC opens wait for it (`whole` in unionfs.ts).
// The copy keeps a journal (copyjournal.ts) so a crash never leaves a half-copied file.
import { hfs as fs, type HostStat } from './hostfs.js';
import { sys, LOCK_EX, LOCK_NB } from '../sys/index.js';
import { tempPath, upperOf, type UnionCtx } from './context.js';
import { XATTR_COPIED, XATTR_COPYSRC, journalPath } from './copyjournal.js';
import { fsError, hasCode } from './errors.js';
import { closeFd, copyData, fmtOf, ftruncateFd, getXattrStrict, hasNative, listXattrs, lstatOrNull, mknod, openFd, removeTree, setTimes, setXattr } from './hostfs.js';
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
export function copyMetadata(src: string, st: HostStat, dst: string, origin?: bigint): void {
  const fmt = fmtOf(st.mode);
  fs.lchownSync(dst, st.uid, st.gid);
  if (fmt !== C.S_IFLNK) fs.chmodSync(dst, st.mode & 0o7777); // dst is ours, not a link
  copyXattrs(src, dst);
  if (origin !== undefined) writeOrigin(dst, origin);
  setTimes(dst, st.atimeNs, st.mtimeNs);
}

// Creates `dst` (which must not exist) as a copy of the lower object `src` whose lstat is
// `st`. Directories are created empty. Synchronous (returns undefined) unless a big file's
// data has to move.
export function materialize(src: string, st: HostStat, dst: string, opts: { data: boolean; origin?: bigint }): Promise<void> | undefined {
  switch (fmtOf(st.mode)) {
    case C.S_IFREG:
      if (opts.data) {
        const copying = copyData(src, dst, st.size);
        if (copying) return copying.then(() => copyMetadata(src, st, dst, opts.origin));
      } else {
        closeFd(openFd(dst, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600));
      }
      break;
    case C.S_IFLNK:
      fs.symlinkSync(fs.readlinkSync(src), dst);
      break;
    case C.S_IFDIR:
      fs.mkdirSync(dst, 0o700);
      break;
    default: // fifo, socket, character or block device
      mknod(dst, st.mode, st.rdev);
  }
  copyMetadata(src, st, dst, opts.origin);
  return undefined;
}

export class CopyUp {
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly background = new Map<bigint, { done: Promise<void>; resolve: () => void }>(); // by union inode number

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

  // The end of the background copy of the union inode `ino`, while one runs.
  backgroundOf(ino: bigint): Promise<void> | undefined {
    return this.background.size === 0 ? undefined : this.background.get(ino)?.done;
  }

  // The binding says the background copy of `ino` ended.
  backgroundEnded(ino: bigint): void {
    const b = this.background.get(ino);
    if (!b) return;
    this.background.delete(ino);
    b.resolve();
  }

  private async copyFile(parts: readonly string[], node: Node, opts: { data: boolean }): Promise<void> {
    const st = this.ctx.resolver.statOf(node);
    if (opts.data && this.ctx.background && this.ctx.origins && fmtOf(st.mode) === C.S_IFREG && st.size >= BigInt(this.ctx.backgroundMin)) {
      if ((await this.copyFileInBackground(parts, node, st)) !== 'refused') return;
    }
    const tmp = tempPath(this.ctx);
    const { parent, name } = splitParent(parts);
    let placed = false;
    try {
      const copying = materialize(node.host, st, tmp, { data: opts.data, origin: this.origin(node) });
      if (copying) {
        // The parent's chain must be in upper for the file to be placed: made while the data
        // moves rather than after.
        const chain = this.ctx.lock.exclusive(() => this.dirChainLocked(parent));
        const [copied, made] = await Promise.allSettled([copying, chain]);
        if (copied.status === 'rejected') throw copied.reason;
        if (made.status === 'rejected') throw made.reason;
      }
      await this.ctx.lock.exclusive(() => {
        if (this.changedLocked(parts, node)) return;
        const parentHost = this.dirChainLocked(parent);
        this.placeLocked(tmp, parentHost, name);
        placed = true;
        this.ctx.resolver.invalidate(parts);
      });
    } finally {
      if (!placed) removeQuietly(tmp);
    }
  }

  // Places the file at `parts` at its full size with its metadata, and hands its data to the
  // background copier (see "Background copy-up"). 'changed': the path changed meanwhile and
  // nothing was placed; 'refused': the copier could not start.
  private async copyFileInBackground(parts: readonly string[], node: Node, st: HostStat): Promise<'started' | 'changed' | 'refused'> {
    const tmp = tempPath(this.ctx);
    const journal = journalPath(upperOf(this.ctx).root);
    const { parent, name } = splitParent(parts);
    let src = -1;
    let dst = -1;
    let linked = false;
    let handed = false;
    let placed = false;
    try {
      dst = openFd(tmp, C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW | C.O_NOCTTY, 0o600);
      ftruncateFd(dst, Number(st.size));
      copyMetadata(node.host, st, tmp, this.origin(node));
      fs.linkSync(tmp, journal);
      linked = true;
      setXattr(journal, XATTR_COPYSRC, Buffer.from(node.host, 'latin1'), 0);
      setXattr(journal, XATTR_COPIED, Buffer.from('0'), 0);
      if (!sys.flock(dst, LOCK_EX | LOCK_NB)) throw fsError('EIO', 'copy-up: cannot lock a file just made');
      src = openFd(node.host, C.O_RDONLY | C.O_NOFOLLOW | C.O_NOCTTY);
      return await this.ctx.lock.exclusive(() => {
        if (this.changedLocked(parts, node)) return 'changed';
        const parentHost = this.dirChainLocked(parent);
        const job = { ino: node.ino, src, dst, size: Number(st.size), mtimeNs: st.mtimeNs, journal: Buffer.from(journal, 'latin1') };
        if (!this.ctx.background!(job)) return 'refused';
        handed = true;
        let resolve!: () => void;
        const done = new Promise<void>((r) => {
          resolve = r;
        });
        this.background.set(node.ino, { done, resolve });
        this.placeLocked(tmp, parentHost, name);
        placed = true;
        this.ctx.resolver.invalidate(parts);
        return 'started';
      });
    } finally {
      if (!handed) {
        if (src >= 0) closeFd(src);
        if (dst >= 0) closeFd(dst);
        if (linked) removeQuietly(journal);
      }
      if (!placed) removeQuietly(tmp);
    }
  }

  // Whether `parts` no longer names the lower `node` a copy-up started from (under the lock).
  private changedLocked(parts: readonly string[], node: Node): boolean {
    const now = this.ctx.resolver.lookup(parts);
    return !now || now.layer.upper || now.host !== node.host;
  }

  // Renames a finished temporary object into place, keeping the parent's times. For a
  // directory, `dirStat` gives the times to set on it once in place.
  placeLocked(tmp: string, parentHost: string, name: string, dirStat?: HostStat): void {
    const pst = lstatOrNull(parentHost);
    const dest = `${parentHost}/${name}`;
    fs.renameSync(tmp, dest);
    if (dirStat) setTimes(dest, dirStat.atimeNs, dirStat.mtimeNs);
    if (pst) setTimes(parentHost, pst.atimeNs, pst.mtimeNs);
  }

  // Makes every directory of `parts` exist in upper (copying missing ones up with their
  // lower's metadata) and returns the upper host path of the last. Lock held exclusive.
  dirChainLocked(parts: readonly string[]): string {
    const upper = upperOf(this.ctx);
    // Usually the whole chain is in upper already: one resolution says so.
    if (parts.length > 0) {
      const last = this.ctx.resolver.resolve(parts);
      if (!isDir(last)) throw fsError('ENOTDIR');
      if (last.layer.upper) return last.host;
    }
    let host = upper.root;
    for (let i = 0; i < parts.length; i++) {
      const sub = parts.slice(0, i + 1);
      const node = this.ctx.resolver.resolve(sub);
      if (!isDir(node)) throw fsError('ENOTDIR');
      if (node.layer.upper) {
        host = node.host;
        continue;
      }
      const st = this.ctx.resolver.statOf(node);
      const tmp = tempPath(this.ctx);
      try {
        materialize(node.host, st, tmp, { data: false, origin: this.origin(node) });
        this.placeLocked(tmp, host, parts[i]!, st);
      } catch (err) {
        removeQuietly(tmp);
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
    const st = this.ctx.resolver.statOf(node);
    const dest = `${parentHost}/${name}`;
    const key = `${node.layer.index}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(key) : undefined;
    if (first) {
      const pst = lstatOrNull(parentHost);
      fs.linkSync(first, dest);
      if (pst) setTimes(parentHost, pst.atimeNs, pst.mtimeNs);
      return;
    }
    const tmp = tempPath(this.ctx);
    try {
      const copying = materialize(node.host, st, tmp, { data: true, origin: this.origin(node) });
      if (copying) await copying;
      this.placeLocked(tmp, parentHost, name);
    } catch (err) {
      removeQuietly(tmp);
      throw err;
    }
    if (st.nlink > 1) links.set(key, dest);
  }
}

// Cleanup after a failure: the original error is the one to report.
export function removeQuietly(file: string): void {
  try {
    removeTree(file);
  } catch {
    // init() removes whatever is left in the work dir
  }
}

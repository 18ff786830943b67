// The union's operations (Contract 3 in BRIEF.md): what FUSE calls, in plain TypeScript.
//
// Choices worth knowing:
// - `.wh.` names: never shown (lookup says ENOENT, readdir skips them) and never created:
//   create, mkdir, mknod, symlink, link and rename to such a name fail with EINVAL.
// - Without an upper layer every mutation fails with EROFS, checked before anything else.
// - New objects get the caller's uid, and the caller's gid unless the parent directory is
//   setgid (then the parent's gid; new directories inherit the setgid bit). The mode is
//   taken as given: the kernel already applied the umask.
// - New objects are built under a temporary name in upper's work dir and renamed into place,
//   so a crash never leaves one with the wrong owner or mode under its real name. The one
//   exception is the commonest: a regular file that the kernel's own open(O_CREAT|O_EXCL)
//   already gives the right owner and mode (the caller is the serving process's user, and
//   its umask is 0 or the mode is set again before anyone can see it) is created in place.
// - Host calls are synchronous but for copying big files' data and fsync (hostfs.ts).
// - Opens for write (O_WRONLY, O_RDWR, O_TRUNC) copy up first; read-only opens of a lower
//   file open the lower file itself. O_APPEND is dropped (the kernel sends explicit offsets);
//   O_CREAT/O_EXCL are handled here. Every host open adds O_NOFOLLOW.
// - `trusted.ufs.*` xattrs are the union's own: getxattr/removexattr say ENODATA, listxattr
//   leaves them out, setxattr refuses with EPERM.
// - POSIX ACL xattrs (`system.posix_acl_*`) say EOPNOTSUPP: setting one would change the
//   mode behind the kernel's attribute cache, so tools like `cp -p` must fall back to chmod.
// - A read-only fd of a lower file keeps reading the lower file after a later copy-up (as
//   overlayfs before 4.19 and fuse-overlayfs do).
// - Host paths used here come from lookup.ts (a layer root plus components each checked to be
//   a real directory of that layer) and are used under the lock (lock.ts).
import { hfs as fs, type HostStat } from './hostfs.js';
import path from 'node:path';
import { nodeAttr, toAttr } from './attr.js';
import { tempPath, upperOf, type BackgroundCopier, type UnionCtx } from './context.js';
import { settleCopies } from './copyjournal.js';
import { CopyUp, removeQuietly } from './copyup.js';
import { fsError, hasCode } from './errors.js';
import {
  closeFd, fchmodFd, fchownFd, fdatasyncFd, fstatFd, fsyncFd, ftruncateFd, getXattr,
  getXattrStrict, listXattrs, lstatStrict, mknod as hostMknod, openFd, removeTree, removeXattr, setTimes, setXattr, warmDirs,
} from './hostfs.js';
import { UPPER_TAG, composeIno, isAclXattr, isPrivateXattr, probeOriginSupport } from './inode.js';
import { makeLayers } from './layers.js';
import { RwLock } from './lock.js';
import { Resolver, hasLower, isDir, type Node } from './lookup.js';
import { splitParent, splitPath } from './path.js';
import { mergedNames, readMergedDir } from './readdir.js';
import { renameLocked } from './rename.js';
import type { Attr, Caller, DirEntry, StatFs, TimeSpec, UnionOptions } from './types.js';
import { WORK_DIR, isReservedName, isTempName, makeOpaque, makeWhiteout, removeWhiteout } from './whiteout.js';

const C = fs.constants;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const ST_RDONLY = 1;
const S_ISGID = 0o2000;
const MAX_ROUNDS = 16;

type Owner = { uid: number; gid: number; sgid: boolean };

// What an open handle is: the inode number the union reports for it, and whether it is the
// object its path names (an upper object) rather than a read-only view of a lower one.
export interface HandleInfo { ino: bigint; upper: boolean }

// The host path of a regular file whose object lies in a lower layer. Lower layers never
// change, so until the union object is changed through the union itself (which copies it up
// first), reading that path reads exactly what the union holds: a FUSE binding may open it
// read-only on its own.
function lowerFileOf(node: Node): string | undefined {
  return !node.layer.upper && node.fmt === C.S_IFREG ? node.host : undefined;
}

// The host path of a directory: its attributes are that path's lstat (st_nlink 1 when
// merged) until a directory is renamed or removed, and, for a directory whose winner is a
// lower one (the path then ends in '/'), until anything changes in the union (a copy-up makes
// it an upper one). A FUSE binding may answer getattr from it, and, for a directory that is
// not merged, negative lookups (a name absent there is absent from the union).
function dirPathOf(node: Node): string | undefined {
  if (node.fmt !== C.S_IFDIR) return undefined;
  return node.layer.upper ? node.host : `${node.host}/`;
}

// The host path a FUSE binding may serve the node from (lowerFileOf, dirPathOf).
function hostFileOf(node: Node): string | undefined {
  return lowerFileOf(node) ?? dirPathOf(node);
}

// The serving process's umask, read once (setting it is the only way to read it).
function currentUmask(): number {
  const mask = process.umask(0);
  process.umask(mask);
  return mask;
}

export class UnionFs {
  private readonly ctx: UnionCtx;
  private readonly copyUp: CopyUp;
  private readonly handles = new Map<number, HandleInfo>(); // fd -> what it is
  private readonly euid = process.geteuid?.() ?? 0;
  private readonly egid = process.getegid?.() ?? 0;
  private readonly umask = currentUmask();

  constructor(opts: UnionOptions) {
    const layers = makeLayers(
      opts.lowers.map((p) => path.resolve(p)),
      opts.upper === undefined ? undefined : path.resolve(opts.upper),
    );
    const resolver = new Resolver(layers);
    this.ctx = { layers, upper: layers.find((l) => l.upper), resolver, lock: new RwLock(), origins: false, redirectDir: opts.redirectDir === true, backgroundMin: Infinity };
    this.copyUp = new CopyUp(this.ctx);
  }

  get readOnly(): boolean {
    return this.ctx.upper === undefined;
  }

  // The upper layer's directory, in the host form the layers use (see hostfs.ts).
  get upperRoot(): string | undefined {
    return this.ctx.upper?.root;
  }

  // Copy-ups of regular files of `minBytes` or more move their data on `copier`'s thread
  // (copyup.ts, "Background copy-up"); the copier reports each end with backgroundEnded.
  copyInBackground(copier: BackgroundCopier, minBytes: number): void {
    this.ctx.background = copier;
    this.ctx.backgroundMin = minBytes;
  }

  backgroundEnded(ino: bigint): void {
    this.copyUp.backgroundEnded(ino);
  }

  // Checks the layer directories, and removes what a crash left at the upper root.
  async init(): Promise<void> {
    if (this.ctx.layers.length === 0) throw fsError('EINVAL', 'a union needs at least one layer');
    for (const layer of this.ctx.layers) {
      let st: ReturnType<typeof fs.statSync>;
      try {
        layer.root = fs.realpathSync(layer.root); // the configured root may be a link; nothing inside is followed
        st = fs.statSync(layer.root);
      } catch (err) {
        throw fsError(hasCode(err, 'ENOENT') ? 'ENOENT' : 'EIO', `layer directory ${layer.root}: ${(err as Error).message}`);
      }
      if (!st.isDirectory()) throw fsError('ENOTDIR', `layer ${layer.root} is not a directory`);
    }
    // A lower may be another union's upper (a stopped container's, read by `ufs cp`) whose
    // server died during a background copy-up: its files must be whole before they are read.
    for (const layer of this.ctx.layers) if (!layer.upper) await settleCopies(layer.root, { wait: true });
    const upper = this.ctx.upper;
    if (upper) {
      // Leftovers of a crash go; a fresh work dir comes; the root's times stay as they were.
      const st = lstatStrict(upper.root);
      await settleCopies(upper.root, { wait: false }); // background copy-ups a crash cut short
      for (const name of fs.readdirSync(upper.root)) {
        if (isTempName(name)) removeTree(`${upper.root}/${name}`);
      }
      fs.mkdirSync(`${upper.root}/${WORK_DIR}`, 0o700);
      this.ctx.origins = probeOriginSupport(upper.root);
      setTimes(upper.root, st.atimeNs, st.mtimeNs);
    }
    this.ctx.resolver.invalidate([]);
  }

  // ---- reading -------------------------------------------------------------------------

  async getattr(p: string): Promise<Attr> {
    const parts = splitPath(p);
    return this.shared(() => {
      const node = this.ctx.resolver.resolve(parts);
      return nodeAttr(this.ctx.resolver.statOf(node), node);
    });
  }

  // getattr, or null when nothing has that name: negative lookups are frequent (every new
  // file is looked up first), and an exception per miss would cost more than the lookup.
  // `lowerFile`: see lowerFileOf and dirPathOf (a directory's is of the second kind).
  async lookupAttr(p: string): Promise<{ attr: Attr; lowerFile?: string } | null> {
    const parts = splitPath(p);
    return this.shared(() => {
      const r = this.ctx.resolver;
      const node = r.lookup(parts);
      const st = node && r.stat(node.layer, node.host);
      if (!node || !st) return null;
      const lowerFile = hostFileOf(node);
      return lowerFile ? { attr: nodeAttr(st, node), lowerFile } : { attr: nodeAttr(st, node) };
    });
  }

  async fgetattr(fh: number, p: string | null): Promise<Attr> {
    const st = fstatFd(fh);
    let ino = this.handles.get(fh)?.ino;
    if (ino === undefined && p !== null) {
      const parts = splitPath(p);
      ino = (await this.shared(() => this.ctx.resolver.lookup(parts)))?.ino;
    }
    return toAttr(st, ino ?? composeIno(UPPER_TAG, st.ino));
  }

  async readdir(p: string): Promise<DirEntry[]> {
    const parts = splitPath(p);
    return this.shared(() => readMergedDir(this.ctx.resolver, parts).map((e) => e.entry));
  }

  // readdir with the attributes getattr gives for every entry (for readdirplus), from the
  // lstat that resolved it just now, or the resolver's for an entry it knew (lower ones
  // cached, upper ones fresh). An entry that vanished meanwhile is left out.
  async readdirAttrs(p: string): Promise<{ self: DirEntry; parent: DirEntry; entries: { name: string; attr: Attr; lowerFile?: string }[] }> {
    const parts = splitPath(p);
    return this.shared(() => {
      const r = this.ctx.resolver;
      const entries: { name: string; attr: Attr; lowerFile?: string }[] = [];
      // The subdirectories are what a walk lists next: their layer directories are read
      // ahead, off this thread, while this listing is answered.
      const subdirs: string[] = [];
      const merged = readMergedDir(r, parts);
      for (const { node } of merged) if (isDir(node)) for (const d of node.dirs) subdirs.push(d.host);
      warmDirs(subdirs);
      for (const { entry, node, st: made } of merged) {
        const st = made ?? r.stat(node.layer, node.host);
        if (!st) continue;
        const lowerFile = hostFileOf(node);
        // One object shape for every entry (lowerFile present, maybe undefined): the readdir
        // code that reads them stays optimized.
        entries.push({ name: entry.name, attr: nodeAttr(st, node), lowerFile });
      }
      return { ...this.dotEntries(parts), entries };
    });
  }

  // What a handle returned by open/create is (undefined once released). A handle closed
  // without release() (the FUSE glue lets its C side close them) leaves its entry behind, until
  // the next handle with the same fd number replaces it.
  handleInfo(fh: number): HandleInfo | undefined {
    return this.handles.get(fh);
  }

  async readlink(p: string): Promise<string> {
    const parts = splitPath(p);
    return this.shared(() => {
      const node = this.ctx.resolver.resolve(parts);
      if (node.fmt !== C.S_IFLNK) throw fsError('EINVAL');
      return fs.readlinkSync(node.host);
    });
  }

  async getxattr(p: string, name: string): Promise<Buffer> {
    const parts = splitPath(p);
    if (isAclXattr(name)) throw fsError('EOPNOTSUPP');
    if (isPrivateXattr(name)) throw fsError('ENODATA');
    return this.shared(() => getXattrStrict(this.ctx.resolver.resolve(parts).host, name));
  }

  async listxattr(p: string): Promise<string[]> {
    const parts = splitPath(p);
    return this.shared(() => listXattrs(this.ctx.resolver.resolve(parts).host).filter((n) => !isPrivateXattr(n) && !isAclXattr(n)));
  }

  async statfs(p: string): Promise<StatFs> {
    const parts = splitPath(p);
    await this.shared(() => this.ctx.resolver.resolve(parts));
    const top = this.ctx.layers[0]!;
    const s = fs.statfsSync(top.root);
    return {
      bsize: s.bsize,
      frsize: s.bsize,
      blocks: s.blocks,
      bfree: s.bfree,
      bavail: s.bavail,
      files: s.files,
      ffree: s.ffree,
      favail: s.ffree,
      fsid: 0,
      flag: this.ctx.upper ? 0 : ST_RDONLY,
      namemax: 255,
    };
  }

  // Existence, EROFS for W_OK on a read-only union, EACCES for X_OK on a file nobody may
  // execute. Everything else is left to the kernel (mounts use default_permissions).
  async access(p: string, mode: number): Promise<void> {
    const parts = splitPath(p);
    await this.shared(() => {
      const node = this.ctx.resolver.resolve(parts);
      if (mode & C.W_OK && !this.ctx.upper) throw fsError('EROFS');
      if (mode & C.X_OK && !isDir(node)) {
        const st = this.ctx.resolver.statOf(node);
        if ((st.mode & 0o111) === 0) throw fsError('EACCES');
      }
    });
  }

  // ---- file handles --------------------------------------------------------------------

  async open(p: string, flags: number): Promise<number> {
    const parts = splitPath(p);
    const write = (flags & 3) !== C.O_RDONLY || (flags & C.O_TRUNC) !== 0;
    const hostFlags = (flags & ~(C.O_CREAT | C.O_EXCL | C.O_APPEND)) | C.O_NOFOLLOW | C.O_NOCTTY;
    if (!write) {
      return this.shared(() => {
        const node = this.ctx.resolver.resolve(parts);
        return this.track(openFd(node.host, hostFlags), node);
      });
    }
    return this.onUpper(
      parts,
      { data: (flags & C.O_TRUNC) === 0, whole: (flags & C.O_TRUNC) !== 0 },
      (node) => {
        if (isDir(node)) throw fsError('EISDIR');
      },
      (node) => this.track(openFd(node.host, hostFlags), node),
    );
  }

  async create(p: string, mode: number, flags: number, caller: Caller): Promise<number> {
    return (await this.createAttr(p, mode, flags, caller)).fd;
  }

  // create, and the attributes of what it opened (those of a new file come from the fstat
  // that made its node: one fstat per create, not two).
  async createAttr(p: string, mode: number, flags: number, caller: Caller): Promise<{ fd: number; attr: Attr }> {
    const parts = splitPath(p);
    if (parts.length === 0) throw fsError('EISDIR');
    const { parent, name } = splitParent(parts);
    this.checkNewName(name);
    const made = await this.exclusive((): { fd: number; attr: Attr } | undefined => {
      const r = this.ctx.resolver;
      const dir = r.resolveDir(parent);
      const openFlags = (flags & ~(C.O_CREAT | C.O_EXCL | C.O_TRUNC | C.O_APPEND)) | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW | C.O_NOCTTY;
      const perm = mode & 0o7777;
      // A directory only upper has (nothing beneath shows through it), and a caller the
      // kernel gives a new file's owner to: O_EXCL alone tells whether the name exists, so the
      // file is made without looking the name or the directory up first.
      if (!hasLower(dir) && caller.uid === this.euid && caller.gid === this.egid) {
        const fresh = this.createInPlace(parts, dir.host, name, openFlags, perm, true);
        if (fresh) return fresh;
      }
      if (r.lookup(parts)) {
        if (flags & C.O_EXCL) throw fsError('EEXIST');
        return undefined; // exists: a plain open
      }
      const parentHost = this.copyUp.dirChainLocked(parent);
      const owner = this.ownerFor(parentHost, caller);
      if (this.kernelGivesOwner(owner)) return this.createInPlace(parts, parentHost, name, openFlags, perm, false)!;
      let fd = -1;
      try {
        this.makeNew(parts, parentHost, owner, false, (tmp) => {
          fd = openFd(tmp, openFlags, 0o600);
          fchownFd(fd, owner.uid, owner.gid);
          fchmodFd(fd, perm);
        });
      } catch (err) {
        if (fd >= 0) closeQuietly(fd);
        throw err;
      }
      const node = r.resolve(parts);
      return { fd: this.track(fd, node), attr: toAttr(fstatFd(fd), node.ino) };
    });
    if (made) return made;
    const fd = await this.open(p, flags & ~C.O_CREAT);
    try {
      return { fd, attr: await this.fgetattr(fd, p) };
    } catch (err) {
      await this.release(fd);
      throw err;
    }
  }

  // A new file the FUSE binding's C side made in the upper directory of `p`'s parent, by the
  // rule of createAttr's first case (a directory only upper has; see create_here in
  // native/fuse/ufs_fuse.c), open as `fd`: remembered and tracked as if made here. Returns
  // its inode number in the union. On failure the file is closed and removed again, and the
  // error thrown.
  adoptCreated(p: string, fd: number, mode: number, hostIno: bigint): bigint {
    const parts = splitPath(p);
    const { parent, name } = splitParent(parts);
    const r = this.ctx.resolver;
    let dest: string | undefined;
    try {
      dest = `${r.resolveDir(parent).host}/${name}`;
      const node = r.rememberNew(parts, dest, mode, hostIno) ?? r.resolve(parts);
      this.track(fd, node);
      return node.ino;
    } catch (err) {
      closeQuietly(fd);
      if (dest !== undefined) removeQuietly(dest);
      r.invalidate(parts);
      throw err;
    }
  }

  // A handle closed by someone else (the FUSE binding's C side): only forget what it was.
  forgetHandle(fh: number): void {
    this.handles.delete(fh);
  }

  async release(fh: number): Promise<void> {
    this.handles.delete(fh);
    closeFd(fh);
  }

  async fsync(fh: number, datasync: boolean): Promise<void> {
    await (datasync ? fdatasyncFd(fh) : fsyncFd(fh));
  }

  async ftruncate(fh: number, _p: string | null, size: number): Promise<void> {
    if (size < 0) throw fsError('EINVAL');
    ftruncateFd(fh, size);
  }

  // ---- changing an existing object (copy-up first) ----------------------------------------

  async truncate(p: string, size: number): Promise<void> {
    const parts = splitPath(p);
    if (size < 0) throw fsError('EINVAL');
    await this.onUpper(
      parts,
      { data: size > 0, whole: true },
      (node) => {
        if (isDir(node)) throw fsError('EISDIR');
        if (node.fmt !== C.S_IFREG) throw fsError('EINVAL');
      },
      (node) => {
        const fd = openFd(node.host, C.O_WRONLY | C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY);
        try {
          ftruncateFd(fd, size);
        } finally {
          closeFd(fd);
        }
      },
    );
  }

  async chmod(p: string, mode: number): Promise<void> {
    const parts = splitPath(p);
    await this.onUpper(
      parts,
      { data: true },
      (node) => {
        if (node.fmt === C.S_IFLNK) throw fsError('EOPNOTSUPP'); // as fchmodat(AT_SYMLINK_NOFOLLOW)
      },
      (node) => fs.chmodSync(node.host, mode & 0o7777), // not a link: nothing is followed
    );
  }

  async chown(p: string, uid: number, gid: number): Promise<void> {
    const parts = splitPath(p);
    const u = uid === 0xffffffff ? -1 : uid;
    const g = gid === 0xffffffff ? -1 : gid;
    await this.onUpper(parts, { data: true }, () => undefined, (node) => fs.lchownSync(node.host, u, g));
  }

  async utimens(p: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
    const parts = splitPath(p);
    if (atime === 'omit' && mtime === 'omit') {
      this.requireUpper();
      await this.shared(() => this.ctx.resolver.resolve(parts));
      return;
    }
    await this.onUpper(parts, { data: true, whole: true }, () => undefined, (node) => setTimes(node.host, atime, mtime));
  }

  async setxattr(p: string, name: string, value: Buffer, flags: number): Promise<void> {
    const parts = splitPath(p);
    if (isAclXattr(name)) throw fsError('EOPNOTSUPP');
    if (isPrivateXattr(name)) throw fsError('EPERM');
    await this.onUpper(
      parts,
      { data: true },
      (node) => {
        // Decide the flag errors before copying anything up.
        if (flags & XATTR_REPLACE && getXattr(node.host, name) === undefined) throw fsError('ENODATA');
        if (flags & XATTR_CREATE && getXattr(node.host, name) !== undefined) throw fsError('EEXIST');
      },
      (node) => setXattr(node.host, name, value, flags),
    );
  }

  async removexattr(p: string, name: string): Promise<void> {
    const parts = splitPath(p);
    if (isAclXattr(name)) throw fsError('EOPNOTSUPP');
    if (isPrivateXattr(name)) throw fsError('ENODATA');
    await this.onUpper(
      parts,
      { data: true },
      (node) => {
        if (getXattr(node.host, name) === undefined) throw fsError('ENODATA');
      },
      (node) => removeXattr(node.host, name),
    );
  }

  // ---- creating ------------------------------------------------------------------------

  async mkdir(p: string, mode: number, caller: Caller): Promise<void> {
    const parts = splitPath(p);
    if (parts.length === 0) throw fsError('EEXIST');
    this.checkNewName(splitParent(parts).name);
    await this.exclusive(() => {
      this.checkAbsent(parts);
      this.makeNewFor(parts, caller, true, (tmp, owner, opaque) => {
        fs.mkdirSync(tmp, 0o700);
        fs.lchownSync(tmp, owner.uid, owner.gid);
        fs.chmodSync(tmp, (mode & 0o7777) | (owner.sgid ? S_ISGID : 0));
        if (opaque) makeOpaque(tmp);
      });
    });
  }

  async mknod(p: string, mode: number, dev: number, caller: Caller): Promise<void> {
    const parts = splitPath(p);
    if (parts.length === 0) throw fsError('EEXIST');
    this.checkNewName(splitParent(parts).name);
    const fmt = mode & C.S_IFMT;
    if (fmt === C.S_IFDIR) throw fsError('EPERM');
    if (![0, C.S_IFREG, C.S_IFIFO, C.S_IFCHR, C.S_IFBLK, C.S_IFSOCK].includes(fmt)) throw fsError('EINVAL');
    await this.exclusive(() => {
      this.checkAbsent(parts);
      this.makeNewFor(parts, caller, false, (tmp, owner) => {
        if (fmt === 0 || fmt === C.S_IFREG) closeFd(openFd(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600));
        else hostMknod(tmp, fmt | 0o600, dev);
        fs.lchownSync(tmp, owner.uid, owner.gid);
        fs.chmodSync(tmp, mode & 0o7777); // a node, not a link: nothing is followed or opened
      });
    });
  }

  async symlink(target: string, p: string, caller: Caller): Promise<void> {
    const parts = splitPath(p);
    if (parts.length === 0) throw fsError('EEXIST');
    this.checkNewName(splitParent(parts).name);
    await this.exclusive(() => {
      this.checkAbsent(parts);
      this.makeNewFor(parts, caller, false, (tmp, owner) => {
        fs.symlinkSync(target, tmp);
        fs.lchownSync(tmp, owner.uid, owner.gid);
      });
    });
  }

  async link(existing: string, newPath: string): Promise<void> {
    const src = splitPath(existing);
    const dst = splitPath(newPath);
    if (dst.length === 0) throw fsError('EEXIST');
    const { parent, name } = splitParent(dst);
    this.checkNewName(name);
    this.requireUpper();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const done = await this.exclusive(() => {
        const node = this.ctx.resolver.resolve(src);
        if (isDir(node)) throw fsError('EPERM');
        this.checkAbsent(dst);
        if (!node.layer.upper) return false;
        const parentHost = this.copyUp.dirChainLocked(parent);
        fs.linkSync(node.host, `${parentHost}/${name}`); // link(2) does not follow a symlink
        removeWhiteout(parentHost, name);
        this.ctx.resolver.invalidate(dst);
        return true;
      });
      if (done) return;
      await this.copyUp.ensure(src, { data: true });
    }
    throw fsError('EIO', 'link: source did not settle in upper');
  }

  // ---- removing and renaming --------------------------------------------------------------

  async unlink(p: string): Promise<void> {
    const parts = splitPath(p);
    if (parts.length === 0) throw fsError('EISDIR');
    const { parent, name } = splitParent(parts);
    this.requireUpper();
    await this.exclusive(() => {
      const r = this.ctx.resolver;
      const node = r.resolve(parts);
      if (isDir(node)) throw fsError('EISDIR');
      const below = r.existsBelow(r.resolveDir(parent), name);
      if (node.layer.upper) {
        // Whiteout first: a crash in between leaves the file, not a resurrected lower one.
        if (below) makeWhiteout(path.dirname(node.host), name);
        fs.unlinkSync(node.host);
      } else {
        makeWhiteout(this.copyUp.dirChainLocked(parent), name);
      }
      r.invalidate(parts);
    });
  }

  async rmdir(p: string): Promise<void> {
    const parts = splitPath(p);
    if (parts.length === 0) throw fsError('EBUSY');
    const { parent, name } = splitParent(parts);
    this.requireUpper();
    await this.exclusive(() => {
      const r = this.ctx.resolver;
      const node = r.resolve(parts);
      if (!isDir(node)) throw fsError('ENOTDIR');
      if (mergedNames(r, node).length > 0) throw fsError('ENOTEMPTY');
      const below = r.existsBelow(r.resolveDir(parent), name);
      if (node.layer.upper) {
        // Out of the way first (it may hold whiteouts), then the whiteout, then delete it.
        const tmp = tempPath(this.ctx);
        fs.renameSync(node.host, tmp);
        if (below) makeWhiteout(path.dirname(node.host), name);
        removeTree(tmp);
      } else {
        makeWhiteout(this.copyUp.dirChainLocked(parent), name);
      }
      r.invalidate(parts);
    });
  }

  async rename(from: string, to: string): Promise<void> {
    const src = splitPath(from);
    const dst = splitPath(to);
    if (src.length === 0 || dst.length === 0) throw fsError('EBUSY');
    this.checkNewName(splitParent(dst).name);
    this.requireUpper();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const result = await this.exclusive(() => renameLocked(this.ctx, this.copyUp, src, dst));
      if (result === 'done') return;
      await this.copyUp.ensure(src, { data: true });
    }
    throw fsError('EIO', 'rename: source did not settle in upper');
  }

  // ---- helpers -------------------------------------------------------------------------

  private shared<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.ctx.lock.shared(fn);
  }

  private exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.ctx.lock.exclusive(fn);
  }

  // The "." and ".." entries of the directory at `parts` (the root is its own parent).
  private dotEntries(parts: readonly string[]): { self: DirEntry; parent: DirEntry } {
    const r = this.ctx.resolver;
    const self = r.resolveDir(parts);
    const up = parts.length === 0 ? self : r.resolveDir(parts.slice(0, -1));
    return { self: { name: '.', ino: self.ino, mode: self.fmt }, parent: { name: '..', ino: up.ino, mode: up.fmt } };
  }

  private requireUpper(): void {
    upperOf(this.ctx);
  }

  private checkNewName(name: string): void {
    this.requireUpper();
    if (isReservedName(name)) throw fsError('EINVAL', `names starting with .wh. are reserved: ${name}`);
  }

  private track(fd: number, node: Node): number {
    this.handles.set(fd, { ino: node.ino, upper: node.layer.upper });
    return fd;
  }

  // The parent must be a directory and the name free. Lock held.
  private checkAbsent(parts: readonly string[]): void {
    this.ctx.resolver.resolveDir(parts.slice(0, -1));
    if (this.ctx.resolver.lookup(parts)) throw fsError('EEXIST');
  }

  // Runs `fn` on the upper object at `parts` under the shared lock, copying it up first if a
  // lower one wins. `check` sees the winner before any copy-up, to fail early. `whole`: `fn`
  // changes the whole file (its size or times), so it waits for a background copy-up of it.
  private async onUpper<T>(parts: readonly string[], opts: { data: boolean; whole?: boolean }, check: (node: Node) => void, fn: (node: Node) => T): Promise<T> {
    this.requireUpper();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const result = await this.shared((): { value: T } | { copying: Promise<void> } | undefined => {
        const node = this.ctx.resolver.resolve(parts);
        check(node);
        if (!node.layer.upper) return undefined;
        const copying = opts.whole ? this.copyUp.backgroundOf(node.ino) : undefined;
        return copying ? { copying } : { value: fn(node) };
      });
      if (result && 'value' in result) return result.value;
      if (result) await result.copying;
      else await this.copyUp.ensure(parts, opts);
    }
    throw fsError('EIO', 'copy-up did not settle');
  }

  // Who owns a new object in the upper directory `parentHost`.
  private ownerFor(parentHost: string, caller: Caller): Owner {
    const pst = lstatStrict(parentHost);
    const sgid = (pst.mode & S_ISGID) !== 0;
    return { uid: caller.uid, gid: sgid ? pst.gid : caller.gid, sgid };
  }

  // Does creating a file as this process give it `owner` by itself? (The kernel gives a new
  // file our fsuid, and our fsgid or, under a setgid directory, the directory's group.)
  private kernelGivesOwner(owner: Owner): boolean {
    return owner.uid === this.euid && (owner.sgid || owner.gid === this.egid);
  }

  // A new regular file made in place with open(O_CREAT|O_EXCL): it has its owner and (with
  // umask 0, as the server runs) its mode from the start. A whiteout there stays hidden
  // behind the file until it is removed just after. With `mayExist`, a name that exists
  // already (EEXIST) returns undefined. Lock held exclusive.
  private createInPlace(parts: readonly string[], parentHost: string, name: string, openFlags: number, perm: number, mayExist: boolean): { fd: number; attr: Attr } | undefined {
    const dest = `${parentHost}/${name}`;
    let fd: number;
    try {
      fd = openFd(dest, openFlags, perm);
    } catch (err) {
      if (mayExist && hasCode(err, 'EEXIST')) return undefined;
      throw err;
    }
    let st: HostStat;
    try {
      if (this.umask !== 0 || (perm & 0o7000) !== 0) fchmodFd(fd, perm);
      st = fstatFd(fd);
      removeWhiteout(parentHost, name);
    } catch (err) {
      closeQuietly(fd);
      removeQuietly(dest);
      this.ctx.resolver.invalidate(parts);
      throw err;
    }
    const node = this.ctx.resolver.rememberNew(parts, dest, st.mode, st.ino) ?? this.ctx.resolver.resolve(parts);
    return { fd: this.track(fd, node), attr: toAttr(st, node.ino) };
  }

  private makeNewFor(parts: readonly string[], caller: Caller, dir: boolean, build: (tmp: string, owner: Owner, opaque: boolean) => void): void {
    const parentHost = this.copyUp.dirChainLocked(splitParent(parts).parent);
    this.makeNew(parts, parentHost, this.ownerFor(parentHost, caller), dir, build);
  }

  // Builds a new object with `build(tmp, owner, opaque)` under a temporary name and renames
  // it into place at `parts` (in the upper directory `parentHost`), dropping a whiteout there.
  // `opaque` is true when a directory made there must hide what exists below. Lock held
  // exclusive; the name is known free.
  private makeNew(parts: readonly string[], parentHost: string, owner: Owner, dir: boolean, build: (tmp: string, owner: Owner, opaque: boolean) => void): void {
    const r = this.ctx.resolver;
    const { parent, name } = splitParent(parts);
    const opaque = dir && r.existsBelow(r.resolveDir(parent), name);
    const tmp = tempPath(this.ctx);
    try {
      build(tmp, owner, opaque);
      fs.renameSync(tmp, `${parentHost}/${name}`);
    } catch (err) {
      removeQuietly(tmp);
      throw err;
    }
    removeWhiteout(parentHost, name);
    r.invalidate(parts);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // the error that got us here is the one to report
  }
}

// The FUSE operations of a ufs mount on the low-level binding: each request names nodes (see
// nodes.ts), which become merged paths for one call on UnionFs. Union errors carry an errno
// name in `code`; it goes back to the kernel as that errno. Anything else is a bug: EIO, logged.
//
// Caching: lower layers never change and every change to upper passes through here, so the
// kernel may keep entries, attributes, negative entries, pages (keep_cache), directory
// listings (cache_readdir) and symlink targets as long as it likes: `timeout` seconds.
import type { Attr, Caller, UnionFs } from '../../unionfs/index.js';
import { fsError } from '../../unionfs/errors.js';
import { ERRNO, idArg, refusedXattr, toErrno, type Log } from '../answers.js';
import {
  OPEN_KEEP_CACHE, OPEN_UPPER, type EntryAttr, type LowLevelBinding, type LowLevelHandlers, type ReqId,
} from './binding.js';
import { DIR_NUMS, DirPack } from './dirpack.js';
import { keepYoungGenerationSmall } from './heap.js';
import { NodeTable, type LlNode } from './nodes.js';

// renameat2(2) flags.
const RENAME_NOREPLACE = 1;

// Sizes of a readdir(plus) record (struct fuse_dirent / fuse_direntplus) before the name, and
// their alignment: to know which entries fit the kernel's buffer before making their nodes.
const DIRENT_BASE = 24;
const DIRENTPLUS_BASE = 152;
function direntSize(name: string, plus: boolean): number {
  const n = (plus ? DIRENTPLUS_BASE : DIRENT_BASE) + name.length; // a byte string
  return (n + 7) & ~7;
}


// A directory's listing: read at a readdir from offset 0 (a new listing or a rewind) and kept
// for the readdirs that go on from there. Entries are ordered by their cookie, a hash of the
// name, which is also the directory offset the kernel gets back to go on after that entry (as
// ext4's hashed offsets): an offset means the same place in any listing of the directory, so
// the kernel's cached listings (cache_readdir), a reader that goes on in a listing read for
// another, and one that first reads at an offset learned elsewhere never see a name twice or
// miss an unchanged one. So a listing is only a cache: kept by handle where the kernel sends
// OPENDIR (until releasedir), else by directory (the kernel opens directories without asking
// and every handle is 0: see ll_opendir in native/fuse/ufs_fuse.c), dropped once read to the
// end, and the oldest go beyond MAX_LISTINGS.
const MAX_LISTINGS = 256;
function listingKey(fh: number, nodeId: number): number {
  return fh !== 0 ? fh : -nodeId;
}

// Every field is set at creation (one object shape: the code that reads them stays optimized).
interface DirListing {
  node: LlNode;
  read: boolean; // names..cookies hold the directory's entries, "." and ".." first
  names: string[];
  attrs: EntryAttr[];
  lowerFiles: (string | null)[];
  cookies: Float64Array;
}

// "." and ".." come first, at cookies 1 and 2; names hash into [3, 2^52 + 3), exact in a double.
const DOT_COOKIES = [1, 2];
const NO_COOKIES = new Float64Array(0);
export function nameCookie(name: string): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 12) * 0x100000000 + (b >>> 0) + 3;
}

// The first index whose cookie is past `offset` (cookies ascending).
function resumeIndex(cookies: Float64Array, offset: number): number {
  let lo = 0;
  let hi = cookies.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cookies[mid]! <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Copy-ups of files this big or bigger move their data in the background (copyup.ts,
// "Background copy-up"): under 64 MiB the copy takes tens of milliseconds anyway.
// UFS_BACKGROUND_COPY_MIN (bytes, or 'off') changes it, for tests and measurements.
const BACKGROUND_COPY_MIN = 64 << 20;

function backgroundCopyMin(): number {
  const v = process.env.UFS_BACKGROUND_COPY_MIN;
  if (v === 'off') return Infinity;
  const n = v ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : BACKGROUND_COPY_MIN;
}

export interface LowLevelEvents {
  ready(): void; // INIT done: the mount serves
  exit(): void; // the mount is gone
  note?(message: string): void; // what happened, for the log (`log` is for what went wrong)
}

export function makeLowLevelOps(union: UnionFs, rootAttr: Attr, ll: LowLevelBinding, timeout: number, events: LowLevelEvents, log: Log): LowLevelHandlers {
  keepYoungGenerationSmall();
  if (typeof ll.copyInBackground === 'function') {
    union.copyInBackground(
      (job) => {
        const started = ll.copyInBackground(job.ino, job.src, job.dst, job.size, job.mtimeNs, job.journal);
        if (started) (events.note ?? log)(`copy-up of inode ${job.ino} (${job.size} bytes) goes on in the background`);
        else log(`copy-up of inode ${job.ino}: no thread for a background copy, copying now`);
        return started;
      },
      backgroundCopyMin(),
    );
  }
  const nodes = new NodeTable(rootAttr.ino, (id) => ll.dropNode(id));
  const dirs = new Map<number, DirListing>(); // by listingKey
  const pack = new DirPack(); // one reply at a time: replies are built and sent synchronously

  // Runs one request: whatever happens, the kernel gets exactly one answer (an unanswered
  // request hangs its caller forever).
  function serve(id: ReqId, op: string, args: unknown[], work: () => Promise<void>): void {
    const fail = (err: unknown) => {
      try {
        ll.replyErr(id, -toErrno(err, op, args, log));
      } catch (replyErr) {
        // Answered already, then something threw: the bug is in the reply path.
        log(`${op}: failed after its reply: ${replyErr instanceof Error ? replyErr.message : String(replyErr)}`);
      }
    };
    try {
      work().catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  function entry(id: ReqId, parent: LlNode, name: string, attr: Attr, lowerFile?: string): void {
    const node = nodes.found(parent, name, attr);
    ll.replyEntry(id, node.id, attr, timeout, timeout, lowerFile);
    nodes.counted(node);
  }

  function listingOf(key: number, nodeId: number): DirListing {
    let dir = dirs.get(key);
    if (!dir) {
      dir = { node: nodes.get(nodeId), read: false, names: [], attrs: [], lowerFiles: [], cookies: NO_COOKIES };
      dirs.set(key, dir);
      if (dirs.size > MAX_LISTINGS) dirs.delete(dirs.keys().next().value!);
    }
    return dir;
  }

  async function readListing(dir: DirListing): Promise<void> {
    const list = await union.readdirAttrs(nodes.path(dir.node));
    const entries = list.entries;
    const n = entries.length;
    const hashes = new Float64Array(n);
    const order: number[] = [];
    for (let i = 0; i < n; i++) {
      hashes[i] = nameCookie(entries[i]!.name);
      order.push(i);
    }
    order.sort((a, b) => hashes[a]! - hashes[b]!);
    const names = ['.', '..'];
    const attrs: EntryAttr[] = [list.self, list.parent];
    const lowerFiles: (string | null)[] = [null, null];
    const cookies = new Float64Array(n + 2);
    cookies.set(DOT_COOKIES);
    for (let k = 0; k < n; k++) {
      const e = entries[order[k]!]!;
      names.push(e.name);
      attrs.push(e.attr);
      lowerFiles.push(e.lowerFile ?? null);
      cookies[k + 2] = hashes[order[k]!]!;
    }
    dir.names = names;
    dir.attrs = attrs;
    dir.lowerFiles = lowerFiles;
    dir.cookies = cookies;
    dir.read = true;
  }

  // Answers a readdir(plus) from `offset` on with what fits in `size` bytes; returns whether
  // that went to the end of the listing.
  function replyListing(id: ReqId, dir: DirListing, offset: number, plus: boolean, size: number): boolean {
    const cookies = dir.cookies;
    const made: LlNode[] = [];
    let room = size;
    pack.reset(Math.ceil(size / DIRENT_BASE));
    let i = resumeIndex(cookies, offset);
    for (; i < dir.names.length; i++) {
      const name = dir.names[i]!;
      const need = direntSize(name, plus);
      if (need > room) break;
      room -= need;
      const attr = dir.attrs[i]!;
      let nodeId = 0;
      if (plus && i >= 2 && 'nlink' in attr) {
        const node = nodes.found(dir.node, name, attr);
        made.push(node);
        nodeId = node.id;
      }
      pack.add(name, attr, nodeId, cookies[i]!, dir.lowerFiles[i]!);
    }
    const count = pack.count;
    const atEnd = i === dir.names.length;
    const sent = ll.replyDir(id, pack.names.join('\0'), pack.nums, pack.bigs, count, timeout, timeout, pack.lowerFiles.join('\0'), atEnd);
    // Entries sent with a node id count as lookups; nodes made for nothing go again.
    for (let k = 0, i = 0; i < count; i++) {
      if (pack.nums[i * DIR_NUMS + 6] === 0) continue;
      const node = made[k++]!;
      if (i < sent) nodes.counted(node);
      else nodes.dropIfUnused(node);
    }
    return atEnd && sent === count;
  }

  // mknod, mkdir, symlink: `make` creates parent/name in the union, then the kernel gets its entry.
  async function made(id: ReqId, parentId: number, name: string, make: (p: string) => Promise<void>): Promise<void> {
    const parent = nodes.get(parentId);
    const p = nodes.childPath(parent, name);
    await make(p);
    const found = await union.lookupAttr(p);
    if (!found) throw fsError('ENOENT', 'gone just after it was made');
    entry(id, parent, name, found.attr, found.lowerFile);
  }

  // Attributes of an object by node: by path, or by an open handle once it has no name left.
  async function attrOf(node: LlNode, fh: number): Promise<Attr> {
    if (fh >= 0) return union.fgetattr(fh, null);
    if (node.isDir || node.links.length > 0) return union.getattr(nodes.path(node));
    const handle = nodes.anyHandle(node);
    if (handle === undefined) throw fsError('ENOENT', 'no name and no open handle');
    return union.fgetattr(handle, null);
  }

  // Whether parent/name is the last name of what it names (so its number may be reused).
  async function isLastName(p: string): Promise<boolean> {
    try {
      const attr = await union.getattr(p);
      return attr.nlink <= 1;
    } catch {
      return true;
    }
  }

  const ops: LowLevelHandlers = {
    init() {
      events.ready();
    },

    exit() {
      events.exit();
    },

    copied(_id, ino, errno) {
      if (errno !== 0) log(`background copy-up of inode ${ino} failed (errno ${errno}): its reads and writes fail with EIO; the next mount of this upper retries it`);
      union.backgroundEnded(ino);
    },

    lookup(id, parentId, name) {
      serve(id, 'lookup', [parentId, name], async () => {
        const parent = nodes.get(parentId);
        const found = await union.lookupAttr(nodes.childPath(parent, name));
        if (found) entry(id, parent, name, found.attr, found.lowerFile);
        else ll.replyEntry(id, 0, null, timeout, 0); // a negative entry the kernel may keep
      });
    },

    forget(id, n) {
      nodes.forget(id, n);
    },

    forgets(pairs) {
      for (let i = 0; i + 1 < pairs.length; i += 2) nodes.forget(pairs[i]!, pairs[i + 1]!);
    },

    getattr(id, nodeId, fh) {
      serve(id, 'getattr', [nodeId, fh], async () => {
        ll.replyAttr(id, await attrOf(nodes.get(nodeId), fh), timeout);
      });
    },

    setattr(id, nodeId, fh, mode, uid, gid, size, atime, mtime) {
      serve(id, 'setattr', [nodeId, fh, mode, uid, gid, size, atime, mtime], async () => {
        const node = nodes.get(nodeId);
        const p = () => nodes.path(node);
        if (size !== undefined) {
          if (fh >= 0) await union.ftruncate(fh, null, Number(size));
          else await union.truncate(p(), Number(size));
        }
        // Owner before mode: a chown clears setuid bits that the mode may set again.
        if (uid !== undefined || gid !== undefined) await union.chown(p(), idArg(uid), idArg(gid));
        if (mode !== undefined) await union.chmod(p(), mode);
        if (atime !== 'omit' || mtime !== 'omit') await union.utimens(p(), atime, mtime);
        ll.replyAttr(id, await attrOf(node, fh), timeout);
      });
    },

    readlink(id, nodeId) {
      serve(id, 'readlink', [nodeId], async () => {
        ll.replyReadlink(id, await union.readlink(nodes.path(nodes.get(nodeId))));
      });
    },

    mknod(id, parentId, name, mode, rdev, uid, gid, pid, umask) {
      serve(id, 'mknod', [parentId, name, mode, rdev], () => made(id, parentId, name, (p) => union.mknod(p, mode, rdev, { uid, gid, pid, umask })));
    },

    mkdir(id, parentId, name, mode, uid, gid, pid, umask) {
      serve(id, 'mkdir', [parentId, name, mode], () => made(id, parentId, name, (p) => union.mkdir(p, mode, { uid, gid, pid, umask })));
    },

    unlink(id, parentId, name) {
      serve(id, 'unlink', [parentId, name], async () => {
        const parent = nodes.get(parentId);
        const p = nodes.childPath(parent, name);
        const last = await isLastName(p);
        await union.unlink(p);
        nodes.unlinked(parent, name, last);
        ll.replyErr(id, 0);
      });
    },

    rmdir(id, parentId, name) {
      serve(id, 'rmdir', [parentId, name], async () => {
        const parent = nodes.get(parentId);
        await union.rmdir(nodes.childPath(parent, name));
        nodes.unlinked(parent, name, true);
        ll.replyErr(id, 0);
      });
    },

    symlink(id, target, parentId, name, uid, gid, pid, umask) {
      serve(id, 'symlink', [target, parentId, name], () => made(id, parentId, name, (p) => union.symlink(target, p, { uid, gid, pid, umask })));
    },

    rename(id, parentId, name, newParentId, newName, flags) {
      serve(id, 'rename', [parentId, name, newParentId, newName, flags], async () => {
        // RENAME_EXCHANGE and RENAME_WHITEOUT are not supported (as on many file systems).
        if (flags & ~RENAME_NOREPLACE) {
          ll.replyErr(id, ERRNO.EINVAL!);
          return;
        }
        const parent = nodes.get(parentId);
        const newParent = nodes.get(newParentId);
        const from = nodes.childPath(parent, name);
        const to = nodes.childPath(newParent, newName);
        let targetLast = false;
        try {
          const target = await union.getattr(to);
          if (flags & RENAME_NOREPLACE) {
            ll.replyErr(id, ERRNO.EEXIST!);
            return;
          }
          targetLast = target.nlink <= 1 || (target.mode & 0o170000) === 0o040000;
        } catch (err) {
          if ((err as { code?: string }).code !== 'ENOENT') throw err;
        }
        await union.rename(from, to);
        nodes.renamed({ parent, name }, { parent: newParent, name: newName }, false, targetLast);
        ll.replyErr(id, 0);
      });
    },

    link(id, nodeId, newParentId, newName) {
      serve(id, 'link', [nodeId, newParentId, newName], async () => {
        const node = nodes.get(nodeId);
        const newParent = nodes.get(newParentId);
        const p = nodes.childPath(newParent, newName);
        await union.link(nodes.path(node), p);
        entry(id, newParent, newName, await union.getattr(p));
      });
    },

    open(id, nodeId, flags) {
      serve(id, 'open', [nodeId, flags], async () => {
        const node = nodes.get(nodeId);
        const fd = await union.open(nodes.path(node), flags);
        nodes.opened(node, fd);
        const info = union.handleInfo(fd);
        ll.replyOpen(id, fd, OPEN_KEEP_CACHE | (info?.upper ? OPEN_UPPER : 0), info?.ino);
      });
    },

    create(id, parentId, name, mode, flags, uid, gid, pid, umask) {
      serve(id, 'create', [parentId, name, mode, flags], async () => {
        const parent = nodes.get(parentId);
        const p = nodes.childPath(parent, name);
        const caller: Caller = { uid, gid, pid, umask };
        const { fd, attr } = await union.createAttr(p, mode, flags, caller);
        const node = nodes.found(parent, name, attr);
        nodes.opened(node, fd);
        ll.replyCreate(id, node.id, attr, timeout, timeout, fd, OPEN_KEEP_CACHE);
        nodes.counted(node);
      });
    },

    created(id, parentId, name, fd, mode, hostIno) {
      // Synchronous, like the C side that made the file: no trip through the promise queue.
      try {
        const parent = nodes.get(parentId);
        const ino = union.adoptCreated(nodes.childPath(parent, name), fd, mode, hostIno);
        const node = nodes.found(parent, name, { ino, mode });
        nodes.opened(node, fd);
        ll.replyCreated(id, node.id, ino);
        nodes.counted(node);
      } catch (err) {
        ll.replyErr(id, -toErrno(err, 'create', [parentId, name], log));
      }
    },

    release(id, nodeId, fh) {
      if (id < 0) {
        union.forgetHandle(fh);
        nodes.closed(nodes.get(nodeId), fh);
        return;
      }
      serve(id, 'release', [nodeId, fh], async () => {
        await union.release(fh);
        const node = nodes.get(nodeId);
        nodes.closed(node, fh);
        ll.replyErr(id, 0);
      });
    },

    readdir(id, nodeId, fh, offset, plus, size) {
      serve(id, 'readdir', [nodeId, fh, offset, plus], async () => {
        const key = listingKey(fh, nodeId);
        const dir = listingOf(key, nodeId);
        if (offset === 0 || !dir.read) await readListing(dir);
        // Read to the end (C answers the closing request when it can: "Listing ends").
        if (replyListing(id, dir, offset, plus, size) && fh === 0) dirs.delete(key);
      });
    },

    // Only a notice (id -1): C answered the kernel already.
    releasedir(_id, _nodeId, fh) {
      dirs.delete(fh);
    },

    statfs(id, nodeId) {
      serve(id, 'statfs', [nodeId], async () => {
        ll.replyStatfs(id, await union.statfs('/'));
      });
    },

    setxattr(id, nodeId, name, value, flags) {
      serve(id, 'setxattr', [nodeId, name, value, flags], async () => {
        const refused = refusedXattr('set', name);
        if (refused) return ll.replyErr(id, refused);
        await union.setxattr(nodes.path(nodes.get(nodeId)), name, value, flags);
        ll.replyErr(id, 0);
      });
    },

    getxattr(id, nodeId, name) {
      serve(id, 'getxattr', [nodeId, name], async () => {
        const refused = refusedXattr('get', name);
        if (refused) return ll.replyErr(id, refused);
        ll.replyXattr(id, await union.getxattr(nodes.path(nodes.get(nodeId)), name));
      });
    },

    listxattr(id, nodeId) {
      serve(id, 'listxattr', [nodeId], async () => {
        ll.replyXattrList(id, await union.listxattr(nodes.path(nodes.get(nodeId))));
      });
    },

    removexattr(id, nodeId, name) {
      serve(id, 'removexattr', [nodeId, name], async () => {
        const refused = refusedXattr('remove', name);
        if (refused) return ll.replyErr(id, refused);
        await union.removexattr(nodes.path(nodes.get(nodeId)), name);
        ll.replyErr(id, 0);
      });
    },

    detach(_id, nodeId) {
      nodes.detach(nodes.get(nodeId));
    },

    access(id, nodeId, mask) {
      serve(id, 'access', [nodeId, mask], async () => {
        await union.access(nodes.path(nodes.get(nodeId)), mask);
        ll.replyErr(id, 0);
      });
    },
  };
  return ops;
}

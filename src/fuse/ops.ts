// The FUSE operations of a ufs mount: each fuse-native callback (Contract 1) becomes one call
// on UnionFs (Contract 3). Union errors carry an errno name in `code`; it goes back to the
// kernel as a negative errno. Anything else is a bug: it becomes EIO and is logged.
import os from 'node:os';
import type { Caller, UnionFs } from '../unionfs/index.js';
import type { Done, FuseContext, FuseHandleInfo, FuseOps, FusePin, FuseStable, FuseStat, FuseStatFs, OpenReply, Reply } from './native.js';

const ERRNO = os.constants.errno as Record<string, number>;
const EIO = ERRNO.EIO!;

// Errors a filesystem hands back in ordinary use; any other is logged.
const EXPECTED = new Set([
  'ENOENT', 'EEXIST', 'ENOTEMPTY', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'EROFS', 'ENODATA',
  'ERANGE', 'EINVAL', 'ENAMETOOLONG', 'ELOOP', 'EMLINK', 'ENOSPC', 'EDQUOT', 'EFBIG', 'EBUSY',
  'ETXTBSY', 'EOPNOTSUPP', 'ENOTSUP', 'E2BIG', 'EXDEV', 'ENOSYS', 'EAGAIN',
]);

// Private union metadata (origin inode, ...) never crosses the mount.
const PRIVATE_XATTR = 'trusted.ufs.';

// POSIX ACLs are not supported through the mount, as on a filesystem mounted `noacl`: the
// kernel would not enforce them (libfuse2's protocol cannot ask for FUSE_POSIX_ACL), and
// setting one changes the file's mode behind the kernel's attribute cache (ext4 folds a
// mode-equivalent ACL into the mode bits), which then shows a stale mode for as long as the
// cache lives. With EOPNOTSUPP, cp -p, tar and setfacl fall back to chmod, which the kernel sees.
const ACL_XATTRS = new Set(['system.posix_acl_access', 'system.posix_acl_default']);

function hiddenXattr(name: string): boolean {
  return name.startsWith(PRIVATE_XATTR) || ACL_XATTRS.has(name);
}

export type Log = (message: string) => void;

export function toErrno(err: unknown, op: string, args: unknown[], log: Log): number {
  const code = err && typeof err === 'object' && 'code' in err ? (err as { code: unknown }).code : undefined;
  if (typeof code === 'string' && ERRNO[code] !== undefined) {
    if (!EXPECTED.has(code)) log(`${op}(${describe(args)}): ${code}: ${message(err)}`);
    return -ERRNO[code]!;
  }
  const stack = err instanceof Error && err.stack ? err.stack : String(err);
  log(`${op}(${describe(args)}): unexpected error -> EIO: ${stack}`);
  return -EIO;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function describe(args: unknown[]): string {
  return args.map((a) => (typeof a === 'string' ? JSON.stringify(a) : Buffer.isBuffer(a) ? `<${a.length} bytes>` : String(a))).join(', ');
}

function caller(ctx: FuseContext | undefined): Caller {
  return { uid: ctx?.uid ?? 0, gid: ctx?.gid ?? 0, pid: ctx?.pid ?? 0, umask: ctx?.umask ?? 0 };
}

// uid_t/gid_t -1 ("leave unchanged") may cross as 0xffffffff.
function idArg(id: number): number {
  return id === 0xffffffff || id < 0 ? -1 : id;
}

function dirEntryStat(e: { ino: bigint; mode: number }): FuseStat {
  return {
    mode: e.mode, uid: 0, gid: 0, size: 0n, dev: 0, nlink: 1, ino: e.ino, rdev: 0, blksize: 0,
    blocks: 0n, atimeNs: 0n, mtimeNs: 0n, ctimeNs: 0n,
  };
}

export function makeOps(union: UnionFs, log: Log): FuseOps {
  // Runs one union call and answers the kernel, whatever happens: a request left unanswered
  // hangs its caller forever. If handing back a result throws (a value fuse-native cannot
  // convert), the caller gets EIO instead.
  function serve<T>(op: string, args: unknown[], work: () => Promise<T>, done: (value: T) => void, fail: (errno: number) => void): void {
    let answered = false;
    const failOnce = (errno: number) => {
      if (answered) return;
      answered = true;
      fail(errno);
    };
    let p: Promise<T>;
    try {
      p = work();
    } catch (err) {
      failOnce(toErrno(err, op, args, log));
      return;
    }
    p.then(
      (value) => {
        try {
          done(value);
          answered = true;
        } catch (err) {
          failOnce(toErrno(err, `${op} reply`, args, log));
        }
      },
      (err: unknown) => failOnce(toErrno(err, op, args, log)),
    );
  }
  const ok = (cb: Done) => () => cb(0);
  const handleInfo = (fd: number): FuseHandleInfo | undefined => {
    const info = union.handleInfo(fd);
    return info && { ino: info.ino, upper: info.upper, closeHere: true };
  };

  const ops: FuseOps = {
    init(cb: Done) {
      cb(0);
    },

    // Stable objects (lower layers never change) are remembered by the C side, upper
    // directories pinned: see native.ts.
    getattr(p: string, cb: (err: number, stat?: FuseStat, stable?: FuseStable, pin?: FusePin) => void) {
      serve('getattr', [p], () => union.getattrPlus(p, true), (r) => cb(0, r.attr, r.stable, r.pin), (e) => cb(e));
    },

    fgetattr(p: string | null, fh: number, cb: Reply<FuseStat>) {
      serve('fgetattr', [p, fh], () => union.fgetattr(fh, p), (a) => cb(0, a), (e) => cb(e));
    },

    readdir(p: string, cb: (err: number, names?: string[], stats?: FuseStat[], stables?: (FuseStable | undefined)[]) => void) {
      serve(
        'readdir',
        [p],
        () => union.readdirPlus(p),
        ({ self, parent, entries }) => {
          const names = ['.', '..'];
          const stats = [dirEntryStat(self), dirEntryStat(parent)];
          const stables: (FuseStable | undefined)[] = [undefined, undefined];
          for (const { entry, attr, stable } of entries) {
            names.push(entry.name);
            stats.push(attr && stable ? attr : dirEntryStat(entry));
            stables.push(attr && stable ? stable : undefined);
          }
          cb(0, names, stats, stables);
        },
        (e) => cb(e),
      );
    },

    // The C side learns what each handle is (inode number, upper or not) and closes it on
    // release itself (the union keeps nothing for a handle that matters after it is closed):
    // see native.ts.
    open(p: string, flags: number, cb: OpenReply) {
      serve('open', [p, flags], () => union.open(p, flags), (fd) => cb(0, fd, handleInfo(fd)), (e) => cb(e));
    },

    create(p: string, mode: number, flags: number, ctx: FuseContext, cb: OpenReply) {
      serve('create', [p, mode, flags], () => union.create(p, mode, flags, caller(ctx)), (fd) => cb(0, fd, handleInfo(fd)), (e) => cb(e));
    },

    // Only for handles the C side was not told it may close.
    release(p: string | null, fh: number, cb: Done) {
      serve('release', [p, fh], () => union.release(fh), ok(cb), cb);
    },

    // With passthrough, fsync on files is served in C; this is the fallback path.
    fsync(p: string | null, datasync: boolean | number, fh: number, cb: Done) {
      serve('fsync', [p, fh], () => union.fsync(fh, Boolean(datasync)), ok(cb), cb);
    },

    truncate(p: string, size: number, cb: Done) {
      serve('truncate', [p, size], () => union.truncate(p, size), ok(cb), cb);
    },

    ftruncate(p: string | null, fh: number, size: number, cb: Done) {
      serve('ftruncate', [p, fh, size], () => union.ftruncate(fh, p, size), ok(cb), cb);
    },

    utimens(p: string, atime, mtime, cb: Done) {
      serve('utimens', [p, atime, mtime], () => union.utimens(p, atime, mtime), ok(cb), cb);
    },

    mkdir(p: string, mode: number, ctx: FuseContext, cb: Done) {
      serve('mkdir', [p, mode], () => union.mkdir(p, mode, caller(ctx)), ok(cb), cb);
    },

    mknod(p: string, mode: number, dev: number, ctx: FuseContext, cb: Done) {
      serve('mknod', [p, mode, dev], () => union.mknod(p, mode, dev, caller(ctx)), ok(cb), cb);
    },

    symlink(target: string, linkPath: string, ctx: FuseContext, cb: Done) {
      serve('symlink', [target, linkPath], () => union.symlink(target, linkPath, caller(ctx)), ok(cb), cb);
    },

    link(existing: string, newPath: string, cb: Done) {
      serve('link', [existing, newPath], () => union.link(existing, newPath), ok(cb), cb);
    },

    rename(from: string, to: string, cb: Done) {
      serve('rename', [from, to], () => union.rename(from, to), ok(cb), cb);
    },

    unlink(p: string, cb: Done) {
      serve('unlink', [p], () => union.unlink(p), ok(cb), cb);
    },

    rmdir(p: string, cb: Done) {
      serve('rmdir', [p], () => union.rmdir(p), ok(cb), cb);
    },

    readlink(p: string, cb: Reply<string>) {
      serve('readlink', [p], () => union.readlink(p), (target) => cb(0, target), (e) => cb(e));
    },

    chmod(p: string, mode: number, cb: Done) {
      serve('chmod', [p, mode], () => union.chmod(p, mode), ok(cb), cb);
    },

    chown(p: string, uid: number, gid: number, cb: Done) {
      serve('chown', [p, uid, gid], () => union.chown(p, idArg(uid), idArg(gid)), ok(cb), cb);
    },

    setxattr(p: string, name: string, value: Buffer, _position: number, flags: number, cb: Done) {
      if (ACL_XATTRS.has(name)) return cb(-ERRNO.EOPNOTSUPP!);
      if (name.startsWith(PRIVATE_XATTR)) return cb(-ERRNO.EPERM!);
      serve('setxattr', [p, name, value, flags], () => union.setxattr(p, name, value, flags), ok(cb), cb);
    },

    getxattr(p: string, name: string, _position: number, cb: Reply<Buffer>) {
      if (ACL_XATTRS.has(name)) return cb(-ERRNO.EOPNOTSUPP!);
      if (name.startsWith(PRIVATE_XATTR)) return cb(-ERRNO.ENODATA!);
      serve('getxattr', [p, name], () => union.getxattr(p, name), (v) => cb(0, v), (e) => cb(e));
    },

    listxattr(p: string, cb: Reply<string[]>) {
      serve(
        'listxattr',
        [p],
        () => union.listxattr(p),
        (names) => cb(0, names.filter((n) => !hiddenXattr(n))),
        (e) => cb(e),
      );
    },

    removexattr(p: string, name: string, cb: Done) {
      if (ACL_XATTRS.has(name)) return cb(-ERRNO.EOPNOTSUPP!);
      if (name.startsWith(PRIVATE_XATTR)) return cb(-ERRNO.EPERM!);
      serve('removexattr', [p, name], () => union.removexattr(p, name), ok(cb), cb);
    },

    statfs(p: string, cb: Reply<FuseStatFs>) {
      serve('statfs', [p], () => union.statfs(p), (s) => cb(0, s), (e) => cb(e));
    },

    access(p: string, mode: number, cb: Done) {
      serve('access', [p, mode], () => union.access(p, mode), ok(cb), cb);
    },
  };
  return ops;
}

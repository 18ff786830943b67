// The FUSE operations of a ufs mount: each fuse-native callback (Contract 1) becomes one call
// on UnionFs (Contract 3). Union errors carry an errno name in `code`; it goes back to the
// kernel as a negative errno. Anything else is a bug: it becomes EIO and is logged.
import type { Caller, UnionFs } from '../unionfs/index.js';
import { hiddenXattr, idArg, refusedXattr, toErrno, type Log } from './answers.js';
import type { Done, FuseContext, FuseHandleInfo, FuseOps, FusePin, FuseStable, FuseStat, FuseStatFs, OpenReply, Reply } from './native.js';

function caller(ctx: FuseContext | undefined): Caller {
  return { uid: ctx?.uid ?? 0, gid: ctx?.gid ?? 0, pid: ctx?.pid ?? 0, umask: ctx?.umask ?? 0 };
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
      const refused = refusedXattr('set', name);
      if (refused) return cb(-refused);
      serve('setxattr', [p, name, value, flags], () => union.setxattr(p, name, value, flags), ok(cb), cb);
    },

    getxattr(p: string, name: string, _position: number, cb: Reply<Buffer>) {
      const refused = refusedXattr('get', name);
      if (refused) return cb(-refused);
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
      const refused = refusedXattr('remove', name);
      if (refused) return cb(-refused);
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

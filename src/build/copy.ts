// COPY and ADD's writing side: sources (already matched and walked) into a mounted step root.
// Docker's rules: a directory source copies its contents; a file goes to DEST/basename when
// DEST ends in '/' or is a directory (or there are several sources), else to DEST; missing
// directories are created; owners are 0:0 unless --chown; modes as the source unless
// --chmod; mtimes kept; symlinks copied as links. Every host path is resolved inside the root.
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, UfsError } from '../common/errors.js';
import type { SourceEntry } from './context.js';
import { inRoot, mkdirInRoot } from './rootpath.js';

export interface CopyOptions {
  owner?: { uid: number; gid: number }; // default 0:0; keepOwner keeps the source's
  keepOwner?: boolean; // ADD's extracted archives
  chmod?: number;
  dirMtimeSec?: number; // for directories created on the way to DEST
  kept?: Set<string>; // gets the container paths (no leading '/') whose times come from a source
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
}

// Copies one walked source to container path `dest` (the file itself, or the directory
// whose contents land in `dest`).
export function copyEntries(root: string, entries: SourceEntry[], dest: string, opts: CopyOptions): void {
  const ownerOf = (st: fs.Stats) => (opts.keepOwner ? { uid: st.uid, gid: st.gid } : (opts.owner ?? { uid: 0, gid: 0 }));
  const modeOf = (st: fs.Stats) => (opts.chmod !== undefined ? opts.chmod : st.mode & 0o7777);
  const top = entries[0]!;
  const destParent = path.posix.dirname(dest);
  const owner = opts.owner ?? { uid: 0, gid: 0 };
  mkdirInRoot(root, destParent, owner.uid, owner.gid, opts.dirMtimeSec);
  const dirTimes: [string, fs.Stats][] = [];
  for (const e of entries) {
    const cpath = e.rel === '' ? dest : path.posix.join(dest, e.rel);
    // The parent was made (or resolved) before: resolve it again inside the root.
    const hostParent = inRoot(root, path.posix.dirname(cpath));
    const host = path.join(hostParent, path.posix.basename(cpath));
    const st = e.st;
    const existing = lstatOrNull(host);
    const { uid, gid } = ownerOf(st);
    if (st.isDirectory()) {
      let target = host;
      if (existing?.isSymbolicLink()) {
        const followed = inRoot(root, cpath);
        const fst = lstatOrNull(followed);
        if (fst?.isDirectory()) target = followed;
        else {
          fs.unlinkSync(host);
          fs.mkdirSync(host);
        }
      } else if (existing && !existing.isDirectory()) {
        fs.unlinkSync(host);
        fs.mkdirSync(host);
      } else if (!existing) fs.mkdirSync(host);
      // The destination directory itself keeps its own metadata when it existed.
      if (!(e === top && existing)) {
        fs.chmodSync(target, modeOf(st));
        fs.lchownSync(target, uid, gid);
        dirTimes.push([target, st]);
        opts.kept?.add(cpath.replace(/^\/+/, ''));
      }
      continue;
    }
    if (existing) {
      if (existing.isDirectory()) throw new UfsError(`cannot copy to ${cpath}: it is a directory`);
      fs.unlinkSync(host);
    }
    if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(e.abs), host);
      fs.lchownSync(host, uid, gid);
      fs.lutimesSync(host, st.atime, st.mtime);
    } else if (st.isFile()) {
      fs.copyFileSync(e.abs, host);
      fs.chmodSync(host, modeOf(st));
      fs.lchownSync(host, uid, gid);
      fs.utimesSync(host, st.atime, st.mtime);
    }
    // sockets, devices and fifos in a context are skipped, as Docker's tar of it does
    opts.kept?.add(cpath.replace(/^\/+/, ''));
  }
  // Directory times last, deepest first: writing into them changed them.
  for (const [dir, st] of dirTimes.reverse()) fs.utimesSync(dir, st.atime, st.mtime);
}

// Writes a here-document (COPY <<EOF /file) as a regular file.
export function writeFileInRoot(root: string, dest: string, content: string, opts: CopyOptions & { mtimeSec: number }): void {
  const owner = opts.owner ?? { uid: 0, gid: 0 };
  mkdirInRoot(root, path.posix.dirname(dest), owner.uid, owner.gid, opts.dirMtimeSec);
  const host = path.join(inRoot(root, path.posix.dirname(dest)), path.posix.basename(dest));
  const existing = lstatOrNull(host);
  if (existing?.isDirectory()) throw new UfsError(`cannot copy to ${dest}: it is a directory`);
  if (existing) fs.unlinkSync(host);
  fs.writeFileSync(host, content, { mode: 0o644 });
  fs.chmodSync(host, opts.chmod ?? 0o644);
  fs.lchownSync(host, owner.uid, owner.gid);
  fs.utimesSync(host, opts.mtimeSec, opts.mtimeSec);
}

// Is container path `p` an existing directory in the root?
export function isDirInRoot(root: string, p: string): boolean {
  try {
    return fs.statSync(inRoot(root, p)).isDirectory();
  } catch {
    return false;
  }
}

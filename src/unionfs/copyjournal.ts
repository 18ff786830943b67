// The journal of background copy-ups (copyup.ts, "Background copy-up").
//
// While a big file's data is copied up in the background, the upper file is already in place
// at its full size. Its journal entry is a hard link to it in the work dir (`copying.*`), with
// two xattrs on the file: trusted.ufs.copysrc (the lower file's host path) and
// trusted.ufs.copied (how many bytes from the start are in place; the copier updates it before
// it lets a write land in them). The copier holds an flock on the file while it runs, and when
// done removes the xattrs, then the entry, then the lock.
//
// settleCopies is how anyone who reads an upper directory's data (commit, a new server of the
// same upper) makes sure it is whole: it waits for each running copy, and finishes a copy whose
// server died, from the recorded progress on (the bytes before it may hold writes).
import nodeFs from 'node:fs';
import { sys, LOCK_EX, LOCK_NB } from '../sys/index.js';
import { fsError, hasCode } from './errors.js';
import { closeFd, fstatFd, getXattr, hfs as fs, lstatOrNull, openFd, removeXattr, setTimes } from './hostfs.js';
import { WORK_DIR, newTempName } from './whiteout.js';

export const COPY_JOURNAL_PREFIX = 'copying.';
export const XATTR_COPYSRC = 'trusted.ufs.copysrc';
export const XATTR_COPIED = 'trusted.ufs.copied';

const C = fs.constants;
const CHUNK = 1 << 20;

export function journalPath(upperRoot: string): string {
  return `${upperRoot}/${WORK_DIR}/${COPY_JOURNAL_PREFIX}${newTempName()}`;
}

// Waits for (or, with `wait: false`, refuses with EBUSY) the background copies still running
// on this upper, and finishes those left by a server that died. Returns how many it finished.
export async function settleCopies(upperRoot: string, opts: { wait: boolean }): Promise<number> {
  const dir = `${upperRoot}/${WORK_DIR}`;
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith(COPY_JOURNAL_PREFIX));
  } catch (err) {
    if (hasCode(err, 'ENOENT', 'ENOTDIR')) return 0;
    throw err;
  }
  let finished = 0;
  for (const name of names) {
    const entry = `${dir}/${name}`;
    let fd: number;
    try {
      fd = openFd(entry, C.O_RDWR | C.O_NOFOLLOW | C.O_NOCTTY);
    } catch (err) {
      if (hasCode(err, 'ENOENT')) continue; // finished meanwhile
      throw err;
    }
    try {
      if (!sys.flock(fd, LOCK_EX | LOCK_NB)) {
        if (!opts.wait) throw fsError('EBUSY', `a background copy-up is still running in ${upperRoot} (another server of this upper?)`);
        await sys.flockWait(fd, LOCK_EX);
      }
      const now = lstatOrNull(entry);
      if (!now || now.ino !== fstatFd(fd).ino) continue; // finished and removed meanwhile
      const src = getXattr(entry, XATTR_COPYSRC);
      if (src !== undefined) {
        const before = fstatFd(fd);
        finishCopy(fd, src.toString('latin1'), Number(getXattr(entry, XATTR_COPIED)?.toString() ?? '0'));
        setTimes(entry, before.atimeNs, before.mtimeNs); // the copier kept the mtime a finished copy has
        removeXattr(entry, XATTR_COPYSRC);
        if (getXattr(entry, XATTR_COPIED) !== undefined) removeXattr(entry, XATTR_COPIED);
        finished++;
      }
      fs.unlinkSync(entry);
    } finally {
      closeFd(fd);
    }
  }
  return finished;
}

// Copies the lower file's bytes from `from` to its end into `fd`.
function finishCopy(fd: number, src: string, from: number): void {
  if (!Number.isSafeInteger(from) || from < 0) throw fsError('EIO', `background copy-up journal: bad progress ${from}`);
  const sfd = openFd(src, C.O_RDONLY | C.O_NOFOLLOW | C.O_NOCTTY);
  try {
    const size = Number(fstatFd(sfd).size);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = from; pos < size;) {
      const n = nodeFs.readSync(sfd, buf, 0, Math.min(CHUNK, size - pos), pos);
      if (n === 0) throw fsError('EIO', `background copy-up: ${src} ended at ${pos} of ${size} bytes`);
      let done = 0;
      while (done < n) done += nodeFs.writeSync(fd, buf, done, n - done, pos + done);
      pos += n;
    }
  } finally {
    closeFd(sfd);
  }
}

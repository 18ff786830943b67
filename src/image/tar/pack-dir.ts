// A directory as a deterministic layer tar (commit): names in byte order, parents before
// children, numeric owners, empty uname/gname, ns mtimes (pax where not whole seconds), no
// atime/ctime, hard links within the tree as link entries, xattrs as SCHILY.xattr pax records.
// Whiteouts are plain files and go in as they are. Skipped: the union's temp names
// (.wh..wh..ufs.*), its private xattrs (trusted.ufs.*) and sockets (as Docker does).
import fs from 'node:fs';
import { UfsError } from '../../common/errors.js';
import { devMajor, devMinor, listXattrsSync } from '../native.js';
import type { TarType } from './reader.js';
import { packTar, type WriteEntry, type WriteHeader } from './writer.js';

const READ_CHUNK = 1 << 20;

export function skipUnionTemp(name: string): boolean {
  return name.startsWith('.wh..wh..ufs.');
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function typeOf(st: fs.BigIntStats): TarType | null {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return null; // socket
}

export function tarDirectory(root: string): AsyncGenerator<Buffer> {
  return packTar(entries(root));
}

function* entries(root: string): Generator<WriteEntry> {
  const links = new Map<string, string>(); // dev:ino -> first name
  // Depth-first, pre-order, children sorted: the order Go's filepath.Walk gives Docker.
  const stack: string[] = sortedChildren(root, '').reverse();
  while (stack.length) {
    const rel = stack.pop()!;
    const file = `${root}/${rel}`;
    const st = fs.lstatSync(file, { bigint: true });
    const type = typeOf(st);
    if (!type) continue;
    const h: WriteHeader = {
      name: rel,
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      // Whole seconds, as Docker writes layers: no PAX record per file just for the
      // fraction, so layers stay small and the same tree gives the same diff_id.
      mtimeSec: Number(st.mtimeNs / 1_000_000_000n),
    };
    const xattrs = listXattrsSync(file).filter(([n]) => !n.startsWith('trusted.ufs.'));
    if (xattrs.length) h.xattrs = xattrs.sort((a, b) => byBytes(a[0], b[0]));
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        yield { header: { ...h, type: 'link', linkname: first } };
        continue;
      }
      links.set(key, rel);
    }
    if (type === 'symlink') h.linkname = fs.readlinkSync(file);
    if (type === 'char' || type === 'block') {
      h.devmajor = devMajor(Number(st.rdev));
      h.devminor = devMinor(Number(st.rdev));
    }
    if (type === 'dir') {
      yield { header: h };
      const kids = sortedChildren(root, rel);
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
      continue;
    }
    if (type === 'file') h.size = Number(st.size);
    yield { header: h, ...(type === 'file' ? { body: fileBody(file, rel, h.size!) } : {}) };
  }
}

// Exactly `size` bytes, each chunk a fresh buffer (the tar stream holds on to them).
function* fileBody(file: string, rel: string, size: number): Generator<Buffer> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    for (let left = size; left > 0; ) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) throw new UfsError(`${rel}: file shrank while being read`);
      left -= n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
}

// Names are read as bytes: one that is not UTF-8 (the union keeps such names byte for byte)
// cannot be written by this writer yet, and is refused by name rather than mangled.
function utf8Names(dir: string, rel: string): string[] {
  return fs.readdirSync(dir, { encoding: 'buffer' }).map((b) => {
    const name = b.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(b)) {
      const shown = b.toString('latin1').replace(/[\x80-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
      throw new UfsError(`${rel === '' ? '' : `${rel}/`}${shown}: the file name is not UTF-8, which commit cannot write yet`);
    }
    return name;
  });
}

function sortedChildren(root: string, rel: string): string[] {
  const dir = rel === '' ? root : `${root}/${rel}`;
  return utf8Names(dir, rel)
    .filter((n) => !skipUnionTemp(n))
    .sort(byBytes)
    .map((n) => (rel === '' ? n : `${rel}/${n}`));
}

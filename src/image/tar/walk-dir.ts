// The deterministic walk of a directory as layer tar entries (pack-dir's tar and commit's
// copy share it, so both give the same diff_id): names in byte order, parents before
// children, numeric owners, whole-second mtimes (as Docker writes layers: no pax record per
// file for a fraction), hard links within the tree as link entries to the first name,
// xattrs in name order. Whiteouts are plain files and go in as they are. Skipped: the
// union's temp names (.wh..wh..ufs.*), its private xattrs (trusted.ufs.*) and sockets (as
// Docker does). Names are byte strings (tar/bytes.ts): every name the directory has is kept.
import fs from 'node:fs';
import { devMajor, devMinor, listXattrsSync } from '../native.js';
import { byteName, nameBytes } from './bytes.js';
import type { TarType } from './reader.js';
import type { WriteHeader } from './writer.js';

export interface DirEntry {
  header: WriteHeader; // for a 'link', the header of the link entry (linkname: the first name)
  file: Buffer; // the host path
}

export function skipUnionTemp(name: string): boolean {
  return name.startsWith('.wh..wh..ufs.');
}

function byBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0; // byte strings: code unit order is byte order
}

// The tar type of a file as lstat saw it; undefined for a socket, which no archive holds
// (Docker's leave them out too). Shared with `ufs cp` (runtime/cp.ts).
export function tarTypeOf(st: fs.Stats | fs.BigIntStats): TarType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return undefined;
}

export function* walkDirectory(root: string): Generator<DirEntry> {
  const rootBytes = byteName(Buffer.from(root));
  const links = new Map<string, string>(); // dev:ino -> first name
  // Depth-first, pre-order, children sorted: the order Go's filepath.Walk gives Docker.
  const stack: string[] = sortedChildren(rootBytes, '').reverse();
  while (stack.length) {
    const rel = stack.pop()!;
    const file = nameBytes(`${rootBytes}/${rel}`);
    const st = fs.lstatSync(file, { bigint: true });
    const type = tarTypeOf(st);
    if (!type) continue;
    const h: WriteHeader = {
      name: rel,
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeSec: Number(st.mtimeNs / 1_000_000_000n),
    };
    const xattrs = listXattrsSync(file).filter(([n]) => !n.startsWith('trusted.ufs.'));
    if (xattrs.length) h.xattrs = xattrs.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
    if (type !== 'dir' && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = links.get(key);
      if (first !== undefined) {
        yield { header: { ...h, type: 'link', linkname: first }, file };
        continue;
      }
      links.set(key, rel);
    }
    if (type === 'symlink') h.linkname = byteName(fs.readlinkSync(file, { encoding: 'buffer' }));
    if (type === 'char' || type === 'block') {
      h.devmajor = devMajor(Number(st.rdev));
      h.devminor = devMinor(Number(st.rdev));
    }
    if (type === 'file') h.size = Number(st.size);
    yield { header: h, file };
    if (type === 'dir') {
      const kids = sortedChildren(rootBytes, rel);
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
    }
  }
}

function sortedChildren(rootBytes: string, rel: string): string[] {
  const dir = nameBytes(rel === '' ? rootBytes : `${rootBytes}/${rel}`);
  return fs
    .readdirSync(dir, { encoding: 'buffer' })
    .map(byteName)
    .filter((n) => !skipUnionTemp(n))
    .sort(byBytes)
    .map((n) => (rel === '' ? n : `${rel}/${n}`));
}

// Unpacks a layer tar into a fresh directory: the layer directory IS the changeset, so OCI
// whiteouts (.wh.NAME, .wh..wh..opq) land as the plain files they are in the tar.
// This is the store's first line of defence. Every entry name is normalised, and refused when
// it is absolute, climbs out with '..', passes through a symlink (or any non-directory)
// created by an earlier entry, or is a hard link to something outside or missing, or has a
// type we cannot reproduce. Nothing is ever followed: the parent chain of every entry is
// known from our own bookkeeping (the directory starts empty and only we write to it), files
// are created with O_EXCL|O_NOFOLLOW, times and owners set with the l* calls.
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import { isPrivateXattr } from '../unionfs/inode.js'; // not the index: unpack workers load little
import { mknodSync, setTimesNsSync, setXattrSync } from './native.js';
import { byteName, nameBytes, showName } from './tar/bytes.js';
import { type TarEntry, type TarHeader, TarFormatError } from './tar/reader.js';

export interface UnpackStats {
  size: number; // bytes of regular file content
  entries: number;
}

type Kind = 'dir' | 'file' | 'symlink' | 'other';

interface DirMeta {
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint | null; // null: implicit directory, keeps "now"
}

const WRITE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
const MY_UID = process.getuid?.();
const MY_GID = process.getgid?.();
const IS_ROOT = MY_UID === 0;
const UMASK = process.umask();

export class UnsafeEntryError extends UfsError {}

function writeAll(fd: number, b: Buffer): void {
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}

// An entry's name for messages.
function quoted(raw: string): string {
  return JSON.stringify(showName(raw));
}

// '' for the layer root ('/', '.', './'); throws on absolute or escaping names. Names are
// byte strings (tar/bytes.ts).
export function normalizeEntryName(raw: string): string {
  if (raw.includes('\0')) throw new UnsafeEntryError(`entry ${quoted(raw)}: name contains a NUL byte`);
  let name = raw;
  if (/^\/+$/.test(name)) return ''; // the root itself, as umoci writes it
  if (name.startsWith('/')) throw new UnsafeEntryError(`entry ${quoted(raw)}: absolute path`);
  while (name.startsWith('./')) name = name.slice(2);
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new UnsafeEntryError(`entry ${quoted(raw)}: path escapes the layer ('..')`);
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

export class Unpacker {
  private kinds = new Map<string, Kind>();
  private dirs = new Map<string, DirMeta>();
  private stats: UnpackStats = { size: 0, entries: 0 };

  private readonly destBytes: string;
  private readonly setgidDest: boolean;

  constructor(private readonly dest: string) {
    this.kinds.set('', 'dir');
    this.destBytes = byteName(Buffer.from(dest));
    this.setgidDest = (fs.statSync(dest).mode & 0o2000) !== 0;
  }

  async unpack(entries: AsyncIterable<TarEntry>): Promise<UnpackStats> {
    try {
      for await (const entry of entries) await this.entry(entry);
    } catch (err) {
      if (err instanceof TarFormatError) throw new UfsError(`bad layer tar: ${err.message}`);
      throw err;
    }
    this.finishDirs();
    return this.stats;
  }

  private abs(rel: string): Buffer {
    return nameBytes(rel === '' ? this.destBytes : `${this.destBytes}/${rel}`);
  }

  // Makes sure every ancestor of `rel` is a directory made by this unpack.
  private ensureParents(rel: string, raw: string): void {
    let at = 0;
    for (;;) {
      const slash = rel.indexOf('/', at);
      if (slash < 0) return;
      const dir = rel.slice(0, slash);
      at = slash + 1;
      const kind = this.kinds.get(dir);
      if (kind === 'dir') continue;
      if (kind === 'symlink') throw new UnsafeEntryError(`entry ${quoted(raw)}: path passes through the symlink ${showName(dir)}`);
      if (kind !== undefined) throw new UnsafeEntryError(`entry ${quoted(raw)}: ${showName(dir)} is not a directory`);
      fs.mkdirSync(this.abs(dir), 0o755);
      this.kinds.set(dir, 'dir');
      this.dirs.set(dir, { mode: 0o755, uid: 0, gid: 0, mtimeNs: null });
    }
  }

  // A later entry with the same name replaces an earlier one (tar semantics), except that a
  // directory over a directory only updates its metadata.
  private clear(rel: string, type: TarHeader['type']): void {
    const kind = this.kinds.get(rel);
    if (kind === undefined) return;
    if (kind === 'dir' && type === 'dir') return;
    if (kind === 'dir') {
      if (rel === '') throw new UnsafeEntryError(`entry for the layer root is not a directory`);
      fs.rmSync(this.abs(rel), { recursive: true, force: true });
      const prefix = `${rel}/`;
      for (const k of [...this.kinds.keys()]) if (k.startsWith(prefix)) this.kinds.delete(k);
      for (const k of [...this.dirs.keys()]) if (k.startsWith(prefix)) this.dirs.delete(k);
      this.dirs.delete(rel);
    } else {
      fs.unlinkSync(this.abs(rel));
    }
    this.kinds.delete(rel);
  }

  private async entry(entry: TarEntry): Promise<void> {
    const h = entry.header;
    const raw = h.name;
    const rel = normalizeEntryName(raw);
    if (rel === '' && h.type !== 'dir') throw new UnsafeEntryError(`entry ${quoted(raw)}: the layer root must be a directory`);
    this.ensureParents(rel, raw);
    this.clear(rel, h.type);
    const file = this.abs(rel);
    this.stats.entries++;

    try {
      switch (h.type) {
        case 'dir':
          if (!this.kinds.has(rel)) fs.mkdirSync(file, 0o700);
          this.kinds.set(rel, 'dir');
          this.dirs.set(rel, { mode: h.mode, uid: h.uid, gid: h.gid, mtimeNs: h.mtimeNs });
          this.owner(file, h, false);
          this.xattrs(file, h, raw);
          return; // mode and times once its contents are in
        case 'file': {
          // Few system calls per file (layers have thousands): created with its final mode
          // when the umask keeps it, chowned only when it is not ours already, times set on
          // the descriptor when they are whole seconds (a double holds them exactly).
          const direct = (h.mode & 0o7000) === 0 && (h.mode & UMASK) === 0;
          const fd = fs.openSync(file, WRITE_FLAGS, direct ? h.mode : 0o600);
          this.kinds.set(rel, 'file');
          const wholeSec = h.mtimeNs % 1_000_000_000n === 0n;
          try {
            const whole = entry.wholeBody?.();
            if (whole) writeAll(fd, whole);
            else for await (const chunk of entry.body()) writeAll(fd, chunk);
            if ((IS_ROOT || h.uid === MY_UID) && !this.ownedAs(h)) fs.fchownSync(fd, h.uid, h.gid);
            if (!direct) fs.fchmodSync(fd, h.mode); // after chown, which clears setuid/setgid
            if (wholeSec && h.xattrs.size === 0) {
              const sec = Number(h.mtimeNs / 1_000_000_000n);
              fs.futimesSync(fd, sec, sec);
            }
          } finally {
            fs.closeSync(fd);
          }
          this.stats.size += h.size;
          if (h.xattrs.size) {
            this.xattrs(file, h, raw);
            setTimesNsSync(file, h.mtimeNs, false);
          } else if (!wholeSec) setTimesNsSync(file, h.mtimeNs, false);
          return;
        }
        case 'symlink':
          fs.symlinkSync(nameBytes(h.linkname), file);
          this.kinds.set(rel, 'symlink');
          this.owner(file, h, true);
          this.xattrs(file, h, raw);
          setTimesNsSync(file, h.mtimeNs, true);
          return;
        case 'link': {
          let target: string;
          try {
            target = normalizeEntryName(h.linkname);
          } catch (err) {
            const why = err instanceof UnsafeEntryError ? err.message.replace(/^entry "(?:[^"\\]|\\.)*": /, '') : String(err);
            throw new UnsafeEntryError(`entry ${quoted(raw)}: hard link target ${quoted(h.linkname)}: ${why}`);
          }
          const kind = this.kinds.get(target);
          if (target === '' || kind === 'dir') throw new UnsafeEntryError(`entry ${quoted(raw)}: hard link to a directory`);
          if (kind === undefined) {
            throw new UnsafeEntryError(`entry ${quoted(raw)}: hard link target ${quoted(h.linkname)} is not in this layer`);
          }
          if (target === rel) throw new UnsafeEntryError(`entry ${quoted(raw)}: hard link to itself`);
          fs.linkSync(this.abs(target), file);
          this.kinds.set(rel, kind);
          return;
        }
        case 'char':
        case 'block':
        case 'fifo':
          mknodSync(file, h.type, 0o600, h.devmajor, h.devminor);
          this.kinds.set(rel, 'other');
          this.owner(file, h, false);
          fs.chmodSync(file, h.mode);
          this.xattrs(file, h, raw);
          setTimesNsSync(file, h.mtimeNs, false);
          return;
      }
    } catch (err) {
      if (err instanceof UfsError) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      throw new UfsError(`entry ${quoted(raw)}: ${msg.split('\n')[0]}`);
    }
  }

  // Would a file we create carry these owners already? (Not under a setgid directory.)
  private ownedAs(h: TarHeader): boolean {
    return h.uid === MY_UID && h.gid === MY_GID && !this.setgidDest;
  }

  private owner(file: Buffer, h: TarHeader, isLink: boolean): void {
    if (!IS_ROOT && h.uid !== process.getuid?.()) return; // rootless: keep our own ids
    if (isLink) fs.lchownSync(file, h.uid, h.gid);
    else fs.chownSync(file, h.uid, h.gid);
  }

  private xattrs(file: Buffer, h: TarHeader, raw: string): void {
    for (const [name, value] of h.xattrs) {
      if (isPrivateXattr(name)) continue; // the union's or overlayfs's own metadata: never from an image
      try {
        setXattrSync(file, name, value);
      } catch (err) {
        // user.* cannot exist on symlinks or devices; unprivileged cannot set trusted.*
        // (dropped quietly, as the image's other metadata this store cannot hold)
      }
    }
  }

  // Directory modes and times last, deepest first, so writing their contents cannot disturb them.
  private finishDirs(): void {
    const list = [...this.dirs.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [rel, meta] of list) {
      const file = this.abs(rel);
      fs.chmodSync(file, meta.mode);
      if (meta.mtimeNs !== null) setTimesNsSync(file, meta.mtimeNs, false);
    }
    if (!this.dirs.has('')) fs.chmodSync(this.dest, 0o755);
  }
}

export function unpackEntries(entries: AsyncIterable<TarEntry>, dest: string): Promise<UnpackStats> {
  return new Unpacker(path.resolve(dest)).unpack(entries);
}

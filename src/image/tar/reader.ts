// Reading tars, parsed here: ustar, GNU (long names 'L'/'N', long link names 'K') and pax
// (local 'x' and global 'g' records, a later global record adding to the earlier ones; path,
// linkpath, size, uid, gid, ns mtime, SCHILY.xattr.* and LIBARCHIVE.xattr.* xattrs as bytes),
// old v7 headers (no magic), and archives that end right after the last body, without
// padding or end blocks (umoci 0.4). Zero blocks are skipped. Sparse files and unknown types
// are refused, naming the entry. Names and link names are bytes (tar/bytes.ts byte strings),
// from ustar, GNU long names and pax path/linkpath records alike: pax says UTF-8, but tars in
// the wild (GNU tar in a C locale, Go's writer) put a name's raw bytes there, and a UTF-8
// name's bytes are what the file system stores either way.
// One pass, synchronous per input chunk: bodies are subarrays of the input chunks, and the
// input is read only as fast as entries are consumed. Nothing of a chunk is kept once the
// next is asked for: the input may reuse its buffers. Layers have thousands of entries, so
// an entry costs a header parse and no stream machinery.
import { showName } from './bytes.js';

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string; // byte string
  linkname: string; // byte string
  type: TarType;
  mode: number; // permission bits incl. setuid/setgid/sticky (0o7777)
  uid: number;
  gid: number;
  size: number; // body bytes (regular files)
  mtimeNs: bigint;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

export interface TarEntry {
  header: TarHeader;
  // The body; must be consumed (or not at all) before asking for the next entry.
  body(): AsyncGenerator<Buffer>;
  // The whole body at once when the input has it at hand (a small file usually does), read
  // as body() would; else undefined and body() is still to be read. Valid as body()'s chunks.
  wholeBody?(): Buffer | undefined;
}

export class TarFormatError extends Error {}

const BLOCK = 512;
const MAX_EXTENDED = 4 * 1024 * 1024; // pax and GNU long-name bodies
const EMPTY = Buffer.alloc(0);
const TYPES: Partial<Record<number, TarType>> = {
  0x30: 'file',
  0x00: 'file',
  0x37: 'file', // contiguous file
  0x31: 'link',
  0x32: 'symlink',
  0x33: 'char',
  0x34: 'block',
  0x35: 'dir',
  0x36: 'fifo',
  0x44: 'dir', // 'D', GNU dumpdir: a directory with a listing as its body
};
// Types without a body whatever their size field says (POSIX; Go's reader agrees).
const HEADER_ONLY = new Set<TarType>(['dir']);

type Pax = Map<string, string | Buffer>;

function describeFlag(flag: number): string {
  return flag >= 0x21 && flag <= 0x7e ? `'${String.fromCharCode(flag)}'` : `0x${flag.toString(16)}`;
}

// A NUL-terminated field as a byte string.
function field(b: Buffer, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return b.toString('latin1', off, end);
}

// An octal field (leading spaces and NULs skipped, up to a space or NUL), or base-256.
function numeric(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    const first = b[off];
    if (first !== 0x80 && first !== 0xff) return NaN;
    const negative = first === 0xff;
    let n = 0;
    for (let i = 1; i < len; i++) n = n * 256 + (negative ? 0xff - b[off + i]! : b[off + i]!);
    return negative ? -n : n;
  }
  let i = off;
  const end = off + len;
  while (i < end && b[i] === 0x20) i++;
  let stop = i;
  while (stop < end && b[stop] !== 0x20) stop++;
  while (i < stop && b[i] === 0) i++;
  if (i === stop) return 0;
  return parseInt(b.toString('latin1', i, stop), 8);
}

function checksumOf(b: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += b[i]!;
  for (let i = 156; i < BLOCK; i++) sum += b[i]!;
  return sum;
}

// ufs reads path/linkpath as bytes, xattr values as bytes, everything else as UTF-8 text.
function parsePax(buf: Buffer, into: Pax): void {
  while (buf.length) {
    let i = 0;
    while (i < buf.length && buf[i] !== 0x20) i++;
    const len = parseInt(buf.toString('latin1', 0, i), 10);
    if (!len) return;
    const rec = buf.subarray(i + 1, len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq === -1) return;
    const key = rec.toString('utf8', 0, eq);
    const value = rec.subarray(eq + 1);
    if (key.startsWith('SCHILY.xattr.') || key.startsWith('LIBARCHIVE.xattr.')) into.set(key, Buffer.from(value));
    else if (key === 'path' || key === 'linkpath') into.set(key, value.toString('latin1', 0, value.length));
    else into.set(key, value.toString('utf8'));
    buf = buf.subarray(len);
  }
}

function text(v: string | Buffer | undefined): string | undefined {
  return v === undefined ? undefined : typeof v === 'string' ? v : v.toString('utf8');
}

function parseTimeNs(s: string): bigint | null {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s.trim());
  if (!m) return null;
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt(((m[3] ?? '') + '000000000').slice(0, 9));
  return m[1] ? -ns : ns;
}

const isId = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

interface Raw {
  name: string;
  linkname: string;
  flag: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number; // seconds
  devmajor: number;
  devminor: number;
}

// One header block, or null for a zero block; throws on a bad checksum.
function decodeBlock(b: Buffer): Raw | null {
  const sum = checksumOf(b);
  if (sum === 8 * 0x20) return null;
  if (sum !== numeric(b, 148, 8)) throw new TarFormatError('invalid tar header checksum (not a tar archive, or corrupt)');
  let name = field(b, 0, 100);
  const ustar = b.toString('latin1', 257, 263) === 'ustar\x00';
  if (ustar && b[345]) name = `${field(b, 345, 155)}/${name}`;
  let flag = b[156]!;
  if ((flag === 0 || flag === 0x30) && name.endsWith('/')) flag = 0x35; // old tars mark directories by the slash
  return {
    name,
    linkname: field(b, 157, 100),
    flag,
    mode: numeric(b, 100, 8),
    uid: numeric(b, 108, 8),
    gid: numeric(b, 116, 8),
    size: numeric(b, 124, 12),
    mtime: numeric(b, 136, 12),
    devmajor: numeric(b, 329, 8),
    devminor: numeric(b, 337, 8),
  };
}

function toHeader(r: Raw, pax: Pax | null): TarHeader {
  const fail = (what: string) => new TarFormatError(`entry ${JSON.stringify(showName(r.name))}: ${what}`);
  const type = TYPES[r.flag];
  if (pax && [...pax.keys()].some((k) => k.startsWith('GNU.sparse.'))) throw fail('sparse file');
  if (!type) throw fail(`unknown entry type ${describeFlag(r.flag)}`);
  const paxUid = text(pax?.get('uid'));
  const paxGid = text(pax?.get('gid'));
  const uid = paxUid !== undefined ? Number(paxUid) : r.uid;
  const gid = paxGid !== undefined ? Number(paxGid) : r.gid;
  if (!isId(uid) || !isId(gid)) throw fail('invalid uid/gid');
  if (!isId(r.size)) throw fail('invalid size');
  const paxTime = text(pax?.get('mtime'));
  const mtimeNs = paxTime !== undefined ? parseTimeNs(paxTime) : Number.isFinite(r.mtime) ? BigInt(Math.trunc(r.mtime)) * 1_000_000_000n : null;
  if (mtimeNs === null) throw fail('invalid mtime');
  const dev = type === 'char' || type === 'block';
  if (dev && (!isId(r.devmajor) || !isId(r.devminor))) throw fail('invalid device number');

  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of pax ?? []) {
    if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice(13), value as Buffer);
    else if (key.startsWith('LIBARCHIVE.xattr.')) {
      let name: string;
      try {
        name = decodeURIComponent(key.slice(17));
      } catch {
        throw fail(`invalid xattr name ${JSON.stringify(key)}`);
      }
      xattrs.set(name, Buffer.from((value as Buffer).toString('utf8'), 'base64'));
    }
  }
  return {
    name: r.name,
    linkname: r.linkname,
    type,
    mode: Number.isFinite(r.mode) ? r.mode & 0o7777 : 0,
    uid,
    gid,
    size: type === 'file' ? r.size : 0,
    mtimeNs,
    devmajor: dev ? r.devmajor : 0,
    devminor: dev ? r.devminor : 0,
    xattrs,
  };
}

const unexpectedEnd = () => new TarFormatError('unexpected end of tar data');
const padOf = (n: number) => (BLOCK - (n % BLOCK)) % BLOCK;

export async function* readTar(input: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarEntry> {
  const it = input[Symbol.asyncIterator]();
  let buf: Buffer = EMPTY; // read, not yet consumed
  let ended = false;
  const next = async (): Promise<Buffer | null> => {
    if (ended) return null;
    const r = await it.next();
    if (r.done) {
      ended = true;
      return null;
    }
    const v = r.value;
    return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  };
  // Exactly n bytes (copied only when they span chunks), or null at the end of the input.
  // A chunk of the input is valid only until the next is asked for (the layer reader uses
  // its buffers again), so what spans chunks is copied as it is read.
  const take = async (n: number): Promise<Buffer | null> => {
    if (buf.length >= n) {
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let have = buf.copy(out, 0);
    buf = EMPTY;
    while (have < n) {
      const c = await next();
      if (!c) {
        if (have > 0) throw unexpectedEnd();
        return null;
      }
      const k = Math.min(n - have, c.length);
      c.copy(out, have, 0, k);
      have += k;
      buf = c.subarray(k);
    }
    return out;
  };
  // Skips n bytes; false if the input ended first.
  const skip = async (n: number): Promise<boolean> => {
    while (n > 0) {
      if (buf.length === 0) {
        const c = await next();
        if (!c) return false;
        buf = c;
      }
      const k = Math.min(n, buf.length);
      buf = buf.subarray(k);
      n -= k;
    }
    return true;
  };
  // A body (or its padding) may be cut off only where the input ends after it.
  const skipPadding = async (n: number) => {
    await skip(padOf(n)); // the input may end inside it (umoci 0.4)
  };

  let global: Pax | null = null;
  let local: Pax | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;
  for (;;) {
    const block = await take(BLOCK);
    if (!block) break;
    const raw = decodeBlock(block);
    if (!raw) continue;
    const f = raw.flag;
    if (f === 0x78 || f === 0x67 || f === 0x4c || f === 0x4e || f === 0x4b) {
      // 'x' pax, 'g' global pax, 'L'/'N' GNU long name, 'K' GNU long link name
      if (!(raw.size >= 0)) throw new TarFormatError('invalid size in tar header');
      if (raw.size > MAX_EXTENDED) throw new TarFormatError('tar extended header too large');
      const body = raw.size === 0 ? EMPTY : await take(raw.size);
      if (!body) throw unexpectedEnd();
      if (f === 0x78) {
        local = new Map(global ?? []);
        parsePax(body, local);
      } else if (f === 0x67) {
        global = new Map(global ?? []);
        parsePax(body, global);
      } else if (f === 0x4b) longLink = field(body, 0, body.length);
      else longName = field(body, 0, body.length);
      if (!(await skip(padOf(raw.size)))) throw unexpectedEnd();
      continue;
    }
    if (longName !== null) raw.name = longName;
    if (longLink !== null) raw.linkname = longLink;
    longName = longLink = null;
    const pax = local ?? global;
    local = null;
    if (pax) {
      const p = pax.get('path');
      const l = pax.get('linkpath');
      const s = text(pax.get('size'));
      if (p) raw.name = p as string;
      if (l) raw.linkname = l as string;
      if (s) raw.size = parseInt(s, 10);
    }
    if (!(raw.size >= 0)) throw new TarFormatError('invalid size in tar header');
    const header = toHeader(raw, pax);
    const type = TYPES[raw.flag]!;
    let left = HEADER_ONLY.has(type) ? 0 : raw.size; // body bytes in the archive (any type)
    const total = left;
    let started = false;
    yield {
      header,
      body: async function* () {
        if (started) throw new Error('tar entry body read twice');
        started = true;
        if (header.type !== 'file') return;
        while (left > 0) {
          if (buf.length === 0) {
            const c = await next();
            if (!c) throw unexpectedEnd();
            buf = c;
          }
          const k = Math.min(left, buf.length);
          const out = buf.subarray(0, k);
          buf = buf.subarray(k);
          left -= k;
          yield out;
        }
      },
      wholeBody: () => {
        if (started || header.type !== 'file' || buf.length < left) return undefined;
        started = true;
        const out = buf.subarray(0, left);
        buf = buf.subarray(left);
        left = 0;
        return out;
      },
    };
    if (left > 0 && !(await skip(left))) throw unexpectedEnd();
    left = 0;
    if (total > 0) await skipPadding(total);
  }
  if (longName !== null || longLink !== null || local !== null) throw unexpectedEnd();
  // (a reader that stops early leaves the input where it is: its owner ends it)
}

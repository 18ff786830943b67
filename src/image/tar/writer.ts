// Deterministic tars, written here byte for byte: ustar headers, with a pax header before the
// entry when a field does not fit (a non-ASCII or long name, a long link name, big ids, an
// mtime with a fraction or out of range, xattrs as SCHILY.xattr.* records). Fixed fields:
// numeric owners, empty uname/gname, no atime/ctime. The layout is the one tar-stream's pack()
// gave the layers made before (ustar prefix split, 'PaxHeader' as the name of both headers of a
// pax entry, pax records path, linkpath, then the rest in order), so the same tree keeps its
// diff_id. Names and link names are byte strings (tar/bytes.ts) and go in as their bytes.
import { isAscii, nameBytes } from './bytes.js';
import type { TarType } from './reader.js';

export interface WriteHeader {
  name: string; // byte string, relative, no leading './'; directories without the trailing '/'
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  mtimeSec: number;
  mtimeNs?: bigint; // when given, wins over mtimeSec
  linkname?: string; // byte string
  devmajor?: number;
  devminor?: number;
  xattrs?: [string, Buffer][]; // sorted by the caller
}

export interface WriteEntry {
  header: WriteHeader;
  body?: Iterable<Buffer> | AsyncIterable<Buffer>; // regular files: exactly header.size bytes
}

const FLAGS: Record<TarType | 'pax', number> = { file: 0x30, link: 0x31, symlink: 0x32, char: 0x33, block: 0x34, dir: 0x35, fifo: 0x36, pax: 0x78 };
const MAX_ID = 0o777777; // ustar fields of 6 octal digits,
const MAX_SEC = 0x7fffffff; // and the mtime as a 32-bit integer
const PAX_NAME = 'PaxHeader';

export const TAR_END = Buffer.alloc(1024);
const ZEROS = Buffer.alloc(512);

export function padding(size: number): Buffer {
  return ZEROS.subarray(0, (512 - (size % 512)) % 512);
}

// n octal digits and a space; all sevens when the value does not fit.
function octal(v: number, n: number): string {
  const s = v.toString(8);
  return s.length > n ? `${'7'.repeat(n)} ` : `${s.padStart(n, '0')} `;
}

interface Fields {
  name: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: number;
  flag: number;
  devmajor: number;
  devminor: number;
}

// One ustar block, or null when the name or link name does not fit it.
function ustar(f: Fields): Buffer | null {
  let name = f.name;
  let prefix = '';
  if (!isAscii(name)) return null;
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return null;
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (name.length > 100 || prefix.length > 155 || f.linkname.length > 100) return null;
  const b = Buffer.alloc(512);
  b.write(name, 0, 'latin1');
  b.write(octal(f.mode & 0o7777, 6), 100, 'latin1');
  b.write(octal(f.uid, 6), 108, 'latin1');
  b.write(octal(f.gid, 6), 116, 'latin1');
  if (f.size.toString(8).length > 11) {
    // base-256, big-endian, for sizes of 8 GiB and more
    b[124] = 0x80;
    let n = f.size;
    for (let i = 11; i > 0; i--) {
      b[124 + i] = n % 256;
      n = Math.floor(n / 256);
    }
  } else {
    b.write(octal(f.size, 11), 124, 'latin1');
  }
  b.write(octal(f.mtimeSec, 11), 136, 'latin1');
  b[156] = f.flag;
  if (f.linkname) b.write(f.linkname, 157, 'latin1');
  b.write('ustar\x0000', 257, 'latin1');
  b.write(octal(f.devmajor, 6), 329, 'latin1');
  b.write(octal(f.devminor, 6), 337, 'latin1');
  if (prefix) b.write(prefix, 345, 'latin1');
  let sum = 8 * 32; // the checksum field counts as spaces
  for (let i = 0; i < 148; i++) sum += b[i]!;
  for (let i = 156; i < 512; i++) sum += b[i]!;
  b.write(octal(sum, 6), 148, 'latin1');
  return b;
}

// A pax record's length prefix counts itself.
function recordLength(len: number): number {
  let digits = Math.floor(Math.log(len) / Math.log(10)) + 1;
  if (len + digits >= Math.pow(10, digits)) digits++;
  return len + digits;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  return Buffer.concat([Buffer.from(String(recordLength(body.length))), body]);
}

function paxTime(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${sign}${abs / 1_000_000_000n}${frac ? `.${frac}` : ''}`;
}

// The header block(s) of one entry: [pax header, records, padding,] ustar header.
export function encodeHeader(h: WriteHeader): Buffer {
  const ns = h.mtimeNs ?? BigInt(h.mtimeSec) * 1_000_000_000n;
  const sec = Number(ns / 1_000_000_000n) - (ns % 1_000_000_000n < 0n ? 1 : 0); // floor
  const pax: [string, Buffer][] = [];
  if (h.uid > MAX_ID) pax.push(['uid', Buffer.from(String(h.uid))]);
  if (h.gid > MAX_ID) pax.push(['gid', Buffer.from(String(h.gid))]);
  if (ns % 1_000_000_000n !== 0n || sec < 0 || sec > MAX_SEC) pax.push(['mtime', Buffer.from(paxTime(ns))]);
  for (const [key, value] of h.xattrs ?? []) pax.push([`SCHILY.xattr.${key}`, value]);
  const f: Fields = {
    name: h.type === 'dir' ? `${h.name}/` : h.name,
    linkname: h.linkname ?? '',
    mode: h.mode,
    uid: Math.min(h.uid, MAX_ID),
    gid: Math.min(h.gid, MAX_ID),
    size: h.type === 'file' ? (h.size ?? 0) : 0,
    mtimeSec: Math.max(0, Math.min(sec, MAX_SEC)),
    flag: FLAGS[h.type],
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  };
  if (pax.length === 0) {
    const plain = ustar(f);
    if (plain) return plain;
  }
  const records = [paxRecord('path', nameBytes(f.name))];
  if (f.linkname) records.push(paxRecord('linkpath', nameBytes(f.linkname)));
  for (const [key, value] of pax) records.push(paxRecord(key, value));
  const body = Buffer.concat(records);
  const linkname = f.linkname ? PAX_NAME : '';
  const head = ustar({ ...f, name: PAX_NAME, linkname, size: body.length, flag: FLAGS.pax })!;
  const entry = ustar({ ...f, name: PAX_NAME, linkname })!;
  return Buffer.concat([head, body, padding(body.length), entry]);
}

// A whole tar (ending with the end-of-archive blocks) as a stream of chunks.
export async function* packTar(entries: Iterable<WriteEntry> | AsyncIterable<WriteEntry>): AsyncGenerator<Buffer> {
  for await (const { header, body } of entries) {
    yield encodeHeader(header);
    if (header.type !== 'file') continue;
    const size = header.size ?? 0;
    let n = 0;
    for await (const chunk of body ?? []) {
      n += chunk.length;
      if (n > size) throw new Error(`tar entry ${header.name}: body larger than its size`);
      yield chunk;
    }
    if (n !== size) throw new Error(`tar entry ${header.name}: body of ${n} bytes, not ${size}`);
    const pad = padding(size);
    if (pad.length) yield pad;
  }
  yield TAR_END;
}

// Deterministic tar headers (POSIX ustar, with a pax record only where ustar cannot say it:
// long or non-ASCII names, big numbers, xattrs). uname/gname are always empty, mtime whole
// seconds, no atime/ctime: the same tree always gives the same bytes, so the same diff_id.
import type { TarType } from './reader.js';

export interface WriteHeader {
  name: string; // relative, no leading './'; directories without the trailing '/'
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  mtimeSec: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: [string, Buffer][]; // sorted by the caller
}

const FLAGS: Record<TarType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const MAX_OCTAL8 = 0o7777777;
const MAX_OCTAL12 = 0o77777777777;

export const TAR_END = Buffer.alloc(1024);

export function padding(size: number): Buffer {
  const n = (512 - (size % 512)) % 512;
  return ZEROS.subarray(0, n);
}
const ZEROS = Buffer.alloc(512);

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
}

function isAscii(s: string): boolean {
  return /^[\x01-\x7f]*$/.test(s);
}

// Splits a long ASCII name into ustar prefix (<=155) and name (<=100), or null.
function splitUstar(name: string): [string, string] | null {
  if (name.length <= 100) return ['', name];
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (prefix.length <= 155 && rest.length <= 100 && rest.length > 0) return [prefix, rest];
    if (prefix.length <= 155) return null;
  }
  return null;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

function block(h: WriteHeader, name: string, prefix: string, linkname: string, size: number, flag: string): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, Math.min(h.uid, MAX_OCTAL8));
  octal(b, 116, 8, Math.min(h.gid, MAX_OCTAL8));
  octal(b, 124, 12, Math.min(size, MAX_OCTAL12));
  octal(b, 136, 12, Math.max(0, Math.min(h.mtimeSec, MAX_OCTAL12)));
  b.write(flag, 156, 1, 'latin1');
  b.write(linkname, 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 8, 'latin1');
  if (h.type === 'char' || h.type === 'block') {
    octal(b, 329, 8, h.devmajor ?? 0);
    octal(b, 337, 8, h.devminor ?? 0);
  }
  b.write(prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

// The header block(s) for one entry: [pax header + pax data +] ustar header.
export function encodeHeader(h: WriteHeader): Buffer {
  const size = h.type === 'file' ? (h.size ?? 0) : 0;
  const fullName = h.type === 'dir' ? `${h.name}/` : h.name;
  const linkname = h.linkname ?? '';
  const records: Buffer[] = [];

  let prefix = '';
  let name = fullName;
  const split = isAscii(fullName) ? splitUstar(fullName) : null;
  if (split) [prefix, name] = split;
  else {
    records.push(paxRecord('path', Buffer.from(fullName, 'utf8')));
    name = asciiTruncate(fullName, 100);
  }
  let link = linkname;
  if (!isAscii(linkname) || linkname.length > 100) {
    records.push(paxRecord('linkpath', Buffer.from(linkname, 'utf8')));
    link = asciiTruncate(linkname, 100);
  }
  if (h.uid > MAX_OCTAL8) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > MAX_OCTAL8) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (size > MAX_OCTAL12) records.push(paxRecord('size', Buffer.from(String(size))));
  if (h.mtimeSec < 0 || h.mtimeSec > MAX_OCTAL12) records.push(paxRecord('mtime', Buffer.from(String(h.mtimeSec))));
  for (const [key, value] of h.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${key}`, value));

  const main = block(h, name, prefix, link, size, FLAGS[h.type]);
  if (records.length === 0) return main;
  const data = Buffer.concat(records);
  const paxName = asciiTruncate(`PaxHeaders/${baseName(h.name)}`, 100);
  const paxHead = block({ ...h, type: 'file', mode: 0o644, uid: 0, gid: 0 }, paxName, '', '', data.length, 'x');
  return Buffer.concat([paxHead, data, padding(data.length), main]);
}

function baseName(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

function asciiTruncate(s: string, n: number): string {
  return s.replace(/[^\x01-\x7f]/g, '_').slice(0, n);
}

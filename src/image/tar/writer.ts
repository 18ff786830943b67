// Deterministic tars through tar-stream's pack() (patched at install so that xattr values are
// written as raw bytes). Fixed fields: numeric owners, empty uname/gname, no atime/ctime; the
// mtime in whole seconds in ustar, plus a pax `mtime` (seconds.nanoseconds) only when it has a
// fraction or does not fit; xattrs as SCHILY.xattr.* pax records, in the caller's order. The
// same tree gives the same bytes, so the same diff_id.
import { pack, type Header, type Pack } from 'tar-stream';
import type { TarType } from './reader.js';

export interface WriteHeader {
  name: string; // relative, no leading './'; directories without the trailing '/'
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  mtimeSec: number;
  mtimeNs?: bigint; // when given, wins over mtimeSec
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: [string, Buffer][]; // sorted by the caller
}

export interface WriteEntry {
  header: WriteHeader;
  body?: Iterable<Buffer> | AsyncIterable<Buffer>; // regular files: exactly header.size bytes
}

const TYPES: Record<TarType, Header['type']> = {
  file: 'file',
  link: 'link',
  symlink: 'symlink',
  char: 'character-device',
  block: 'block-device',
  dir: 'directory',
  fifo: 'fifo',
};
// The mode goes in with its type bits: tar-stream writes the permission bits only, and would
// take a bare 0 (a file with mode 000) for "unset" and make it 0644.
const S_IF: Record<TarType, number> = { file: 0o100000, link: 0o100000, symlink: 0o120000, char: 0o20000, block: 0o60000, dir: 0o40000, fifo: 0o10000 };
const MAX_ID = 0o777777; // ustar fields as tar-stream writes them: 6 octal digits,
const MAX_SEC = 0x7fffffff; // and the mtime as a 32-bit integer

export const TAR_END = Buffer.alloc(1024);
const ZEROS = Buffer.alloc(512);

export function padding(size: number): Buffer {
  return ZEROS.subarray(0, (512 - (size % 512)) % 512);
}

function paxTime(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${sign}${abs / 1_000_000_000n}${frac ? `.${frac}` : ''}`;
}

function toPackHeader(h: WriteHeader): Header {
  const ns = h.mtimeNs ?? BigInt(h.mtimeSec) * 1_000_000_000n;
  const sec = Number(ns / 1_000_000_000n) - (ns % 1_000_000_000n < 0n ? 1 : 0); // floor
  const pax: Record<string, string | Buffer> = {};
  if (h.uid > MAX_ID) pax.uid = String(h.uid);
  if (h.gid > MAX_ID) pax.gid = String(h.gid);
  if (ns % 1_000_000_000n !== 0n || sec < 0 || sec > MAX_SEC) pax.mtime = paxTime(ns);
  for (const [key, value] of h.xattrs ?? []) pax[`SCHILY.xattr.${key}`] = value;
  return {
    name: h.type === 'dir' ? `${h.name}/` : h.name,
    type: TYPES[h.type],
    mode: S_IF[h.type] | (h.mode & 0o7777),
    uid: Math.min(h.uid, MAX_ID),
    gid: Math.min(h.gid, MAX_ID),
    size: h.type === 'file' ? (h.size ?? 0) : 0,
    mtime: new Date(Math.max(0, Math.min(sec, MAX_SEC)) * 1000),
    linkname: h.linkname ?? '',
    uname: '',
    gname: '',
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
    ...(Object.keys(pax).length ? { pax } : {}),
  };
}

// The header block(s) of one entry ([pax header + records +] ustar header), for callers that
// write bodies themselves (save, the built-in busybox). This is pack()'s own encoder
// (Pack#_encode, which pushes its blocks), called with a collector: the same bytes as packTar.
const encode = (Object.getPrototypeOf(pack()) as { _encode(this: { push(b: Buffer): void }, h: Header): void })._encode;

export function encodeHeader(h: WriteHeader): Buffer {
  const blocks: Buffer[] = [];
  encode.call({ push: (b) => void blocks.push(b) }, toPackHeader(h));
  return blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks);
}

// Resolves when a stream wants more (drain) or is gone (close: the next write fails).
function writable(s: { on(e: string, f: () => void): unknown; off(e: string, f: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    const go = () => {
      s.off('drain', go);
      s.off('close', go);
      resolve();
    };
    s.on('drain', go);
    s.on('close', go);
  });
}

async function feed(p: Pack, entries: Iterable<WriteEntry> | AsyncIterable<WriteEntry>): Promise<void> {
  for await (const { header, body } of entries) {
    let settle!: (err?: Error | null) => void;
    const done = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
    done.catch(() => {}); // awaited below; a body error may come first
    const sink = p.entry(toPackHeader(header), settle);
    if (header.type === 'file') {
      for await (const chunk of body ?? []) {
        if (sink.destroying) throw new Error('tar entry destroyed');
        if (!sink.write(chunk)) await writable(sink);
      }
      sink.end(null);
    }
    await done; // one entry at a time: nothing queues up behind a slow consumer
  }
}

// A whole tar (ending with the end-of-archive blocks) as a stream of chunks.
export async function* packTar(entries: Iterable<WriteEntry> | AsyncIterable<WriteEntry>): AsyncGenerator<Buffer> {
  const p = pack();
  const fed = feed(p, entries).then(
    () => p.finalize(),
    (err: Error) => p.destroy(err),
  );
  try {
    for await (const chunk of p) yield chunk as Buffer;
  } finally {
    p.destroy(null); // a consumer that stops early stops the feeding (its entry fails)
    await fed;
  }
}

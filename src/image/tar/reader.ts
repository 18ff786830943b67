// A streaming tar reader: ustar, GNU (long names, base-256 numbers) and POSIX pax (local and
// global records). Written here rather than taken from tar-stream because layers need what
// it drops: binary xattr values (SCHILY.xattr.security.capability is raw bytes, not UTF-8),
// nanosecond mtimes, and a clear refusal of entry types we cannot reproduce (sparse, ...).
// Bodies are handed out as subarrays of the input chunks: no copy on the hot path.

export type TarType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  linkname: string;
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
}

export class TarFormatError extends Error {}

class ByteReader {
  private bufs: Buffer[] = [];
  private len = 0;
  private ended = false;
  constructor(private readonly it: AsyncIterator<Buffer | Uint8Array>) {}

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    if (b.length > 0) {
      this.bufs.push(b);
      this.len += b.length;
    }
    return true;
  }

  // Exactly n bytes; null when the input ends before the first byte.
  async read(n: number): Promise<Buffer | null> {
    while (this.len < n) {
      if (!(await this.pull())) {
        if (this.len === 0) return null;
        throw new TarFormatError('unexpected end of tar data');
      }
    }
    const first = this.bufs[0]!;
    if (first.length >= n) {
      return this.take(n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) off += this.take(n - off).copy(out, off);
    return out;
  }

  private take(n: number): Buffer {
    const first = this.bufs[0]!;
    if (first.length <= n) {
      this.bufs.shift();
      this.len -= first.length;
      return first;
    }
    this.bufs[0] = first.subarray(n);
    this.len -= n;
    return first.subarray(0, n);
  }

  async *stream(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.len === 0 && !(await this.pull())) throw new TarFormatError('unexpected end of tar data');
      if (this.len === 0) continue;
      const chunk = this.take(Math.min(n, this.bufs[0]!.length));
      n -= chunk.length;
      yield chunk;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n));
  }

  // Skips up to n bytes; the input may end first (some writers, umoci 0.4 among them, end
  // the archive right after the last body, without padding or end blocks).
  async skipToEnd(n: number): Promise<void> {
    while (n > 0) {
      if (this.len === 0 && !(await this.pull())) return;
      if (this.len === 0) continue;
      n -= this.take(Math.min(n, this.bufs[0]!.length)).length;
    }
  }

  // Reads the input to its end (hash taps upstream must see every byte).
  async drain(): Promise<void> {
    this.bufs = [];
    this.len = 0;
    while (await this.pull()) {
      this.bufs = [];
      this.len = 0;
    }
  }
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function cstr(b: Buffer, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return b.toString('utf8', off, end);
}

function num(b: Buffer, off: number, len: number, what: string): number {
  if (b[off]! & 0x80) {
    // base-256 (GNU): 0x80 positive, 0xff negative two's complement
    let v = 0n;
    for (let i = off + 1; i < off + len; i++) v = (v << 8n) | BigInt(b[i]!);
    if (b[off] === 0xff) v -= 1n << BigInt((len - 1) * 8);
    else if (b[off] !== 0x80) v |= BigInt(b[off]! & 0x7f) << BigInt((len - 1) * 8);
    return Number(v);
  }
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+$/g, '').replace(/^[ \0]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`invalid number in tar header (${what})`);
  return parseInt(s, 8);
}

function parseTimeNs(s: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s.trim());
  if (!m) throw new TarFormatError(`invalid pax time ${JSON.stringify(s)}`);
  const sec = BigInt(m[2]!);
  const frac = BigInt(((m[3] ?? '') + '000000000').slice(0, 9));
  const ns = sec * 1_000_000_000n + frac;
  return m[1] ? -ns : ns;
}

interface Pax {
  [key: string]: Buffer;
}

function parsePax(buf: Buffer): Pax {
  const out: Pax = {};
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break; // padding
    const sp = buf.indexOf(0x20, off);
    if (sp < 0) throw new TarFormatError('malformed pax header');
    const len = parseInt(buf.toString('latin1', off, sp), 10);
    if (!(len > 0) || off + len > buf.length || buf[off + len - 1] !== 0x0a) throw new TarFormatError('malformed pax record');
    const rec = buf.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError('malformed pax record');
    out[rec.toString('utf8', 0, eq)] = Buffer.from(rec.subarray(eq + 1));
    off += len;
  }
  return out;
}

const TYPES: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
  D: 'dir', // GNU dumpdir: a directory with a listing as body
};

function describeFlag(flag: string): string {
  return /^[\x21-\x7e]$/.test(flag) ? `'${flag}'` : `0x${flag.charCodeAt(0).toString(16)}`;
}

export async function* readTar(input: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(input[Symbol.asyncIterator]());
  let globalPax: Pax = {};
  let localPax: Pax | null = null;
  let longName: string | null = null;
  let longLink: string | null = null;

  for (;;) {
    const block = await r.read(512);
    if (block === null) return; // no end marker: tolerated, as GNU tar does
    if (isZeroBlock(block)) {
      await r.drain();
      return;
    }
    let sum = 0;
    let ssum = 0;
    for (let i = 0; i < 512; i++) {
      const c = i >= 148 && i < 156 ? 0x20 : block[i]!;
      sum += c;
      ssum += c > 127 ? c - 256 : c;
    }
    let stored = -1;
    try {
      stored = num(block, 148, 8, 'checksum');
    } catch {
      // not a number: not a header
    }
    if (stored !== sum && stored !== ssum) throw new TarFormatError('invalid tar header checksum (not a tar archive, or corrupt)');

    const flag = String.fromCharCode(block[156]!);
    let size = num(block, 124, 12, 'size');
    const magic = block.toString('latin1', 257, 263);

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > 64 * 1024 * 1024) throw new TarFormatError('tar extended header too large');
      const data = (await r.read(size)) ?? Buffer.alloc(0);
      await r.skip((512 - (size % 512)) % 512);
      if (flag === 'x') localPax = parsePax(data);
      else if (flag === 'g') globalPax = { ...globalPax, ...parsePax(data) };
      else if (flag === 'L') longName = cstr(data, 0, data.length);
      else longLink = cstr(data, 0, data.length);
      continue;
    }

    let name = cstr(block, 0, 100);
    if (magic === 'ustar\0' && block[345] !== 0) name = `${cstr(block, 345, 155)}/${name}`;
    let linkname = cstr(block, 157, 100);
    if (longName !== null) name = longName;
    if (longLink !== null) linkname = longLink;
    const pax: Pax = { ...globalPax, ...(localPax ?? {}) };
    localPax = null;
    longName = null;
    longLink = null;

    let uid = num(block, 108, 8, 'uid');
    let gid = num(block, 116, 8, 'gid');
    let mtimeNs = BigInt(num(block, 136, 12, 'mtime')) * 1_000_000_000n;
    const xattrs = new Map<string, Buffer>();
    let sparse = false;
    for (const [key, value] of Object.entries(pax)) {
      if (key === 'path') name = value.toString('utf8');
      else if (key === 'linkpath') linkname = value.toString('utf8');
      else if (key === 'size') size = Number(value.toString('latin1'));
      else if (key === 'uid') uid = Number(value.toString('latin1'));
      else if (key === 'gid') gid = Number(value.toString('latin1'));
      else if (key === 'mtime') mtimeNs = parseTimeNs(value.toString('latin1'));
      else if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice(13), value);
      else if (key.startsWith('LIBARCHIVE.xattr.')) xattrs.set(decodeURIComponent(key.slice(17)), Buffer.from(value.toString('latin1'), 'base64'));
      else if (key.startsWith('GNU.sparse.')) sparse = true;
    }
    if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`entry ${JSON.stringify(name)}: invalid size`);
    if (!Number.isSafeInteger(uid) || uid < 0 || !Number.isSafeInteger(gid) || gid < 0) {
      throw new TarFormatError(`entry ${JSON.stringify(name)}: invalid uid/gid`);
    }

    let type = TYPES[flag];
    if (!type || sparse) {
      const what = sparse ? 'sparse file' : `unknown entry type ${describeFlag(flag)}`;
      throw new TarFormatError(`entry ${JSON.stringify(name)}: ${what}`);
    }
    if (type === 'file' && (flag === '0' || flag === '\0') && name.endsWith('/')) type = 'dir';

    const header: TarHeader = {
      name,
      linkname,
      type,
      mode: num(block, 100, 8, 'mode') & 0o7777,
      uid,
      gid,
      size: type === 'file' ? size : 0,
      mtimeNs,
      devmajor: type === 'char' || type === 'block' ? num(block, 329, 8, 'devmajor') : 0,
      devminor: type === 'char' || type === 'block' ? num(block, 337, 8, 'devminor') : 0,
      xattrs,
    };

    // Body bytes present in the archive (directories and links may carry some; skip them).
    let remaining = size;
    const pad = (512 - (size % 512)) % 512;
    let started = false;
    const entry: TarEntry = {
      header,
      body: async function* () {
        if (started) throw new Error('tar entry body read twice');
        started = true;
        if (type !== 'file') return;
        for await (const chunk of r.stream(remaining)) {
          remaining -= chunk.length;
          yield chunk;
        }
      },
    };
    yield entry;
    if (remaining > 0) await r.skip(remaining);
    await r.skipToEnd(pad);
  }
}

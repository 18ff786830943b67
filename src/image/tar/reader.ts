// Reading tars: tar-stream's extract(), patched at install (native/patches/tar-stream+*.patch:
// xattr values as bytes, the raw type flag, unpadded ends, global pax records). This adapter
// turns its headers into what unpack/load need: ns mtimes and big ids from pax, xattrs, and a
// refusal naming the entry of the types we cannot reproduce (sparse, unknown). Bodies are
// subarrays of the input chunks, and the input is read only as fast as entries are consumed.
// Names and link names are bytes (tar/bytes.ts byte strings), from ustar, GNU long names and
// pax path/linkpath records alike: pax says UTF-8, but tars in the wild (GNU tar in a C
// locale, Go's writer) put a name's raw bytes there, and a UTF-8 name's bytes are what the
// file system stores either way.
import { extract, type Extract, type Header } from 'tar-stream';
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
}

export class TarFormatError extends Error {}

const TYPES: Partial<Record<string, TarType>> = {
  file: 'file',
  'contiguous-file': 'file',
  link: 'link',
  symlink: 'symlink',
  'character-device': 'char',
  'block-device': 'block',
  directory: 'dir',
  fifo: 'fifo',
};

// tar-stream's errors about the archive, in our words; anything else (input errors) passes.
const MESSAGES: Partial<Record<string, string>> = {
  'Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?': 'invalid tar header checksum (not a tar archive, or corrupt)',
  'Unexpected end of data': 'unexpected end of tar data',
  'Header exceeds max size': 'tar extended header too large',
  'Invalid header': 'invalid size in tar header',
};

function ours(err: unknown): unknown {
  const msg = err instanceof Error && !(err instanceof TarFormatError) ? MESSAGES[err.message] : undefined;
  return msg ? new TarFormatError(msg) : err;
}

function describeFlag(flag: number | undefined): string {
  if (flag === undefined) return '?';
  return flag >= 0x21 && flag <= 0x7e ? `'${String.fromCharCode(flag)}'` : `0x${flag.toString(16)}`;
}

function text(v: string | Uint8Array): string {
  return typeof v === 'string' ? v : Buffer.from(v).toString('utf8');
}

function bytes(v: string | Uint8Array): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function parseTimeNs(s: string): bigint | null {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s.trim());
  if (!m) return null;
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt(((m[3] ?? '') + '000000000').slice(0, 9));
  return m[1] ? -ns : ns;
}

const isId = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

function toHeader(h: Header): TarHeader {
  const fail = (what: string) => new TarFormatError(`entry ${JSON.stringify(showName(h.name))}: ${what}`);
  const pax = h.pax ?? {};
  let type = TYPES[h.type as string];
  if (!type && h.typeflag === 0x44) type = 'dir'; // 'D', GNU dumpdir: a directory with a listing as body
  if (Object.keys(pax).some((k) => k.startsWith('GNU.sparse.'))) throw fail('sparse file');
  if (!type) throw fail(`unknown entry type ${describeFlag(h.typeflag)}`);

  const uid = pax.uid !== undefined ? Number(text(pax.uid)) : h.uid;
  const gid = pax.gid !== undefined ? Number(text(pax.gid)) : h.gid;
  if (!isId(uid) || !isId(gid)) throw fail('invalid uid/gid');
  if (!isId(h.size)) throw fail('invalid size');
  const ms = h.mtime.getTime();
  const mtimeNs = pax.mtime !== undefined ? parseTimeNs(text(pax.mtime)) : Number.isFinite(ms) ? BigInt(ms) * 1_000_000n : null;
  if (mtimeNs === null) throw fail('invalid mtime');
  const dev = type === 'char' || type === 'block';
  if (dev && (!isId(h.devmajor) || !isId(h.devminor))) throw fail('invalid device number');

  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(pax)) {
    if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice(13), bytes(value));
    else if (key.startsWith('LIBARCHIVE.xattr.')) {
      let name: string;
      try {
        name = decodeURIComponent(key.slice(17));
      } catch {
        throw fail(`invalid xattr name ${JSON.stringify(key)}`);
      }
      xattrs.set(name, Buffer.from(text(value), 'base64'));
    }
  }

  return {
    name: h.name,
    linkname: h.linkname ?? '',
    type,
    mode: h.mode & 0o7777,
    uid,
    gid,
    size: type === 'file' ? h.size : 0,
    mtimeNs,
    devmajor: dev ? h.devmajor : 0,
    devminor: dev ? h.devminor : 0,
    xattrs,
  };
}

// Feeds the input to the extractor, waiting whenever it has enough buffered (backpressure).
async function feed(input: AsyncIterator<Buffer | Uint8Array>, ex: Extract): Promise<void> {
  try {
    for (;;) {
      const r = await input.next();
      if (ex.destroying) return; // the reader stopped early: leave the input where it is
      if (r.done) break;
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      if (!ex.write(chunk)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            ex.off('drain', go).off('close', go);
            resolve();
          };
          ex.on('drain', go).on('close', go);
        });
      }
    }
    ex.end(null); // (streamx types want an argument; null is "no last chunk")
  } catch (err) {
    ex.destroy(err as Error);
  }
}

export async function* readTar(input: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarEntry> {
  const ex = extract({ allowUnknownFormat: true, filenameEncoding: 'latin1' }); // old v7 headers have no ustar magic
  const entries = ex[Symbol.asyncIterator]();
  void feed(input[Symbol.asyncIterator](), ex);
  const next = async <T>(it: AsyncIterator<T>): Promise<IteratorResult<T>> => {
    try {
      return await it.next();
    } catch (err) {
      throw ours(err);
    }
  };
  try {
    for (;;) {
      const r = await next(entries);
      if (r.done) return;
      const src = r.value;
      const header = toHeader(src.header);
      // Pulled by hand: a for-await's return() would destroy the whole extractor.
      const chunks = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      let started = false;
      yield {
        header,
        body: async function* () {
          if (started) throw new Error('tar entry body read twice');
          started = true;
          if (header.type !== 'file') return;
          for (let c = await next(chunks); !c.done; c = await next(chunks)) yield c.value;
        },
      };
      // Skip what is left of the body. A directory has none whatever its size says (POSIX; Go's
      // reader too), and tar-stream never ends a directory's stream: do not wait on it.
      if (src.header.size > 0 && src.header.type !== 'directory') while (!(await next(chunks)).done);
    }
  } finally {
    ex.destroy(null); // no-op once finished; else stops the extractor (and the feeding)
  }
}

// The files of an image archive (a tar), spooled into the store's tmp/ (small ones kept in
// memory), each hashed on the way: adapters look files up by name, following links.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { UfsError } from '../../common/errors.js';
import { spoolToFile, type Store } from '../../store/index.js';
import { readTar, TarFormatError } from '../tar/reader.js';

const IN_MEMORY = 4 << 20; // files up to this size are kept in memory (json, small layers)

export interface SpoolFile {
  name: string;
  digest: string;
  size: number;
  data?: Buffer;
  path?: string; // tmp file (fsynced)
}

export class Spool {
  files = new Map<string, SpoolFile>();
  links = new Map<string, string>(); // archive name -> archive name it points to
  tmpFiles = new Set<string>();

  constructor(private readonly store: Store) {}

  get(name: string, what: string): SpoolFile {
    let n = archiveName(name);
    for (let hops = 0; hops < 32; hops++) {
      const f = this.files.get(n);
      if (f) return f;
      const next = this.links.get(n);
      if (next === undefined) break;
      n = next;
    }
    throw new UfsError(`bad archive: ${what} ${JSON.stringify(name)} is not in it`);
  }
  has(name: string): boolean {
    return this.files.has(name) || this.links.has(name);
  }
  bytes(f: SpoolFile): Buffer {
    return f.data ?? fs.readFileSync(f.path!);
  }
  json<T>(f: SpoolFile, what: string): T {
    if (f.size > 64 << 20) throw new UfsError(`bad archive: ${what} is too large`);
    try {
      return JSON.parse(this.bytes(f).toString('utf8')) as T;
    } catch {
      throw new UfsError(`bad archive: ${what} (${f.name}) is not valid JSON`);
    }
  }
  // The file's content as a tmp file the caller then owns (a copy if two names share it).
  takeFile(f: SpoolFile): string {
    const p = this.store.tmpPath('spool');
    if (f.path && this.tmpFiles.has(f.path)) {
      fs.linkSync(f.path, p); // the spool keeps its own name; the caller's is a hard link
      return p;
    }
    const fd = fs.openSync(p, 'wx', 0o644);
    try {
      fs.writeFileSync(fd, this.bytes(f));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return p;
  }
  cleanup(): void {
    for (const p of this.tmpFiles) fs.rmSync(p, { force: true });
    this.tmpFiles.clear();
  }
}

export function archiveName(raw: string): string {
  const parts: string[] = [];
  for (const p of raw.replace(/^\/+/, '').split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (!parts.length) throw new UfsError(`bad archive: entry ${JSON.stringify(raw)} escapes the archive`);
      parts.pop();
    } else parts.push(p);
  }
  return parts.join('/');
}

function dirOf(name: string): string {
  const i = name.lastIndexOf('/');
  return i < 0 ? '' : name.slice(0, i);
}

export async function spoolArchive(store: Store, input: AsyncIterable<Buffer>, onBytes: (n: number) => void): Promise<Spool> {
  const sp = new Spool(store);
  try {
    for await (const entry of readTar(input)) {
      const h = entry.header;
      const name = archiveName(h.name);
      if (h.type === 'symlink') {
        const target = h.linkname.startsWith('/') ? h.linkname : `${dirOf(name)}/${h.linkname}`;
        sp.links.set(name, archiveName(target));
        continue;
      }
      if (h.type === 'link') {
        sp.links.set(name, archiveName(h.linkname));
        continue;
      }
      if (h.type !== 'file') continue;
      const hash = crypto.createHash('sha256');
      const file: SpoolFile = { name, digest: '', size: h.size };
      if (h.size <= IN_MEMORY) {
        const chunks: Buffer[] = [];
        for await (const c of entry.body()) {
          hash.update(c);
          chunks.push(Buffer.from(c));
          onBytes(c.length);
        }
        file.data = Buffer.concat(chunks);
      } else {
        const p = store.tmpPath('spool');
        sp.tmpFiles.add(p);
        await spoolToFile(entry.body(), p, (c) => {
          hash.update(c);
          onBytes(c.length);
        });
        file.path = p;
      }
      file.digest = `sha256:${hash.digest('hex')}`;
      sp.files.set(name, file);
    }
  } catch (err) {
    sp.cleanup();
    if (err instanceof TarFormatError) throw new UfsError(`bad archive: ${err.message}`);
    throw err;
  }
  return sp;
}

// Small filesystem helpers for crash-safe store writes: data reaches the disk (fsync)
// before the rename that makes it visible, and the directory entry is synced after.
import fs from 'node:fs';
import { errnoCode } from '../common/errors.js';

export function fsyncDirSync(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function fsyncFileSync(file: string): void {
  const fd = fs.openSync(file, fs.constants.O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

// Writes `data` to `tmp`, fsyncs it, renames it over `dest`, fsyncs dest's directory.
export function writeFileAtomicSync(tmp: string, dest: string, data: string | Buffer): void {
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, dest);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDirSync(parentDir(dest));
}

export function parentDir(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function existsSync(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}

export function readJsonSync<T>(file: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as T;
}

// Removes a tree. Directories in layers may be read-only (mode 0555), which root ignores;
// for other users make them writable first so the removal cannot half-fail.
export function rmTreeSync(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true, maxRetries: 2 });
  } catch (err) {
    if (errnoCode(err) !== 'EACCES' && errnoCode(err) !== 'EPERM') throw err;
    chmodTreeWritable(p);
    fs.rmSync(p, { recursive: true, force: true });
  }
}

function chmodTreeWritable(p: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  fs.chmodSync(p, 0o700);
  for (const name of fs.readdirSync(p)) chmodTreeWritable(`${p}/${name}`);
}

// Writes a stream of chunks to a new file (never an existing one), fsynced; `onChunk` sees
// each chunk first (hashing, progress). Returns the number of bytes written.
export async function spoolToFile(
  chunks: AsyncIterable<Buffer | Uint8Array>,
  file: string,
  onChunk: (chunk: Buffer) => void,
): Promise<number> {
  const fd = fs.openSync(file, 'wx', 0o644);
  let size = 0;
  try {
    for await (const chunk of chunks) {
      const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      onChunk(c);
      size += c.length;
      let off = 0;
      while (off < c.length) off += fs.writeSync(fd, c, off, c.length - off);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return size;
}

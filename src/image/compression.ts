// Layer compressions: gzip (Node's zlib), zstd (Debian's `zstd` binary: Node 20's zlib has
// none, and the binary is faster than any JS port and multi-threaded), or none.
import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { UfsError } from '../common/errors.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export function sniffCompression(head: Buffer, what: string): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return 'zstd';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') throw new UfsError(`${what}: bzip2-compressed layers are not supported`);
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) {
    throw new UfsError(`${what}: xz-compressed layers are not supported`);
  }
  return 'none';
}

// A transform stream that decompresses `c` (undefined for none).
export function decompressor(c: Compression, what: string): Duplex | undefined {
  if (c === 'gzip') return zlib.createGunzip({ chunkSize: 256 * 1024 });
  if (c === 'zstd') return zstdStream(['-d', '-c', '-q'], what);
  return undefined;
}

function zstdStream(args: string[], what: string): Duplex {
  const child = spawn('zstd', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()).length > 4096 && (err = err.slice(-4096)));
  const d = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (e) => d.destroy(new UfsError(`${what}: cannot run zstd (${e.message}); install the zstd package`)));
  child.on('exit', (code, sig) => {
    if (code !== 0) d.destroy(new UfsError(`${what}: corrupt zstd data${err.trim() ? ` (${err.trim().split('\n').at(-1)})` : ''}${sig ? ` (${sig})` : ''}`));
  });
  d.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return d;
}

// A directory as a deterministic layer tar (save, push; commit hashes the same stream):
// walk-dir.ts's entries with the files' bytes, through writer.ts.
import fs from 'node:fs';
import { UfsError } from '../../common/errors.js';
import { showName } from './bytes.js';
import { walkDirectory } from './walk-dir.js';
import { packTar, type WriteEntry } from './writer.js';

export { skipUnionTemp } from './walk-dir.js';

const READ_CHUNK = 1 << 20;

export function tarDirectory(root: string): AsyncGenerator<Buffer> {
  return packTar(entries(root));
}

function* entries(root: string): Generator<WriteEntry> {
  for (const { header, file } of walkDirectory(root)) {
    if (header.type === 'file') yield { header, body: fileBody(file, header.name, header.size!) };
    else yield { header };
  }
}

// Exactly `size` bytes, each chunk a fresh buffer (the consumer may hold on to them).
function* fileBody(file: Buffer, rel: string, size: number): Generator<Buffer> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    for (let left = size; left > 0; ) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) throw new UfsError(`${showName(rel)}: file shrank while being read`);
      left -= n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
}

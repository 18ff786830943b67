// Commit without a tar: a directory (a container's writable layer) copied into a fresh layer
// directory, while the deterministic tar that pack-dir.ts would write of it is hashed (its
// diff_id) but never made. The copy is what unpacking that tar gives, entry for entry (modes,
// owners where we may set them, whole-second times as atime and mtime, xattrs but the
// store's private ones, hard links as links, directory metadata last), so a layer committed
// here equals one loaded from its own tar, and save/push re-tar it to the same diff_id.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { UfsError } from '../common/errors.js';
import { isPrivateXattr } from '../unionfs/index.js';
import { byteName, nameBytes, showName } from './tar/bytes.js';
import { walkDirectory } from './tar/walk-dir.js';
import { encodeHeader, padding, TAR_END, type WriteHeader } from './tar/writer.js';
import { mknodSync, setTimesNsSync, setXattrSync } from './native.js';
import type { UnpackStats } from './unpack.js';

const WRITE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;
const CHUNK = 1 << 20;

export interface CopiedLayer {
  diffId: string;
  tarSize: number;
  stats: UnpackStats;
}

// `dest` is an empty directory of ours.
export function copyDirectoryAsLayer(src: string, dest: string): CopiedLayer {
  const hash = crypto.createHash('sha256');
  let tarSize = 0;
  const add = (b: Buffer) => {
    hash.update(b);
    tarSize += b.length;
  };
  const stats: UnpackStats = { size: 0, entries: 0 };
  const destBytes = byteName(Buffer.from(dest));
  const target = (rel: string) => nameBytes(`${destBytes}/${rel}`);
  const dirs: { path: Buffer; mode: number; mtimeSec: number }[] = [];
  const buf = Buffer.allocUnsafe(CHUNK);
  const uid = process.getuid?.();
  const mayChown = (h: WriteHeader) => uid === 0 || h.uid === uid;

  for (const { header: h, file } of walkDirectory(src)) {
    add(encodeHeader(h));
    stats.entries++;
    const to = target(h.name);
    const ns = BigInt(h.mtimeSec) * 1_000_000_000n;
    try {
      switch (h.type) {
        case 'dir':
          fs.mkdirSync(to, 0o700);
          if (mayChown(h)) fs.chownSync(to, h.uid, h.gid);
          xattrs(to, h);
          dirs.push({ path: to, mode: h.mode, mtimeSec: h.mtimeSec }); // mode and times once its contents are in
          break;
        case 'file': {
          copyFile(file, to, h, buf, add, mayChown(h));
          stats.size += h.size!;
          add(padding(h.size!));
          xattrs(to, h);
          setTimesNsSync(to, ns, false);
          break;
        }
        case 'symlink':
          fs.symlinkSync(nameBytes(h.linkname!), to);
          if (mayChown(h)) fs.lchownSync(to, h.uid, h.gid);
          xattrs(to, h);
          setTimesNsSync(to, ns, true);
          break;
        case 'link':
          fs.linkSync(target(h.linkname!), to);
          break;
        case 'char':
        case 'block':
        case 'fifo':
          mknodSync(to, h.type, 0o600, h.devmajor, h.devminor);
          if (mayChown(h)) fs.chownSync(to, h.uid, h.gid);
          fs.chmodSync(to, h.mode);
          xattrs(to, h);
          setTimesNsSync(to, ns, false);
          break;
      }
    } catch (err) {
      if (err instanceof UfsError) throw err;
      const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
      throw new UfsError(`${showName(h.name)}: ${msg}`);
    }
  }
  add(TAR_END);
  for (let i = dirs.length - 1; i >= 0; i--) {
    // reverse pre-order: every directory after all of its descendants
    const d = dirs[i]!;
    fs.chmodSync(d.path, d.mode);
    setTimesNsSync(d.path, BigInt(d.mtimeSec) * 1_000_000_000n, false);
  }
  fs.chmodSync(dest, 0o755); // the tar has no entry for the root: unpacking gives it 0755
  return { diffId: `sha256:${hash.digest('hex')}`, tarSize, stats };
}

// Exactly h.size bytes of `from` into a new `to`, through the hash.
function copyFile(from: Buffer, to: Buffer, h: WriteHeader, buf: Buffer, add: (b: Buffer) => void, chown: boolean): void {
  const src = fs.openSync(from, READ_FLAGS);
  try {
    const dst = fs.openSync(to, WRITE_FLAGS, 0o600);
    try {
      for (let left = h.size!; left > 0; ) {
        const n = fs.readSync(src, buf, 0, Math.min(buf.length, left), null);
        if (n === 0) throw new UfsError(`${showName(h.name)}: file shrank while being read`);
        const chunk = buf.subarray(0, n);
        add(chunk);
        for (let off = 0; off < n; ) off += fs.writeSync(dst, chunk, off, n - off);
        left -= n;
      }
      if (chown) fs.fchownSync(dst, h.uid, h.gid);
      fs.fchmodSync(dst, h.mode); // after chown, which clears setuid/setgid
    } finally {
      fs.closeSync(dst);
    }
  } finally {
    fs.closeSync(src);
  }
}

function xattrs(file: Buffer, h: WriteHeader): void {
  for (const [name, value] of h.xattrs ?? []) {
    if (isPrivateXattr(name)) continue; // as unpacking: the store's own names never come from a layer
    try {
      setXattrSync(file, name, value);
    } catch {
      // as unpacking: user.* cannot exist on symlinks or devices
    }
  }
}

// The few system calls unpacking needs beyond Node (mknod, xattrs, ns-precise times without
// following links), from src/sys when the addon provides them, else a slower fallback
// (coreutils/attr commands, fs.lutimes) so that images still work while it is missing.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

interface SysLike {
  lgetxattr?(file: string | Buffer, name: string): Buffer;
  lsetxattr?(file: string | Buffer, name: string, value: Buffer, flags: number): void;
  llistxattr?(file: string | Buffer): string[];
  mknod?(file: string | Buffer, mode: number, dev: number): void;
  utimensat?(file: string | Buffer, aSec: number, aNsec: number, mSec: number, mNsec: number): void;
}

let sys: SysLike = {};
try {
  sys = (await import('../sys/index.js')).sys as SysLike;
} catch {
  sys = {};
}

export function makedev(major: number, minor: number): number {
  // glibc's gnu_dev_makedev, kept within 2^53 (majors/minors above 2^20 do not occur)
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) + (major & ~0xfff) * 2 ** 32;
}

export function devMajor(rdev: number): number {
  return ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}

export function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & ~0xff & 0xfffff);
}

export function mknodSync(file: string | Buffer, kind: 'char' | 'block' | 'fifo', mode: number, major = 0, minor = 0): void {
  const ifmt = kind === 'char' ? fs.constants.S_IFCHR : kind === 'block' ? fs.constants.S_IFBLK : fs.constants.S_IFIFO;
  if (sys.mknod) {
    sys.mknod(file, ifmt | (mode & 0o7777), makedev(major, minor));
    return;
  }
  const f = String(file); // the fallback: only UTF-8 names
  const args = kind === 'fifo' ? [f, 'p'] : [f, kind === 'char' ? 'c' : 'b', String(major), String(minor)];
  execFileSync('mknod', ['-m', (mode & 0o7777).toString(8), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export function setXattrSync(file: string | Buffer, name: string, value: Buffer): void {
  if (sys.lsetxattr) {
    sys.lsetxattr(file, name, value, 0);
    return;
  }
  execFileSync('setfattr', ['-h', '-n', name, '-v', `0x${value.toString('hex')}`, String(file)], { stdio: ['ignore', 'ignore', 'pipe'] });
}

// All xattrs of `file` (not following links), or an empty list if they cannot be read.
export function listXattrsSync(file: string | Buffer): [string, Buffer][] {
  if (!sys.llistxattr || !sys.lgetxattr) return [];
  let names: string[];
  try {
    names = sys.llistxattr(file);
  } catch {
    return [];
  }
  const out: [string, Buffer][] = [];
  for (const name of names) {
    try {
      out.push([name, sys.lgetxattr(file, name)]);
    } catch {
      // removed meanwhile, or not readable: skip
    }
  }
  return out;
}

export function hasNativeXattrs(): boolean {
  return typeof sys.llistxattr === 'function' && typeof sys.lgetxattr === 'function';
}

// Sets atime = mtime = t (ns) on `file` itself, never through a symlink.
export function setTimesNsSync(file: string | Buffer, ns: bigint, isSymlink: boolean): void {
  const sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  let s = sec;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    s -= 1n;
  }
  if (sys.utimensat) {
    sys.utimensat(file, Number(s), Number(nsec), Number(s), Number(nsec));
    return;
  }
  const t = Number(s) + Number(nsec) / 1e9;
  if (isSymlink) fs.lutimesSync(file, t, t);
  else fs.utimesSync(file, t, t);
}

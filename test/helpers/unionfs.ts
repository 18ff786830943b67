// Helpers for the in-process union tests (test/unionfs-*.test.ts): layer directories in a
// temp dir, a UnionFs over them, and small readers/writers through its file handles.
import type { ExecutionContext } from 'ava';
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sys } from '../../src/sys/index.js';
import { UnionFs, type Caller } from '../../src/unionfs/index.js';

export const ROOT: Caller = { uid: 0, gid: 0, pid: process.pid, umask: 0o022 };
export const USER: Caller = { uid: 1234, gid: 5678, pid: process.pid, umask: 0o022 };
export const C = fs.constants;

export async function tempDir(t: ExecutionContext, tag = 'unionfs'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `ufs-test-${tag}-`));
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface Stack {
  root: string;
  lowers: string[]; // top first
  upper: string;
  u: UnionFs;
}

// `lowers` layer dirs (l0 = top) and an upper, filled by `setup` before the union starts.
export async function stack(
  t: ExecutionContext,
  opts: { lowers?: number; upper?: boolean; setup?: (s: { lowers: string[]; upper: string }) => Promise<void> } = {},
): Promise<Stack> {
  const root = await tempDir(t);
  const lowers: string[] = [];
  for (let i = 0; i < (opts.lowers ?? 1); i++) {
    const l = path.join(root, `l${i}`);
    await fsp.mkdir(l);
    lowers.push(l);
  }
  const upper = path.join(root, 'upper');
  await fsp.mkdir(upper);
  await opts.setup?.({ lowers, upper });
  const u = new UnionFs({ lowers, upper: opts.upper === false ? undefined : upper });
  await u.init();
  const open = new Set<number>();
  const origOpen = u.open.bind(u);
  const origCreate = u.create.bind(u);
  const origRelease = u.release.bind(u);
  u.open = async (p, f) => track(open, await origOpen(p, f));
  u.create = async (p, m, f, c) => track(open, await origCreate(p, m, f, c));
  u.release = async (fh) => {
    open.delete(fh);
    await origRelease(fh);
  };
  t.teardown(async () => {
    for (const fh of open) await origRelease(fh).catch(() => undefined);
  });
  return { root, lowers, upper, u };
}

function track(set: Set<number>, fh: number): number {
  set.add(fh);
  return fh;
}

// Files and dirs in a layer dir: `put(l, 'a/b/f', 'text')` makes parents as needed.
export async function put(layer: string, rel: string, content: string | Buffer = '', mode?: number): Promise<string> {
  const file = path.join(layer, rel);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, content);
  if (mode !== undefined) await fsp.chmod(file, mode);
  return file;
}

export async function mkdirIn(layer: string, rel: string, mode?: number): Promise<string> {
  const dir = path.join(layer, rel);
  await fsp.mkdir(dir, { recursive: true });
  if (mode !== undefined) await fsp.chmod(dir, mode);
  return dir;
}

export async function whiteout(layer: string, rel: string): Promise<void> {
  await put(layer, path.join(path.dirname(rel), `.wh.${path.basename(rel)}`));
}

export async function opaque(layer: string, rel: string): Promise<void> {
  await put(layer, path.join(rel, '.wh..wh..opq'));
}

export async function exists(file: string): Promise<boolean> {
  return fsp.lstat(file).then(
    () => true,
    () => false,
  );
}

// Reads a whole file through the union.
export async function read(u: UnionFs, p: string): Promise<string> {
  const fh = await u.open(p, C.O_RDONLY);
  try {
    return fs.readFileSync(fh, 'utf8');
  } finally {
    await u.release(fh);
  }
}

// Writes `data` at `pos` through the union (opening for write copies up).
export async function write(u: UnionFs, p: string, data: string, pos = 0, flags = C.O_WRONLY): Promise<void> {
  const fh = await u.open(p, flags);
  try {
    fs.writeSync(fh, data, pos);
  } finally {
    await u.release(fh);
  }
}

export async function names(u: UnionFs, p: string): Promise<string[]> {
  return (await u.readdir(p)).map((e) => e.name).sort();
}

export function xattrs(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of sys.llistxattr(file).sort()) out[n] = sys.lgetxattr(file, n).toString('hex');
  return out;
}

export { sys };

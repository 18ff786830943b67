// Work on layer directories for the builder: fixing a step's timestamps before it is
// committed (so the same inputs give the same diff_id), and merging layers into one
// (--squash keeps whiteouts for what lies below; --squash-all drops them).
import fs from 'node:fs';
import path from 'node:path';
import { listXattrsSync, mknodSync, setXattrSync, devMajor, devMinor } from '../image/native.js';

function* walk(dir: string, rel = ''): Generator<{ rel: string; abs: string; st: fs.Stats }> {
  for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const abs = path.join(dir, r);
    const st = fs.lstatSync(abs);
    yield { rel: r, abs, st };
    if (st.isDirectory()) yield* walk(dir, r);
  }
}

function setTime(abs: string, st: fs.Stats, sec: number): void {
  if (st.isSymbolicLink()) fs.lutimesSync(abs, sec, sec);
  else fs.utimesSync(abs, sec, sec);
}

export interface TimeRules {
  epoch?: number; // SOURCE_DATE_EPOCH: every later mtime is clamped to it
  // COPY/ADD without an epoch: directories take the parent's mtime where the parent has
  // them, else `fallback`; whiteouts take `fallback`. Copied files keep their own.
  copy?: { lowers: string[]; fallback: number; kept: Set<string> }; // lowers top first
}

export function normalizeTimes(upper: string, rules: TimeRules): void {
  const entries = [...walk(upper)];
  // Deepest first: setting a child's time never touches its directory's, but keep the
  // order stable anyway.
  for (const e of entries.reverse()) {
    if (rules.epoch !== undefined) {
      if (e.st.mtimeMs / 1000 > rules.epoch) setTime(e.abs, e.st, rules.epoch);
      continue;
    }
    if (!rules.copy || rules.copy.kept.has(e.rel)) continue;
    const name = path.basename(e.rel);
    if (name.startsWith('.wh.')) {
      setTime(e.abs, e.st, rules.copy.fallback);
      continue;
    }
    if (!e.st.isDirectory()) continue;
    let sec = rules.copy.fallback;
    for (const l of rules.copy.lowers) {
      try {
        const ls = fs.lstatSync(path.join(l, e.rel));
        if (ls.isDirectory()) sec = Math.floor(ls.mtimeMs / 1000);
        break;
      } catch {
        // not in this layer
      }
    }
    setTime(e.abs, e.st, sec);
  }
}

export function copyMeta(src: string, dst: string, st: fs.Stats): void {
  fs.lchownSync(dst, st.uid, st.gid);
  if (!st.isSymbolicLink()) fs.chmodSync(dst, st.mode & 0o7777);
  for (const [k, v] of listXattrsSync(src)) {
    if (!k.startsWith('trusted.ufs.')) setXattrSync(dst, k, v);
  }
  if (st.isSymbolicLink()) fs.lutimesSync(dst, st.atime, st.mtime);
  else fs.utimesSync(dst, st.atime, st.mtime);
}

// Hard links within the merged layers stay links: dev:ino of the source -> first copy.
let linkMap = new Map<string, string>();

function copyNode(src: string, dst: string, st: fs.Stats): void {
  if (st.isFile() && st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = linkMap.get(key);
    if (first !== undefined && fs.existsSync(first)) {
      fs.linkSync(first, dst);
      return;
    }
    linkMap.set(key, dst);
  }
  if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dst);
  else if (st.isFile()) fs.copyFileSync(src, dst);
  else if (st.isCharacterDevice() || st.isBlockDevice()) mknodSync(dst, st.isCharacterDevice() ? 'char' : 'block', st.mode & 0o7777, devMajor(st.rdev), devMinor(st.rdev));
  else if (st.isFIFO()) mknodSync(dst, 'fifo', st.mode & 0o7777);
  else return;
  copyMeta(src, dst, st);
}

function clearDir(dir: string): void {
  for (const n of fs.readdirSync(dir)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
}

// Applies layer `src` (a changeset with OCI whiteouts) onto `dst`.
function applyLayer(src: string, dst: string, keepWhiteouts: boolean): void {
  const names = fs.readdirSync(src).sort();
  if (names.includes('.wh..wh..opq')) {
    clearDir(dst);
    if (keepWhiteouts) copyNode(path.join(src, '.wh..wh..opq'), path.join(dst, '.wh..wh..opq'), fs.lstatSync(path.join(src, '.wh..wh..opq')));
  }
  const dirs: [string, string, fs.Stats][] = [];
  for (const name of names) {
    if (name === '.wh..wh..opq') continue;
    const s = path.join(src, name);
    const d = path.join(dst, name);
    const st = fs.lstatSync(s);
    if (name.startsWith('.wh.')) {
      fs.rmSync(path.join(dst, name.slice(4)), { recursive: true, force: true });
      if (keepWhiteouts) {
        fs.rmSync(d, { force: true });
        copyNode(s, d, st);
      }
      continue;
    }
    fs.rmSync(path.join(dst, `.wh.${name}`), { force: true });
    let dst0: fs.Stats | undefined;
    try {
      dst0 = fs.lstatSync(d);
    } catch {
      dst0 = undefined;
    }
    if (st.isDirectory()) {
      if (dst0 && !dst0.isDirectory()) fs.rmSync(d, { force: true });
      if (!dst0 || !dst0.isDirectory()) fs.mkdirSync(d);
      applyLayer(s, d, keepWhiteouts);
      dirs.push([s, d, st]);
      continue;
    }
    if (dst0) fs.rmSync(d, { recursive: true, force: true });
    copyNode(s, d, st);
  }
  for (const [s, d, st] of dirs) copyMeta(s, d, st);
}

// Merges layer directories (bottom first) into the empty directory `out`.
export function mergeLayers(layers: string[], out: string, keepWhiteouts: boolean): void {
  linkMap = new Map();
  for (const l of layers) applyLayer(l, out, keepWhiteouts);
  linkMap = new Map();
  const root = fs.lstatSync(layers.at(-1) ?? out);
  fs.chmodSync(out, root.mode & 0o7777);
}

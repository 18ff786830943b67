// The build context: a directory (or nothing, for `ufs build -`) seen through .dockerignore.
// COPY/ADD sources are found here (wildcards per path component, as Go's filepath.Match),
// and hashed by content and metadata (type, mode, size, link target; never mtimes) for the
// cache key.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import { inRoot } from './rootpath.js';
import { isIgnored, mayReinclude, type IgnorePattern, parseDockerignore } from './dockerignore.js';

export interface SourceEntry {
  rel: string; // relative to the source root ('' for the root itself)
  abs: string;
  st: fs.Stats;
}

export interface Source {
  name: string; // as matched, relative to its root
  abs: string;
  st: fs.Stats; // stat (the top-level source is followed when a symlink, as Docker does)
}

export class BuildContext {
  readonly ignore: IgnorePattern[];
  constructor(readonly root: string | undefined) {
    const file = root ? path.join(root, '.dockerignore') : undefined;
    this.ignore = file && fs.existsSync(file) ? parseDockerignore(fs.readFileSync(file, 'utf8')) : [];
  }

  ignored(rel: string): boolean {
    return rel !== '' && isIgnored(this.ignore, rel);
  }
}

// A source root: the context (ignore rules apply) or another stage's or image's root.
export interface SourceRoot {
  dir: string;
  context?: BuildContext;
}

function globRe(component: string): RegExp {
  let re = '^';
  for (let i = 0; i < component.length; i++) {
    const c = component[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < component.length) re += `\\${component[++i]}`;
    else if (c === '[') {
      const end = component.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = component.slice(i + 1, end);
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls}]`;
        i = end;
      }
    } else re += /[.+^${}()|\]\\/]/.test(c) ? `\\${c}` : c;
  }
  return new RegExp(`${re}$`);
}

const hasGlob = (s: string) => /[*?[]/.test(s);

// Clean relative path of a source as written; refuses to leave the root.
export function cleanSource(src: string): string {
  const n = path.posix.normalize(`/${src}`);
  if (src.split('/').includes('..') && path.posix.normalize(src).startsWith('..')) {
    throw new UfsError(`forbidden path outside the build context: ${src}`);
  }
  return n.replace(/^\/+/, '').replace(/\/+$/, '');
}

// The sources a COPY/ADD argument names: exact paths or wildcard matches, sorted.
export function matchSources(root: SourceRoot, pattern: string): Source[] {
  const rel = cleanSource(pattern);
  const ctx = root.context;
  const what = ctx ? 'build context' : 'source image';
  if (!hasGlob(rel)) {
    const abs = rel === '' ? root.dir : path.join(root.dir, rel);
    const st = statInRoot(root.dir, abs);
    if (ctx && ctx.ignored(rel) && !(st?.st.isDirectory() && mayReinclude(ctx.ignore, rel))) {
      throw new UfsError(`${pattern}: not found in the build context (excluded by .dockerignore)`);
    }
    if (!st) throw new UfsError(`${pattern}: no such file or directory in the ${what}`);
    return [{ name: rel, abs: st.abs, st: st.st }];
  }
  let found: string[] = [''];
  for (const comp of rel.split('/')) {
    const next: string[] = [];
    for (const base of found) {
      const dir = base === '' ? root.dir : inRoot(root.dir, base);
      if (!hasGlob(comp)) {
        next.push(base === '' ? comp : `${base}/${comp}`);
        continue;
      }
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      const re = globRe(comp);
      for (const n of names.sort()) if (re.test(n)) next.push(base === '' ? n : `${base}/${n}`);
    }
    found = next;
  }
  const out: Source[] = [];
  for (const r of found) {
    const st = statInRoot(root.dir, path.join(root.dir, r));
    if (ctx && ctx.ignored(r) && !(st?.st.isDirectory() && mayReinclude(ctx.ignore, r))) continue;
    if (st) out.push({ name: r, abs: st.abs, st: st.st });
  }
  if (out.length === 0) throw new UfsError(`${pattern}: no source files were specified (nothing in the ${what} matches)`);
  return out;
}

// stat of a source: every symlink on the way (the source itself included, as Docker follows
// a top-level link) is resolved inside the root, so a link can never reach the host.
function statInRoot(root: string, abs: string): { abs: string; st: fs.Stats } | undefined {
  const resolved = inRoot(root, path.relative(root, abs));
  try {
    return { abs: resolved, st: fs.lstatSync(resolved) };
  } catch {
    return undefined;
  }
}

// Everything under a source, pre-order, sorted, without what .dockerignore excludes.
export function walkSource(root: SourceRoot, src: Source): SourceEntry[] {
  const out: SourceEntry[] = [{ rel: '', abs: src.abs, st: src.st }];
  if (!src.st.isDirectory()) return out;
  const ctx = root.context;
  const walk = (abs: string, rel: string, ctxRel: string) => {
    for (const name of fs.readdirSync(abs).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const cr = ctxRel ? `${ctxRel}/${name}` : name;
      const a = path.join(abs, name);
      const st = fs.lstatSync(a);
      const ignored = ctx ? ctx.ignored(cr) : false;
      if (ignored && !(st.isDirectory() && ctx && mayReinclude(ctx.ignore, cr))) continue;
      if (!ignored) out.push({ rel: r, abs: a, st });
      if (st.isDirectory()) {
        const before = out.length;
        walk(a, r, cr);
        // An ignored directory walked for its exceptions comes along only if they matched.
        if (ignored && out.length > before) out.splice(before, 0, { rel: r, abs: a, st });
      }
    }
  };
  walk(src.abs, '', src.name);
  return out;
}

// sha256 over each entry's relative name, type, mode, size, content and link target.
export function hashEntries(entries: SourceEntry[]): string {
  const h = crypto.createHash('sha256');
  for (const e of entries) {
    const st = e.st;
    const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
    h.update(`${e.rel}\0${type}\0${(st.mode & 0o7777).toString(8)}\0`);
    if (type === 'f') {
      h.update(`${st.size}\0`);
      h.update(fileDigest(e.abs));
    } else if (type === 'l') h.update(fs.readlinkSync(e.abs));
    h.update('\n');
  }
  return h.digest('hex');
}

// One read buffer for every file hashed (synchronous, so never shared by two at once).
let readBuf: Buffer | undefined;

export function fileDigest(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = (readBuf ??= Buffer.allocUnsafe(1 << 20));
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

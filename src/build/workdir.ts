// WORKDIR's layer, as Docker's build makes it: the directory (and its missing parents) is
// created, owned by the stage's USER, and committed as a layer of its own (empty when it was
// there already). The layer is written straight from the parent's layer directories, with no
// mount, when the path is plain there: every existing component a directory in the layers
// that have it, and no whiteout, opaque directory or symlink on the way. Otherwise the
// caller creates it through a mounted snapshot, where the union and symlinks are resolved.
import fs from 'node:fs';
import path from 'node:path';
import { copyMeta } from './layerdirs.js';

export interface WorkdirOwner {
  uid: number;
  gid: number;
}

type Component = { rel: string; lower?: { abs: string; st: fs.Stats } }; // lower: the topmost existing one

function lstatOr(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

// The components of `wd` as the merged lowers have them, or undefined when the path is not
// plain (the caller then goes through a mount). `lowers` are layer directories, top first.
export function planWorkdir(lowers: string[], wd: string): Component[] | undefined {
  const parts = wd.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) return undefined;
  const out: Component[] = [];
  for (let i = 0; i < parts.length; i++) {
    const rel = parts.slice(0, i + 1).join('/');
    const parentRel = parts.slice(0, i).join('/');
    let top: Component['lower'];
    for (const l of lowers) {
      if (lstatOr(path.join(l, parentRel, `.wh.${parts[i]}`)) || lstatOr(path.join(l, parentRel, '.wh..wh..opq'))) return undefined;
      const st = lstatOr(path.join(l, rel));
      if (!st) continue;
      if (!st.isDirectory()) return undefined;
      top ??= { abs: path.join(l, rel), st };
    }
    out.push({ rel, ...(top ? { lower: top } : {}) });
  }
  return out;
}

// Writes the layer into the empty directory `out`: the existing components with their
// lower's metadata (as a copy-up would), the new ones mode 0755, owned by `owner`, with
// mtime `mtimeSec`.
export function writeWorkdirLayer(out: string, plan: Component[], owner: WorkdirOwner, mtimeSec: number): void {
  // Deepest first for times: making a child changes its parent's mtime.
  for (const c of plan) {
    const dst = path.join(out, c.rel);
    fs.mkdirSync(dst);
    if (!c.lower) {
      fs.chmodSync(dst, 0o755);
      fs.lchownSync(dst, owner.uid, owner.gid);
    }
  }
  for (const c of [...plan].reverse()) {
    const dst = path.join(out, c.rel);
    if (c.lower) copyMeta(c.lower.abs, dst, c.lower.st);
    else fs.utimesSync(dst, mtimeSec, mtimeSec);
  }
}

// USER as uid:gid when that needs no /etc/passwd: none or root, or "uid:gid" in numbers.
// Anything else is resolved in the image (through a mount), as COPY --chown is.
export function plainOwner(user: string | undefined): WorkdirOwner | undefined {
  if (!user || user === 'root' || user === '0' || user === 'root:root' || user === '0:0') return { uid: 0, gid: 0 };
  const m = /^(\d+):(\d+)$/.exec(user);
  return m ? { uid: Number(m[1]), gid: Number(m[2]) } : undefined;
}

// `ufs layers`: an image layer by layer. Each layer directory is its own changeset (OCI
// whiteouts kept), so a layer's A/C/D list is listChanges over the layers beneath it, and the
// space it wastes (as dive counts it) is the bytes of its files that a later layer
// overwrites, deletes (whiteout), hides (opaque directory) or replaces a parent of.
import fs from 'node:fs';
import { UfsError } from '../common/errors.js';
import type { Store } from '../store/index.js';
import { type Change, listChanges } from '../unionfs/index.js';
import type { ResolvedImage } from './resolve.js';

export interface LayerRow {
  index: number; // 0 = bottom
  diffId: string;
  size: number;
  added: number;
  modified: number;
  deleted: number;
  createdBy: string;
}

// The history line that made each layer (history entries that are not empty_layer, in order).
export function layerCreatedBy(image: ResolvedImage): string[] {
  const out: string[] = [];
  for (const h of image.config.history ?? []) if (!h.empty_layer) out.push(h.created_by ?? '');
  return image.diffIds.map((_, i) => out[i] ?? '');
}

// Bottom-first layer dirs of the image (ResolvedImage.layerDirs is top first).
function bottomFirst(image: ResolvedImage): string[] {
  return [...image.layerDirs].reverse();
}

// `--layer N|DIGEST`: a 0-based index from the bottom, or a (prefix of a) diff_id.
export function selectLayer(image: ResolvedImage, spec: string): number {
  const n = image.diffIds.length;
  if (/^\d{1,4}$/.test(spec)) {
    const i = Number(spec);
    if (i >= n) throw new UfsError(`layer ${i} does not exist: the image has ${n} layer${n === 1 ? '' : 's'} (0-${n - 1})`);
    return i;
  }
  const hex = spec.replace(/^sha256:/, '');
  if (!/^[a-f0-9]+$/.test(hex)) throw new UfsError(`--layer takes an index (0-${n - 1}) or a diff_id, not ${JSON.stringify(spec)}`);
  const hits = image.diffIds.map((d, i) => [d, i] as const).filter(([d]) => d.startsWith(`sha256:${hex}`));
  const distinct = new Set(hits.map(([d]) => d));
  if (distinct.size === 0) throw new UfsError(`no layer ${spec} in this image`);
  if (distinct.size > 1) throw new UfsError(`layer ${spec} is ambiguous: it matches ${distinct.size} layers`);
  return hits.at(-1)![1];
}

// Lower dirs (top first) of the filesystem as it stood after layer `index`.
export function lowersUpTo(image: ResolvedImage, index: number): string[] {
  return bottomFirst(image).slice(0, index + 1).reverse();
}

export async function layerRows(store: Store, image: ResolvedImage): Promise<LayerRow[]> {
  const dirs = bottomFirst(image);
  const by = layerCreatedBy(image);
  const rows: LayerRow[] = [];
  for (let i = 0; i < dirs.length; i++) {
    const changes = await listChanges(dirs[i]!, dirs.slice(0, i).reverse());
    rows.push({
      index: i,
      diffId: image.diffIds[i]!,
      size: store.layerMeta(image.diffIds[i]!)?.size ?? 0,
      added: changes.filter((c) => c.kind === 'A').length,
      modified: changes.filter((c) => c.kind === 'C').length,
      deleted: changes.filter((c) => c.kind === 'D').length,
      createdBy: by[i]!,
    });
  }
  return rows;
}

export interface Wasted {
  path: string;
  size: number;
  by: number; // the first later layer that hides it
}

export interface LayerDetail {
  index: number;
  diffId: string;
  createdBy: string;
  changes: Change[];
  wasted: Wasted[];
  wastedBytes: number;
}

// Does `layer` hide `parts` (from what is beneath it)? Present there, whited out, under an
// opaque directory, or below a parent that is not a directory there.
function hides(layer: string, parts: string[]): boolean {
  let dir = layer;
  if (exists(`${dir}/.wh..wh..opq`)) return true;
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!;
    if (exists(`${dir}/.wh.${name}`)) return true;
    const p = `${dir}/${name}`;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return false;
    }
    if (i === parts.length - 1) return true; // the file itself is replaced
    if (!st.isDirectory()) return true; // a parent replaced by a file/link
    if (exists(`${p}/.wh..wh..opq`)) return true;
    dir = p;
  }
  return false;
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function* regularFiles(root: string, parts: string[] = []): Generator<{ parts: string[]; size: number }> {
  const dir = parts.length ? `${root}/${parts.join('/')}` : root;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.wh.')) continue;
    const child = [...parts, e.name];
    if (e.isDirectory()) yield* regularFiles(root, child);
    else if (e.isFile()) yield { parts: child, size: fs.lstatSync(`${root}/${child.join('/')}`).size };
  }
}

export async function layerDetail(store: Store, image: ResolvedImage, index: number): Promise<LayerDetail> {
  const dirs = bottomFirst(image);
  const changes = await listChanges(dirs[index]!, dirs.slice(0, index).reverse());
  const wasted: Wasted[] = [];
  const seenInodes = new Set<string>();
  for (const f of regularFiles(dirs[index]!)) {
    for (let later = index + 1; later < dirs.length; later++) {
      if (!hides(dirs[later]!, f.parts)) continue;
      const st = fs.lstatSync(`${dirs[index]}/${f.parts.join('/')}`);
      const key = `${st.dev}:${st.ino}`;
      const size = seenInodes.has(key) ? 0 : f.size; // hard links count once
      seenInodes.add(key);
      wasted.push({ path: `/${f.parts.join('/')}`, size, by: later });
      break;
    }
  }
  wasted.sort((a, b) => b.size - a.size || (a.path < b.path ? -1 : 1));
  return {
    index,
    diffId: image.diffIds[index]!,
    createdBy: layerCreatedBy(image)[index]!,
    changes,
    wasted,
    wastedBytes: wasted.reduce((s, w) => s + w.size, 0),
  };
}

// What the union's modules share: the layer stack, the resolver and cache, the lock.
import { fsError } from './errors.js';
import type { Layer } from './layers.js';
import type { RwLock } from './lock.js';
import type { Resolver } from './lookup.js';
import { WORK_DIR, newTempName } from './whiteout.js';

// A file whose data a copier moves on a thread of its own (the FUSE binding's: see "Background
// copy-up" in copyup.ts): from fd `src` to fd `dst`, `size` bytes; journal: its entry
// (copyjournal.ts), as host bytes.
export interface BackgroundJob { ino: bigint; src: number; dst: number; size: number; mtimeNs: bigint; journal: Buffer }
// Takes both fds and returns true, or returns false (nothing taken) when it cannot.
export type BackgroundCopier = (job: BackgroundJob) => boolean;

export interface UnionCtx {
  readonly layers: Layer[];
  readonly upper: Layer | undefined;
  readonly resolver: Resolver;
  readonly lock: RwLock;
  origins: boolean; // record trusted.ufs.origin on copy-up (upper keeps trusted xattrs)
  readonly redirectDir: boolean; // UnionOptions.redirectDir (and upper keeps trusted xattrs)
  background?: BackgroundCopier; // copies up files of backgroundMin bytes or more
  backgroundMin: number;
}

export function upperOf(ctx: UnionCtx): Layer {
  if (!ctx.upper) throw fsError('EROFS');
  return ctx.upper;
}

// A fresh temporary name in the work directory at the upper root (hidden by the whiteout
// rule, skipped by commit, emptied by init). Temporaries live in a directory of their own so
// that making them never touches the times of a directory the merged view shows.
export function tempPath(ctx: UnionCtx): string {
  return `${upperOf(ctx).root}/${WORK_DIR}/${newTempName()}`;
}

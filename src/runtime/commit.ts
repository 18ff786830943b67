// `ufs commit`: the writable layer becomes a layer (a deterministic tar of upper/ as it
// stands, OCI whiteouts included) on top of the container's image, as a new image.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { commitLayer, createImage, resolveImage } from '../image/index.js';
import { type Progress, QUIET_PROGRESS } from '../common/progress.js';
import type { Store } from '../store/index.js';
import type { ImageRunConfig } from './config.js';
import { containerPaths, shortId, type ContainerRecord } from './container.js';
import { whilePaused } from './control.js';
import { findContainer, isRunning } from './lifecycle.js';

export interface CommitOptions {
  message?: string;
  author?: string;
  changes: string[];      // -c 'INSTRUCTION', applied after the container's own config
  ref?: string;           // REPOSITORY[:TAG]
  pause?: boolean;        // freeze a running container while its layer is read (default true)
  progress?: Progress;    // told the layer's size while it is written
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

// A value for a Dockerfile ENV/LABEL instruction: quoted, with the lexer's escapes.
function quote(v: string): string {
  return `"${v.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

// Docker commits the container's configuration (its command, env, user, workdir) as the
// image's: expressed here as instructions for what differs from the parent image.
export function configChanges(rec: ContainerRecord, image: ImageRunConfig): string[] {
  const out: string[] = [];
  const c = rec.Config;
  const imageEntrypoint = image.Entrypoint && image.Entrypoint.length ? image.Entrypoint : null;
  const imageCmd = image.Cmd && image.Cmd.length ? image.Cmd : null;
  if (!same(c.Entrypoint, imageEntrypoint)) out.push(`ENTRYPOINT ${JSON.stringify(c.Entrypoint ?? [])}`);
  if (!same(c.Cmd, imageCmd)) out.push(`CMD ${JSON.stringify(c.Cmd ?? [])}`);
  const imageEnv = new Set(image.Env ?? []);
  for (const kv of c.Env) {
    if (imageEnv.has(kv)) continue;
    const i = kv.indexOf('=');
    if (i > 0) out.push(`ENV ${kv.slice(0, i)}=${quote(kv.slice(i + 1))}`);
  }
  if ((c.WorkingDir || '') !== (image.WorkingDir || '')) out.push(`WORKDIR ${c.WorkingDir || '/'}`);
  if ((c.User || '') !== (image.User || '') && c.User) out.push(`USER ${c.User}`);
  return out;
}

// Docker's history line for a commit: the container's CMD.
function createdBy(rec: ContainerRecord): string {
  return (rec.Config.Cmd ?? [rec.Path, ...rec.Args]).join(' ');
}

// The size of a directory tree's files (for the progress display).
function treeBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) total += fs.lstatSync(p).size;
    }
  };
  try {
    walk(dir);
  } catch {
    // a racing change: the number is only informative
  }
  return total;
}

export async function commitContainer(store: Store, ref: string, opts: CommitOptions): Promise<string> {
  const rec = await findContainer(store, ref);
  const paths = containerPaths(store.containersDir(), rec.Id);
  const image = await resolveImage(store, rec.Image);
  // Docker pauses the container for the commit: the layer is read as one moment of it, not
  // as files half-written while the tar runs.
  const read = async () => {
    // FUSE writes land in upper/ at once; only dirty mmap pages may still sit in the
    // kernel's cache of the mount: syncfs flushes them.
    if (isRunning(rec)) spawnSync('sync', ['-f', paths.merged], { stdio: 'ignore', timeout: 60_000 });
    const progress = opts.progress ?? QUIET_PROGRESS;
    // Sizing the layer costs a walk: only for a sink that shows it.
    if (progress !== QUIET_PROGRESS) progress.phase(`Committing ${shortId(rec.Id)}`, treeBytes(paths.upper));
    try {
      return (await commitLayer(store, paths.upper)).diffId;
    } finally {
      progress.done();
    }
  };
  const diffId = opts.pause === false ? await read() : await whilePaused(store, rec, read);
  const imageConfig = ((image.config as { config?: ImageRunConfig }).config ?? {}) as ImageRunConfig;
  return createImage(store, {
    parent: rec.Image,
    addDiffIds: [diffId],
    history: [{
      created_by: createdBy(rec),
      ...(opts.message ? { comment: opts.message } : {}),
      ...(opts.author ? { author: opts.author } : {}),
    }],
    changes: [...configChanges(rec, imageConfig), ...opts.changes],
    ...(opts.author ? { author: opts.author } : {}),
    ...(opts.ref ? { tag: opts.ref } : {}),
  });
}

// The serving process's first requests, made by itself once it has let go of what start-up
// used (shedStartupMemory, src/common/memory.ts). Serving needs a part of the node binary's
// code mapped again, and its own JavaScript compiled. Left to the first real requests, they
// pay for both, and read those pages back from disk if the page cache dropped them in the
// meantime (memory pressure, a mount that waits for its first use): about 15 ms more for a
// first lookup and 30 for a first copy-up here (README, "The FUSE binding"). Made now, the
// pages come back from the cache and stay mapped while the process serves.
//
// Nothing in the union changes, not even a directory's atime, and nothing holds the mount or
// the layers once the mount is gone (whoever unmounts it may unmount a layer's file system
// next). The reading requests go through a detached copy of the mount (openTreeClone), from
// libuv's pool so that this thread is free to serve them; the copy keeps the file system alive
// while it is open, so they are made before the mount is reported ready, when no caller can
// have unmounted it yet (a few ms). The writing ones go to a scratch union in a temp dir
// (src/unionfs/rehearse.ts) once the mount is ready, a step per turn of the event loop, and
// stop once the mount is gone.
import fs, { promises as fsp } from 'node:fs';
import { sys } from '../sys/index.js';
import { isUfsMount } from './mountinfo.js';
import type { UnionFs } from '../unionfs/index.js';
import { setQuietListings } from '../unionfs/hostfs.js';
import { rehearseWrites } from '../unionfs/rehearse.js';

// Enough names for every lookup path (a directory, a file, a link), few enough to take no time.
const NAMES = 8;

// Before the mount is reported ready: the reading requests.
export async function warmReads(mountpoint: string): Promise<void> {
  // Its listings must not touch the atime of a directory already in upper.
  setQuietListings(true);
  try {
    await readThroughClone(mountpoint);
  } finally {
    setQuietListings(false);
  }
}

// Once it is ready: the writing ones, unless the union is read-only. `ended`: the mount is
// gone (the rest is skipped).
export async function warmWrites(union: UnionFs, ended: () => boolean): Promise<void> {
  if (union.upperRoot !== undefined && !ended()) await rehearseWrites(ended);
}

async function readThroughClone(mountpoint: string): Promise<void> {
  // Unmounted already, the clone would be of the file system beneath.
  if (!(await isUfsMount(mountpoint))) return;
  // No request of ours reaches the mount here: the walk ends at its root, which FUSE never
  // asks about again (this thread must not wait on its own loop).
  const clone = sys.openTreeClone(mountpoint);
  try {
    await readThrough(`/proc/self/fd/${clone}`);
  } finally {
    fs.closeSync(clone);
  }
}

// Lookups (found and not), attributes, listings and an open of a file, all only reading.
async function readThrough(root: string): Promise<void> {
  const entries = await fsp.readdir(root, { withFileTypes: true });
  await fsp.lstat(`${root}/.ufs-warm-up-absent`).catch(() => undefined);
  let file: string | undefined;
  const look = async (dir: string, names: fs.Dirent[]): Promise<void> => {
    for (const e of names.slice(0, NAMES)) {
      await fsp.lstat(`${dir}/${e.name}`).catch(() => undefined);
      if (!file && e.isFile()) file = `${dir}/${e.name}`;
    }
  };
  await look(root, entries);
  const sub = entries.find((e) => e.isDirectory());
  if (sub) await look(`${root}/${sub.name}`, await fsp.readdir(`${root}/${sub.name}`, { withFileTypes: true }).catch(() => []));
  if (file) await (await fsp.open(file, 'r')).close();
}

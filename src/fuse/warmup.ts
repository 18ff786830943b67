// The serving process's first requests, made by itself once it has let go of what start-up
// used (shedStartupMemory, src/common/memory.ts). Serving needs a part of the node binary's
// code mapped again, and its own JavaScript compiled. Left to the first real requests, they
// pay for both, and read those pages back from disk if the page cache dropped them in the
// meantime (memory pressure, a mount that waits for its first use): about 15 ms more for a
// first lookup and 30 for a first copy-up here (README, "The FUSE binding"). Made now, the
// pages come back from the cache and stay mapped while the process serves.
//
// Nothing in the union changes, not even a directory's atime. The reading requests go through
// a detached copy of the mount (openTreeClone), from libuv's pool so that this thread is free
// to serve them: the mount itself is never busy for them, so an unmount right after the mount
// came up still works (the file system then lives on until the copy is closed, a few ms). The
// writing ones go to a
// scratch union of their own (src/unionfs/rehearse.ts).
import fs, { promises as fsp } from 'node:fs';
import { sys } from '../sys/index.js';
import { isUfsMount } from './mountinfo.js';
import type { UnionFs } from '../unionfs/index.js';
import { setQuietListings } from '../unionfs/hostfs.js';
import { rehearseWrites } from '../unionfs/rehearse.js';

// Enough names for every lookup path (a directory, a file, a link), few enough to take no time.
const NAMES = 8;

// Each part runs even if the other fails (open_tree needs CAP_SYS_ADMIN, say); the first
// failure is thrown at the end, for the log.
export async function warmServing(mountpoint: string, union: UnionFs): Promise<void> {
  let failure: unknown;
  // Its listings must not touch the atime of a directory already in upper (a caller may have
  // copied one up by now); a caller's listing in these few ms leaves atimes alone too.
  setQuietListings(true);
  try {
    await readThroughClone(mountpoint);
  } catch (err) {
    failure = err;
  } finally {
    setQuietListings(false);
  }
  const upper = union.upperRoot;
  if (upper !== undefined) await rehearseWrites(upper);
  if (failure !== undefined) throw failure;
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

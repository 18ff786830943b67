// Removing a container's files: its writable layer, init layer, logs and record.
import fs from 'node:fs';
import { unmountUnion } from '../fuse/index.js';
import type { Store } from '../store/index.js';
import { containerPaths, readRecord } from './container.js';
import { deleteState, runtimeBinary } from './ociruntime.js';
import { isMountPoint } from './proc.js';
import { stopNetwork } from './network.js';

export async function removeContainerFiles(store: Store, id: string): Promise<void> {
  const paths = containerPaths(store.containersDir(), id);
  // The runtime's state and cgroup, if a crash left them (best effort: it may be gone).
  const rec = readRecord(store.containersDir(), id);
  try {
    await deleteState(runtimeBinary(rec?.HostConfig.Runtime), id);
  } catch {
    // no runtime binary: nothing of it to clean
  }
  await stopNetwork(store, id);
  // Never recurse into a live mount: that would delete through it into the layers.
  if (isMountPoint(paths.merged)) await unmountUnion(paths.merged);
  if (isMountPoint(paths.merged)) throw new Error(`${paths.merged} is still mounted`);
  // The record first: a half-removed container then no longer shows up anywhere.
  fs.rmSync(paths.config, { force: true });
  fs.rmSync(paths.dir, { recursive: true, force: true });
  // --rm takes the anonymous volumes made for the container with it, as Docker's does
  // (a plain rm keeps them unless -v: the CLI asks for that).
  if (rec?.HostConfig.AutoRemove && rec.HostConfig.Mounts?.some((m) => m.anonymous)) {
    const { removeAnonymousVolumes } = await import('./create.js');
    await removeAnonymousVolumes(store, rec);
  }
}

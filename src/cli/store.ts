// The store a command works on (--root, UFS_ROOT or /var/lib/ufs), opened when a verb runs:
// the store's modules load then, never at startup (see main.ts).
import fs from 'node:fs';
import type { Command } from 'commander';
import { storeRoot } from '../common/paths.js';
import type { Store } from '../store/index.js';

export function rootOf(cmd: Command): string {
  return storeRoot(cmd.optsWithGlobals().root as string | undefined);
}

export async function openStore(cmd: Command): Promise<Store> {
  return openStoreAt(rootOf(cmd));
}

export async function openStoreAt(root: string): Promise<Store> {
  const { Store, setLockWaitNotice } = await import('../store/index.js');
  setLockWaitNotice(() => {
    if (process.stderr.isTTY) process.stderr.write('ufs: waiting for the store lock...\n');
  });
  return Store.open(root);
}

// The store, if the one --root/UFS_ROOT names exists (umount must not create one).
export async function existingStore(cmd: Command): Promise<Store | undefined> {
  const root = rootOf(cmd);
  if (!(await fs.promises.stat(root).catch(() => undefined))) return undefined;
  return openStoreAt(root);
}

#!/usr/bin/env node
// mount.fuse.ufs in Node: the mount(8) helper for `mount -t fuse.ufs SOURCE DIR -o lowerdir=...`
// and fstab lines such as
//   ufs  /mnt/u  fuse.ufs  lowerdir=/l1:/l2,upperdir=/u,workdir=/w  0 0
// scripts/setup links /sbin/mount.fuse.ufs to the C helper (native/sys/ufs_mount_helper.c),
// which starts the server directly (one Node start); this one (a Node start, then the
// server's) does the same through mountUnion. Either way the mount is ufs's own: same server,
// record and `ufs umount` as `ufs mount`; plain umount(8) works too.
import { UfsError } from '../common/errors.js';
import { mountUnion } from '../fuse/index.js';
import { MOUNT_FAILURE, parseHelperArgs } from '../fuse/helperargs.js';

async function main(argv: string[]): Promise<void> {
  const { spec, fake } = await parseHelperArgs(argv);
  if (fake) return;
  try {
    await mountUnion(spec);
  } catch (err) {
    if (err instanceof UfsError) throw new UfsError(err.message, MOUNT_FAILURE);
    throw err;
  }
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`mount.fuse.ufs: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof UfsError ? err.exitCode : MOUNT_FAILURE);
}

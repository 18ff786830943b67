#!/usr/bin/env node
// mount.fuse.ufs: the mount(8) helper for `mount -t fuse.ufs SOURCE DIR -o lowerdir=...`
// and fstab lines such as
//   ufs  /mnt/u  fuse.ufs  lowerdir=/l1:/l2,upperdir=/u,workdir=/w  0 0
// mount(8) runs /sbin/mount.fuse.ufs SOURCE DIR [-sfnvrw] [-o OPTIONS] [-t TYPE];
// scripts/setup links it there. The mount is ufs's own (mountUnion): same server,
// record and `ufs umount` as `ufs mount`; plain umount(8) works too.
import { promises as fs } from 'node:fs';
import { UfsError } from '../common/errors.js';
import { mountUnion } from '../fuse/index.js';
import { parseOverlayOptions } from '../fuse/fstab.js';

// mount(8)'s exit status for "mount failure" and for "incorrect invocation".
const MOUNT_FAILURE = 32;
const USAGE = 1;

async function main(argv: string[]): Promise<void> {
  const positional: string[] = [];
  const options: string[] = [];
  let fake = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-o') {
      const v = argv[++i];
      if (v === undefined) throw new UfsError('-o needs a value', USAGE);
      options.push(v);
    } else if (a.startsWith('-o')) options.push(a.slice(2));
    else if (a === '-t') i++;
    else if (a.startsWith('-t')) continue;
    else if (/^-[sfnvrwi]+$/.test(a)) {
      if (a.includes('f')) fake = true;
      if (a.includes('r')) options.push('ro');
    } else if (a.startsWith('-')) throw new UfsError(`unknown flag ${a}`, USAGE);
    else positional.push(a);
  }
  if (positional.length !== 2) {
    throw new UfsError('usage: mount.fuse.ufs SOURCE MOUNTPOINT -o lowerdir=TOP:...:BOTTOM[,upperdir=DIR,workdir=DIR]', USAGE);
  }
  const { spec, workdir } = parseOverlayOptions(positional[0]!, positional[1]!, options.join(','));
  if (workdir !== undefined) {
    const st = await fs.stat(workdir).catch(() => undefined);
    if (!st?.isDirectory()) throw new UfsError(`workdir ${workdir} is not a directory`, MOUNT_FAILURE);
  }
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

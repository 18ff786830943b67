// The arguments mount(8) gives a mount helper: SOURCE DIR [-sfnvrw] [-o OPTIONS] [-t TYPE],
// with overlayfs-style options (fstab.ts). Shared by the Node helper (cli/mount-fuse.ts) and
// the serving process started by the C helper (native/sys/ufs_mount_helper.c).
import { promises as fs } from 'node:fs';
import { UfsError } from '../common/errors.js';
import { parseOverlayOptions } from './fstab.js';
import type { MountSpec } from './spec.js';

// mount(8)'s exit status for "mount failure" and for "incorrect invocation".
export const MOUNT_FAILURE = 32;
export const USAGE = 1;

export interface HelperRequest {
  spec: MountSpec;
  fake: boolean; // -f: check everything, mount nothing
}

export async function parseHelperArgs(argv: string[]): Promise<HelperRequest> {
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
  return { spec, fake };
}

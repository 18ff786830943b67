// The spec ufs-init reads (Contract 6), written beside the container's record.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../common/paths.js';
import { UfsError } from '../common/errors.js';
import type { BindMount } from './container.js';

export interface InitSpec {
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
  hostname: string;
  network: 'none' | 'host';
  tty: boolean;
  mounts: BindMount[];
  pid?: number;           // exec only: host pid of the container's pid 1
}

export function initBinary(): string {
  const bin = process.env.UFS_INIT ?? path.join(PROJECT_ROOT, 'native', 'build', 'Release', 'ufs-init');
  if (!fs.existsSync(bin)) throw new UfsError(`ufs-init is not built (${bin}): run scripts/setup`, 125);
  return bin;
}

export function writeSpec(file: string, spec: InitSpec): void {
  const tmp = `${file}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(spec, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

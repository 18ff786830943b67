// /proc/self/mountinfo, parsed: which mounts exist, without touching any of them.
import { promises as fs } from 'node:fs';

export interface MountInfo {
  mountpoint: string;
  fstype: string;
  source: string;
}

// Fields 5 (mount point) and 9 (source) escape space, tab, newline and backslash as \ooo.
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    mounts.push({ mountpoint: unescape(fields[4]!), fstype: fields[sep + 1]!, source: unescape(fields[sep + 2]!) });
  }
  return mounts;
}

export async function readMountInfo(): Promise<MountInfo[]> {
  return parseMountInfo(await fs.readFile('/proc/self/mountinfo', 'utf8'));
}

export const UFS_FSTYPE = 'fuse.ufs';

// Whether a ufs union is mounted at `mountpoint` (canonical path) in this mount namespace.
export async function isUfsMount(mountpoint: string): Promise<boolean> {
  return (await readMountInfo()).some((m) => m.mountpoint === mountpoint && m.fstype === UFS_FSTYPE);
}

// `-u user[:group]` (or the image's User) to uid, gid, supplementary groups and home, from
// the container's own /etc/passwd and /etc/group, read through its root (see rootfs.ts).
import { UfsError } from '../common/errors.js';
import { readInRoot, readInRootAsync } from './rootfs.js';

export interface ExecUser { uid: number; gid: number; groups: number[]; home: string }

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 6) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) continue;
    out.push({ name: f[0], uid, gid, home: f[5] || '/' });
  }
  return out;
}

function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !/^\d+$/.test(f[2])) continue;
    out.push({ name: f[0], gid: Number(f[2]), members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

const MAX_ID = 2 ** 31 - 1;

function numeric(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

// As runc does: a name must exist; a number need not. The primary group comes from the
// passwd entry unless given; supplementary groups are the groups that list the user,
// looked up only when no group was given.
export function resolveUser(rootfs: string, spec: string | undefined): ExecUser {
  return userFrom(readInRoot(rootfs, '/etc/passwd'), readInRoot(rootfs, '/etc/group'), spec);
}

// The same with asynchronous reads, for the process that serves the root itself (fuse/host.ts).
export async function resolveUserAsync(rootfs: string, spec: string | undefined): Promise<ExecUser> {
  const [passwd, group] = await Promise.all([readInRootAsync(rootfs, '/etc/passwd'), readInRootAsync(rootfs, '/etc/group')]);
  return userFrom(passwd, group, spec);
}

function userFrom(passwdText: string | undefined, groupText: string | undefined, spec: string | undefined): ExecUser {
  const [userPart, groupPart] = (spec || '').split(':', 2) as [string, string | undefined];
  const passwd = parsePasswd(passwdText);
  const wantUser = userPart === '' ? '0' : userPart;
  const n = numeric(wantUser);
  const entry = n !== undefined ? passwd.find((p) => p.uid === n) : passwd.find((p) => p.name === wantUser);
  if (!entry && n === undefined) throw new UfsError(`unable to find user ${wantUser}: no matching entries in passwd file`, 125);
  const uid = entry ? entry.uid : (n as number);
  let gid = entry ? entry.gid : 0;
  const home = entry ? entry.home : '/';

  const groupFile = parseGroup(groupText);
  let groups: number[] = [];
  if (groupPart !== undefined && groupPart !== '') {
    const g = numeric(groupPart);
    const ge = g !== undefined ? undefined : groupFile.find((x) => x.name === groupPart);
    if (g === undefined && !ge) throw new UfsError(`unable to find group ${groupPart}: no matching entries in group file`, 125);
    gid = g !== undefined ? g : (ge as GroupEntry).gid;
    groups = [gid];
  } else {
    groups = [gid];
    if (entry) for (const ge of groupFile) if (ge.members.includes(entry.name) && !groups.includes(ge.gid)) groups.push(ge.gid);
  }
  return { uid, gid, groups, home };
}

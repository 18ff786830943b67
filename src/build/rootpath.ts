// Paths inside a build step's root, resolved from the host without leaving it: symlinks are
// followed as the container would see them (an absolute target means the root, '..' stops
// at it), so COPY/ADD never write or read outside the snapshot.
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, UfsError } from '../common/errors.js';
import { resolveInRoot } from '../runtime/rootfs.js';

// Host path of container path `p` under `root`; components that do not exist are kept as
// written (so the result can be created). With `followLast` false the last component is not
// followed (it is what gets replaced).
export function inRoot(root: string, p: string, followLast = true): string {
  try {
    return resolveInRoot(root, p, followLast);
  } catch (err) {
    if (errnoCode(err) === 'ELOOP') throw new UfsError(`too many levels of symbolic links: ${p}`);
    throw err;
  }
}

// mkdir -p of container path `p`: each missing component is created (mode 0755, owner
// uid:gid) after resolving the path again, so a symlink met on the way stays inside.
export function mkdirInRoot(root: string, p: string, uid = 0, gid = 0, mtimeSec?: number, depth = 0): string {
  if (depth > 40) throw new UfsError(`too many levels of symbolic links: ${p}`);
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  let cur = '';
  let host = root;
  for (const c of parts) {
    cur = `${cur}/${c}`;
    host = inRoot(root, cur);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(host);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    if (st && !st.isDirectory()) throw new UfsError(`cannot create directory ${cur}: a file is in the way`);
    if (!st) {
      const real = `/${path.relative(root, host)}`;
      // A dangling link on the way: create what it points to (inside the root), as mkdir -p.
      if (real !== cur && path.dirname(real) !== path.dirname(cur)) {
        mkdirInRoot(root, real, uid, gid, mtimeSec, depth + 1);
        continue;
      }
      fs.mkdirSync(host, { mode: 0o755 });
      fs.chmodSync(host, 0o755);
      fs.lchownSync(host, uid, gid);
      if (mtimeSec !== undefined) fs.utimesSync(host, mtimeSec, mtimeSec);
    }
  }
  return host;
}

export function readFileInRoot(root: string, p: string): string | undefined {
  try {
    const host = inRoot(root, p);
    return fs.statSync(host).isFile() ? fs.readFileSync(host, 'utf8') : undefined;
  } catch {
    return undefined;
  }
}

// "user[:group]" (names or numbers) as uid:gid, from the root's /etc/passwd and /etc/group.
// A user without a group gets the uid as gid for a number, the user's group for a name.
export function resolveChown(root: string, spec: string): { uid: number; gid: number } {
  const [user, group] = spec.split(':', 2) as [string, string | undefined];
  const passwd = (readFileInRoot(root, '/etc/passwd') ?? '').split('\n').map((l) => l.split(':'));
  const groups = (readFileInRoot(root, '/etc/group') ?? '').split('\n').map((l) => l.split(':'));
  let uid: number;
  let primary: number | undefined;
  if (/^\d+$/.test(user)) {
    uid = Number(user);
    primary = uid;
  } else {
    const e = passwd.find((f) => f[0] === user);
    if (!e) throw new UfsError(`unable to find user ${user}: no matching entries in passwd file`);
    uid = Number(e[2]);
    primary = Number(e[3]);
  }
  let gid = primary;
  if (group !== undefined && group !== '') {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const g = groups.find((f) => f[0] === group);
      if (!g) throw new UfsError(`unable to find group ${group}: no matching entries in group file`);
      gid = Number(g[2]);
    }
  }
  return { uid, gid: gid ?? uid };
}

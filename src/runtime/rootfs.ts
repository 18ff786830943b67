// Paths inside a container's root, resolved from the host without ever leaving it: every
// symlink is followed relative to the root (an absolute link target means the container's
// root, '..' stops at it), as the kernel would after pivot_root.
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../common/errors.js';

const MAX_LINKS = 40;

// What the walk below needs to know of one path, and the answers it takes: an lstat ('link',
// 'other' or 'missing') or a symlink's target.
export type RootQuestion = { kind: 'lstat'; path: string } | { kind: 'readlink'; path: string };
export type RootAnswer = 'link' | 'other' | 'missing' | { target: string };

// The walk of container path `p` under `root`, asking its caller about each component: the
// one rule shared by the synchronous and asynchronous resolvers here and by readers of an
// image that is not mounted (runtime/volumefill.ts). Components that do not exist are kept as
// they are (so the result can be created). With `followLast` false the last component is not
// followed (it is what gets replaced). Throws ELOOP on too many links.
export function* walkInRoot(root: string, p: string, followLast = true): Generator<RootQuestion, string, RootAnswer> {
  const done: string[] = [];
  const todo = p.split('/').filter((c) => c !== '' && c !== '.');
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift() as string;
    if (c === '..') {
      done.pop();
      continue;
    }
    if (todo.length === 0 && !followLast) {
      done.push(c);
      break;
    }
    const host = path.join(root, ...done, c);
    const kind = yield { kind: 'lstat', path: host };
    if (kind === 'missing') {
      done.push(c, ...todo.filter((x) => x !== '..'));
      break;
    }
    if (kind === 'link') {
      if (++links > MAX_LINKS) throw Object.assign(new Error(`too many levels of symbolic links: ${p}`), { code: 'ELOOP' });
      const answer = yield { kind: 'readlink', path: host };
      const target = typeof answer === 'object' ? answer.target : '';
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    done.push(c);
  }
  return path.join(root, ...done);
}

function absent(err: unknown): boolean {
  return errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR';
}

// Host path for container path `p` under `root` (see walkInRoot).
export function resolveInRoot(root: string, p: string, followLast = true): string {
  const walk = walkInRoot(root, p, followLast);
  for (let step = walk.next(); ; ) {
    if (step.done) return step.value;
    const q = step.value;
    if (q.kind === 'readlink') {
      step = walk.next({ target: fs.readlinkSync(q.path) });
      continue;
    }
    let kind: RootAnswer;
    try {
      kind = fs.lstatSync(q.path).isSymbolicLink() ? 'link' : 'other';
    } catch (err) {
      if (!absent(err)) throw err;
      kind = 'missing';
    }
    step = walk.next(kind);
  }
}

// resolveInRoot with asynchronous calls only: for the process that serves the mount itself
// (fuse/host.ts), which must never wait on it synchronously.
export async function resolveInRootAsync(root: string, p: string, followLast = true): Promise<string> {
  const walk = walkInRoot(root, p, followLast);
  for (let step = walk.next(); ; ) {
    if (step.done) return step.value;
    const q = step.value;
    if (q.kind === 'readlink') {
      step = walk.next({ target: await fsp.readlink(q.path) });
      continue;
    }
    let kind: RootAnswer;
    try {
      kind = (await fsp.lstat(q.path)).isSymbolicLink() ? 'link' : 'other';
    } catch (err) {
      if (!absent(err)) throw err;
      kind = 'missing';
    }
    step = walk.next(kind);
  }
}

function missingInRoot(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EISDIR';
}

// Read a file of the container (e.g. /etc/passwd); undefined when it is missing.
export function readInRoot(root: string, p: string): string | undefined {
  try {
    const host = resolveInRoot(root, p);
    if (!fs.statSync(host).isFile()) return undefined;
    return fs.readFileSync(host, 'utf8');
  } catch (err) {
    if (missingInRoot(err)) return undefined;
    throw err;
  }
}

export async function readInRootAsync(root: string, p: string): Promise<string | undefined> {
  try {
    const host = await resolveInRootAsync(root, p);
    if (!(await fsp.stat(host)).isFile()) return undefined;
    return await fsp.readFile(host, 'utf8');
  } catch (err) {
    if (missingInRoot(err)) return undefined;
    throw err;
  }
}

// mkdir -p inside the container's root (for the working directory, as Docker creates it).
export function mkdirInRoot(root: string, p: string): void {
  for (let i = 0; i < 4096; i++) {
    const host = resolveInRoot(root, p);
    try {
      const st = fs.statSync(host);
      if (st.isDirectory()) return;
      throw Object.assign(new Error(`not a directory: ${p}`), { code: 'ENOTDIR' });
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    // Create the first missing component only, then resolve again: a component made
    // meanwhile (or a dangling link) is followed inside the root on the next round.
    let parent = host;
    while (!fs.existsSync(path.dirname(parent)) && path.dirname(parent) !== parent) parent = path.dirname(parent);
    if (!parent.startsWith(root)) throw new Error(`cannot create ${p}`);
    try {
      fs.mkdirSync(parent, { mode: 0o755 });
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
  }
  throw Object.assign(new Error(`cannot create ${p}`), { code: 'ELOOP' });
}

// mkdirInRoot with asynchronous calls only (see resolveInRootAsync).
export async function mkdirInRootAsync(root: string, p: string): Promise<void> {
  const exists = (f: string) => fsp.access(f).then(() => true, () => false);
  for (let i = 0; i < 4096; i++) {
    const host = await resolveInRootAsync(root, p);
    try {
      const st = await fsp.stat(host);
      if (st.isDirectory()) return;
      throw Object.assign(new Error(`not a directory: ${p}`), { code: 'ENOTDIR' });
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    let parent = host;
    while (!(await exists(path.dirname(parent))) && path.dirname(parent) !== parent) parent = path.dirname(parent);
    if (!parent.startsWith(root)) throw new Error(`cannot create ${p}`);
    try {
      await fsp.mkdir(parent, { mode: 0o755 });
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
  }
  throw Object.assign(new Error(`cannot create ${p}`), { code: 'ELOOP' });
}

// `ufs cp`: files between a container's filesystem and the host (or a tar stream), through
// the container's union view: its mount while it runs, else a union of its layers mounted for
// the copy (read-only to read; over its writable layer, under the store lock, to write).
// Both ways are one tar pipeline, as Docker's: the source is packed (modes, owners, times,
// links, devices), and each entry is written at a path resolved inside the destination root
// (resolveInRoot), so no entry or symlink can lead a write out of the container's root.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { errnoCode, UfsError } from '../common/errors.js';
import { unmountUnion, mountUnion } from '../fuse/index.js';
import { resolveImage } from '../image/index.js';
import { devMajor, devMinor, mknodSync, setTimesNsSync } from '../image/native.js';
import { readTar } from '../image/tar/reader.js';
import { tarTypeOf } from '../image/tar/walk-dir.js';
import { packTar, type WriteEntry } from '../image/tar/writer.js';
import type { Store } from '../store/index.js';
import { containerPaths, findRecord, readRecord, shortId, type BindMount, type ContainerRecord } from './container.js';
import { whilePaused } from './control.js';
import { isAlive, isMountPoint } from './proc.js';
import { monitorAlive } from './reconcile.js';
import { resolveInRoot } from './rootfs.js';

export interface CpOptions {
  archive: boolean;     // -a: owners as in the source (else the copier's, or root's in a container)
  followLink: boolean;  // -L: a source that is a symlink is copied as what it points to
}

export type CpEnd = { hostPath: string } | { stream: Readable | Writable };

// Docker's reading of a cp operand: CONTAINER:PATH, unless it is '-' or a local path (one
// starting with '/' or '.', or with no ':' before its first '/').
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg === '-' || arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const colon = arg.indexOf(':');
  const slash = arg.indexOf('/');
  if (colon <= 0 || (slash >= 0 && slash < colon)) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) || '/' };
}

// ---- the container's root, for the length of a copy

function running(rec: ContainerRecord, merged: string): boolean {
  return rec.State.Status === 'running' && monitorAlive(rec) && isMountPoint(merged) && isAlive(rec.State.Pid, rec.State.PidStartTime);
}

// A container's filesystem as cp sees it: a root, and the bind mounts (volumes, -v) that a
// stopped container's root does not show (a running one's, seen from its own mount
// namespace, does).
interface ContainerFs { root: string; mounts: BindMount[] }

// The root (and path in it) that holds container path p: the source of the deepest bind
// mount over p, else the container's root.
function locate(cfs: ContainerFs, p: string): { root: string; path: string } {
  let best: BindMount | undefined;
  for (const m of cfs.mounts) {
    if ((p === m.target || p.startsWith(`${m.target}/`)) && (!best || m.target.length > best.target.length)) best = m;
  }
  if (!best) return { root: cfs.root, path: p };
  return { root: best.source, path: `/${p.slice(best.target.length)}`.replace(/^\/\/+/, '/') };
}

async function withContainerRoot<T>(store: Store, ref: string, write: boolean, fn: (cfs: ContainerFs) => Promise<T>): Promise<T> {
  const dir = store.containersDir();
  const rec = findRecord(dir, ref);
  const paths = containerPaths(dir, rec.Id);
  // its root as its processes see it, mounts and all, with its processes frozen (as Docker's
  // cp does since CVE-2018-15664): none can swap a directory for a symlink between our
  // resolving a path inside the root and the kernel's following it
  if (running(rec, paths.merged)) return whilePaused(store, rec, () => fn({ root: `/proc/${rec.State.Pid}/root`, mounts: [] }));
  const view = async (): Promise<T> => {
    const now = readRecord(dir, rec.Id) ?? rec;
    if (running(now, paths.merged)) return whilePaused(store, now, () => fn({ root: `/proc/${now.State.Pid}/root`, mounts: [] }));
    const image = await resolveImage(store, now.Image);
    const mountpoint = fs.mkdtempSync(path.join(os.tmpdir(), `ufs-cp-${shortId(now.Id)}-`));
    try {
      // writing: over the writable layer, as the container itself mounts it; reading: the
      // writable layer as one more read-only layer, so nothing is written and no lock needed
      await mountUnion({
        lowers: write ? [paths.init, ...image.layerDirs] : [paths.upper, paths.init, ...image.layerDirs],
        ...(write ? { upper: paths.upper } : {}),
        mountpoint,
        fsname: `ufs-cp-${shortId(now.Id)}`,
      });
      try {
        return await fn({ root: mountpoint, mounts: now.HostConfig.Mounts ?? [] });
      } finally {
        await unmountUnion(mountpoint);
      }
    } finally {
      fs.rmdirSync(mountpoint);
    }
  };
  // A stopped container's writable layer has one writer: the store lock keeps a start
  // (which claims the container under it) from mounting it while we write.
  return write ? store.withLock(view) : view();
}

// ---- packing: a host path (in the container view or on the host) as tar entries

const READ_CHUNK = 1 << 20;

async function* fileBody(file: string): AsyncGenerator<Buffer> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      const n = fs.readSync(fd, buf, 0, READ_CHUNK, null);
      if (n === 0) return;
      yield buf.subarray(0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
}

// Entries for `src` named `top` (and top/...), or, with top '', for its contents only.
// Only the source itself is followed (with -L); nothing below it ever is.
async function* packEntries(src: string, top: string, follow: boolean): AsyncGenerator<WriteEntry> {
  const links = new Map<string, string>();
  const stack: { host: string; name: string; st: fs.Stats }[] = [{ host: src, name: top, st: follow ? fs.statSync(src) : fs.lstatSync(src) }];
  while (stack.length) {
    const { host, name, st } = stack.pop()!;
    const type = tarTypeOf(st);
    if (!type) continue;
    if (name !== '') {
      const header = { name, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeSec: Math.floor(st.mtimeMs / 1000), mtimeNs: BigInt(Math.round(st.mtimeMs * 1e6)) };
      if (type === 'file' && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          yield { header: { ...header, type: 'link', linkname: first, size: 0 } };
          continue;
        }
        links.set(key, name);
      }
      if (type === 'file') yield { header: { ...header, size: st.size }, body: fileBody(host) };
      else if (type === 'symlink') yield { header: { ...header, linkname: fs.readlinkSync(host) } };
      else if (type === 'char' || type === 'block') yield { header: { ...header, devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev) } };
      else yield { header };
    }
    if (type === 'dir') {
      const children = fs.readdirSync(host).sort().reverse();
      for (const c of children) {
        const h = path.join(host, c);
        stack.push({ host: h, name: name === '' ? c : `${name}/${c}`, st: fs.lstatSync(h) });
      }
    }
  }
}

// ---- unpacking: tar entries written under `base` inside `root`, never outside `root`

interface Owner { uid: number; gid: number }

async function extractInto(root: string, base: string, input: AsyncIterable<Buffer | Uint8Array>, owner: Owner | undefined): Promise<void> {
  const dirTimes: [string, bigint][] = [];
  const at = (name: string, followLast = false) => resolveInRoot(root, path.posix.join(base, name), followLast);
  for await (const entry of readTar(input)) {
    const h = entry.header;
    const name = h.name.replace(/\/+$/, '');
    if (name === '' || name === '.') {
      for await (const _ of entry.body()) void _;
      continue;
    }
    const dest = at(name);
    if (dest === root) throw new UfsError(`cannot replace the container's root with ${h.name}`);
    const uid = owner ? owner.uid : h.uid;
    const gid = owner ? owner.gid : h.gid;
    const existing = lstatOrUndefined(dest);
    if (h.type === 'dir') {
      if (existing && !existing.isDirectory()) fs.rmSync(dest, { force: true });
      if (!existing || !existing.isDirectory()) fs.mkdirSync(dest, { mode: 0o700 });
      fs.chownSync(dest, uid, gid);
      fs.chmodSync(dest, h.mode);
      dirTimes.push([dest, h.mtimeNs]);
      continue;
    }
    if (existing?.isDirectory()) {
      if (fs.readdirSync(dest).length) throw new UfsError(`cannot overwrite directory ${path.posix.join(base, name)} with non-directory ${h.name}`);
      fs.rmdirSync(dest);
    } else if (existing) {
      fs.rmSync(dest, { force: true }); // a file or a symlink is replaced, never written through
    }
    if (h.type === 'file') {
      const fd = fs.openSync(dest, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      try {
        for await (const chunk of entry.body()) fs.writeSync(fd, chunk);
        fs.fchownSync(fd, uid, gid);
        fs.fchmodSync(fd, h.mode); // after chown, which clears setuid/setgid
      } finally {
        fs.closeSync(fd);
      }
    } else if (h.type === 'symlink') {
      fs.symlinkSync(h.linkname, dest);
      fs.lchownSync(dest, uid, gid);
    } else if (h.type === 'link') {
      const target = at(h.linkname.replace(/\/+$/, ''), false);
      if (!lstatOrUndefined(target)) throw new UfsError(`hard link ${h.name} to ${h.linkname}: no such file in the archive's destination`);
      fs.linkSync(target, dest);
      continue;
    } else {
      mknodSync(dest, h.type, h.mode, h.devmajor, h.devminor);
      fs.chownSync(dest, uid, gid);
      fs.chmodSync(dest, h.mode);
    }
    setTimesNsSync(dest, h.mtimeNs, h.type === 'symlink');
  }
  // directories last: writing their entries changed their times
  for (const [dir, ns] of dirTimes.reverse()) setTimesNsSync(dir, ns, false);
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

// ---- where a copy lands: Docker's rules for cp's destination

interface Source { host: string; isDir: boolean; contentsOnly: boolean; base: string }

function describeSource(host: string, userPath: string, follow: boolean): Source {
  const st = follow ? fs.statSync(host) : fs.lstatSync(host);
  const trimmed = userPath.replace(/\/+\.?$/, '');
  const contentsOnly = /(^|\/)\.$/.test(userPath) || trimmed === ''; // DIR/. or the root
  return { host, isDir: st.isDirectory(), contentsOnly, base: path.posix.basename(trimmed) };
}

// The directory the entries go into and the name the source gets there ('' = its contents).
// `stat` answers for the destination as given (following links, in its own root).
function plan(src: Source, dest: string, stat: (p: string) => fs.Stats | undefined): { dir: string; top: string } {
  const st = stat(dest);
  const trailing = dest.endsWith('/');
  const parent = path.posix.dirname(dest.replace(/\/+$/, '') || '/');
  const name = path.posix.basename(dest.replace(/\/+$/, ''));
  if (st?.isDirectory()) return { dir: dest, top: src.isDir && src.contentsOnly ? '' : src.base };
  if (st) {
    if (src.isDir) throw new UfsError(`cannot copy a directory to a file: ${dest}`);
    return { dir: parent, top: name };
  }
  if (trailing && !src.isDir) throw new UfsError(`no such directory: ${dest}`);
  if (!stat(parent)?.isDirectory()) throw new UfsError(`no such directory: ${parent}`);
  return { dir: parent, top: name };
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (err) {
    if (['ENOENT', 'ENOTDIR', 'ELOOP'].includes(errnoCode(err) ?? '')) return undefined;
    throw err;
  }
}

function tarInput(stream: Readable): AsyncIterable<Buffer> {
  return stream as AsyncIterable<Buffer>;
}

async function writeTar(entries: AsyncIterable<WriteEntry>, out: Writable, total: { bytes: number }): Promise<void> {
  for await (const chunk of counted(packTar(entries), total)) {
    if (!out.write(chunk)) await new Promise<void>((resolve, reject) => {
      out.once('drain', resolve);
      out.once('error', reject);
    });
  }
}

// The tar's bytes as they pass (what Docker's "Successfully copied" reports).
async function* counted(chunks: AsyncIterable<Buffer>, total: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const c of chunks) {
    total.bytes += c.length;
    yield c;
  }
}

// ---- the two directions

// CONTAINER:SRC to a host path, or as a tar stream.
// Returns the bytes of the tar that carried the copy.
export async function copyFromContainer(store: Store, ref: string, srcPath: string, to: CpEnd, opts: CpOptions): Promise<number> {
  const total = { bytes: 0 };
  await withContainerRoot(store, ref, false, async (cfs) => {
    const at = locate(cfs, path.posix.resolve('/', srcPath));
    const host = resolveInRoot(at.root, at.path, opts.followLink || srcPath.endsWith('/') || /\/\.$/.test(srcPath));
    if (!lstatOrUndefined(host) || (opts.followLink && !statOrUndefined(host))) throw new UfsError(`Could not find the file ${srcPath} in container ${ref}`);
    const src = describeSource(host, srcPath, opts.followLink);
    if ('stream' in to) {
      await writeTar(packEntries(host, src.contentsOnly ? '' : src.base, opts.followLink), to.stream as Writable, total);
      return;
    }
    const dest = path.resolve(to.hostPath) + (to.hostPath.endsWith('/') ? '/' : '');
    const where = plan(src, dest, statOrUndefined);
    const dir = fs.realpathSync(where.dir);
    const owner = opts.archive ? undefined : { uid: process.getuid!(), gid: process.getgid!() };
    await extractInto(dir, '/', counted(packTar(packEntries(host, where.top, opts.followLink)), total), owner);
  });
  return total.bytes;
}

// A host path, or a tar stream, to CONTAINER:DEST.
export async function copyToContainer(store: Store, ref: string, destPath: string, from: CpEnd, opts: CpOptions): Promise<number> {
  const total = { bytes: 0 };
  let src: Source | undefined;
  if ('hostPath' in from) {
    const host = path.resolve(from.hostPath);
    if (!lstatOrUndefined(host)) throw new UfsError(`stat ${from.hostPath}: no such file or directory`);
    src = describeSource(host, from.hostPath, opts.followLink);
  }
  await withContainerRoot(store, ref, true, async (cfs) => {
    const dest = path.posix.resolve('/', destPath) + (destPath.endsWith('/') && destPath !== '/' ? '/' : '');
    const inRoot = (p: string) => {
      const at = locate(cfs, path.posix.resolve('/', p));
      return statOrUndefined(resolveInRoot(at.root, at.path));
    };
    // the root the entries go under, and the destination directory in it with its links
    // followed inside that root
    const target = (dir: string) => {
      const at = locate(cfs, path.posix.resolve('/', dir));
      return { root: at.root, base: path.posix.join('/', path.relative(at.root, resolveInRoot(at.root, at.path))) };
    };
    const owner = opts.archive ? undefined : { uid: 0, gid: 0 };
    if (!src) {
      if (!inRoot(dest)?.isDirectory()) throw new UfsError(`destination "${ref}:${destPath}" must be a directory`);
      const t = target(dest);
      await extractInto(t.root, t.base, counted(tarInput((from as { stream: Readable }).stream), total), owner);
      return;
    }
    const where = plan(src, dest, inRoot);
    const t = target(where.dir);
    await extractInto(t.root, t.base, counted(packTar(packEntries(src.host, where.top, opts.followLink)), total), owner);
  });
  return total.bytes;
}

// Snapshots (DESIGN.md, "The snapshot interface"): every root filesystem ufs mounts comes
// from here. A snapshot is a record in <root>/snapshots/<id>.json naming the layers it
// leases (diff_ids, top first), plus its directory <root>/snapshots/<id>/ (upper/ for a
// writable one, merged/ when no mountpoint was given). Image GC asks list() which layers
// are leased; records are written under the store lock, so a collection never sees a
// snapshot half made.
//
// Lifetimes: a snapshot lives until remove(), except
//  - one with an `owner` pid (a build step) is swept by list() once that process is gone;
//  - a view made with `boundToMount` (`ufs mount IMAGE`) lives as long as its mount: once
//    unmounted (by `ufs umount` or anything else), list() drops it.
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, UfsError } from '../common/errors.js';
import { mountUnion, unmountUnion } from '../fuse/index.js';
import { isUfsMount } from '../fuse/mountinfo.js';
import { commitLayer } from '../image/commit.js';
import { pidAlive, readJsonSync, rmTreeSync, type Store, writeFileAtomicSync } from '../store/index.js';

export type SnapshotKind = 'active' | 'view';

export interface Snapshot {
  key: string;
  kind: SnapshotKind;
  layers: string[]; // diff_ids it leases, top first
  mountpoint: string;
  upper?: string; // active snapshots only
  owner?: number; // pid: swept when it is gone
  boundToMount?: boolean; // swept when its mount is gone
  fsname?: string;
  init?: string; // the init layer's directory (see SnapshotOptions.init)
  created: string;
}

export interface SnapshotOptions {
  mountpoint?: string; // default <root>/snapshots/<id>/merged
  owner?: number; // a process whose death ends the snapshot (builds pass process.pid)
  boundToMount?: boolean; // the snapshot ends with its mount (ufs mount IMAGE)
  fsname?: string; // the name the mount table shows
  mount?: boolean; // default true; false only records the lease (mount() later)
  // An init layer between the upper and the image layers: the mountpoints a process needs
  // (/proc, /dev, /sys, /etc/hosts, /etc/hostname, /etc/resolv.conf), so they never show up
  // in the upper, nor in a commit (Docker's "-init" layer).
  init?: boolean;
}

export interface Prepared {
  key: string;
  mountpoint: string;
  upper: string;
}

const KEY = /^[^\0\n]{1,4096}$/;

export function snapshotsDir(store: Store): string {
  return path.join(store.root, 'snapshots');
}

function idOf(key: string): string {
  return crypto.createHash('sha256').update(key).digest('hex').slice(0, 32);
}

function recordPath(store: Store, key: string): string {
  return path.join(snapshotsDir(store), `${idOf(key)}.json`);
}

function dirOf(store: Store, key: string): string {
  return path.join(snapshotsDir(store), idOf(key));
}

// The mountpoint as the mount table will show it (mountUnion resolves it the same way).
function canonical(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    throw new UfsError(`mountpoint ${p} does not exist`);
  }
}

function checkKey(key: string): void {
  if (!KEY.test(key)) throw new UfsError(`invalid snapshot key ${JSON.stringify(key)}`);
}

function readRecord(file: string): Snapshot | undefined {
  try {
    return readJsonSync<Snapshot>(file);
  } catch {
    return undefined;
  }
}

export function get(store: Store, key: string): Snapshot | undefined {
  return readRecord(recordPath(store, key));
}

// Records the snapshot (under the lock, layers checked), then mounts it. A failed mount
// leaves nothing: no record, no directory.
async function create(store: Store, key: string, kind: SnapshotKind, layers: string[], opts: SnapshotOptions): Promise<Snapshot> {
  checkKey(key);
  const dir = dirOf(store, key);
  const snap = await store.withLock(async () => {
    fs.mkdirSync(snapshotsDir(store), { recursive: true, mode: 0o700 });
    const old = get(store, key);
    if (old && !(await stale(old))) throw new UfsError(`snapshot ${key} already exists`);
    if (old) await removeUnlocked(store, old);
    for (const d of layers) if (!store.hasLayer(d)) throw new UfsError(`layer ${d} is not in the store`);
    rmTreeSync(dir);
    fs.mkdirSync(dir, { mode: 0o700 });
    const s: Snapshot = {
      key,
      kind,
      layers: [...layers],
      mountpoint: opts.mountpoint ? canonical(opts.mountpoint) : path.join(dir, 'merged'),
      ...(kind === 'active' ? { upper: path.join(dir, 'upper') } : {}),
      ...(opts.owner !== undefined ? { owner: opts.owner } : {}),
      ...(opts.boundToMount ? { boundToMount: true } : {}),
      ...(opts.fsname ? { fsname: opts.fsname } : {}),
      created: new Date().toISOString(),
    };
    if (s.upper) fs.mkdirSync(s.upper, { mode: 0o755 });
    if (!opts.mountpoint) fs.mkdirSync(s.mountpoint, { mode: 0o755 });
    // A scratch root has no layer: the union needs one lower, an empty directory.
    if (layers.length === 0) fs.mkdirSync(path.join(dir, 'empty'), { mode: 0o755 });
    if (opts.init) {
      s.init = path.join(dir, 'init');
      makeInitLayer(s.init, layers.map((d) => store.layerDir(d)));
    }
    writeFileAtomicSync(store.tmpPath('snapshot'), recordPath(store, key), `${JSON.stringify(s, null, 2)}\n`);
    return s;
  });
  if (opts.mount === false) return snap;
  try {
    await mountSnapshot(store, snap);
  } catch (err) {
    await store.withLock(async () => removeUnlocked(store, snap, { unmount: false }));
    throw err;
  }
  return snap;
}

function lowersOf(store: Store, s: Snapshot): string[] {
  const layers = s.layers.length ? s.layers.map((d) => store.layerDir(d)) : [path.join(dirOf(store, s.key), 'empty')];
  return s.init ? [s.init, ...layers] : layers;
}

const INIT_DIRS = ['proc', 'dev', 'sys', 'etc'];
const INIT_FILES = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf'];

// The top layer's directory `name` at the root, if it is a directory (whiteouts end the search).
function topDir(layerDirs: string[], name: string): fs.Stats | undefined {
  for (const l of layerDirs) {
    try {
      const st = fs.lstatSync(path.join(l, name));
      return st.isDirectory() ? st : undefined;
    } catch {
      // not in this layer
    }
    if (fs.existsSync(path.join(l, `.wh.${name}`)) || fs.existsSync(path.join(l, '.wh..wh..opq'))) return undefined;
  }
  return undefined;
}

// The init layer copies the image's metadata of /proc, /dev, /sys and /etc, so the merged
// root shows them unchanged where the image has them.
function makeInitLayer(dir: string, layerDirs: string[]): void {
  fs.mkdirSync(dir, { mode: 0o755 });
  for (const d of INIT_DIRS) fs.mkdirSync(path.join(dir, d), { mode: 0o755 });
  for (const f of INIT_FILES) fs.writeFileSync(path.join(dir, f), '', { mode: 0o644 });
  for (const d of INIT_DIRS) {
    const like = topDir(layerDirs, d);
    if (!like) continue;
    fs.chmodSync(path.join(dir, d), like.mode & 0o7777);
    fs.chownSync(path.join(dir, d), like.uid, like.gid);
    fs.utimesSync(path.join(dir, d), like.atime, like.mtime);
  }
}

async function mountSnapshot(store: Store, s: Snapshot): Promise<void> {
  await mountUnion({
    lowers: lowersOf(store, s),
    ...(s.upper ? { upper: s.upper } : {}),
    mountpoint: s.mountpoint,
    fsname: s.fsname ?? `ufs-snap-${idOf(s.key).slice(0, 12)}`,
  });
}

// A writable root: the layers under a fresh upper, mounted.
export async function prepare(store: Store, key: string, layers: string[], opts: SnapshotOptions = {}): Promise<Prepared> {
  const s = await create(store, key, 'active', layers, opts);
  return { key, mountpoint: s.mountpoint, upper: s.upper! };
}

// A read-only root of the layers, mounted.
export async function view(store: Store, key: string, layers: string[], opts: SnapshotOptions = {}): Promise<{ key: string; mountpoint: string }> {
  const s = await create(store, key, 'view', layers, opts);
  return { key, mountpoint: s.mountpoint };
}

// Mounts an existing snapshot again (a stopped container started again); no-op if mounted.
export async function mount(store: Store, key: string): Promise<{ mountpoint: string }> {
  const s = get(store, key);
  if (!s) throw new UfsError(`no snapshot ${key}`);
  if (!(await isUfsMount(s.mountpoint))) await mountSnapshot(store, s);
  return { mountpoint: s.mountpoint };
}

// Unmounts a snapshot and keeps it (its upper and its leases); no-op if not mounted.
export async function unmount(store: Store, key: string): Promise<void> {
  const s = get(store, key);
  if (!s) throw new UfsError(`no snapshot ${key}`);
  if (await isUfsMount(s.mountpoint)) await unmountUnion(s.mountpoint);
}

export interface CommitOptions {
  // Keep the snapshot mounted and alive (committing a running container): its writes are
  // flushed with syncfs first. Default: unmount, commit, remove.
  keep?: boolean;
  // Called on the upper directory after the unmount and before it is read (a builder
  // fixing timestamps); not with `keep`.
  beforeCommit?: (upper: string) => void | Promise<void>;
}

// The snapshot's writable layer as a store layer. The layer is leased to this process until
// an image made by createImage takes it over (image/commit.ts).
export async function commit(store: Store, key: string, opts: CommitOptions = {}): Promise<{ diffId: string; size: number }> {
  const s = get(store, key);
  if (!s) throw new UfsError(`no snapshot ${key}`);
  if (!s.upper) throw new UfsError(`snapshot ${key} is a read-only view: nothing to commit`);
  if (opts.keep) {
    if (await isUfsMount(s.mountpoint)) spawnSync('sync', ['-f', s.mountpoint], { stdio: 'ignore', timeout: 60_000 });
  } else {
    if (await isUfsMount(s.mountpoint)) await unmountUnion(s.mountpoint);
    await opts.beforeCommit?.(s.upper);
  }
  const { diffId } = await commitLayer(store, s.upper);
  const size = store.layerMeta(diffId)?.size ?? 0;
  if (!opts.keep) await remove(store, key);
  return { diffId, size };
}

async function removeUnlocked(store: Store, s: Snapshot, o: { unmount: boolean } = { unmount: true }): Promise<void> {
  if (o.unmount && (await isUfsMount(s.mountpoint))) await unmountUnion(s.mountpoint);
  fs.rmSync(recordPath(store, s.key), { force: true });
  rmTreeSync(dirOf(store, s.key));
}

// Unmounts (if mounted) and deletes the snapshot and its upper; its leases end. Idempotent.
export async function remove(store: Store, key: string): Promise<void> {
  await store.withLock(async () => {
    const s = get(store, key);
    if (s) await removeUnlocked(store, s);
    else rmTreeSync(dirOf(store, key));
  });
}

async function stale(s: Snapshot): Promise<boolean> {
  if (s.owner !== undefined && s.owner !== process.pid && !pidAlive(s.owner)) return true;
  if (s.boundToMount && !(await isUfsMount(s.mountpoint))) return true;
  return false;
}

// Every live snapshot with the layers it leases; those whose owner died or whose mount is
// gone (see the top) are removed on the way.
export async function list(store: Store): Promise<Snapshot[]> {
  return store.withLock(async () => {
    let names: string[];
    try {
      names = fs.readdirSync(snapshotsDir(store));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    const out: Snapshot[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const s = readRecord(path.join(snapshotsDir(store), name));
      if (!s) continue;
      if (await stale(s)) {
        await removeUnlocked(store, s).catch(() => {}); // a busy mount stays for the next round
        continue;
      }
      out.push(s);
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  });
}

// The snapshot whose mountpoint is `mountpoint`, if any (ufs umount of an image mount).
export async function findByMountpoint(store: Store, mountpoint: string): Promise<Snapshot | undefined> {
  const abs = path.resolve(mountpoint);
  let real = abs;
  try {
    real = path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
  } catch {
    // keep abs
  }
  return (await list(store)).find((s) => s.mountpoint === abs || s.mountpoint === real);
}

// The diff_ids some snapshot leases (image GC's question).
export async function leasedLayers(store: Store): Promise<Set<string>> {
  const out = new Set<string>();
  for (const s of await list(store)) for (const d of s.layers) out.add(d);
  return out;
}

// Runs `fn` while a record (no mount) leases `layers`: readers of layer directories
// (`ufs layers`) are safe from a concurrent prune.
export async function withLease<T>(store: Store, layers: string[], fn: () => Promise<T>): Promise<T> {
  const key = `lease-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  await create(store, key, 'view', layers, { owner: process.pid, mount: false });
  try {
    return await fn();
  } finally {
    await remove(store, key);
  }
}

// Named and anonymous volumes, as Docker's "local" driver keeps them: <root>/volumes/<name>/
// holds volume.json (the record) and _data/ (what a container mounts). A volume is made
// complete in tmp/ and renamed into place, and removed by renaming it out first, so a
// volume is either whole or absent. Which containers use a volume is asked of the runtime's
// container records (their Binds and Mounts).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, UfsError } from '../common/errors.js';
import { rmTreeSync, writeFileAtomicSync, type Store } from '../store/index.js';

export interface Volume {
  CreatedAt: string; // RFC 3339, seconds
  Driver: 'local';
  Labels: Record<string, string>;
  Mountpoint: string; // <root>/volumes/<name>/_data
  Name: string;
  Options: Record<string, string>;
  Scope: 'local';
}

// Docker's volume label for volumes made by `run -v /dir` (prune removes only these by default).
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

// Docker's rule for volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function volumesDir(store: Store): string {
  return path.join(store.root, 'volumes');
}

function volumeDir(store: Store, name: string): string {
  return path.join(volumesDir(store), name);
}

function readVolume(store: Store, name: string): Volume | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(volumeDir(store, name), 'volume.json'), 'utf8')) as Volume;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR' || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

export function validVolumeName(name: string): boolean {
  return NAME.test(name);
}

export interface CreateVolumeOptions {
  name?: string; // none: a random 64-hex name, as Docker gives
  labels?: Record<string, string>;
  driver?: string;
  options?: Record<string, string>;
}

// Creates the volume, or returns the existing one of that name (Docker's create is idempotent).
export async function createVolume(store: Store, opts: CreateVolumeOptions = {}): Promise<Volume> {
  if (opts.driver !== undefined && opts.driver !== 'local') throw new UfsError(`create ${opts.name ?? ''}: volume driver "${opts.driver}" is not supported: only local`);
  if (opts.options && Object.keys(opts.options).length) throw new UfsError(`create ${opts.name ?? ''}: driver options are not supported by the local driver here: ${Object.keys(opts.options).join(', ')}`);
  const name = opts.name ?? crypto.randomBytes(32).toString('hex');
  if (!validVolumeName(name)) {
    throw new UfsError(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  }
  return store.withLock(async () => {
    const existing = readVolume(store, name);
    if (existing) return existing;
    fs.mkdirSync(volumesDir(store), { recursive: true, mode: 0o700 });
    const vol: Volume = {
      CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      Driver: 'local',
      Labels: opts.labels ?? {},
      Mountpoint: path.join(volumeDir(store, name), '_data'),
      Name: name,
      Options: {},
      Scope: 'local',
    };
    const tmp = store.tmpPath('volume');
    fs.mkdirSync(path.join(tmp, '_data'), { recursive: true, mode: 0o755 });
    fs.chmodSync(tmp, 0o701);
    writeFileAtomicSync(path.join(tmp, 'volume.json.tmp'), path.join(tmp, 'volume.json'), `${JSON.stringify(vol, null, 2)}\n`);
    fs.renameSync(tmp, volumeDir(store, name));
    return vol;
  });
}

export function listVolumes(store: Store): Volume[] {
  let names: string[];
  try {
    names = fs.readdirSync(volumesDir(store));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter(validVolumeName)
    .map((n) => readVolume(store, n))
    .filter((v): v is Volume => !!v)
    .sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
}

export function getVolume(store: Store, name: string): Volume {
  const v = validVolumeName(name) ? readVolume(store, name) : undefined;
  if (!v) throw new UfsError(`get ${name}: no such volume`);
  return v;
}

// The ids of the containers whose record mounts the volume: a bind "NAME:/dir" or a mount
// whose source is the volume's directory.
export async function volumeUsers(store: Store, name: string): Promise<string[]> {
  const { listRecords } = await import('../runtime/container.js');
  const mountpoint = path.join(volumeDir(store, name), '_data');
  const users: string[] = [];
  for (const rec of listRecords(store.containersDir())) {
    const h = rec.HostConfig as { Binds?: string[]; Mounts?: { source?: string; Source?: string; Name?: string }[] } | undefined;
    const binds = h?.Binds ?? [];
    const mounts = h?.Mounts ?? [];
    if (binds.some((b) => b.split(':')[0] === name) || mounts.some((m) => m.source === mountpoint || m.Source === mountpoint || m.Name === name)) users.push(rec.Id);
  }
  return users;
}

// Removing renames the volume out of volumes/ first: it is gone at once, whole.
function deleteVolumeDir(store: Store, name: string): void {
  const trash = store.tmpPath('volume-rm');
  fs.renameSync(volumeDir(store, name), trash);
  rmTreeSync(trash);
}

export async function removeVolume(store: Store, name: string, force = false): Promise<void> {
  await store.withLock(async () => {
    if (!validVolumeName(name) || !readVolume(store, name)) {
      if (force) return;
      throw new UfsError(`get ${name}: no such volume`);
    }
    const users = await volumeUsers(store, name);
    if (users.length) throw new UfsError(`remove ${name}: volume is in use - [${users.join(', ')}]`);
    deleteVolumeDir(store, name);
  });
}

export function dirBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        try {
          total += fs.lstatSync(p).size;
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  walk(dir);
  return total;
}

export interface PruneVolumesResult {
  removed: string[];
  bytes: number;
}

// Docker 23+: unused anonymous volumes; with all, every unused volume. Label filters narrow it.
export async function pruneVolumes(store: Store, opts: { all?: boolean; labels?: { key: string; value?: string; negate?: boolean }[] } = {}): Promise<PruneVolumesResult> {
  return store.withLock(async () => {
    const removed: string[] = [];
    let bytes = 0;
    for (const v of listVolumes(store)) {
      if (!opts.all && !Object.hasOwn(v.Labels, ANONYMOUS_LABEL)) continue;
      const match = (opts.labels ?? []).every((l) => {
        const has = Object.hasOwn(v.Labels, l.key) && (l.value === undefined || v.Labels[l.key] === l.value);
        return l.negate ? !has : has;
      });
      if (!match) continue;
      if ((await volumeUsers(store, v.Name)).length) continue;
      bytes += dirBytes(v.Mountpoint);
      deleteVolumeDir(store, v.Name);
      removed.push(v.Name);
    }
    return { removed, bytes };
  });
}

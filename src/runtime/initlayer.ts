// The per-container init layer (Docker's "-init" layer): a lower layer between the image
// and the writable layer holding what the OCI runtime needs in the root: mount points /proc, /dev,
// /sys and empty /etc/hosts, /etc/hostname, /etc/resolv.conf to bind over. Being a lower,
// none of it appears in `ufs diff` or in a commit.
import fs from 'node:fs';
import path from 'node:path';

export const INIT_DIRS = ['/proc', '/dev', '/sys', '/etc'];
export const INIT_FILES = ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf'];
// Paths whose changes are the runtime's, not the container's: hidden from `ufs diff`.
export const INIT_PATHS = ['/proc', '/dev', '/sys', ...INIT_FILES];

// The metadata of the topmost image layer's directory `name` at the root (top first),
// so the init layer's copy does not change the image's /etc mode, owner or times.
function imageDirStat(layerDirs: string[], name: string): fs.Stats | undefined {
  for (const layer of layerDirs) {
    try {
      const st = fs.lstatSync(path.join(layer, name));
      return st.isDirectory() ? st : undefined;
    } catch {
      // not in this layer
    }
    if (fs.existsSync(path.join(layer, `.wh.${name}`)) || fs.existsSync(path.join(layer, '.wh..wh..opq'))) return undefined;
  }
  return undefined;
}

export function createInitLayer(dir: string, layerDirs: string[]): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const d of INIT_DIRS) {
    const name = d.slice(1);
    const host = path.join(dir, name);
    const like = imageDirStat(layerDirs, name);
    fs.mkdirSync(host, { recursive: true, mode: 0o755 });
    if (like) {
      fs.chmodSync(host, like.mode & 0o7777);
      fs.chownSync(host, like.uid, like.gid);
    }
  }
  for (const f of INIT_FILES) {
    const host = path.join(dir, f);
    fs.writeFileSync(host, '', { mode: 0o644 });
  }
  // Times last: writing the files above moved /etc's mtime.
  for (const d of INIT_DIRS) {
    const like = imageDirStat(layerDirs, d.slice(1));
    if (like) fs.utimesSync(path.join(dir, d), like.atime, like.mtime);
  }
}

// Whether a change reported against [init, ...image] belongs to the runtime's init layer.
// Under /proc, /dev and /sys the container only ever sees its own mounts.
export function isInitPath(p: string): boolean {
  return INIT_PATHS.includes(p) || ['/proc/', '/dev/', '/sys/'].some((d) => p.startsWith(d));
}

// Overlayfs-style mount options (mount -t fuse.ufs, fstab) -> a ufs MountSpec.
//
// `lowerdir=TOP:...:BOTTOM` (as overlayfs: leftmost is the top; `\:` escapes a colon in a
// path), `upperdir=`, `workdir=` (overlayfs's scratch directory: checked to exist, not used;
// ufs needs none), and the generic options mount(8) passes along. Anything else is refused,
// so that a typo never mounts something other than what was asked for.
import { UfsError } from '../common/errors.js';
import type { MountSpec } from './spec.js';

// Options mount(8) and fstab pass that ufs accepts: either meaningless for a FUSE union or
// already its behaviour. `suid` is honoured (see MountSpec.suid).
const IGNORED = new Set([
  'rw', 'defaults', 'auto', 'noauto', 'user', 'nouser', 'users', '_netdev', 'nofail',
  'dev', 'nodev', 'exec', 'noexec', 'nosuid', 'async', 'sync',
  'atime', 'noatime', 'relatime', 'norelatime', 'strictatime', 'nodiratime', 'diratime', 'lazytime',
  'allow_other', 'default_permissions',
]);

// Options overlayfs knows that change nothing in ufs's rules (it always keeps inode numbers
// stable and stores no metadata-only copies).
const OVERLAY_NEUTRAL = /^(index|xino|metacopy|nfs_export|uuid|volatile|userxattr|verity)(=.*)?$/;

// Splits on commas not escaped by a backslash.
function splitOptions(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
    } else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.filter((o) => o !== '');
}

// lowerdir's layers: ':' separates, '\:' and '\,' and '\\' are literal.
function splitLowers(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += s[i + 1];
      i++;
    } else if (c === ':') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function unescapeValue(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

export interface FstabMount {
  spec: MountSpec;
  readOnly: boolean;
  workdir?: string;
}

// `options` is the whole -o string (several -o given to mount(8) arrive joined by commas).
export function parseOverlayOptions(source: string, mountpoint: string, options: string): FstabMount {
  let lowers: string[] | undefined;
  let upper: string | undefined;
  let workdir: string | undefined;
  let readOnly = false;
  let suid = false;
  // An fstab mount's upper is an overlay upper: renamed directories get redirects, as
  // overlayfs's default redirect_dir=on (UnionOptions.redirectDir); redirect_dir=off (or
  // follow/nofollow, which create none) copies them whole, as ufs's own mounts do.
  let redirectDir = true;
  for (const opt of splitOptions(options)) {
    const eq = opt.indexOf('=');
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? '' : opt.slice(eq + 1);
    if (key === 'lowerdir') {
      lowers = splitLowers(value);
      if (lowers.some((l) => l === '')) throw new UfsError(`lowerdir=${value}: an empty layer path`);
    } else if (key === 'upperdir') upper = unescapeValue(value);
    else if (key === 'workdir') workdir = unescapeValue(value);
    else if (key === 'ro') readOnly = true;
    else if (key === 'suid') suid = true;
    else if (key === 'redirect_dir') {
      if (!['on', 'off', 'follow', 'nofollow'].includes(value)) throw new UfsError(`redirect_dir=${value}: on, off, follow or nofollow`);
      redirectDir = value === 'on';
    }
    else if (IGNORED.has(key) || OVERLAY_NEUTRAL.test(opt) || key === 'fsname' || key === 'subtype') continue;
    else throw new UfsError(`unknown mount option ${opt}`);
  }
  if (!lowers) throw new UfsError('mount option lowerdir= is required');
  if (upper !== undefined && workdir === undefined) throw new UfsError('upperdir= needs workdir= (as overlayfs)');
  const fsname = source && source !== 'none' ? source : undefined;
  const spec: MountSpec = {
    lowers,
    ...(upper !== undefined && !readOnly ? { upper } : {}),
    mountpoint,
    ...(fsname ? { fsname } : {}),
    ...(suid ? { suid: true } : {}),
    ...(redirectDir ? { redirectDir: true } : {}),
  };
  return { spec, readOnly, ...(workdir !== undefined ? { workdir } : {}) };
}

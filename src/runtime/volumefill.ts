// Docker's rule for a volume mounted where the image has a directory: an empty volume is
// filled with what the image has there (modes, owners, times, symlinks, device nodes), and
// its own root takes that directory's mode and owner. So `-v data:/var/lib/app` starts with
// the image's /var/lib/app, as it does with Docker. The image is read through the union
// rules in-process (src/unionfs, read-only, no mount); every write goes into the volume's
// fresh directory, by name, never through a symlink: a symlink from the image is copied as a
// symlink, and nothing is created through one.
import fs from 'node:fs';
import { toBytes, UnionFs, type Attr } from '../unionfs/index.js';
import { devMajor, devMinor, mknodSync, setTimesNsSync } from '../image/native.js';
import { walkInRoot } from './rootfs.js';

const C = fs.constants;

// Byte strings (one character per byte, toBytes) are the union's names; fs takes them as Buffers.
const host = (s: string): Buffer => Buffer.from(s, 'latin1');

// The image's directory at `target` as the container sees it: each symlink on the way is
// followed inside the image's root (walkInRoot's rule). Undefined when it is not there or
// not a directory.
async function resolveDir(union: UnionFs, target: string): Promise<{ dir: string; attr: Attr } | undefined> {
  const walk = walkInRoot('/', toBytes(target));
  let step = walk.next();
  try {
    while (!step.done) {
      const q = step.value;
      if (q.kind === 'readlink') step = walk.next({ target: await union.readlink(q.path) });
      else {
        const found = await union.lookupAttr(q.path);
        step = walk.next(!found ? 'missing' : (found.attr.mode & C.S_IFMT) === C.S_IFLNK ? 'link' : 'other');
      }
    }
  } catch {
    return undefined; // a loop of links, or a name the union refuses: nothing to copy
  }
  const found = await union.lookupAttr(step.value);
  return found && (found.attr.mode & C.S_IFMT) === C.S_IFDIR ? { dir: step.value, attr: found.attr } : undefined;
}

function setMeta(dest: Buffer, attr: Attr, isLink: boolean): void {
  fs.lchownSync(dest, attr.uid, attr.gid);
  if (!isLink) fs.chmodSync(dest, attr.mode & 0o7777); // after chown, which clears setuid bits
  setTimesNsSync(dest, attr.mtimeNs, isLink);
}

async function copyTree(union: UnionFs, dir: string, dest: string): Promise<void> {
  const { entries } = await union.readdirAttrs(dir);
  for (const e of entries) {
    const src = `${dir === '/' ? '' : dir}/${e.name}`;
    const out = `${dest}/${e.name}`;
    const to = host(out);
    const fmt = e.attr.mode & C.S_IFMT;
    if (fmt === C.S_IFDIR) {
      fs.mkdirSync(to, 0o700);
      await copyTree(union, src, out);
      setMeta(to, e.attr, false);
    } else if (fmt === C.S_IFREG) {
      if (!e.lowerFile) continue;
      fs.copyFileSync(host(e.lowerFile), to, fs.constants.COPYFILE_EXCL);
      setMeta(to, e.attr, false);
    } else if (fmt === C.S_IFLNK) {
      fs.symlinkSync(host(await union.readlink(src)), to);
      setMeta(to, e.attr, true);
    } else if (fmt === C.S_IFCHR || fmt === C.S_IFBLK || fmt === C.S_IFIFO) {
      const kind = fmt === C.S_IFCHR ? 'char' : fmt === C.S_IFBLK ? 'block' : 'fifo';
      mknodSync(to, kind, e.attr.mode, devMajor(e.attr.rdev), devMinor(e.attr.rdev));
      setMeta(to, e.attr, false);
    }
    // sockets are not content: left out, as a tar of the image would
  }
}

// Fills `volumeDir` (a volume's _data) from the image's `target` when the volume is empty
// and the image has a directory there. Returns whether it copied anything.
export async function fillVolumeFromImage(layerDirs: string[], target: string, volumeDir: string): Promise<boolean> {
  if (fs.readdirSync(volumeDir).length > 0) return false;
  const union = new UnionFs({ lowers: layerDirs });
  await union.init();
  const source = await resolveDir(union, target);
  if (!source) return false;
  const root = toBytes(volumeDir);
  await copyTree(union, source.dir, root);
  setMeta(host(root), source.attr, false);
  return true;
}

// One list of union behaviour cases, run on every filesystem that claims the union rules:
// the ufs mount (its mount.fuse.ufs helper, our binding, both rename modes) and kernel overlayfs as the
// reference. Each case fills a lower layer, runs the same shell actions in the mount, and the
// merged view that results (names as bytes, types, modes, sizes, contents, link targets, and
// which names share an inode) must equal overlayfs's, and survive a remount.
import test, { type ExecutionContext } from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fill, nodeIn, run, sh, tempDir } from './helpers/mount.js';

const HELPER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'mount-fuse.js');

interface Case {
  name: string;
  lower: string; // shell, in the lower layer
  act: string; // shell, in the mount
}

export const CASES: Case[] = [
  { name: 'copy-up on write keeps the rest of the file', lower: 'printf abcdef > f', act: 'printf X | dd of=f bs=1 seek=2 conv=notrunc status=none' },
  { name: 'open with O_TRUNC of a lower file, and of an upper one open read-only', lower: 'echo lower > f; echo g > g', act: ': > f; exec 3<g; : > g; echo new >> g; exec 3<&-' },
  { name: 'delete a lower file, then make it again', lower: 'echo old > f; echo keep > k', act: 'rm f; ls; echo new > f' },
  { name: 'rm -rf a lower tree and mkdir the name again: empty', lower: 'mkdir -p d/s; echo 1 > d/s/x; echo 2 > d/y', act: 'rm -rf d; mkdir d; touch d/z' },
  { name: 'rename a lower directory with contents, then change inside it', lower: 'mkdir -p a/d/s b; echo 1 > a/d/f; echo 2 > a/d/s/g', act: 'mv a/d b/e; echo 3 >> b/e/f; mkdir a/d' },
  { name: 'rename a lower file over another lower file', lower: 'echo 1 > x; echo 2 > y', act: 'mv x y' },
  { name: 'hard links of a lower file share one inode after a write', lower: 'echo 1 > f', act: 'ln f g; echo 2 >> g' },
  { name: 'chmod, chown, symlinks and a fifo', lower: 'echo 1 > f; mkdir d', act: 'chmod 600 f; chown 12:34 d; ln -s f l; ln -s /nowhere dangling; mkfifo p' },
  { name: 'a directory opaque over a lower one keeps only its new names', lower: 'mkdir d; echo 1 > d/a', act: 'rm d/a; rmdir d; mkdir d; echo 2 > d/b; mv d d2; mkdir d' },
  { name: 'names that are not UTF-8', lower: "printf 1 > \"$(printf 'caf\\351')\"", act: "mv \"$(printf 'caf\\351')\" \"$(printf '\\377\\376')\"; printf 2 > \"$(printf 'na\\357ve')\"" },
];

// The merged view, as sorted lines (hex names: bytes exactly).
const STATE = `
const crypto = await import('node:crypto');
const out = [];
const inodes = new Map();
async function walk(dir, rel) {
  for (const n of (await fs.readdir(dir, { encoding: 'buffer' })).sort(Buffer.compare)) {
    const p = Buffer.concat([dir, Buffer.from('/'), n]);
    const r = rel + '/' + n.toString('hex');
    const st = await fs.lstat(p);
    let line = r + ' ' + (st.mode & 0o170000).toString(8) + ' ' + (st.mode & 0o7777).toString(8) + ' ' + st.uid + ':' + st.gid;
    if (st.isFile()) {
      line += ' ' + st.size + ' ' + crypto.createHash('sha256').update(await fs.readFile(p)).digest('hex').slice(0, 12);
      if (!inodes.has(st.ino)) inodes.set(st.ino, []);
      inodes.get(st.ino).push(r);
    }
    if (st.isSymbolicLink()) line += ' -> ' + (await fs.readlink(p, { encoding: 'buffer' })).toString('hex');
    out.push(line);
    if (st.isDirectory()) await walk(p, r);
  }
}
await walk(Buffer.from('.'), '');
for (const names of inodes.values()) if (names.length > 1) out.push('same inode: ' + names.sort().join(' '));
return out;`;

async function state(dir: string): Promise<string[]> {
  return nodeIn<string[]>(dir, STATE);
}

async function mustRun(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

interface Fs {
  name: string;
  mount(t: ExecutionContext, lower: string, upper: string, work: string, mnt: string): Promise<void>;
}

function ufs(redirect: 'on' | 'off'): Fs {
  return {
    name: `ufs (redirect_dir=${redirect})`,
    async mount(t, lower, upper, work, mnt) {
      t.teardown(async () => {
        await run('umount', [mnt]);
      });
      // What `mount -t fuse.ufs` runs (this checkout's helper; scripts/conformance goes
      // through mount(8) itself).
      await mustRun(process.execPath, [HELPER, 'ufs', mnt, '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=${redirect}`]);
    },
  };
}

// The reference. Its own rules for directory renames (redirect_dir=on) and hard links (index).
const overlayfs: Fs = {
  name: 'overlayfs',
  async mount(t, lower, upper, work, mnt) {
    t.teardown(async () => {
      await run('umount', [mnt]);
    });
    await mustRun('mount', ['-t', 'overlay', 'overlay', mnt, '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=on,index=off`]);
  },
};

async function outcome(t: ExecutionContext, c: Case, f: Fs): Promise<{ live: string[]; again: string[] }> {
  const base = await tempDir(t, 'ufs-behaviour-');
  const [lower, upper, work, mnt] = ['lower', 'upper', 'work', 'mnt'].map((d) => path.join(base, d)) as [string, string, string, string];
  for (const d of [lower, upper, work, mnt]) await fs.mkdir(d);
  await fill(lower, c.lower);
  await f.mount(t, lower, upper, work, mnt);
  const r = await sh(`set -e\n${c.act}`, { cwd: mnt });
  if (r.code !== 0) throw new Error(`${f.name}: ${c.name}: ${r.stderr}`);
  const live = await state(mnt);
  await mustRun('umount', [mnt]);
  await f.mount(t, lower, upper, work, mnt);
  const again = await state(mnt);
  return { live, again };
}

for (const c of CASES) {
  test(`union behaviour: ${c.name}`, async (t) => {
    const want = await outcome(t, c, overlayfs);
    t.deepEqual(want.again, want.live, 'overlayfs itself keeps it over a remount');
    for (const f of [ufs('on'), ufs('off')]) {
      const got = await outcome(t, c, f);
      t.deepEqual(got.live, want.live, `${f.name} as overlayfs`);
      t.deepEqual(got.again, want.live, `${f.name} after a remount`);
    }
  });
}

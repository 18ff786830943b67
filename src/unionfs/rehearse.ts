// A rehearsal of the union's writing paths on a scratch union of its own, inside the upper's
// work dir, removed again: the same code a real copy-up, create, rename or unlink runs, on
// objects nobody else sees (the work dir is hidden from the merged view and emptied at every
// start). The serving process runs it once after start-up (src/fuse/warmup.ts says why).
import { writeSync } from 'node:fs';
import { closeFd, hfs as fs, openFd, removeTree } from './hostfs.js';
import type { Caller } from './types.js';
import { UnionFs } from './unionfs.js';
import { WORK_DIR, newTempName } from './whiteout.js';

const C = fs.constants;

// `upperRoot` in host form (UnionFs.upperRoot).
export async function rehearseWrites(upperRoot: string): Promise<void> {
  const scratch = `${upperRoot}/${WORK_DIR}/${newTempName()}`;
  try {
    fs.mkdirSync(scratch, 0o700);
    fs.mkdirSync(`${scratch}/lower`, 0o755);
    fs.mkdirSync(`${scratch}/lower/dir`, 0o755);
    const fd = openFd(`${scratch}/lower/dir/file`, C.O_WRONLY | C.O_CREAT | C.O_EXCL, 0o644);
    try {
      writeSync(fd, Buffer.alloc(4096, 1));
    } finally {
      closeFd(fd);
    }
    fs.mkdirSync(`${scratch}/upper`, 0o755);
    const union = new UnionFs({ lowers: [`${scratch}/lower`], upper: `${scratch}/upper` });
    await union.init();
    const caller: Caller = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, pid: process.pid, umask: 0o022 };
    await union.lookupAttr('/dir/file');
    await union.readdirAttrs('/dir');
    // A copy-up of data and of its parent directory, as the first write to a lower file makes.
    await union.release(await union.open('/dir/file', C.O_WRONLY));
    await union.getattr('/dir/file');
    await union.release(await union.create('/dir/new', 0o644, C.O_WRONLY | C.O_CREAT | C.O_EXCL, caller));
    await union.rename('/dir/new', '/dir/renamed');
    await union.unlink('/dir/renamed');
    await union.unlink('/dir/file'); // leaves a whiteout
    await union.readdirAttrs('/dir');
  } finally {
    removeTree(scratch);
  }
}

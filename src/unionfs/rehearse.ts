// A rehearsal of the union's writing paths on a scratch union of its own, in a temp dir of its
// own, removed again: the same code a real copy-up, create, rename or unlink runs, on objects
// nobody else sees. The serving process runs it once after start-up (src/fuse/warmup.ts says
// why). Not in the layers: a file system under them must be free to unmount the moment the
// union is unmounted, and the rehearsal may still be going on then.
import { mkdtempSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { closeFd, hfs as fs, openFd, removeTree, toBytes } from './hostfs.js';
import type { Caller } from './types.js';
import { UnionFs } from './unionfs.js';

const C = fs.constants;

// One step at a time, with a turn of the event loop between them, so that what the loop has
// to do meanwhile (the end of the session, a request for JS) waits for one step at most;
// `stop` ends the rehearsal early (the mount is gone).
export async function rehearseWrites(stop: () => boolean): Promise<void> {
  const scratch = toBytes(mkdtempSync(path.join(os.tmpdir(), 'ufs-rehearse-'))); // host form, as the union takes paths
  const turn = (): Promise<boolean> => new Promise((resolve) => setImmediate(() => resolve(stop())));
  try {
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
    const steps: (() => Promise<unknown>)[] = [
      () => union.lookupAttr('/dir/file'),
      () => union.readdirAttrs('/dir'),
      // A copy-up of data and of its parent directory, as the first write to a lower file makes.
      async () => union.release(await union.open('/dir/file', C.O_WRONLY)),
      () => union.getattr('/dir/file'),
      async () => union.release(await union.create('/dir/new', 0o644, C.O_WRONLY | C.O_CREAT | C.O_EXCL, caller)),
      () => union.rename('/dir/new', '/dir/renamed'),
      () => union.unlink('/dir/renamed'),
      () => union.unlink('/dir/file'), // leaves a whiteout
      () => union.readdirAttrs('/dir'),
    ];
    for (const step of steps) {
      if (await turn()) return;
      await step();
    }
  } finally {
    removeTree(scratch);
  }
}

// Kernel FUSE passthrough of lower files (native/fuse/ufs_fuse.c, "Passthrough"): read-only
// opens of a lower file are read by the kernel from the lower file itself, and every open of a
// node with such an open must use the same backing file. A change of the data while one is
// open (an open for writing, O_TRUNC, truncate) goes to a new node for the name; the old
// descriptor keeps the lower data, as on overlayfs. The lower layer never changes.
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fill, mountWith } from './helpers/mount.js';

// The server's own account of INIT, logged once the mount serves.
async function passthroughState(log: () => Promise<string>): Promise<{ offered: boolean; on: boolean }> {
  for (let i = 0; i < 50; i++) {
    const m = /passthrough: (\{.*\})/.exec(await log());
    if (m) return JSON.parse(m[1]!) as { offered: boolean; on: boolean };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server never logged its passthrough state');
}

test('a lower file open read-only keeps its data while another open writes, truncates, and reads the new', async (t) => {
  const m = await mountWith(t, { setup: (l) => fill(l.lowers[0]!, 'printf lower-data > f; printf 12345 > g; printf same > h') });
  const state = await passthroughState(m.serverLog);
  // Where the kernel offers passthrough (Linux 6.9+) and we run as root, it is in use.
  if (state.offered && process.getuid?.() === 0) t.true(state.on, JSON.stringify(state));
  const r = await m.node<Record<string, unknown>>(`
    const out = {};
    const ro = await fs.open('f', 'r');
    out.first = (await ro.read(Buffer.alloc(32), 0, 32, 0)).buffer.toString('utf8', 0, 10);
    const again = await fs.open('f', 'r'); // a second read-only open of the same node
    out.again = (await again.readFile('utf8'));
    const rw = await fs.open('f', 'r+');
    await rw.write('UPPER', 0);
    const b = Buffer.alloc(32);
    const n = (await ro.read(b, 0, 32, 0)).bytesRead;
    out.oldFd = b.toString('utf8', 0, n);
    out.newFd = (await rw.read(Buffer.alloc(32), 0, 32, 0)).buffer.toString('utf8', 0, 10);
    out.sameIno = (await ro.stat()).ino === (await fs.stat('f')).ino;
    await Promise.all([ro.close(), again.close(), rw.close()]);
    out.after = await fs.readFile('f', 'utf8');
    // O_RDONLY|O_TRUNC (the kernel sends it as a read-only open, then truncates), and
    // truncate(2) by name, each while another descriptor reads the file.
    const g = await fs.open('g', 'r');
    const gt = await fs.open('g', fsc.constants.O_RDONLY | fsc.constants.O_TRUNC);
    out.gTruncated = (await gt.stat()).size;
    await gt.close();
    out.gOld = (await g.readFile('utf8'));
    await g.close();
    const h = await fs.open('h', 'r');
    await fs.truncate('h', 2);
    out.hOld = (await h.read(Buffer.alloc(8), 0, 8, 0)).bytesRead;
    await h.close();
    out.h = await fs.readFile('h', 'utf8');
    return out;
  `);
  t.deepEqual(r, {
    first: 'lower-data',
    again: 'lower-data',
    oldFd: 'lower-data',
    newFd: 'UPPER-data',
    sameIno: true,
    after: 'UPPER-data',
    gTruncated: 0,
    gOld: '12345',
    hOld: 4,
    h: 'sa',
  });
  t.is(await fs.readFile(path.join(m.lowers[0]!, 'f'), 'utf8'), 'lower-data');
  t.is(await fs.readFile(path.join(m.lowers[0]!, 'g'), 'utf8'), '12345');
  t.is(await fs.readFile(path.join(m.lowers[0]!, 'h'), 'utf8'), 'same');
  t.is(await fs.readFile(path.join(m.upper!, 'g'), 'utf8'), '');
});

test('with UFS_FUSE_PASSTHROUGH=0 the same reads are served by the server', async (t) => {
  const m = await mountWith(t, {
    setup: async (l) => {
      l.env.UFS_FUSE_PASSTHROUGH = '0';
      await fill(l.lowers[0]!, 'printf lower-data > f');
    },
  });
  t.false((await passthroughState(m.serverLog)).on);
  t.is(await m.ok('cat f; printf X | dd of=f bs=1 seek=0 conv=notrunc status=none; cat f'), 'lower-dataXower-data');
});

// Background copy-up (src/unionfs/copyup.ts, native/fuse/ufs_fuse.c "Background copy-up"): an
// open for writing of a big lower file is answered once the upper file is in place, and its
// data follows on a thread. Whatever a caller does meanwhile must see what a finished copy-up
// would show, and a server that dies mid-copy must leave the next mount a whole file.
// UFS_BACKGROUND_COPY_MIN makes 1 MiB "big" here, so the files stay small enough to be quick.
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fill, makeLayers, mount, pidAlive, records, run, type Layers, type Mount } from './helpers/mount.js';

const SIZE = 96 << 20;
const WORK = '.wh..wh..ufs.work';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function bigLower(t: ExecutionContext): Promise<{ l: Layers; data: Buffer }> {
  const l = await makeLayers(t);
  l.env.UFS_BACKGROUND_COPY_MIN = String(1 << 20);
  await fill(l.lowers[0]!, `head -c ${SIZE} /dev/urandom > big; chmod 640 big; touch -d @1500000000 big`);
  return { l, data: await fs.readFile(path.join(l.lowers[0]!, 'big')) };
}

async function settled(m: Mount): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const left = (await fs.readdir(path.join(m.upper!, WORK)).catch(() => [])).filter((n) => n.startsWith('copying.'));
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the background copy never ended');
}

test('writes during a background copy-up land, and reads, stat and the upper agree with a finished copy', async (t) => {
  const { l, data } = await bigLower(t);
  const m = await mount(t, l);
  const r = await m.node<Record<string, unknown>>(`
    const f = await fs.open('big', 'r+');
    await f.write(Buffer.from('HEAD'), 0, 4, 0);          // lands at once: the copy starts there
    await f.write(Buffer.from('MORE'), 0, 4, ${SIZE});     // an append: past the lower's bytes
    await f.write(Buffer.from('MIDDLE'), 0, 6, ${SIZE / 2});
    await f.write(Buffer.from('TAIL'), 0, 4, ${SIZE - 4}); // waits for the end of the copy
    const st = await f.stat();
    const back = Buffer.alloc(8);
    await f.read(back, 0, 8, ${SIZE - 8});  // four lower bytes, then TAIL
    await f.close();
    const again = await fs.readFile('big');
    return { size: st.size, mode: (st.mode & 0o7777).toString(8), mtimeRecent: st.mtimeMs > Date.now() - 600000, tail: back.toString('latin1', 4), sha: (await import('node:crypto')).createHash('sha256').update(again).digest('hex') };
  `);
  const want = Buffer.concat([data, Buffer.from('MORE')]);
  want.write('HEAD', 0, 'latin1');
  want.write('MIDDLE', SIZE / 2, 'latin1');
  want.write('TAIL', SIZE - 4, 'latin1');
  t.deepEqual(r, { size: SIZE + 4, mode: '640', mtimeRecent: true, tail: 'TAIL', sha: sha(want) });
  t.regex(await m.serverLog(), /goes on in the background/, 'the background path was taken');
  await settled(m);
  const upperFile = path.join(m.upper!, 'big');
  t.is(sha(await fs.readFile(upperFile)), sha(want));
  const attrs = await run('getfattr', ['-d', '-m', '-', '--absolute-names', upperFile]);
  t.notRegex(attrs.stdout, /copysrc|copied/, 'the journal xattrs are gone');
  t.is((await fs.stat(upperFile)).nlink, 1, 'the journal entry is gone');
  t.is(sha(await fs.readFile(path.join(l.lowers[0]!, 'big'))), sha(data), 'the lower is untouched');
  // A background copy is news, not trouble: the log goes with a clean unmount.
  const log = (await records(l.runDir))[0]!.log;
  t.is((await m.umount()).code, 0);
  for (let i = 0; i < 200 && (await fs.stat(log).catch(() => null)); i++) await new Promise((r) => setTimeout(r, 50));
  t.is(await fs.stat(log).catch(() => null), null, 'no log kept');
});

test('an unwritten background copy keeps the lower mtime; truncate, utimes, O_TRUNC and fsync wait for it', async (t) => {
  const { l, data } = await bigLower(t);
  // cap_net_raw+ep, as setcap writes it (VFS_CAP_REVISION_2): the copy's writes drop it on
  // the upper file, and an unwritten copy must put it back.
  await fill(l.lowers[0]!, `cp -p big big2; cp -p big big3; cp -p big big4; setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 big`);
  const m = await mount(t, l);
  const r = await m.node<Record<string, unknown>>(`
    const out = {};
    const a = await fs.open('big', 'r+');        // opened for writing, never written
    await a.close();
    const b = await fs.open('big2', 'r+');
    await b.write(Buffer.from('xy'), 0, 2, 10);
    await b.truncate(1000);                      // through the handle
    await b.sync();
    out.b = (await b.stat()).size;
    await b.close();
    const c = await fs.open('big3', 'r+');
    await fs.truncate('big3', 3000);             // by name, while a handle is open
    await fs.utimes('big3', 1000, 2000);
    await c.close();
    const st3 = await fs.stat('big3');
    out.c = [st3.size, st3.mtimeMs];
    const d = await fs.open('big4', 'r+');
    const e = await fs.open('big4', fsc.constants.O_WRONLY | fsc.constants.O_TRUNC);
    await e.write('new');
    await Promise.all([d.close(), e.close()]);
    out.d = await fs.readFile('big4', 'latin1');
    return out;
  `);
  t.deepEqual(r, { b: 1000, c: [3000, 2_000_000], d: 'new' });
  await settled(m);
  const st = await fs.stat(path.join(m.upper!, 'big'));
  t.is(st.mtimeMs, 1_500_000_000_000, 'mtime of an unwritten copy is the lower file\'s');
  const caps = await run('getfattr', ['-n', 'security.capability', '-e', 'hex', '--absolute-names', path.join(m.upper!, 'big')]);
  t.regex(caps.stdout, /security\.capability=0x0100000200200000/, 'file capabilities kept');
  t.is(sha(await fs.readFile(path.join(m.upper!, 'big'))), sha(data));
  const b2 = await fs.readFile(path.join(m.upper!, 'big2'));
  const want2 = Buffer.from(data.subarray(0, 1000));
  want2.write('xy', 10, 'latin1');
  t.is(sha(b2), sha(want2));
  t.is(sha(await fs.readFile(path.join(m.upper!, 'big3'))), sha(data.subarray(0, 3000)));
});

test('a server killed during a background copy-up leaves a journal the next mount finishes', async (t) => {
  const { l, data } = await bigLower(t);
  const m = await mount(t, l);
  await m.node(`
    const f = await fs.open('big', 'r+');
    await f.write(Buffer.from('HEAD'), 0, 4, 0);
    await f.close();
    return true;
  `);
  process.kill(m.pid, 'SIGKILL'); // mid-copy, or just after it: either way the result must be whole
  for (let i = 0; i < 100 && pidAlive(m.pid); i++) await new Promise((r) => setTimeout(r, 20));
  await run('fusermount', ['-uz', m.mnt]);
  const cut = (await fs.readdir(path.join(l.upper!, WORK))).filter((n) => n.startsWith('copying.')).length > 0;
  t.log(cut ? 'the copy was cut short' : 'the copy had ended before the kill');
  const m2 = await mount(t, l);
  const want = Buffer.from(data);
  want.write('HEAD', 0, 'latin1');
  t.is(sha(await fs.readFile(path.join(m2.mnt, 'big'))), sha(want));
  t.deepEqual((await fs.readdir(path.join(m2.upper!, WORK))).filter((n) => n.startsWith('copying.')), []);
});

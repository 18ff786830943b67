// Names are bytes and paths have no length limit, through a real mount: every byte value but
// '/' and NUL in names (lower and new ones), and a tree 100 directories deep whose paths run
// past 5,000 characters, checked on the mount, in the upper directory, and after a remount.
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { mountWith, nodeIn, remount } from './helpers/mount.js';

// 'n' + one byte, for every byte but NUL and '/': as hex, to cross JSON untouched.
const NAMES = [...Array(256).keys()].filter((b) => b !== 0 && b !== 0x2f).map((b) => Buffer.from([0x6e, b]).toString('hex'));

test('names with every byte value but / and NUL round-trip byte for byte', async (t) => {
  const m = await mountWith(t, {
    setup: async (l) => {
      // Lower names that are not UTF-8 (Latin-1, as real images have them).
      await fs.mkdir(path.join(l.lowers[0]!, 'low'));
      await fs.writeFile(Buffer.from(`${l.lowers[0]}/low/caf\xe9`, 'latin1'), 'latin1');
      await fs.writeFile(Buffer.from(`${l.lowers[0]}/low/caf\xc3\xa9`, 'latin1'), 'utf8');
    },
  });
  const listed = await m.node<string[]>(`
    await fs.mkdir('new');
    for (const hex of ${JSON.stringify(NAMES)}) await fs.writeFile(Buffer.concat([Buffer.from('new/'), Buffer.from(hex, 'hex')]), hex);
    const out = [];
    for (const n of await fs.readdir('new', { encoding: 'buffer' })) {
      const body = await fs.readFile(Buffer.concat([Buffer.from('new/'), n]), 'utf8');
      out.push(n.toString('hex') === body ? n.toString('hex') : 'mismatch:' + n.toString('hex'));
    }
    return out.sort();`);
  t.deepEqual(listed, [...NAMES].sort());
  const onUpper = (await fs.readdir(path.join(m.upper!, 'new'), { encoding: 'buffer' })).map((b) => b.toString('hex')).sort();
  t.deepEqual(onUpper, [...NAMES].sort(), 'the upper holds the very bytes');
  // Two lower names that differ only in encoding stay two files with their own contents.
  const low = await m.node<string[]>(`
    const out = [];
    for (const n of await fs.readdir('low', { encoding: 'buffer' })) out.push(n.toString('hex') + '=' + await fs.readFile(Buffer.concat([Buffer.from('low/'), n]), 'utf8'));
    return out.sort();`);
  t.deepEqual(low, ['636166c3a9=utf8', '636166e9=latin1']);
  // Renamed and removed by byte name, and all of it survives a remount.
  await m.node(`
    await fs.rename(Buffer.from('low/caf\\xe9', 'latin1'), Buffer.from('low/\\xff\\xfe', 'latin1'));
    await fs.unlink(Buffer.concat([Buffer.from('new/'), Buffer.from('6eff', 'hex')]));
    return 0;`);
  const again = await remount(t, m);
  const after = await nodeIn<string[]>(again.mnt, `
    return (await fs.readdir('low', { encoding: 'buffer' })).map((n) => n.toString('hex')).sort();`);
  t.deepEqual(after, ['636166c3a9', 'fffe']);
  const newCount = await nodeIn<number>(again.mnt, `return (await fs.readdir('new')).length;`);
  t.is(newCount, NAMES.length - 1);
});

test('a tree 100 directories deep, paths past 5,000 characters, works and stays', async (t) => {
  const m = await mountWith(t);
  const name = 'd'.repeat(50);
  const depth = await m.node<number>(`
    const start = process.cwd();
    for (let i = 0; i < 100; i++) { await fs.mkdir(${JSON.stringify(name)}); process.chdir(${JSON.stringify(name)}); }
    await fs.writeFile('leaf', 'deep');
    await fs.symlink('leaf', 'link');
    await fs.rename('leaf', 'leaf2');
    const text = await fs.readFile('leaf2', 'utf8');
    process.chdir(start);
    return text === 'deep' ? 100 : -1;`);
  t.is(depth, 100);
  // On the host: the file is there, at a host path longer than PATH_MAX.
  const rel = Array(100).fill(name).join('/');
  t.true(rel.length > 5000);
  const hostLeaf = await nodeIn<string>(m.upper!, `
    for (const d of ${JSON.stringify(rel)}.split('/')) process.chdir(d);
    return fsc.readFileSync('leaf2', 'utf8');`);
  t.is(hostLeaf, 'deep');
  const again = await remount(t, m);
  const back = await nodeIn<string>(again.mnt, `
    for (const d of ${JSON.stringify(rel)}.split('/')) process.chdir(d);
    return fsc.readFileSync('leaf2', 'utf8') + ':' + fsc.readlinkSync('link');`);
  t.is(back, 'deep:leaf');
  // And the whole tree goes with one rm -rf (coreutils walks it relative to directory fds).
  await again.ok(`rm -rf ${name}`);
  t.deepEqual(await fs.readdir(again.mnt), []);
});

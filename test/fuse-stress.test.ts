// Big files and many hands at once, through a real mount.
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fill, mountWith, remount, sh } from './helpers/mount.js';

async function sha256(file: string): Promise<string> {
  const r = await sh(`sha256sum < '${file}'`, { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout.split(' ')[0]!;
}

async function chunk(file: string, pos: number): Promise<Buffer> {
  const fd = await fs.open(file);
  try {
    const buf = Buffer.alloc(2 ** 20);
    const { bytesRead } = await fd.read(buf, 0, buf.length, pos);
    return buf.subarray(0, bytesRead);
  } finally {
    await fd.close();
  }
}

test('a file over 2 GiB (1 GiB of real data) copies up and reads back byte for byte', async (t) => {
  t.timeout(10 * 60_000);
  // 1 GiB of random data, a hole up to 2 GiB, then 1 MiB more data past the 32-bit offsets.
  const first = await mountWith(t, {
    setup: async (l) =>
      fill(
        l.lowers[0]!,
        `head -c 1G /dev/urandom > big
         head -c 1M /dev/urandom | dd of=big bs=1M seek=2048 conv=notrunc status=none`,
      ),
  });
  const lower = path.join(first.lowers[0]!, 'big');
  const lowerStat = await fs.stat(lower);
  const want = await sha256(lower);
  t.is(await sha256(path.join(first.mnt, 'big')), want, 'read through the lower');
  // A metadata change copies the whole file up.
  await first.ok('chmod 600 big');
  t.is((await fs.stat(path.join(first.upper!, 'big'))).size, 2 * 2 ** 30 + 2 ** 20, 'copied up');
  // A fresh mount, so that nothing comes from the page cache of the first read.
  const m = await remount(t, first);
  t.is(await sha256(path.join(m.mnt, 'big')), want, 'read back through the mount, from upper');
  t.is((await fs.stat(path.join(m.mnt, 'big'))).size, 2 * 2 ** 30 + 2 ** 20);
  // The copy in upper itself, at both ends (the whole of it was just read through the mount).
  for (const pos of [0, 2 * 2 ** 30]) {
    t.true((await chunk(lower, pos)).equals(await chunk(path.join(m.upper!, 'big'), pos)), `upper at ${pos}`);
  }
  // Writes past 2 GiB land where they should.
  await m.ok('printf ZZ | dd of=big bs=1 seek=2147483650 conv=notrunc status=none');
  const fd = await fs.open(path.join(m.upper!, 'big'));
  const buf = Buffer.alloc(4);
  await fd.read(buf, 0, 4, 2 ** 31 + 1);
  await fd.close();
  t.is(buf.subarray(1, 3).toString(), 'ZZ');
  const after = await fs.stat(lower);
  t.deepEqual([after.size, after.mtimeMs, after.mode], [lowerStat.size, lowerStat.mtimeMs, lowerStat.mode], 'the lower is untouched');
});

test('8 concurrent readers and writers keep every byte', async (t) => {
  t.timeout(5 * 60_000);
  const m = await mountWith(t, {
    lowers: 2,
    setup: async (l) => {
      await fill(l.lowers[1]!, 'mkdir data; for i in $(seq 1 80); do head -c 100000 /dev/urandom > data/f$i; done; sha256sum $(seq -f data/f%g 1 40) > ../sums');
      await fill(l.lowers[0]!, 'mkdir shared');
    },
  });
  const sums = path.join(m.base, 'sums');
  const procs: Promise<{ code: number; stderr: string }>[] = [];
  // 4 readers: verify lower files f1..f40 over and over (writers touch f41..f80).
  for (let i = 0; i < 4; i++) {
    procs.push(m.sh(`for n in 1 2 3; do sha256sum -c --quiet ${sums} || exit 1; done`));
  }
  // 4 writers: each its own files (new ones and copy-ups of lower ones), dirs and renames.
  for (let w = 0; w < 4; w++) {
    procs.push(
      m.sh(`set -e
        mkdir shared/w${w}
        for i in $(seq 1 60); do
          head -c $((i * 997)) /dev/zero | tr '\\0' '${'abcd'[w]}' > shared/w${w}/tmp$i
          mv shared/w${w}/tmp$i shared/w${w}/f$i
        done
        for i in $(seq ${41 + w * 10} ${50 + w * 10}); do echo w${w} >> data/f$i; done
        mkdir shared/w${w}/d; rmdir shared/w${w}/d
        rm shared/w${w}/f1`),
    );
  }
  const results = await Promise.all(procs);
  for (const r of results) t.is(r.code, 0, r.stderr);
  // Every writer's files are complete and intact.
  for (let w = 0; w < 4; w++) {
    const names = (await fs.readdir(path.join(m.mnt, 'shared', `w${w}`))).sort();
    t.is(names.length, 59);
    for (let i = 2; i <= 60; i++) {
      const data = await fs.readFile(path.join(m.mnt, 'shared', `w${w}`, `f${i}`), 'latin1');
      t.is(data, 'abcd'[w]!.repeat(i * 997));
    }
  }
  // Each appended lower file is the lower content plus one line.
  for (let i = 41; i <= 80; i++) {
    const lower = await fs.readFile(path.join(m.lowers[1]!, 'data', `f${i}`));
    const merged = await fs.readFile(path.join(m.mnt, 'data', `f${i}`));
    t.true(merged.equals(Buffer.concat([lower, Buffer.from(`w${Math.floor((i - 41) / 10)}\n`)])), `data/f${i}`);
  }
  const log = await m.serverLog();
  t.notRegex(log, /unexpected error/);
});

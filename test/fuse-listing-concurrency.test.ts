// Directory listings under concurrent change, through a real mount: several readers list a
// 200-name directory (half lower, half upper) while writers create and remove one name and
// rename another back and forth. Checked against a lock-step model: every name nobody touches
// shows exactly once in every listing; a touched name shows at most once.
import test from 'ava';
import { fill, mountWith, nodeIn } from './helpers/mount.js';

const LISTINGS = 150;

test('concurrent listings: untouched names exactly once, touched names at most once', async (t) => {
  t.timeout(5 * 60_000);
  const m = await mountWith(t, {
    setup: async (l) => fill(l.lowers[0]!, 'mkdir d; i=0; while [ $i -lt 100 ]; do : > d/lower$i; i=$((i+1)); done'),
  });
  await m.ok('i=0; while [ $i -lt 100 ]; do : > d/upper$i; i=$((i+1)); done; : > d/lowerswap0');
  const untouched = [...Array(100).keys()].flatMap((i) => [`lower${i}`, `upper${i}`]);
  // Writers run until a stop file appears; readers list with small getdents buffers (many
  // readdir calls per listing, so that changes land between them).
  const writer = m.sh(
    `while [ ! -e /tmp/.stop$$ ] && [ ! -e stop ]; do
       : > d/churn; rm d/churn
       mv d/lowerswap0 d/lowerswap1; mv d/lowerswap1 d/lowerswap0
       mv d/lower5 d/moved5 2>/dev/null && mv d/moved5 d/lower5
     done`,
    { cwd: m.mnt },
  );
  const reader = () =>
    nodeIn<{ dup: number; missing: number; listings: number }>(
      m.mnt,
      `let dup = 0, missing = 0;
       const want = ${JSON.stringify(untouched.filter((n) => n !== 'lower5'))};
       for (let k = 0; k < ${LISTINGS}; k++) {
         const dir = await fs.opendir('d', { bufferSize: 4 });
         const seen = new Map();
         for await (const e of dir) seen.set(e.name, (seen.get(e.name) ?? 0) + 1);
         for (const [, c] of seen) if (c > 1) dup++;
         for (const n of want) if (seen.get(n) !== 1) missing++;
       }
       return { dup, missing, listings: ${LISTINGS} };`,
    );
  let results;
  try {
    results = await Promise.all([reader(), reader(), reader()]);
  } finally {
    await m.ok(': > stop');
    await writer;
    await m.ok('rm -f stop');
  }
  for (const r of results) {
    t.is(r.dup, 0, 'no name twice in one listing');
    t.is(r.missing, 0, 'no untouched name missing');
  }
  // And at rest, one listing is exactly the model.
  const names = await m.node<string[]>(`return (await fs.readdir('d')).sort();`);
  t.deepEqual(names, [...untouched, 'lowerswap0'].sort());
});

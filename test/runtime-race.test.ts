// A container holds its image from the moment it is created: `rmi -f` racing `run -d` either
// wins (the run fails with 125 and leaves no container) or finds the container and keeps
// the image for it. Never a container whose image is gone.
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { makeEnv } from './helpers/runtime.js';

test('rmi -f racing run -d never leaves a container without its image', async (t) => {
  const u = await makeEnv(t);
  let ran = 0;
  let refused = 0;
  for (let i = 0; i < 4; i++) {
    // the built-in busybox comes back on the next `run busybox`
    const [run] = await Promise.all([
      u.ufs(['run', '-d', '--name', `race${i}`, 'busybox', 'sleep', '100']),
      new Promise((r) => setTimeout(r, i * 40)).then(() => u.ufs(['rmi', '-f', 'busybox'])),
    ]);
    if (run.code === 0) ran++;
    else {
      refused++;
      t.is(run.code, 125, run.stderr);
    }
  }
  t.is(ran + refused, 4);
  const ids = (await fs.readdir(path.join(u.root, 'containers'))).filter((n) => /^[0-9a-f]{64}$/.test(n));
  t.is(ids.length, ran, 'a failed run left a container behind');
  for (const id of ids) {
    const rec = await u.record(id);
    const inspect = await u.ufs(['inspect', rec.Image]);
    t.is(inspect.code, 0, `container ${rec.Name} lost its image ${rec.Image}: ${inspect.stderr}`);
    await u.ok(['rm', '-f', id]);
  }
});

// WORKDIR's layer written straight from layer directories (src/build/workdir.ts): which
// paths are plain enough for that, and what the layer holds. Anything a union or a
// symlink decides must go through a mount instead (planWorkdir gives undefined).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { planWorkdir, plainOwner, writeWorkdirLayer } from '../src/build/workdir.js';

function layers(t: ExecutionContext, specs: Record<string, string | null>[]): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ufs-test-wd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return specs.map((spec, i) => {
    const l = path.join(dir, `l${i}`);
    fs.mkdirSync(l);
    for (const [p, what] of Object.entries(spec)) {
      const abs = path.join(l, p);
      fs.mkdirSync(path.dirname(abs), { recursive: true });
      if (what === null) fs.mkdirSync(abs, { recursive: true });
      else if (what.startsWith('->')) fs.symlinkSync(what.slice(2), abs);
      else fs.writeFileSync(abs, what);
    }
    return l;
  });
}

test('plain paths: existing directories take the topmost layer, the rest is new', (t) => {
  const [top, bottom] = layers(t, [{ usr: null }, { 'usr/local': null, etc: null }]);
  fs.chmodSync(path.join(bottom!, 'usr', 'local'), 0o750);
  const plan = planWorkdir([top!, bottom!], '/usr/local/app/')!;
  t.deepEqual(plan.map((c) => [c.rel, c.lower ? path.relative(path.dirname(top!), c.lower.abs) : 'new']), [
    ['usr', 'l0/usr'],
    ['usr/local', 'l1/usr/local'],
    ['usr/local/app', 'new'],
  ]);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ufs-test-wdout-'));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
  writeWorkdirLayer(out, plan, { uid: 1000, gid: 1001 }, 1_700_000_000);
  const local = fs.statSync(path.join(out, 'usr', 'local'));
  t.is(local.mode & 0o7777, 0o750, 'an existing directory keeps its lower metadata');
  const app = fs.statSync(path.join(out, 'usr', 'local', 'app'));
  t.deepEqual([app.mode & 0o7777, app.uid, app.gid, app.mtimeMs / 1000], [0o755, 1000, 1001, 1_700_000_000]);
  t.deepEqual(fs.readdirSync(out), ['usr']);
});

test('whiteouts, opaque directories, symlinks, files and .. on the way need a mount', (t) => {
  const [a, b] = layers(t, [{ '.wh.gone': '', 'opq/.wh..wh..opq': '', link: '->/real', file: 'x' }, { gone: null, opq: null }]);
  for (const wd of ['/gone/x', '/opq/x', '/link/x', '/file/x', '/a/../b']) t.is(planWorkdir([a!, b!], wd), undefined, wd);
  t.truthy(planWorkdir([a!, b!], '/fresh/x'));
});

test('owners that need no /etc/passwd', (t) => {
  t.deepEqual(plainOwner(undefined), { uid: 0, gid: 0 });
  t.deepEqual(plainOwner('root'), { uid: 0, gid: 0 });
  t.deepEqual(plainOwner('1000:1001'), { uid: 1000, gid: 1001 });
  t.is(plainOwner('1000'), undefined);
  t.is(plainOwner('nobody'), undefined);
});

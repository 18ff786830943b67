// The fixed subset of the public conformance suites (scripts/conformance --quick): pjdfstest
// and unionmount-testsuite, built from the archives in ../shared/conformance, run against
// `mount -t fuse.ufs` mounts. The full suites: scripts/conformance (prints full counts).
import test from 'ava';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './helpers/mount.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sources = [process.env.UFS_CONFORMANCE_SRC, path.join(root, '..', 'shared', 'conformance'), '/work/shared/conformance'].find(
  (d) => d !== undefined && existsSync(d),
);

test('pjdfstest and unionmount-testsuite subsets pass through mount -t fuse.ufs', async (t) => {
  t.timeout(10 * 60_000);
  if (!sources) {
    t.fail('the suites\' source archives are missing (../shared/conformance or UFS_CONFORMANCE_SRC)');
    return;
  }
  const r = await run('bash', [path.join(root, 'scripts', 'conformance'), '--quick', '--jobs', '2'], {
    timeoutMs: 9 * 60_000,
    env: { ...process.env, UFS_CONFORMANCE_SRC: sources },
  });
  t.log(r.stdout.trim());
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /^pjdfstest: 0 of [1-9][0-9]* assertions failed/m);
  t.regex(r.stdout, /^unionmount-testsuite --ov --verify: ([0-9]+)\/\1 passed$/m);
});

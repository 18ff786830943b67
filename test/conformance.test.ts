// The public conformance suites in full (scripts/conformance): pjdfstest, and
// unionmount-testsuite in --ov, --ov --verify and --ov=2 --verify, built from the archives in
// ../shared/conformance, run against `mount -t fuse.ufs` mounts; about 5 minutes here.
// UFS_CONFORMANCE_QUICK=1 runs the fixed subset instead (scripts/conformance --quick).
import test from 'ava';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './helpers/mount.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sources = [process.env.UFS_CONFORMANCE_SRC, path.join(root, '..', 'shared', 'conformance'), '/work/shared/conformance'].find(
  (d) => d !== undefined && existsSync(d),
);

const quick = process.env.UFS_CONFORMANCE_QUICK === '1';

test(`pjdfstest and unionmount-testsuite${quick ? ' subsets' : ''} pass through mount -t fuse.ufs`, async (t) => {
  t.timeout(20 * 60_000);
  if (!sources) {
    t.fail('the suites\' source archives are missing (../shared/conformance or UFS_CONFORMANCE_SRC)');
    return;
  }
  const r = await run('bash', [path.join(root, 'scripts', 'conformance'), ...(quick ? ['--quick'] : []), '--jobs', '2'], {
    timeoutMs: 19 * 60_000,
    env: { ...process.env, UFS_CONFORMANCE_SRC: sources },
  });
  t.log(r.stdout.trim());
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /^pjdfstest: 0 of [1-9][0-9]* assertions failed/m);
  t.regex(r.stdout, /^unionmount-testsuite --ov --verify: ([0-9]+)\/\1 passed$/m);
  if (quick) return;
  t.regex(r.stdout, /^unionmount-testsuite --ov: ([0-9]+)\/\1 passed$/m);
  t.regex(r.stdout, /^unionmount-testsuite --ov=2 --verify: ([0-9]+)\/\1 passed$/m);
});

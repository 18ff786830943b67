// --runtime: a runtime by path, and crun where it can start (Debian's crun 1.8 refuses on a
// hybrid cgroup v1/v2 host such as this one: that test is skipped only then).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, makeEnv } from './helpers/runtime.js';

function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

// Whether crun runs a container here at all (probed once, on a store of its own).
function crunStarts(): boolean {
  if (!which('crun')) return false;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ufs-test-crun-probe-'));
  try {
    const env = { ...process.env, UFS_ROOT: path.join(dir, 'root'), UFS_RUN_DIR: path.join(dir, 'run') };
    return spawnSync(process.execPath, [CLI, 'run', '--rm', '--runtime', 'crun', 'busybox', 'true'], { env, timeout: 60_000 }).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('--runtime PATH runs the container with that binary; an unknown one is ufs\'s error (125)', async (t) => {
  const u = await makeEnv(t);
  const runc = which('runc');
  if (!runc) return t.fail('runc is not installed (scripts/setup installs it)');
  t.is(await u.ok(['run', '--rm', '--runtime', runc, 'busybox', 'sh', '-c', 'echo $$']), '1\n');
  const missing = await u.ufs(['run', '--rm', '--runtime', '/no/such/runtime', 'busybox', 'true']);
  t.is(missing.code, 125);
  t.regex(missing.stderr, /not found/);
});

(crunStarts() ? test : test.skip)('crun runs the same container with the same isolation', async (t) => {
  const u = await makeEnv(t);
  const out = await u.ok(['run', '--rm', '--runtime', 'crun', 'busybox', 'sh', '-c', 'echo "pid=$$"; grep -E "^(CapEff|Seccomp):" /proc/self/status']);
  t.regex(out, /pid=1/);
  t.regex(out, /CapEff:\s+00000000a80425fb/);
  t.regex(out, /Seccomp:\s+2/);
});

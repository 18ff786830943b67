// The process runner (src/runtime/runner.ts) as the builder uses it: one command on a root
// it mounted itself (here a plain busybox directory), output to its streams, exit codes,
// the same isolation as `ufs run`, abort, and nothing left behind.
import test from 'ava';
import { promises as fs, readdirSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { runProcess, type RunProcessOptions } from '../src/runtime/runner.js';
import { PATH_ENV, tempDir, tempRootfs } from './helpers/rootfs.js';

async function run(t: import('ava').ExecutionContext, rootfs: string, opts: Partial<RunProcessOptions> & { args: string[] }) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const r = await runProcess({ rootfs, env: [PATH_ENV], stdout, stderr, ...opts });
  return { code: r.exitCode, out, err };
}

// runc's state and the bundles go to a run dir of the test's own.
async function useRunDir(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await tempDir(t, 'ufs-test-runner-');
  process.env.UFS_RUN_DIR = dir;
  return dir;
}

test.serial('output, exit codes 0/3/126/127, env exactly as given, pid 1, Docker\'s caps and seccomp', async (t) => {
  await useRunDir(t);
  const { rootfs } = await tempRootfs(t);
  const r = await run(t, rootfs, { args: ['/bin/sh', '-c', 'echo "pid=$$"; echo "env=$(env | sort | tr "\\n" " ")"; grep -E "^(CapEff|Seccomp):" /proc/self/status; echo oops >&2; exit 3'], env: [PATH_ENV, 'A=1'] });
  t.is(r.code, 3);
  t.regex(r.out, /pid=1/);
  t.regex(r.out, /env=A=1 HOME=\/root PATH=\S+ PWD=\/ SHLVL=1 $/m); // HOME from passwd, as runc sets it
  t.regex(r.out, /CapEff:\s+00000000a80425fb/);
  t.regex(r.out, /Seccomp:\s+2/);
  t.is(r.err, 'oops\n');
  t.is((await run(t, rootfs, { args: ['no-such-command'] })).code, 127);
  t.is((await run(t, rootfs, { args: ['/etc/passwd'] })).code, 126);
  t.is((await run(t, rootfs, { args: ['true'] })).code, 0);
});

test.serial('cwd is created, user and group resolved in the root, hostname, extra hosts, stdin stream', async (t) => {
  await useRunDir(t);
  const { rootfs } = await tempRootfs(t);
  const r = await run(t, rootfs, {
    args: ['/bin/sh', '-c', 'pwd; id -u; id -g; hostname; grep -E "builder|mirror" /etc/hosts; cat'],
    cwd: '/work/dir',
    user: 'user',
    hostname: 'builder',
    extraHosts: ['mirror:10.1.2.3'],
    stdin: Readable.from(['from stdin\n']),
  });
  t.is(r.code, 0, r.err);
  t.is(r.out, '/work/dir\n1000\n1000\nbuilder\n10.1.2.3\tmirror\n127.0.0.1\tbuilder\nfrom stdin\n');
  t.true((await fs.stat(path.join(rootfs, 'work/dir'))).isDirectory());
  await t.throwsAsync(runProcess({ rootfs, args: ['true'], env: [], user: 'nobody-here', stdout: new PassThrough(), stderr: new PassThrough() }), { message: /unable to find user/ });
});

test.serial('network none gives only lo; host the host\'s network', async (t) => {
  await useRunDir(t);
  const { rootfs } = await tempRootfs(t);
  const none = await run(t, rootfs, { args: ['/bin/sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'] });
  t.is(none.out, 'lo\n');
  const host = await run(t, rootfs, { args: ['/bin/sh', '-c', 'tail -n +3 /proc/net/dev | wc -l'], network: { mode: 'host' } });
  t.true(Number(host.out.trim()) >= 1);
});

test.serial('abort kills the process and rejects; nothing is left in the run dir or the runtime\'s state', async (t) => {
  const runDir = await useRunDir(t);
  const { rootfs } = await tempRootfs(t);
  const ac = new AbortController();
  const started = Date.now();
  const p = run(t, rootfs, { args: ['/bin/sh', '-c', 'echo go; sleep 60'], signal: ac.signal });
  setTimeout(() => ac.abort(), 500);
  await t.throwsAsync(p, { message: /aborted/ });
  t.true(Date.now() - started < 20_000);
  t.deepEqual(readdirSync(path.join(runDir, 'bundles')), []);
  const state = path.join(runDir, 'runtime', 'runc');
  t.deepEqual(readdirSync(state).filter((n) => n.startsWith('ufs-run-')), []);
  // an unknown runtime is ufs's error (125)
  await t.throwsAsync(runProcess({ rootfs, args: ['true'], env: [], runtime: '/no/such/runc', stdout: new PassThrough(), stderr: new PassThrough() }), { message: /not found/ });
});

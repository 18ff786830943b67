// ufs-init exec: another command inside a running container (its pid 1's namespaces and root).
import test, { type ExecutionContext } from 'ava';
import { promises as fs } from 'node:fs';
import { PATH_ENV, startInit, tempRootfs, writeSpec, type InitSpec } from './helpers/rootfs.js';

// A running container (`sleep` under pid 1) and its pid 1's host pid.
async function container(t: ExecutionContext, extra: Partial<InitSpec> = {}) {
  const { base, rootfs } = await tempRootfs(t);
  const spec = await writeSpec(base, {
    rootfs,
    env: [PATH_ENV],
    args: ['sh', '-c', 'echo made-inside > /tmp/marker; echo ready; exec sleep 1000'],
    hostname: 'exec-target',
    ...extra,
  });
  const p = startInit(t, 'run', spec);
  const pid1 = Number(await p.reported);
  await p.waitFor('ready\n');
  return { base, rootfs, pid1, p };
}

async function exec(t: ExecutionContext, dir: string, spec: Partial<InitSpec> & { args: string[] }, input?: string) {
  const file = await writeSpec(dir, { env: [PATH_ENV], ...spec });
  const e = startInit(t, 'exec', file, input === undefined ? {} : { input });
  return { e, result: await e.done, reported: await e.reported };
}

test('exec joins the container: hostname, pid namespace, root, network', async (t) => {
  const c = await container(t, { network: 'none' });
  const { result, reported } = await exec(t, c.base, {
    pid: c.pid1,
    args: ['sh', '-c', 'hostname; echo $$; ps -o pid,comm; cat /tmp/marker; ls /sys/class/net; true'],
  });
  t.is(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  t.is(lines[0], 'exec-target');
  const nsPid = lines[1]!;
  t.regex(lines[2]!, /^PID\s+COMMAND$/);
  t.regex(lines[3]!, /^\s*1 ufs-init$/);
  t.regex(lines[4]!, /^\s*2 sleep$/);
  t.regex(lines[5]!, new RegExp(`^\\s*${nsPid} sh$`));
  t.regex(lines[6]!, /^\s*\d+ ps$/);
  t.is(lines[7], 'made-inside');
  t.is(lines[8], 'lo');
  t.is(lines.length, 9);
  // fd 3 reports the exec'd process's host pid (gone by now).
  t.regex(reported, /^\d+\n$/);
  // The container is untouched by the exec.
  t.true((await fs.readFile(`/proc/${c.pid1}/status`, 'utf8')).includes('NSpid'));
});

test('the pid is reported once the container is set up: an exec right away finds it complete', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  for (let i = 0; i < 3; i++) {
    const c = startInit(t, 'run', await writeSpec(base, { rootfs, env: [PATH_ENV], hostname: `early${i}`, args: ['sleep', '1000'] }));
    const pid1 = Number(await c.reported);
    const { result } = await exec(t, base, { pid: pid1, args: ['sh', '-c', 'hostname; cat /proc/1/comm; ls /dev/pts'] });
    t.deepEqual([result.code, result.stdout], [0, `early${i}\nufs-init\nptmx\n`], result.stderr);
    process.kill(c.pid, 'SIGTERM');
    t.is((await c.done).code, 143);
  }
});

test('exec sets user, groups, cwd, exact env, and passes stdin and the exit status', async (t) => {
  const c = await container(t);
  const { result } = await exec(
    t,
    c.base,
    {
      pid: c.pid1,
      args: ['sh', '-c', 'id; pwd; env | sort; cat; exit 5'],
      env: ['PATH=/bin', 'ONLY=this'],
      uid: 1000,
      gid: 1000,
      groups: [100],
      cwd: '/home/user',
    },
    'from-stdin\n',
  );
  t.is(result.code, 5, result.stderr);
  t.deepEqual(result.stdout.trim().split('\n'), [
    'uid=1000(user) gid=1000(user) groups=100(users)',
    '/home/user',
    'ONLY=this',
    'PATH=/bin',
    'PWD=/home/user',
    'SHLVL=1',
    'from-stdin',
  ]);
});

test('exec forwards signals to its command', async (t) => {
  const c = await container(t);
  const file = await writeSpec(c.base, {
    env: [PATH_ENV],
    pid: c.pid1,
    args: ['sh', '-c', 'trap "echo got-usr1; exit 9" USR1; echo ready; while :; do sleep 0.05; done'],
  });
  const e = startInit(t, 'exec', file);
  await e.waitFor('ready\n');
  process.kill(e.pid, 'SIGUSR1');
  const r = await e.done;
  t.deepEqual([r.code, r.stdout], [9, 'ready\ngot-usr1\n']);
  const k = startInit(t, 'exec', await writeSpec(c.base, { env: [PATH_ENV], pid: c.pid1, args: ['sleep', '100'] }));
  const child = Number(await k.reported);
  t.true(child > 0);
  process.kill(k.pid, 'SIGTERM');
  t.is((await k.done).code, 143);
});

test('exec errors: no such container 125, missing command 127, bad cwd 125', async (t) => {
  const c = await container(t);
  // A pid that cannot exist (above the kernel's pid_max limit).
  const none = await exec(t, c.base, { pid: 4194304, args: ['true'] });
  t.is(none.result.code, 125);
  t.regex(none.result.stderr, /^ufs-init: exec: container pid 4194304: No such file or directory\n$/);
  const missing = await exec(t, c.base, { pid: c.pid1, args: ['nope'] });
  t.deepEqual([missing.result.code, missing.result.stderr], [127, 'ufs-init: exec: nope: not found\n']);
  const cwd = await exec(t, c.base, { pid: c.pid1, args: ['true'], cwd: '/nope' });
  t.deepEqual([cwd.result.code, cwd.result.stderr], [125, 'ufs-init: cwd /nope: No such file or directory\n']);
  const noPid = await exec(t, c.base, { args: ['true'] });
  t.deepEqual([noPid.result.code, noPid.result.stderr.replace(/spec .*?:/, 'spec:')], [125, 'ufs-init: spec: missing "pid"\n']);
});

test('orphans of an exec\'d command are reaped by the container\'s pid 1', async (t) => {
  const c = await container(t);
  const { result } = await exec(t, c.base, { pid: c.pid1, args: ['sh', '-c', '(sleep 0.2 &); echo spawned'] });
  t.is(result.code, 0, result.stderr);
  // The orphan now belongs to pid 1; once it has exited, no zombie may stay.
  const check = async () =>
    exec(t, c.base, {
      pid: c.pid1,
      args: ['sh', '-c', 'sleep 0.5; for s in /proc/[0-9]*/stat; do read -r pid comm state rest < $s; echo "$comm $state"; done'],
    });
  const { result: after } = await check();
  t.is(after.code, 0, after.stderr);
  t.false(after.stdout.split('\n').some((l) => l.endsWith(' Z')), after.stdout);
  // Only the container's own sleep (pid 2) is left; the orphan has come and gone.
  t.is(after.stdout.split('\n').filter((l) => l.startsWith('(sleep) ')).length, 1, after.stdout);
});

// Resource limits from the container's cgroup (hybrid v1 here: runc's cgroupsPath), the
// flags that shape its mounts and process, --init, and pause/unpause/top/stats/wait.
import test from 'ava';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeEnv, waitFor } from './helpers/runtime.js';

// The container's own cgroup file for a v1 controller or its v2 equivalent.
const CG = (v1: string, v2: string) => `cat /sys/fs/cgroup/${v1} 2>/dev/null || cat /sys/fs/cgroup/${v2}`;

test('--memory is enforced: the limit is in the cgroup, a process over it is killed (137)', async (t) => {
  const u = await makeEnv(t);
  const limit = await u.ok(['run', '--rm', '--memory', '32m', 'busybox', 'sh', '-c', CG('memory/memory.limit_in_bytes', 'memory.max')]);
  t.is(limit.trim(), String(32 * 1024 * 1024));
  // 100 MB in one shell variable: far over 32 MiB plus as much swap.
  const r = await u.ufs(['run', '--rm', '--memory', '32m', '--memory-swap', '32m', 'busybox', 'sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo ${#x}']);
  t.is(r.code, 137, r.stderr);
  // The same without a limit runs to the end: the test above can fail.
  t.is((await u.ok(['run', '--rm', 'busybox', 'sh', '-c', 'x=$(head -c 50000000 /dev/zero | tr "\\0" a); echo ${#x}'])).trim(), '50000000');
  t.is((await u.ufs(['run', '--rm', '--memory', '1k', 'busybox', 'true'])).code, 125);
  t.is((await u.ufs(['run', '--rm', '--memory-swap', '1g', 'busybox', 'true'])).code, 125);
});

test('--cpus, --cpu-shares and --pids-limit reach the cgroup; the pids limit holds', async (t) => {
  const u = await makeEnv(t);
  const out = await u.ok(['run', '--rm', '--cpus', '0.5', '--cpu-shares', '512', '--pids-limit', '8', 'busybox', 'sh', '-c', [
    CG('cpu/cpu.cfs_quota_us', 'cpu.max'),
    CG('cpu/cpu.shares', 'cpu.weight'),
    CG('pids/pids.max', 'pids.max'),
    // more than 8 processes at once: a fork must fail (the inner shell gives up on it)
    'sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done; echo all-started" 2>/dev/null; echo "inner=$?"',
  ].join('; ')]);
  const [quota, shares, pids] = out.split('\n');
  t.is(quota, '50000');
  t.is(shares, '512');
  t.is(pids, '8');
  t.notRegex(out, /all-started/);
  t.regex(out, /inner=2/);
  // Without the limit all ten start: the test above can fail.
  t.regex(await u.ok(['run', '--rm', 'busybox', 'sh', '-c', 'sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.2 & done; wait; echo all-started"']), /all-started/);
});

test('--ulimit, --group-add, --read-only, --tmpfs, --mount, -l, --cidfile', async (t) => {
  const u = await makeEnv(t);
  const src = path.join(u.dir, 'src');
  await fs.mkdir(src);
  await fs.writeFile(path.join(src, 'f'), 'from host\n');
  const cidfile = path.join(u.dir, 'cid');
  const script = [
    'echo "nofile=$(ulimit -n) $(ulimit -Hn)"',
    'echo "groups=$(id -G)"',
    'if touch /x 2>/dev/null; then echo root=rw; else echo root=ro; fi',
    'echo t > /scratch/t && echo "tmpfs=$(grep " /scratch " /proc/mounts | cut -d" " -f3,4)"',
    'echo "m=$(grep " /m2 " /proc/mounts | cut -d" " -f3)"',
    'cat /b/f; if touch /b/g 2>/dev/null; then echo bind=rw; else echo bind=ro; fi',
  ].join('\n');
  const out = await u.ok(['run', '--name', 'flags', '--ulimit', 'nofile=100:200', '--group-add', '10', '--group-add', 'users',
    '--read-only', '--tmpfs', '/scratch:size=1m', '--mount', 'type=tmpfs,target=/m2,tmpfs-size=1m',
    '--mount', `type=bind,source=${src},target=/b,readonly`, '-l', 'a=1', '--label', 'b', '--cidfile', cidfile, 'busybox', 'sh', '-c', script]);
  t.regex(out, /nofile=100 200/);
  t.regex(out, /groups=0 10 100/);
  t.regex(out, /root=ro/);
  t.regex(out, /tmpfs=tmpfs rw,nosuid,nodev,noexec,.*size=1024k/);
  t.regex(out, /m=tmpfs/);
  t.regex(out, /from host\nbind=ro/);
  const rec = JSON.parse(await fs.readFile(path.join(u.root, 'containers', (await u.record('flags')).Id, 'config.json'), 'utf8')) as { Id: string; Config: { Labels: Record<string, string> } };
  t.deepEqual(rec.Config.Labels, { a: '1', b: '' });
  t.is(await fs.readFile(cidfile, 'utf8'), rec.Id);
  // An existing cidfile is refused, as Docker does.
  t.is((await u.ufs(['run', '--rm', '--cidfile', cidfile, 'busybox', 'true'])).code, 125);
  for (const bad of [['--ulimit', 'nofile=x'], ['--mount', 'type=volume,target=/v'], ['--tmpfs', 'rel'], ['--cpus', '-1'], ['--runtime', 'no-such-runtime']]) {
    t.is((await u.ufs(['run', '--rm', ...bad, 'busybox', 'true'])).code, 125, bad.join(' '));
  }
});

test('--init: our init is pid 1, the command its child; signals pass, orphans are reaped, status passes', async (t) => {
  const u = await makeEnv(t);
  const out = await u.ok(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'echo "comm1=$(cat /proc/1/comm) ppid=$PPID"; sh -c "sleep 0.2 & exit 0"; sleep 1; for s in /proc/[0-9]*/stat; do cut -d" " -f3 $s; done | grep -c Z || true']);
  t.regex(out, /comm1=ufs-init ppid=1/);
  t.regex(out, /^0$/m);
  t.is((await u.ufs(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'exit 9'])).code, 9);
  t.is((await u.ufs(['run', '--rm', '--init', 'busybox', 'no-such-command'])).code, 127);
  // stop: SIGTERM reaches `sleep` through the init (a bare pid 1 would ignore it)
  await u.ok(['run', '-d', '--init', '--network', 'none', '--name', 'in', 'busybox', 'sleep', '100']); // timed: no bridge teardown in it
  const t0 = Date.now();
  await u.ok(['stop', 'in']);
  t.true(Date.now() - t0 < 8000);
  t.is((await u.record('in')).State.ExitCode, 143);
});

test('--network host: the host\'s hostname and network; none: only lo; ns:PATH is checked', async (t) => {
  const u = await makeEnv(t);
  t.is((await u.ok(['run', '--rm', '--network', 'host', 'busybox', 'hostname'])).trim(), os.hostname());
  const ifaces = (await u.ok(['run', '--rm', '--network', 'host', 'busybox', 'sh', '-c', 'tail -n +3 /proc/net/dev | wc -l'])).trim();
  t.true(Number(ifaces) >= 1);
  t.is((await u.ok(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'])).trim(), 'lo');
  t.is((await u.ufs(['run', '--rm', '--network', 'ns:/no/such/netns', 'busybox', 'true'])).code, 125);
});

test('pause/unpause freeze and thaw; top lists the processes; stats reads the cgroup; wait returns the code', async (t) => {
  const u = await makeEnv(t);
  await u.ok(['run', '-d', '--name', 'pz', '--memory', '64m', 'busybox', 'sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.05; done']);
  await waitFor('the counter', async () => ((await u.ufs(['exec', 'pz', 'cat', '/count'])).stdout.trim() !== '' ? true : undefined));
  t.is(await u.ok(['pause', 'pz']), 'pz\n');
  t.is((await u.ufs(['pause', 'pz'])).code, 1);
  const read = async () => (await fs.readFile(path.join(u.root, 'containers', (await u.record('pz')).Id, 'upper', 'count'), 'utf8')).trim();
  const a = await read();
  await new Promise((r) => setTimeout(r, 400));
  t.is(await read(), a, 'the counter moved while paused');
  t.is((await u.ufs(['exec', 'pz', 'true'])).code, 1);
  t.is(await u.ok(['unpause', 'pz']), 'pz\n');
  await waitFor('the counter to move again', async () => ((await read()) !== a ? true : undefined));

  const top = await u.ok(['top', 'pz']);
  t.regex(top.split('\n')[0], /PID/);
  t.regex(top, /sh -c i=0/);

  const stats = JSON.parse(await u.ok(['stats', '--no-stream', '--json', 'pz'])) as { name: string; memLimit: number; pids: number; memUsage: number }[];
  t.is(stats[0].name, 'pz');
  t.is(stats[0].memLimit, 64 * 1024 * 1024);
  t.true(stats[0].pids >= 1);
  t.true(stats[0].memUsage > 0);
  t.regex(await u.ok(['stats', '--no-stream', 'pz']), /^CONTAINER ID\s+NAME\s+CPU %/);

  // wait blocks until the container ends, then prints its code
  await u.ok(['run', '-d', '--name', 'wt', 'busybox', 'sh', '-c', 'sleep 0.5; exit 4']);
  t.is(await u.ok(['wait', 'wt']), '4\n');
  // stop-signal / stop-timeout come from run
  await u.ok(['run', '-d', '--name', 'st', '--stop-signal', 'USR1', '--stop-timeout', '1', 'busybox', 'sh', '-c', 'trap "exit 3" USR1; while :; do sleep 0.1; done']);
  await new Promise((r) => setTimeout(r, 300));
  await u.ok(['stop', 'st']);
  t.is((await u.record('st')).State.ExitCode, 3);
});

// Detached containers and their lifecycle: run -d, ps, logs, exec, stop, start, kill, rm,
// --rm, references, and a container whose ufs process died.
import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { makeEnv, mountedUnder, pidAlive, waitFor } from './helpers/runtime.js';

// Pids of the mount servers ufs recorded in this test's run dir.
async function mountServers(dir: string): Promise<number[]> {
  const recs = path.join(dir, 'run', 'mounts');
  const out: number[] = [];
  for (const f of await fs.readdir(recs).catch(() => [] as string[])) {
    if (f.endsWith('.json')) out.push((JSON.parse(await fs.readFile(path.join(recs, f), 'utf8')) as { pid: number }).pid);
  }
  return out;
}

const LOOP = 'trap "echo bye; exit 0" TERM; echo out; echo err >&2; while :; do sleep 1 & wait $!; done';

test('run -d, ps, logs, exec, stop, start again on the same layer, kill, rm', async (t) => {
  const u = await makeEnv(t);
  const id = (await u.ok(['run', '-d', '--name', 'web', '-e', 'GREETING=hello', 'busybox', 'sh', '-c', `echo started >> /log; ${LOOP}`])).trim();
  t.regex(id, /^[0-9a-f]{64}$/);

  const ps = await u.ok(['ps']);
  const [header, row] = ps.split('\n');
  t.regex(header, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
  t.regex(row, new RegExp(`^${id.slice(0, 12)}\\s+busybox\\s+"sh -c .*"\\s+.* ago\\s+Up .*\\s+web$`));
  t.is(await u.ok(['ps', '-q']), `${id.slice(0, 12)}\n`);
  const json = JSON.parse(await u.ok(['ps', '--json'])) as { Id: string; Names: string[]; State: string }[];
  t.is(json.length, 1);
  t.like(json[0], { Id: id, Names: ['web'], State: 'running' });

  // logs: stdout and stderr each to their own stream
  await waitFor('the output in the log', async () => ((await u.ufs(['logs', 'web'])).stderr.includes('err') ? true : undefined));
  const logs = await u.ufs(['logs', 'web']);
  t.is(logs.stdout, 'out\n');
  t.is(logs.stderr, 'err\n');

  // exec: in the container's namespaces, its env, status passed back, stdin with -i
  t.is(await u.ok(['exec', 'web', 'sh', '-c', 'echo $GREETING; cat /proc/1/comm >/dev/null && ls /proc | grep -cE "^[0-9]+$" >/dev/null; cat /log']), 'hello\nstarted\n');
  t.is((await u.ufs(['exec', 'web', 'sh', '-c', 'exit 4'])).code, 4);
  t.is(await u.ok(['exec', '-e', 'X=1', '-w', '/tmp', '-u', 'nobody', id.slice(0, 8), 'sh', '-c', 'echo $X $(pwd) $(id -u)']), '1 /tmp 65534\n');
  t.is(await u.ok(['exec', '-i', 'web', 'sh', '-c', 'cat > /from-exec; cat /from-exec'], { input: 'piped\n' }), 'piped\n');
  t.is((await u.ufs(['exec', 'web', 'no-such-command'])).code, 127);
  t.is(await u.ok(['exec', 'web', 'hostname']), `${id.slice(0, 12)}\n`);

  // stop: SIGTERM reaches the trap, the container exits 0
  t.is(await u.ok(['stop', 'web']), 'web\n');
  const rec = await u.record('web');
  t.is(rec.State.Status, 'exited');
  t.is(rec.State.ExitCode, 0);
  t.is((await u.ufs(['logs', 'web'])).stdout, 'out\nbye\n');
  t.regex((await u.ok(['ps', '-a'])).split('\n')[1], /Exited \(0\) .* ago\s+web$/);
  t.is(await u.ok(['ps', '-q']), '');
  t.deepEqual(mountedUnder(u.root), []);
  t.is((await u.ufs(['exec', 'web', 'true'])).code, 1);

  // start: the same writable layer again
  t.is(await u.ok(['start', 'web']), 'web\n');
  await waitFor('the second start to write its line', async () => ((await u.ufs(['exec', 'web', 'cat', '/log'])).stdout === 'started\nstarted\n' ? true : undefined));
  t.is(await u.ok(['exec', 'web', 'cat', '/from-exec']), 'piped\n');

  // kill: SIGKILL by default, 137
  t.is((await u.ufs(['rm', 'web'])).code, 1); // running: refused without -f
  t.is(await u.ok(['kill', 'web']), 'web\n');
  await waitFor('the kill to be recorded', async () => ((await u.record('web')).State.Status === 'exited' ? true : undefined));
  t.is((await u.record('web')).State.ExitCode, 137);
  t.is((await u.ufs(['kill', 'web'])).code, 1); // not running

  t.is(await u.ok(['rm', 'web']), 'web\n');
  t.is(await u.ok(['ps', '-a', '-q']), '');
  t.deepEqual(await fs.readdir(path.join(u.root, 'containers')), []);
});

test('references: unique prefix, name, errors for unknown and ambiguous; rm -f; stop -t; kill -s', async (t) => {
  const u = await makeEnv(t);
  const ids: string[] = [];
  for (const name of ['one', 'two']) ids.push((await u.ok(['run', '-d', '--name', name, 'busybox', 'sleep', '1000'])).trim());
  const dup = await u.ufs(['run', '-d', '--name', 'one', 'busybox', 'true']);
  t.is(dup.code, 125);
  t.regex(dup.stderr, /already in use/);

  const unknown = await u.ufs(['logs', 'nope']);
  t.is(unknown.code, 1);
  t.is(unknown.stderr, 'ufs: No such container: nope\n');
  // A one-character prefix shared by both ids is ambiguous (try each hex digit until one is).
  const shared = [...'0123456789abcdef'].find((c) => ids.every((id) => id.startsWith(c)));
  if (shared) t.regex((await u.ufs(['diff', shared])).stderr, /multiple containers/);
  t.is(await u.ok(['diff', ids[0].slice(0, 10)]), '');

  // kill -s TERM: sleep is pid 1 with no handler, so the kernel drops it (as in Docker);
  // KILL ends it.
  await u.ok(['kill', '-s', 'TERM', 'one']);
  await new Promise((r) => setTimeout(r, 300));
  t.is((await u.record('one')).State.Status, 'running');
  await u.ok(['kill', '-s', 'KILL', 'one']);
  await waitFor('one to exit', async () => ((await u.record('one')).State.Status === 'exited' ? true : undefined));
  t.is((await u.record('one')).State.ExitCode, 137);
  t.is((await u.ufs(['kill', '-s', 'NOSUCHSIG', 'two'])).code, 1);

  // stop -t 1 on a command that ignores SIGTERM: killed after the grace period
  const stubborn = (await u.ok(['run', '-d', 'busybox', 'sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 1; done'])).trim();
  await waitFor('ready', async () => ((await u.ufs(['logs', stubborn])).stdout.includes('ready') ? true : undefined));
  t.is(await u.ok(['stop', '-t', '1', stubborn]), `${stubborn}\n`);
  t.is((await u.record(stubborn)).State.ExitCode, 137);

  // rm -f of a running container, several at once
  t.is(await u.ok(['rm', '-f', 'two', 'one', stubborn.slice(0, 12)]), `two\none\n${stubborn.slice(0, 12)}\n`);
  t.is(await u.ok(['ps', '-a', '-q']), '');
  t.deepEqual(mountedUnder(u.root), []);
});

test('--rm: foreground and detached containers remove themselves and their layer', async (t) => {
  const u = await makeEnv(t);
  t.is(await u.ok(['run', '--rm', 'busybox', 'sh', '-c', 'echo x > /f; cat /f']), 'x\n');
  const id = (await u.ok(['run', '-d', '--rm', 'busybox', 'sh', '-c', 'sleep 0.5'])).trim();
  await waitFor('the detached container to go', async () => ((await u.ok(['ps', '-a', '-q'])) === '' ? true : undefined));
  await t.throwsAsync(fs.access(path.join(u.root, 'containers', id)));
  t.deepEqual(await fs.readdir(path.join(u.root, 'containers')), []);
  t.deepEqual(mountedUnder(u.root), []);
});

test('logs -f follows a detached container until it exits', async (t) => {
  const u = await makeEnv(t);
  const id = (await u.ok(['run', '-d', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.3; done; echo done >&2'])).trim();
  const r = await u.ufs(['logs', '-f', id]);
  t.is(r.code, 0);
  t.is(r.stdout, 'line1\nline2\nline3\n');
  t.is(r.stderr, 'done\n');
  // -d -t: a terminal in the background, its output in the log
  // A known rare failure (README, known limits): busybox's stty now and then reports "standard
  // input: No child processes" in a -d -t container (two in a row once, under a full test
  // run); up to two more containers are tried then, and a third such failure fails the test.
  let out = { stdout: '' };
  for (let attempt = 0; attempt < 3; attempt++) {
    const tty = (await u.ok(['run', '-d', '-t', 'busybox', 'sh', '-c', 'tty; stty size'])).trim();
    out = await u.ufs(['logs', '-f', tty]);
    if (!out.stdout.includes('No child processes')) break;
  }
  t.regex(out.stdout, /^\/dev\/(pts\/\d+|console)\r\n24 80\r\n$/);
});

test('a container whose ufs process died shows as exited; its stale mount is cleaned up', async (t) => {
  const u = await makeEnv(t);
  const id = (await u.ok(['run', '-d', 'busybox', 'sleep', '1000'])).trim();
  const rec = await u.record(id);
  t.true(pidAlive(rec.State.MonitorPid));
  t.true(mountedUnder(u.root).length > 0);
  // A crash: the monitor and the mount's server die (pids ufs recorded for this test), the
  // mount is left answering ENOTCONN.
  const servers = await mountServers(u.dir);
  t.is(servers.length, 1);
  process.kill(rec.State.MonitorPid, 'SIGKILL');
  process.kill(servers[0], 'SIGKILL');
  await waitFor('the monitor and server to die', () => (!pidAlive(rec.State.MonitorPid) && !pidAlive(servers[0]) ? true : undefined));
  t.true(mountedUnder(u.root).length > 0);

  t.regex((await u.ok(['ps', '-a'])).split('\n')[1], /Exited \(255\)/);
  t.is(await u.ok(['ps', '-q']), '');
  t.false(pidAlive(rec.State.Pid));
  t.deepEqual(mountedUnder(u.root), []);
  t.is(await u.ok(['rm', id]), `${id}\n`);

  // A foreground `ufs run` killed outright: the same, found by rm.
  const fg = u.pty(['run', '--name', 'fg', 'busybox', 'sh', '-c', 'echo ready; exec sleep 1000']);
  await fg.waitFor(/ready/);
  const fgRec = await u.record('fg');
  process.kill(fg.pid, 'SIGKILL');
  await fg.exit;
  t.is(await u.ok(['rm', 'fg']), 'fg\n');
  t.false(pidAlive(fgRec.State.Pid));
  t.deepEqual(mountedUnder(u.root), []);
});

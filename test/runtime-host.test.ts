// How a container lives: a detached container is one process of ufs's (its monitor, which
// serves the union from a thread and is pid 1's parent, with no runc left resident), exit
// statuses reaped by that monitor, and a foreground run that leaves nothing behind.
import test from 'ava';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { makeEnv, pidAlive, waitFor } from './helpers/runtime.js';

function ppid(pid: number): number {
  return Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('a detached container is its monitor and pid 1: the union served in-process, no runc resident', async (t) => {
  const u = await makeEnv(t);
  const id = (await u.ok(['run', '-d', '--network', 'none', 'busybox', 'sh', '-c', 'echo hello; echo oops >&2; exec sleep 600'])).trim();
  const rec = await waitFor('pid 1', async () => {
    const r = await u.record(id);
    return r.State.Pid ? r : undefined;
  });
  const monitor = rec.State.MonitorPid;
  t.true(pidAlive(monitor));
  t.regex(cmdline(monitor), /runtime\/monitormain\.js /, 'its own entry module, not a CLI verb');
  t.is(ppid(rec.State.Pid), monitor, 'pid 1 is the monitor\'s child (subreaper)');
  t.falsy(rec.State.InitPid, 'no runtime process is recorded');
  t.deepEqual(children(monitor), [rec.State.Pid], 'nothing else runs under the monitor');

  // The union's record names the monitor as its (hosting) server.
  const mounts = path.join(u.dir, 'run', 'mounts');
  const recs = await Promise.all((await fs.readdir(mounts)).filter((f) => f.endsWith('.json')).map(async (f) => JSON.parse(await fs.readFile(path.join(mounts, f), 'utf8')) as { pid: number; hosted?: boolean }));
  t.deepEqual(recs.map((r) => [r.pid, r.hosted]), [[monitor, true]]);

  const logs = await u.ufs(['logs', id]);
  t.is(logs.stdout, 'hello\n');
  t.is(logs.stderr, 'oops\n');
  await u.ok(['pause', id]);
  await u.ok(['unpause', id]);
  await u.ok(['kill', '-s', 'KILL', id]);
  t.is((await u.ok(['wait', id])).trim(), '137', 'killed by SIGKILL: 128+9, reaped by the monitor');
  await waitFor('the monitor to exit', () => !pidAlive(monitor) || undefined);
  t.false(pidAlive(rec.State.Pid));
  t.deepEqual((await fs.readdir(mounts)).filter((f) => f.endsWith('.json')), [], 'the mount is gone with it');
});

test('exit statuses of detached containers come through the monitor; start runs them again', async (t) => {
  const u = await makeEnv(t);
  const id = (await u.ok(['run', '-d', '--network', 'none', 'busybox', 'sh', '-c', 'echo run >> /count; exit 7'])).trim();
  t.is((await u.ok(['wait', id])).trim(), '7');
  await u.ok(['start', id]);
  t.is((await u.ok(['wait', id])).trim(), '7');
  const again = await u.ufs(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'exit 5']);
  t.is(again.code, 5, 'foreground: the same status');
  const missing = (await u.ok(['run', '-d', '--network', 'none', 'busybox', 'no-such-command'])).trim();
  t.is((await u.ok(['wait', missing])).trim(), '127');
});

// `ufs run -t` on a real terminal (the test drives ufs under node-pty, as a person would):
// the command has a terminal, sees its size and resizes, and Ctrl-C reaches it.
import test from 'ava';
import { makeEnv } from './helpers/runtime.js';

test('run -it: a terminal of the outer size, resizes follow, Ctrl-C reaches the container', async (t) => {
  const u = await makeEnv(t);
  const s = u.pty(['run', '-it', '--rm', 'busybox', 'sh'], { cols: 91, rows: 27 });
  await s.waitFor(/[#$] /);

  s.write('tty; stty size; echo "term=$TERM"\r');
  const tty = await s.waitFor(/(\/dev\/\S+|not a tty)\s+(\d+) (\d+)\s+term=(\S+)/);
  t.regex(tty[1], /^\/dev\/(pts\/\d+|console)$/);
  t.is(`${tty[2]} ${tty[3]}`, '27 91');
  t.is(tty[4], 'xterm');

  let mark = s.output.length;
  s.resize(120, 40);
  // The resize reaches the container asynchronously: ask until it shows.
  for (let i = 0; i < 50; i++) {
    s.write('stty size\r');
    try {
      await s.waitFor(/^40 120\r?$/m, 200, mark);
      break;
    } catch {
      mark = s.output.length;
    }
  }
  t.regex(s.output.slice(mark), /^40 120\r?$/m);

  // Ctrl-C interrupts the foreground command in the container, not ufs.
  s.write('sleep 30; echo after-sleep\r');
  await new Promise((r) => setTimeout(r, 500));
  mark = s.output.length;
  s.write('\x03');
  s.write('echo "status=$?"\r');
  await s.waitFor(/status=130/, 10_000, mark);
  t.false(s.output.slice(mark).includes('after-sleep'));

  s.write('exit 5\r');
  t.is(await s.exit, 5);
  t.is(await u.ok(['ps', '-a', '-q']), '');
});

test('run -t without -i: Ctrl-C on the outer terminal stops the command (128+2)', async (t) => {
  const u = await makeEnv(t);
  // With --init: a bare pid 1 without a SIGINT handler would ignore it, as in Docker.
  const s = u.pty(['run', '-t', '--init', '--name', 'nt', 'busybox', 'sh', '-c', 'tty; echo ready; exec sleep 60']);
  await s.waitFor(/ready/);
  t.regex(s.output, /\/dev\/(pts\/\d+|console)/);
  s.write('\x03');
  t.is(await s.exit, 130);
  t.is((await u.record('nt')).State.ExitCode, 130);
});

test('Ctrl-P Ctrl-Q detaches and leaves the container running; ufs attach takes its terminal again', async (t) => {
  const u = await makeEnv(t);
  const s = u.pty(['run', '-it', '--name', 'dt', 'busybox', 'sh']);
  await s.waitFor(/[#$] /);
  s.write('echo one-$((1+1))\r');
  await s.waitFor(/one-2/);
  s.write('\x10\x11');
  t.is(await s.exit, 0);
  t.is((await u.record('dt')).State.Status, 'running');

  const a = u.pty(['attach', 'dt']);
  await new Promise((r) => setTimeout(r, 300));
  a.write('echo two-$((2+2))\r');
  await a.waitFor(/two-4/);
  // A lone Ctrl-P is passed on once the next key is not Ctrl-Q.
  a.write('\x10echo three\r');
  await a.waitFor(/three/);
  a.write('exit 3\r');
  t.is(await a.exit, 3);
  t.is((await u.record('dt')).State.ExitCode, 3);
  // attach to a stopped container, or without a terminal: errors
  t.is((await u.ufs(['attach', 'dt'])).code, 1);
});

test('-it with a stdin that is not a terminal: run, start and exec refuse, as Docker (and return)', async (t) => {
  const u = await makeEnv(t);
  const run = await u.ufs(['run', '-it', '--rm', 'busybox', 'true'], { input: 'echo hi\n' });
  t.is(run.code, 1);
  t.regex(run.stderr, /the input device is not a TTY/);
  const s = u.pty(['run', '-it', '--name', 'st', 'busybox', 'sh', '-c', 'exit 0']);
  t.is(await s.exit, 0);
  const start = await u.ufs(['start', '-ai', 'st'], { input: 'echo hi\n', timeoutMs: 20_000 });
  t.is(start.code, 1);
  t.regex(start.stderr, /the input device is not a TTY/);
  await u.ok(['run', '-d', '--name', 'ex', 'busybox', 'sleep', '100']);
  const exec = await u.ufs(['exec', '-it', 'ex', 'true'], { input: 'x\n' });
  t.is(exec.code, 1);
  t.regex(exec.stderr, /the input device is not a TTY/);
  // start -ai on a terminal attaches to the container's terminal again
  const again = u.pty(['start', '-ai', 'st']);
  t.is(await again.exit, 0);
});

test('run -it on a terminal that sends nothing: the output is exactly the command\'s, every time', async (t) => {
  const u = await makeEnv(t);
  // The issue saw a stray NUL (or a pty write error) in about half the runs.
  for (let i = 0; i < 5; i++) {
    const s = u.pty(['run', '-it', '--rm', 'busybox', 'tty']);
    t.is(await s.exit, 0);
    t.is(s.output, '/dev/pts/0\r\n', `run ${i + 1}: ${JSON.stringify(s.output)}`);
  }
});

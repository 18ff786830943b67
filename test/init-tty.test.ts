// ufs-init with "tty": true, driven through node-pty as the runtime does: the command gets
// its own pty inside the container's devpts, with the size of ours, ^C and resizes work.
import test, { type ExecutionContext } from 'ava';
import pty from 'node-pty';
import { PATH_ENV, UFS_INIT, runInit, startInit, tempRootfs, writeSpec, type InitSpec } from './helpers/rootfs.js';

interface PtyRun {
  term: pty.IPty;
  output(): string;
  waitFor(re: RegExp): Promise<void>;
  exit: Promise<{ exitCode: number; signal?: number }>;
}

// Spawns ufs-init on a fresh pty of the given size; killed (by pid) after the test.
function startPty(t: ExecutionContext, mode: 'run' | 'exec', specFile: string, cols = 80, rows = 24): PtyRun {
  const term = pty.spawn(UFS_INIT, [mode, specFile], { cols, rows, env: process.env as Record<string, string>, name: 'xterm' });
  let out = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  let exited = false;
  const exit = new Promise<{ exitCode: number; signal?: number }>((resolve) =>
    term.onExit((e) => {
      exited = true;
      resolve(e);
    }),
  );
  term.onData((d) => {
    out += d;
    for (const w of waiters.filter((x) => x.re.test(out))) w.resolve();
  });
  t.teardown(async () => {
    if (!exited) {
      try {
        process.kill(term.pid, 'SIGKILL');
      } catch {
        // gone
      }
      await exit;
    }
  });
  return {
    term,
    output: () => out,
    exit,
    waitFor: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(out)) return resolve();
        waiters.push({ re, resolve });
        void exit.then(() => {
          // Output may still arrive with the exit; look once more before giving up.
          setTimeout(() => (re.test(out) ? resolve() : reject(new Error(`exited before ${re}: ${JSON.stringify(out)}`))), 1000);
        });
      }),
  };
}

async function ptyRun(t: ExecutionContext, spec: InitSpec, cols = 80, rows = 24) {
  const { base, rootfs } = await tempRootfs(t);
  const file = await writeSpec(base, { rootfs, env: [PATH_ENV, 'TERM=xterm'], tty: true, ...spec });
  return { base, rootfs, run: startPty(t, 'run', file, cols, rows) };
}

test('tty: the command\'s terminal is a pty in the container\'s /dev/pts with our size', async (t) => {
  const { run } = await ptyRun(
    t,
    { args: ['sh', '-c', 'tty; stty size; test -t 0 && test -t 1 && test -t 2 && echo all-tty; ls -1 /dev/pts; stat -c %t,%T /dev/console $(tty); echo END'] },
    123,
    45,
  );
  const e = await run.exit;
  t.is(e.exitCode, 0, run.output());
  // node-pty may report the exit before the last output: wait for it.
  await run.waitFor(/END\r\n/);
  // The inner pty translates \n to \r\n, as a terminal does.
  const lines = run.output().split('\r\n');
  t.is(lines[0], '/dev/pts/0');
  t.is(lines[1], '45 123');
  t.is(lines[2], 'all-tty');
  t.is(lines[3], '0');
  t.is(lines[4], 'ptmx');
  // /dev/console is that same terminal (same device numbers).
  t.is(lines[5], lines[6]);
});

test('tty: input is echoed and read line by line; the session and foreground group are the command\'s', async (t) => {
  const { run } = await ptyRun(t, {
    args: ['sh', '-c', 'echo ready; read line; echo "got [$line]"; ps -o pid,comm >/dev/null; echo "sid $(cut -d" " -f6 /proc/$$/stat) fg $(cut -d" " -f8 /proc/$$/stat) me $$"'],
  });
  await run.waitFor(/ready\r\n/);
  run.term.write('hello world\r');
  const e = await run.exit;
  t.is(e.exitCode, 0, run.output());
  await run.waitFor(/sid .*\r\n/);
  t.regex(run.output(), /hello world\r\n/); // the echo of our typing
  t.regex(run.output(), /got \[hello world\]\r\n/);
  // The command leads its session, and its group is the terminal's foreground group.
  t.regex(run.output(), /sid 2 fg 2 me 2\r\n/);
});

test('tty: ^C interrupts the foreground command (130)', async (t) => {
  const { run } = await ptyRun(t, { args: ['sh', '-c', 'echo ready; exec sleep 100'] });
  await run.waitFor(/ready/);
  await new Promise((r) => setTimeout(r, 100)); // sh has exec'd sleep (^C before works too: 130 either way)
  run.term.write('\x03');
  const e = await run.exit;
  t.is(e.exitCode, 130, run.output());
  await run.waitFor(/\^C/); // echoed by the container's line discipline
  t.pass();
});

test('tty: a resize reaches the command as SIGWINCH with the new size', async (t) => {
  const { run } = await ptyRun(t, {
    args: ['sh', '-c', 'trap "echo winch \\$(stty size)" WINCH; echo ready; while :; do sleep 0.05; done'],
  });
  await run.waitFor(/ready\r\n/);
  run.term.resize(100, 40);
  await run.waitFor(/winch 40 100\r\n/);
  run.term.write('\x03');
  const e = await run.exit;
  t.is(e.exitCode, 130);
  t.pass();
});

test('tty: SIGTERM to the outer ufs-init still reaches the command', async (t) => {
  const { run } = await ptyRun(t, { args: ['sh', '-c', 'trap "echo bye; exit 4" TERM; echo ready; while :; do sleep 0.05; done'] });
  await run.waitFor(/ready\r\n/);
  process.kill(run.term.pid, 'SIGTERM');
  const e = await run.exit;
  t.is(e.exitCode, 4);
  await run.waitFor(/bye\r\n/);
  t.pass();
});

test('tty: exec -t into a running container gets its own pty there', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const c = startInit(t, 'run', await writeSpec(base, { rootfs, env: [PATH_ENV], hostname: 'ttyhost', args: ['sh', '-c', 'echo ready; exec sleep 1000'] }));
  const pid1 = Number(await c.reported);
  await c.waitFor('ready\n');
  const file = await writeSpec(base, { pid: pid1, env: [PATH_ENV], tty: true, args: ['sh', '-c', 'tty; stty size; hostname; read x; echo "x=$x"'] });
  const e = startPty(t, 'exec', file, 90, 30);
  await e.waitFor(/ttyhost\r\n/);
  e.term.write('typed\r');
  const res = await e.exit;
  t.is(res.exitCode, 0, e.output());
  await e.waitFor(/x=typed\r\n/);
  const lines = e.output().split('\r\n');
  t.is(lines[0], '/dev/pts/0'); // the container itself has no tty: the first pty of its devpts
  t.is(lines[1], '30 90');
  t.true(lines.includes('x=typed'), e.output());
});

test('tty requested without a terminal on stdin: 125', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const r = await runInit(t, base, { rootfs, tty: true, args: ['true'] });
  t.deepEqual([r.code, r.stderr], [125, 'ufs-init: tty: stdin is not a terminal\n']);
});

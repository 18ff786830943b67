// `ufs run` end to end on the busybox image: exit codes, errors, isolation, env/workdir/user,
// volumes, stdin, signals, and containers that do not affect each other or their image.
import test from 'ava';
import { promises as fs, readlinkSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { CLI, makeEnv, waitFor } from './helpers/runtime.js';

test('exit statuses: the command, 128+signal, 126/127 from the runtime, 125 for ufs errors', async (t) => {
  const u = await makeEnv(t);
  const ok = await u.ufs(['run', '--rm', 'busybox', 'true']);
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, '');
  t.is((await u.ufs(['run', '--rm', 'busybox', 'sh', '-c', 'exit 3'])).code, 3);
  // pid 1 cannot be killed from inside its namespace: a child killed by a signal gives 128+n.
  t.is((await u.ufs(['run', '--rm', 'busybox', 'sh', '-c', 'sh -c "kill -9 \\$\\$"; exit $?'])).code, 137);

  const notFound = await u.ufs(['run', '--rm', 'busybox', 'no-such-command']);
  t.is(notFound.code, 127);
  t.regex(notFound.stderr, /no-such-command.*not found/);
  const notExec = await u.ufs(['run', '--rm', 'busybox', '/etc/passwd']);
  t.is(notExec.code, 126);

  const noImage = await u.ufs(['run', '--rm', 'no-such-image:1.0', 'true']);
  t.is(noImage.code, 125);
  t.regex(noImage.stderr, /^ufs: .*no-such-image/m);
  t.is((await u.ufs(['run', '--rm', '--network', 'no-such-network', 'busybox', 'true'])).code, 125);
  t.is((await u.ufs(['run', '--rm', '-v', 'rel/ative:/x', 'busybox', 'true'])).code, 125);
  t.is((await u.ufs(['run', '--rm', '--bogus-flag', 'busybox', 'true'])).code, 125);
  const badUser = await u.ufs(['run', '--rm', '-u', 'no-such-user', 'busybox', 'true']);
  t.is(badUser.code, 125);
  t.regex(badUser.stderr, /unable to find user no-such-user/);

  // Options after the image belong to the command.
  const args = await u.ufs(['run', '--rm', 'busybox', 'echo', '-e', 'a\\tb', '-h', '--rm']);
  t.is(args.stdout, 'a\tb -h --rm\n');
  // Everything ran with --rm: nothing is left.
  t.is(await u.ok(['ps', '-a', '-q']), '');
});

test('isolation: pid, uts, ipc, mount and net namespaces, /proc, /dev, /sys, /etc files, host files', async (t) => {
  const u = await makeEnv(t);
  const script = [
    'echo "pid=$$ ppid=$PPID"',
    'echo "pids=$(ls /proc | grep -E "^[0-9]+$" | tr "\\n" " ")"',
    'echo "comm1=$(cat /proc/1/comm)"',
    'echo "hostname=$(hostname) file=$(cat /etc/hostname)"',
    'for n in pid uts ipc mnt net; do echo "ns-$n=$(readlink /proc/self/ns/$n)"; done',
    'echo "dev=$(ls /dev | tr "\\n" " ")"',
    'echo "chardevs=$(find /dev -type c | sort | tr "\\n" " ")"',
    'echo "netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")"',
    'if touch /sys/x 2>/dev/null; then echo sys=rw; else echo sys=ro; fi',
    'echo "sysmount=$(grep " /sys " /proc/mounts)"',
    'grep -q "^127.0.0.1\\s*localhost" /etc/hosts && echo hosts=ok',
    'test -f /etc/resolv.conf && echo resolv=ok',
    `test -e ${u.dir} && echo host-visible=yes || echo host-visible=no`,
    'echo "root=$(ls / | tr "\\n" " ")"',
  ].join('\n');
  const out = await u.ok(['run', '--name', 'iso', 'busybox', 'sh', '-c', script]);
  const kv = new Map(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const rec = await u.record('iso');

  // The command is pid 1 of its own namespace (as in Docker, no init without --init), and
  // /proc shows only the container's few processes.
  const [, pid] = /pid=(\d+) ppid=(\d+)/.exec(out) ?? [];
  t.is(pid, '1', out);
  t.is(kv.get('comm1'), 'sh', out);
  const pids = (kv.get('pids') ?? '').trim().split(' ').map(Number);
  t.true(pids.includes(1), out);
  t.true(pids.length <= 6 && pids.every((p) => p < 50), `pids: ${pids}`);

  t.is(kv.get('hostname'), `${rec.Id.slice(0, 12)} file=${rec.Id.slice(0, 12)}`);
  for (const ns of ['pid', 'uts', 'ipc', 'mnt', 'net']) {
    t.not(kv.get(`ns-${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `${ns} namespace is the host's`);
  }
  const devs = new Set((kv.get('dev') ?? '').trim().split(' '));
  for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'ptmx', 'shm']) t.true(devs.has(d), `/dev/${d} missing: ${[...devs]}`);
  // The only devices: (ptmx may be a node or a link to pts/ptmx)
  t.deepEqual(
    (kv.get('chardevs') ?? '').trim().split(' ').filter((d) => !d.startsWith('/dev/pts/') && d !== '/dev/ptmx'),
    ['/dev/full', '/dev/null', '/dev/random', '/dev/tty', '/dev/urandom', '/dev/zero'],
  );
  t.is(kv.get('netdevs')?.trim(), 'lo eth0'); // the default bridge, as Docker's
  t.is(kv.get('sys'), 'ro');
  t.regex(kv.get('sysmount') ?? '', /\bro\b/);
  t.is(kv.get('hosts'), 'ok');
  t.is(kv.get('resolv'), 'ok');
  t.is(kv.get('host-visible'), 'no');
  t.false((kv.get('root') ?? '').split(' ').includes('work'));

  // The runtime's own files (/etc/hosts, ..., mount points) are not the container's changes.
  t.is(await u.ok(['diff', 'iso']), '');

  // -h and --network host
  const host = await u.ok(['run', '--rm', '-h', 'box1', '--network', 'host', 'busybox', 'sh', '-c', 'hostname; readlink /proc/self/ns/net']);
  t.is(host, `box1\n${readlinkSync('/proc/self/ns/net')}\n`);
});

test('env, working directory and user from the image and the flags', async (t) => {
  const u = await makeEnv(t);
  const envFile = path.join(u.dir, 'env');
  await fs.writeFile(envFile, '# comment\nFROMFILE=file value\n\nFOO=from-file\n');
  const show = 'echo "FOO=$FOO|SP=$SP|FROMFILE=$FROMFILE|HOME=$HOME|PATH=$PATH"; pwd; id -u; id -g; id -G';

  const def = (await u.ok(['run', '--rm', 'busybox', 'sh', '-c', show])).split('\n');
  t.is(def[0], 'FOO=|SP=|FROMFILE=|HOME=/root|PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  t.deepEqual(def.slice(1, 4), ['/', '0', '0']);
  t.true(def[4].split(' ').includes('10'), `root's supplementary groups (wheel): ${def[4]}`);

  const flags = (await u.ok(['run', '--rm', '--env-file', envFile, '-e', 'FOO=bar', '-e', 'SP=a b', '-w', '/new/work dir', '-u', 'nobody', 'busybox', 'sh', '-c', show])).split('\n');
  t.is(flags[0], 'FOO=bar|SP=a b|FROMFILE=file value|HOME=/home|PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  t.deepEqual(flags.slice(1, 4), ['/new/work dir', '65534', '65534']);

  const numeric = (await u.ok(['run', '--rm', '-u', '1234:5678', 'busybox', 'sh', '-c', 'id -u; id -g; echo $HOME'])).split('\n');
  t.deepEqual(numeric.slice(0, 3), ['1234', '5678', '/']);
  const named = (await u.ok(['run', '--rm', '-u', 'daemon:mail', 'busybox', 'sh', '-c', 'id -u; id -g'])).split('\n');
  t.deepEqual(named.slice(0, 2), ['1', '8']);

  t.is(await u.ok(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'hi', 'there']), 'hi there\n');
  t.is(await u.ok(['run', '--rm', '-e', 'HOSTVAR', 'busybox', 'sh', '-c', 'echo "$HOSTVAR"'], { env: { HOSTVAR: 'from host' } }), 'from host\n');
});

test('volumes: read-write and :ro binds; the host sees the writes', async (t) => {
  const u = await makeEnv(t);
  const rw = path.join(u.dir, 'rw');
  const ro = path.join(u.dir, 'ro');
  await fs.mkdir(rw);
  await fs.mkdir(ro);
  await fs.writeFile(path.join(rw, 'in'), 'from host\n');
  await fs.writeFile(path.join(ro, 'keep'), 'keep\n');
  const r = await u.ufs(['run', '--rm', '-v', `${rw}:/data`, '-v', `${ro}:/srv/ro:ro`, 'busybox', 'sh', '-c',
    'cat /data/in; echo out > /data/out; cat /srv/ro/keep; if echo x > /srv/ro/new 2>/dev/null; then echo ro-writable; else echo ro-refused; fi; rm /srv/ro/keep 2>/dev/null || echo rm-refused']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'from host\nkeep\nro-refused\nrm-refused\n');
  t.is(await fs.readFile(path.join(rw, 'out'), 'utf8'), 'out\n');
  t.deepEqual((await fs.readdir(ro)).sort(), ['keep']);
});

test('stdin: piped with -i, /dev/null without', async (t) => {
  const u = await makeEnv(t);
  t.is(await u.ok(['run', '-i', '--rm', 'busybox', 'cat'], { input: 'hi\nthere\n' }), 'hi\nthere\n');
  t.is(await u.ok(['run', '--rm', 'busybox', 'cat'], { input: 'ignored\n' }), '');
  const big = 'x'.repeat(1 << 20);
  t.is(await u.ok(['run', '-i', '--rm', 'busybox', 'wc', '-c'], { input: big }), `${big.length}\n`);
  // A script reading the container's output line by line.
  t.is(await u.ok(['run', '-i', '--rm', 'busybox', 'sh', '-c', 'while read l; do echo "<$l>"; done'], { input: 'a\nb\n' }), '<a>\n<b>\n');
});

test('signals: SIGTERM and SIGINT to ufs run reach the command; orphans are reaped', async (t) => {
  const u = await makeEnv(t);
  const runWithSignal = async (name: string, script: string, sig: NodeJS.Signals, flags: string[] = []) => {
    const child = spawn(process.execPath, [CLI, '--root', u.root, 'run', '--name', name, '--network', 'none', ...flags, 'busybox', 'sh', '-c', script], { env: u.env, stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('the command to start', () => out.includes('ready') || undefined);
    child.kill(sig);
    return { code: await exited, out };
  };
  const trapped = await runWithSignal('trap', 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 1 & wait $!; done', 'SIGTERM');
  t.is(trapped.code, 7);
  t.true(trapped.out.includes('got-term'));
  // A bare pid 1 without a handler ignores SIGINT (the kernel's rule, as in Docker): with
  // --init, our init passes it on and sleep dies of it.
  const killed = await runWithSignal('int', 'echo ready; exec sleep 100', 'SIGINT', ['--init']);
  t.is(killed.code, 130);
  t.is((await u.record('int')).State.ExitCode, 130);

  // An orphan (its parent exits first) is reparented to pid 1, which must reap it.
  const zombies = await u.ok(['run', '--rm', 'busybox', 'sh', '-c',
    'sh -c "sleep 0.2 & exit 0"; sleep 1; for s in /proc/[0-9]*/stat; do cut -d" " -f3 $s; done | grep -c Z || true']);
  t.is(zombies.trim(), '0');
});

test('two containers from one image are independent and leave the image unchanged', async (t) => {
  const u = await makeEnv(t);
  await u.ok(['run', '--name', 'ca', 'busybox', 'sh', '-c', 'echo A > /f; rm /etc/passwd; mkdir /d']);
  const b = await u.ufs(['run', '--name', 'cb', 'busybox', 'sh', '-c', 'test -e /f && echo f; test -d /d && echo d; head -1 /etc/passwd']);
  t.is(b.stdout, 'root:x:0:0:root:/root:/bin/sh\n');
  t.is(await u.ok(['run', '--rm', 'busybox', 'sh', '-c', 'ls /f /d 2>&1 | wc -l; head -1 /etc/passwd']), '2\nroot:x:0:0:root:/root:/bin/sh\n');
  // Each keeps its own writable layer.
  t.is(await u.ok(['diff', 'ca']), 'A /d\nC /etc\nD /etc/passwd\nA /f\n');
  t.is(await u.ok(['diff', 'cb']), '');
  // Docker's name rule: at least two characters
  t.is((await u.ufs(['run', '--name', 'x', 'busybox', 'true'])).code, 125);
});

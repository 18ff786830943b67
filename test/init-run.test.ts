// ufs-init run: the container's namespaces, filesystem, user, environment and exit status,
// on a busybox rootfs (a plain directory: ufs-init binds it onto itself).
import test from 'ava';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PATH_ENV, runInit, startInit, tempRootfs, writeSpec } from './helpers/rootfs.js';

test('exit status is the command\'s: 0 and 3', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const ok = await runInit(t, base, { rootfs, args: ['sh', '-c', 'echo out; echo err >&2'] });
  t.deepEqual(ok, { code: 0, signal: null, stdout: 'out\n', stderr: 'err\n' });
  const three = await runInit(t, base, { rootfs, args: ['sh', '-c', 'exit 3'] });
  t.is(three.code, 3);
});

test('pid namespace: pid 1 is ufs-init, the command its child, only container processes visible', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const r = await runInit(t, base, {
    rootfs,
    args: ['sh', '-c', 'echo "self $$ parent $PPID"; cat /proc/1/comm; cd /proc && echo [0-9]*; ps -o pid,comm; true'],
  });
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines[0], 'self 2 parent 1');
  t.is(lines[1], 'ufs-init');
  // The shell (2) and pid 1; every other process on this host is invisible.
  t.deepEqual(lines[2]!.split(' '), ['1', '2']);
  t.regex(lines[3]!, /^PID\s+COMMAND$/);
  t.regex(lines[4]!, /^\s*1 ufs-init$/);
  t.regex(lines[5]!, /^\s*2 sh$/);
  t.regex(lines[6]!, /^\s*\d+ ps$/);
  t.is(lines.length, 7);
});

test('hostname, exact environment, cwd, user, group and supplementary groups', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const r = await runInit(t, base, {
    rootfs,
    args: ['sh', '-c', 'hostname; cat /proc/$$/environ | tr "\\0" "\\n"; echo ---; pwd; id; umask'],
    env: [PATH_ENV, 'HOME=/home/user', 'WITH_SPACE=a b', 'EMPTY=', 'UTF=\u00e9\u{1F600}'],
    cwd: '/home/user',
    uid: 1000,
    gid: 1000,
    groups: [10, 100],
    hostname: 'c0ffee123456',
  });
  t.is(r.code, 0, r.stderr);
  const [head, tail] = r.stdout.split('---\n');
  const lines = head!.trim().split('\n');
  t.is(lines[0], 'c0ffee123456');
  // Exactly the spec's env, in order, nothing added by ufs-init.
  t.deepEqual(lines.slice(1), [PATH_ENV, 'HOME=/home/user', 'WITH_SPACE=a b', 'EMPTY=', 'UTF=\u00e9\u{1F600}']);
  t.deepEqual(tail!.trim().split('\n'), [
    '/home/user',
    'uid=1000(user) gid=1000(user) groups=10(wheel),100(users)',
    '0022',
  ]);
});

test('the hostname stays inside: the host keeps its own', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const before = os.hostname();
  const r = await runInit(t, base, { rootfs, args: ['hostname'], hostname: 'inside' });
  t.is(r.stdout, 'inside\n');
  t.is(os.hostname(), before);
});

test('/dev holds only the minimal set, and the devices work', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const script = [
    'ls -A /dev | tr "\\n" " "; echo',
    'ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | while read m l o g maj min rest; do echo "$m $maj$min ${rest##* }"; done',
    'echo $(for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done)',
    'echo discard > /dev/null && echo null-ok',
    'head -c 4 /dev/zero | od -An -tx1',
    'echo x > /dev/full || echo full-refuses',
    'head -c 8 /dev/urandom | wc -c',
    'stat -c "%a %U" /dev/shm; touch /dev/shm/f && echo shm-ok',
    'stat -c %a /dev; ls /dev/pts',
  ].join('\n');
  const r = await runInit(t, base, { rootfs, args: ['sh', '-c', script] });
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => l.trim());
  t.is(lines[0], 'fd full null ptmx pts random shm stderr stdin stdout tty urandom zero');
  t.deepEqual(lines.slice(1, 7).sort(), [
    'crw-rw-rw- 1,3 /dev/null',
    'crw-rw-rw- 1,5 /dev/zero',
    'crw-rw-rw- 1,7 /dev/full',
    'crw-rw-rw- 1,8 /dev/random',
    'crw-rw-rw- 1,9 /dev/urandom',
    'crw-rw-rw- 5,0 /dev/tty',
  ].sort());
  t.is(lines[7], 'pts/ptmx /proc/self/fd /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2');
  t.is(lines[8], 'null-ok');
  t.is(lines[9], '00 00 00 00');
  t.true(r.stderr.includes('No space left on device'));
  t.is(lines[10], 'full-refuses');
  t.is(lines[11], '8');
  t.is(lines[12], '1777 root');
  t.is(lines[13], 'shm-ok');
  t.is(lines[14], '755');
  t.is(lines[15], 'ptmx');
});

test('mounts: a fresh /proc, /sys read-only, and no host mount visible', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const r = await runInit(t, base, {
    rootfs,
    args: ['sh', '-c', 'cat /proc/1/mountinfo; echo ---; touch /sys/x 2>&1; ls /sys/class/net >/dev/null && echo sys-readable'],
  });
  t.is(r.code, 0, r.stderr);
  const [info, rest] = r.stdout.split('---\n');
  const entries = info!.trim().split('\n').map((l) => {
    const f = l.split(' ');
    const dash = f.indexOf('-');
    return { point: f[4], opts: f[5], type: f[dash + 1] };
  });
  // The rootfs (whatever filesystem the temp dir is on) and ours; no host mount. (The masked
  // and read-only paths inside /proc and /sys are init-security's.)
  t.deepEqual(entries.filter((e) => !/^\/(proc|sys)\//.test(e.point!)).map((e) => (e.point === '/' ? '/' : `${e.point} ${e.type}`)), [
    '/',
    '/proc proc',
    '/dev tmpfs',
    '/dev/pts devpts',
    '/dev/shm tmpfs',
    '/sys sysfs',
  ]);
  t.regex(entries.find((e) => e.point === '/sys')!.opts!, /^ro,/);
  t.regex(entries.find((e) => e.point === '/proc')!.opts!, /nosuid,nodev,noexec/);
  t.regex(rest!, /touch: \/sys\/x: Read-only file system/);
  t.regex(rest!, /sys-readable/);
  // Nothing changed on the host's side.
  const hostInfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  t.false(hostInfo.includes(rootfs));
});

test('volumes: read-write bind, read-only bind (EROFS), file source, targets created', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const rw = path.join(base, 'rw');
  const ro = path.join(base, 'ro');
  const file = path.join(base, 'config.txt');
  await fs.mkdir(rw);
  await fs.mkdir(ro);
  await fs.writeFile(path.join(ro, 'kept'), 'old\n');
  await fs.writeFile(file, 'conf\n');
  await fs.mkdir(path.join(rootfs, 'data'));
  const r = await runInit(t, base, {
    rootfs,
    args: [
      'sh',
      '-c',
      [
        'echo written > /data/new && echo rw-ok',
        'cat /ro/kept; (echo x > /ro/kept) 2>&1; touch /ro/other 2>&1',
        'cat /deep/er/config.txt; test -f /deep/er/config.txt && echo is-file',
      ].join('; '),
    ],
    mounts: [
      { source: rw, target: '/data' },
      { source: ro, target: '/ro', readonly: true },
      { source: file, target: '/deep/er/config.txt' },
    ],
  });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), [
    'rw-ok',
    'old',
    'sh: can\'t create /ro/kept: Read-only file system',
    'touch: /ro/other: Read-only file system',
    'conf',
    'is-file',
  ]);
  t.is(await fs.readFile(path.join(rw, 'new'), 'utf8'), 'written\n');
  t.is(await fs.readFile(path.join(ro, 'kept'), 'utf8'), 'old\n');
  // Missing targets are made in the rootfs (the container's writable layer), as Docker does.
  t.true((await fs.stat(path.join(rootfs, 'ro'))).isDirectory());
  t.true((await fs.stat(path.join(rootfs, 'deep/er/config.txt'))).isFile());
});

test('a volume target through a symlink in the image stays inside the rootfs', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const hostDir = path.join(base, 'host-side');
  const vol = path.join(base, 'vol');
  await fs.mkdir(hostDir);
  await fs.mkdir(vol);
  await fs.writeFile(path.join(vol, 'v'), 'volume\n');
  // Relative escape and absolute link: both must resolve as if rootfs were "/".
  await fs.symlink(`../../../../../../../..${hostDir}`, path.join(rootfs, 'up'));
  await fs.symlink(hostDir, path.join(rootfs, 'abs'));
  const r = await runInit(t, base, {
    rootfs,
    args: ['sh', '-c', 'cat /up/x/v /abs/y/v'],
    mounts: [
      { source: vol, target: '/up/x' },
      { source: vol, target: '/abs/y' },
    ],
  });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'volume\nvolume\n');
  t.deepEqual(await fs.readdir(hostDir), []);
  // /up -> (clamped to /) + host-side path, created inside the rootfs.
  t.true((await fs.stat(path.join(rootfs, hostDir, 'x'))).isDirectory());
});

test('network none: only lo, and it is up; the default shares the host network', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const none = await runInit(t, base, {
    rootfs,
    args: ['sh', '-c', 'ls /sys/class/net; ip -o link | cut -d" " -f2,3; ping -c1 -W2 127.0.0.1 >/dev/null && echo ping-ok'],
    network: 'none',
  });
  t.is(none.code, 0, none.stderr);
  const lines = none.stdout.trim().split('\n');
  t.is(lines[0], 'lo');
  t.regex(lines[1]!, /^lo: <LOOPBACK,UP,LOWER_UP>$/);
  t.is(lines[2], 'ping-ok');
  t.is(lines.length, 3);

  const host = await runInit(t, base, { rootfs, args: ['ls', '/sys/class/net'] });
  t.is(host.code, 0, host.stderr);
  t.deepEqual(host.stdout.trim().split('\n').sort(), (await fs.readdir('/sys/class/net')).sort());
});

test('stdin is piped to the command, and its EOF arrives', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const r = await runInit(t, base, { rootfs, args: ['cat'] }, { input: 'hi\n' });
  t.deepEqual([r.code, r.stdout], [0, 'hi\n']);
  const big = 'x'.repeat(1 << 20);
  const w = await runInit(t, base, { rootfs, args: ['wc', '-c'] }, { input: big });
  t.deepEqual([w.code, w.stdout.trim()], [0, String(1 << 20)]);
});

test('signals: SIGTERM reaches a trap in the command; killed by SIGINT/SIGTERM gives 130/143', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const trap = startInit(
    t,
    'run',
    await writeSpec(base, {
      rootfs,
      env: [PATH_ENV],
      args: ['sh', '-c', 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done'],
    }),
  );
  await trap.waitFor('ready\n');
  process.kill(trap.pid, 'SIGTERM');
  const tr = await trap.done;
  t.deepEqual([tr.code, tr.stdout], [7, 'ready\ngot-term\n']);

  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129], ['SIGUSR1', 138]] as const) {
    const p = startInit(
      t,
      'run',
      await writeSpec(base, { rootfs, env: [PATH_ENV], args: ['sh', '-c', 'echo ready; exec sleep 100'] }),
    );
    await p.waitFor('ready\n');
    await new Promise((r) => setTimeout(r, 50)); // let sh exec sleep (a signal before would hit sh)
    process.kill(p.pid, sig);
    const res = await p.done;
    t.is(res.code, code, `${sig}: ${res.stderr}`);
  }
});

test('orphans are reaped by pid 1: no zombies remain', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  // The subshell exits at once, so its background children are orphans of pid 1.
  const script = [
    '(true & sleep 0.1 & exit 0)',
    'sleep 0.5',
    'for s in /proc/[0-9]*/stat; do read -r pid comm state rest < $s; echo "$pid $comm $state"; done',
  ].join('; ');
  const r = await runInit(t, base, { rootfs, args: ['sh', '-c', script] });
  t.is(r.code, 0, r.stderr);
  const states = r.stdout.trim().split('\n').map((l) => l.split(' ')[2]);
  t.false(states.includes('Z'), r.stdout);
  // Only pid 1, the shell and its loop remain.
  t.true(r.stdout.includes('1 (ufs-init)'));
});

test('fd 3 gets pid 1\'s host pid; no other fd leaks into the container', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const p = startInit(
    t,
    'run',
    await writeSpec(base, { rootfs, env: [PATH_ENV], args: ['sh', '-c', 'echo ready; exec cat'] }),
    { keepStdin: true, extraFds: 2 },
  );
  const reported = await p.reported;
  t.regex(reported, /^\d+\n$/);
  const hostPid = Number(reported);
  await p.waitFor('ready\n');
  // That pid is pid 1 of the container's pid namespace, and a child of the outer ufs-init.
  const status = await fs.readFile(`/proc/${hostPid}/status`, 'utf8');
  t.regex(status, new RegExp(`^NSpid:\\s+${hostPid}\\s+1$`, 'm'));
  t.regex(status, new RegExp(`^PPid:\\s+${p.pid}$`, 'm'));
  // The command (cat, pid 1's only child) has exactly 0-2: not fd 3 nor the extra pipes.
  const children = (await fs.readFile(`/proc/${hostPid}/task/${hostPid}/children`, 'utf8')).trim().split(' ');
  t.is(children.length, 1);
  t.deepEqual((await fs.readdir(`/proc/${children[0]}/fd`)).sort(), ['0', '1', '2']);
  // pid 1 itself: its stdio and its signalfd.
  const initFds = await fs.readdir(`/proc/${hostPid}/fd`);
  t.deepEqual(initFds.filter((n) => Number(n) >= 3).length, 1);
  t.regex(await fs.readlink(`/proc/${hostPid}/fd/${initFds.find((n) => Number(n) >= 3)}`), /signalfd/);
  p.child.stdin!.end('bye\n');
  const r = await p.done;
  t.deepEqual([r.code, r.stdout, r.stderr], [0, 'ready\nbye\n', '']);
});

test('a command that ends at once still gets its pid reported', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  for (let i = 0; i < 5; i++) {
    const p = startInit(t, 'run', await writeSpec(base, { rootfs, env: [PATH_ENV], args: ['true'] }));
    t.regex(await p.reported, /^\d+\n$/);
    t.is((await p.done).code, 0);
  }
});

test('errors: bad spec 125, missing command 127, not executable 126, bad cwd 125', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const oneLine = (s: string) => s.endsWith('\n') && s.indexOf('\n') === s.length - 1;

  const malformed = await runInit(t, base, '{"rootfs": "/x", "args": ["sh",]}');
  t.is(malformed.code, 125);
  t.regex(malformed.stderr, /^ufs-init: spec .*: malformed JSON: line 1: unexpected ']'\n$/);

  for (const bad of [
    '[]',
    '{"args": ["sh"]}',
    `{"rootfs": "relative", "args": ["sh"]}`,
    `{"rootfs": "${rootfs}", "args": []}`,
    `{"rootfs": "${rootfs}", "args": ["sh"], "uid": -1}`,
    `{"rootfs": "${rootfs}", "args": ["sh"], "uid": 1.5}`,
    `{"rootfs": "${rootfs}", "args": ["sh"], "env": [1]}`,
    `{"rootfs": "${rootfs}", "args": ["sh"], "network": "bridge"}`,
    `{"rootfs": "${rootfs}", "args": ["sh"], "mounts": [{"source": "rel", "target": "/x"}]}`,
    `{"rootfs": "${rootfs}", "args": ["sh"], "env": ["A=\\u0000"]}`,
    `{"rootfs": "${rootfs}", "args": ["sh"], "env": ["A=\\ud800"]}`,
    `{"rootfs": "${rootfs}", "args": ["sh"]} x`,
    `{"rootfs": "${rootfs}", "args": ["sh"], "tty": "yes"}`,
  ]) {
    const r = await runInit(t, base, bad);
    t.is(r.code, 125, bad);
    t.true(oneLine(r.stderr) && r.stderr.startsWith('ufs-init: spec'), `${bad}: ${r.stderr}`);
    t.is(r.stdout, '');
  }
  const noSpec = await startInit(t, 'run', path.join(base, 'nope.json')).done;
  t.is(noSpec.code, 125);
  t.regex(noSpec.stderr, /^ufs-init: spec .*nope\.json: No such file or directory\n$/);

  const missing = await runInit(t, base, { rootfs, args: ['no-such-command', 'x'] });
  t.deepEqual([missing.code, missing.stderr], [127, 'ufs-init: exec: no-such-command: not found\n']);
  const missingPath = await runInit(t, base, { rootfs, args: ['/bin/nope'] });
  t.deepEqual([missingPath.code, missingPath.stderr], [127, 'ufs-init: exec: /bin/nope: not found\n']);

  await fs.writeFile(path.join(rootfs, 'bin/noexec'), '#!/bin/sh\necho hi\n', { mode: 0o644 });
  const denied = await runInit(t, base, { rootfs, args: ['noexec'] });
  t.deepEqual([denied.code, denied.stderr], [126, 'ufs-init: exec: noexec: permission denied\n']);

  // No #! line: not run through /bin/sh behind the user's back (as runc).
  await fs.writeFile(path.join(rootfs, 'bin/noshebang'), 'echo hi\n', { mode: 0o755 });
  const format = await runInit(t, base, { rootfs, args: ['noshebang'] });
  t.deepEqual([format.code, format.stderr], [126, 'ufs-init: exec: noshebang: Exec format error\n']);

  const cwd = await runInit(t, base, { rootfs, args: ['true'], cwd: '/does/not/exist' });
  t.deepEqual([cwd.code, cwd.stderr], [125, 'ufs-init: cwd /does/not/exist: No such file or directory\n']);

  // A container that never started reports no pid on fd 3 (just EOF).
  const failing = startInit(t, 'run', await writeSpec(base, { rootfs: path.join(base, 'missing'), args: ['true'] }));
  const noRoot = await failing.done;
  t.is(await failing.reported, '');
  t.is(noRoot.code, 125);
  t.regex(noRoot.stderr, /^ufs-init: rootfs .*missing: No such file or directory\n$/);

  const noSource = await runInit(t, base, { rootfs, args: ['true'], mounts: [{ source: path.join(base, 'gone'), target: '/v' }] });
  t.is(noSource.code, 125);
  t.regex(noSource.stderr, /^ufs-init: mount \/v: source .*gone: No such file or directory\n$/);
});

test('the container\'s PATH is searched, not ours; a script with #! runs', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  await fs.mkdir(path.join(rootfs, 'opt/tools'), { recursive: true });
  await fs.writeFile(path.join(rootfs, 'opt/tools/hello'), '#!/bin/sh\necho "hello $1"\n', { mode: 0o755 });
  const r = await runInit(t, base, { rootfs, args: ['hello', 'there'], env: ['PATH=/nowhere:/opt/tools'] });
  t.deepEqual([r.code, r.stdout, r.stderr], [0, 'hello there\n', '']);
  // Without PATH in the env, the usual default applies (and env stays empty).
  const d = await runInit(t, base, { rootfs, args: ['env'], env: [] });
  t.deepEqual([d.code, d.stdout], [0, '']);
});

test('JSON escapes in the spec reach the container decoded', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  // Hand-written JSON: \uXXXX (with a surrogate pair), \n, \t, \", \\, \/.
  const spec = `{"rootfs": ${JSON.stringify(rootfs)}, "args": ["sh", "-c", "printf '%s|' \\"$A\\" \\"$B\\""],
    "env": ["${PATH_ENV}", "A=\\u00e9\\ud83d\\ude00\\u4e2d", "B=q\\"b\\\\s\\/t\\tn\\n."]}`;
  const r = await runInit(t, base, spec);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '\u00e9\u{1F600}\u4e2d|q"b\\s/t\tn\n.|');
});

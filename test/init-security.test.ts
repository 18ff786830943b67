// ufs-init's hardening, Docker's defaults: the capability sets, masked and read-only paths in
// /proc and /sys, no_new_privs on request; and what "privileged", "capAdd" and "capDrop"
// change. Real containers on a busybox rootfs, as the other init tests.
import test, { type ExecutionContext } from 'ava';
import { promises as fs } from 'node:fs';
import { PATH_ENV, runInit, startInit, tempRootfs, writeSpec, type InitSpec } from './helpers/rootfs.js';

// CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP
// NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE: `docker run busybox grep Cap /proc/self/status`.
const DOCKER_DEFAULT = 0xa80425fbn;
const bit = (cap: number) => 1n << BigInt(cap);
const CAP = { CHOWN: 0, KILL: 5, NET_RAW: 13, SYS_ADMIN: 21, MKNOD: 27 } as const;

// Docker's lists; the ones this kernel has are the ones a container must get masked.
const MASKED = ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
  '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap'];
const READONLY = ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const SHOW_CAPS = 'grep -E "^(Cap|NoNewPrivs)" /proc/self/status';

// "CapEff:\t00000000a80425fb" lines -> { CapEff: 0xa80425fbn, ... } (NoNewPrivs as 0n/1n).
function caps(text: string): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const m of text.matchAll(/^(Cap\w+|NoNewPrivs):\s+([0-9a-f]+)$/gm)) {
    out[m[1]!] = m[1] === 'NoNewPrivs' ? BigInt(m[2]!) : BigInt(`0x${m[2]}`);
  }
  return out;
}

function expectCaps(t: ExecutionContext, got: Record<string, bigint>, want: { eff: bigint; bnd: bigint; nnp?: bigint }, what: string) {
  const hex = (r: Record<string, bigint | undefined>) =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === undefined ? 'missing' : v.toString(16)]));
  t.deepEqual(
    hex(got),
    hex({ CapInh: 0n, CapPrm: want.eff, CapEff: want.eff, CapBnd: want.bnd, CapAmb: 0n, NoNewPrivs: want.nnp ?? 0n }),
    what,
  );
}

// The test runner's own capabilities: what a privileged container keeps.
async function hostCaps(): Promise<Record<string, bigint>> {
  return caps(await fs.readFile('/proc/self/status', 'utf8'));
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(() => true, () => false);
}

interface MountEntry { point: string; opts: string; type: string }
function mountinfo(text: string): MountEntry[] {
  return text.trim().split('\n').map((l) => {
    const f = l.split(' ');
    return { point: f[4]!, opts: f[5]!, type: f[f.indexOf('-') + 1]! };
  });
}

// A running container and a way to exec into it.
async function container(t: ExecutionContext, extra: Partial<InitSpec> = {}) {
  const { base, rootfs } = await tempRootfs(t);
  const p = startInit(t, 'run', await writeSpec(base, { rootfs, env: [PATH_ENV], args: ['sh', '-c', 'mkdir /mnt; echo ready; exec sleep 1000'], ...extra }));
  const pid1 = Number(await p.reported);
  await p.waitFor('ready\n');
  const exec = async (spec: Partial<InitSpec> & { args: string[] }) =>
    startInit(t, 'exec', await writeSpec(base, { env: [PATH_ENV], pid: pid1, ...spec })).done;
  return { base, rootfs, pid1, p, exec };
}

test('root gets Docker\'s default set (inheritable and ambient empty); pid 1 keeps only KILL and hides from the container', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const r = await runInit(t, base, {
    rootfs,
    args: ['sh', '-c', `${SHOW_CAPS}; echo ---; grep -E "^Cap(Prm|Eff|Bnd)" /proc/1/status; echo ---; readlink /proc/1/exe || echo no-exe; readlink /proc/1/fd/1 || echo no-fd; ls /proc/1/root/ || echo no-root`],
  });
  t.is(r.code, 0, r.stderr);
  const [self, pid1, peek] = r.stdout.split('---\n');
  expectCaps(t, caps(self!), { eff: DOCKER_DEFAULT, bnd: DOCKER_DEFAULT }, 'the command');
  t.deepEqual(caps(pid1!), { CapPrm: bit(CAP.KILL), CapEff: bit(CAP.KILL), CapBnd: DOCKER_DEFAULT });
  // pid 1's exe is the host's ufs-init binary, its fds the caller's: out of reach.
  t.is(peek, 'no-exe\nno-fd\nno-root\n', r.stderr);
});

test('a non-root user has no capabilities, the same bounding set; dropping SETUID/SETGID still lets it become that user', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const user = await runInit(t, base, { rootfs, uid: 1000, gid: 1000, args: ['sh', '-c', `id; ${SHOW_CAPS}`] });
  t.is(user.code, 0, user.stderr);
  t.true(user.stdout.startsWith('uid=1000(user) gid=1000(user)'), user.stdout);
  expectCaps(t, caps(user.stdout), { eff: 0n, bnd: DOCKER_DEFAULT }, 'uid 1000');

  const noSetuid = await runInit(t, base, { rootfs, uid: 1000, gid: 1000, capDrop: ['SETUID', 'SETGID'], args: ['sh', '-c', `id -u; ${SHOW_CAPS}`] });
  t.is(noSetuid.code, 0, noSetuid.stderr);
  t.true(noSetuid.stdout.startsWith('1000\n'));
  expectCaps(t, caps(noSetuid.stdout), { eff: 0n, bnd: DOCKER_DEFAULT & ~(bit(6) | bit(7)) }, 'uid 1000 without SETUID/SETGID');
});

test('default: no mount, no hostname, masked and read-only kernel paths; chown and mknod still work', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const script = [
    'mkdir /mnt; mount -t tmpfs x /mnt 2>/dev/null && echo mount=yes || echo mount=no',
    'hostname foo 2>/dev/null && echo hostname=yes || echo hostname=no',
    'echo "name=$(hostname)"',
    '(echo 1 > /proc/sysrq-trigger) 2>/dev/null && echo sysrq=yes || echo sysrq=no',
    '(echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1 | grep -q "Read-only file system" && echo procsys=ro',
    'echo "kcore=$(cat /proc/kcore 2>/dev/null | wc -c)"',
    'echo "timer_list=$(cat /proc/timer_list 2>/dev/null | wc -c) keys=$(cat /proc/keys 2>/dev/null | wc -c)"',
    'echo "firmware=$(ls -A /sys/firmware | wc -l)"',
    'touch /sys/firmware/x 2>/dev/null && echo firmware-write=yes || echo firmware-write=no',
    'umount /proc/keys 2>/dev/null && echo unmask=yes || echo unmask=no',
    'touch /tmp/f && chown 1000:1000 /tmp/f && echo "chown=$(stat -c %u:%g /tmp/f)"',
    'mknod /tmp/null c 1 3 && echo x > /tmp/null && echo mknod=ok',
    'echo ---; cat /proc/1/mountinfo',
  ].join('\n');
  const r = await runInit(t, base, { rootfs, hostname: 'box', args: ['sh', '-c', script] });
  t.is(r.code, 0, r.stderr);
  const [out, info] = r.stdout.split('---\n');
  t.deepEqual(out!.trim().split('\n'), [
    'mount=no',
    'hostname=no',
    'name=box',
    'sysrq=no',
    'procsys=ro',
    'kcore=0',
    'timer_list=0 keys=0',
    'firmware=0',
    'firmware-write=no',
    'unmask=no',
    'chown=1000:1000',
    'mknod=ok',
  ]);
  // Each path this kernel has is covered; one it lacks is left alone.
  const entries = mountinfo(info!);
  for (const p of READONLY) {
    const e = entries.find((x) => x.point === p);
    if (!(await exists(p))) t.is(e, undefined, p);
    else t.regex(e?.opts ?? 'not mounted', /^ro,/, p);
  }
  for (const p of MASKED) {
    const e = entries.find((x) => x.point === p);
    if (!(await exists(p))) t.is(e, undefined, p);
    else if ((await fs.stat(p)).isDirectory()) t.deepEqual([e?.type, e?.opts.split(',')[0]], ['tmpfs', 'ro'], p);
    else t.truthy(e, p); // /dev/null bound over it
  }
  t.true(entries.some((e) => e.point === '/proc/sys'), 'this kernel has /proc/sys');
});

test('privileged: every capability of the caller, no masking, mount and hostname work', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const host = await hostCaps();
  const r = await runInit(t, base, {
    rootfs,
    privileged: true,
    args: ['sh', '-c', `${SHOW_CAPS}; mkdir /mnt; mount -t tmpfs x /mnt && echo mount=yes; hostname foo && hostname; grep -cE " /(proc|sys)/" /proc/1/mountinfo; true`],
  });
  t.is(r.code, 0, r.stderr);
  expectCaps(t, caps(r.stdout), { eff: host.CapEff!, bnd: host.CapBnd! }, 'privileged');
  const lines = r.stdout.split('\n').filter((l) => !/^(Cap|NoNewPrivs)/.test(l));
  t.deepEqual(lines.slice(0, 3), ['mount=yes', 'foo', '0'], 'mount, hostname, no masked or read-only mounts');
  // A privileged non-root user still has none, as after any setuid.
  const user = await runInit(t, base, { rootfs, privileged: true, uid: 65534, gid: 65534, args: ['sh', '-c', SHOW_CAPS] });
  expectCaps(t, caps(user.stdout), { eff: 0n, bnd: host.CapBnd! }, 'privileged nobody');
});

test('capAdd and capDrop follow Docker\'s rules; masking stays', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  const host = await hostCaps();
  const admin = await runInit(t, base, {
    rootfs,
    capAdd: ['SYS_ADMIN'],
    args: ['sh', '-c', `${SHOW_CAPS}; mkdir /mnt; mount -t tmpfs x /mnt && touch /mnt/f && echo mount=yes; grep -c " /proc/sys " /proc/1/mountinfo`],
  });
  t.is(admin.code, 0, admin.stderr);
  expectCaps(t, caps(admin.stdout), { eff: DOCKER_DEFAULT | bit(CAP.SYS_ADMIN), bnd: DOCKER_DEFAULT | bit(CAP.SYS_ADMIN) }, 'capAdd SYS_ADMIN');
  t.regex(admin.stdout, /\nmount=yes\n1\n$/);

  // Names as Docker takes them: any case, with or without CAP_.
  const dropped = await runInit(t, base, {
    rootfs,
    capDrop: ['chown', 'CAP_MKNOD'],
    args: ['sh', '-c', `${SHOW_CAPS}; touch /tmp/f; chown 1:1 /tmp/f 2>/dev/null || echo chown=no; mknod /tmp/n c 1 3 2>/dev/null || echo mknod=no`],
  });
  t.is(dropped.code, 0, dropped.stderr);
  const less = DOCKER_DEFAULT & ~(bit(CAP.CHOWN) | bit(CAP.MKNOD));
  expectCaps(t, caps(dropped.stdout), { eff: less, bnd: less }, 'capDrop CHOWN MKNOD');
  t.regex(dropped.stdout, /\nchown=no\nmknod=no\n$/);

  const only = await runInit(t, base, { rootfs, capDrop: ['ALL'], capAdd: ['NET_RAW'], args: ['sh', '-c', SHOW_CAPS] });
  expectCaps(t, caps(only.stdout), { eff: bit(CAP.NET_RAW), bnd: bit(CAP.NET_RAW) }, 'capDrop ALL capAdd NET_RAW');

  const all = await runInit(t, base, { rootfs, capAdd: ['ALL'], capDrop: ['SYS_ADMIN'], args: ['sh', '-c', SHOW_CAPS] });
  const allBut = host.CapBnd! & ~bit(CAP.SYS_ADMIN);
  expectCaps(t, caps(all.stdout), { eff: allBut, bnd: allBut }, 'capAdd ALL capDrop SYS_ADMIN');
});

test('noNewPrivileges sets no_new_privs for the command (and exec); off by default', async (t) => {
  const c = await container(t, { noNewPrivileges: true });
  const e = await c.exec({ noNewPrivileges: true, args: ['sh', '-c', SHOW_CAPS] });
  t.is(e.code, 0, e.stderr);
  expectCaps(t, caps(e.stdout), { eff: DOCKER_DEFAULT, bnd: DOCKER_DEFAULT, nnp: 1n }, 'exec');
  // The container's command (sleep, pid 1's only child).
  const cmd = (await fs.readFile(`/proc/${c.pid1}/task/${c.pid1}/children`, 'utf8')).trim();
  const sleeper = caps(await fs.readFile(`/proc/${cmd}/status`, 'utf8'));
  t.is(sleeper.NoNewPrivs, 1n);
  const off = await c.exec({ args: ['sh', '-c', SHOW_CAPS] });
  t.is(caps(off.stdout).NoNewPrivs, 0n);
});

test('exec: root gets the container\'s set (and capAdd), another user none', async (t) => {
  const c = await container(t);
  const root = await c.exec({ args: ['sh', '-c', `${SHOW_CAPS}; mount -t tmpfs x /mnt 2>/dev/null || echo mount=no`] });
  t.is(root.code, 0, root.stderr);
  expectCaps(t, caps(root.stdout), { eff: DOCKER_DEFAULT, bnd: DOCKER_DEFAULT }, 'exec root');
  t.regex(root.stdout, /\nmount=no\n$/);
  const user = await c.exec({ uid: 1000, gid: 1000, capDrop: ['SETUID'], args: ['sh', '-c', `id -u; ${SHOW_CAPS}`] });
  t.is(user.code, 0, user.stderr);
  t.true(user.stdout.startsWith('1000\n'));
  expectCaps(t, caps(user.stdout), { eff: 0n, bnd: DOCKER_DEFAULT & ~bit(7) }, 'exec uid 1000');
  const added = await c.exec({ capAdd: ['SYS_ADMIN'], args: ['sh', '-c', 'mount -t tmpfs x /mnt && echo mount=yes'] });
  t.deepEqual([added.code, added.stdout], [0, 'mount=yes\n'], added.stderr);
});

test('bad security fields are spec errors (125, one line)', async (t) => {
  const { base, rootfs } = await tempRootfs(t);
  for (const [extra, message] of [
    [{ capAdd: ['SYS_ADMN'] }, 'unknown capability "SYS_ADMN" in "capAdd"'],
    [{ capDrop: ['CAP_'] }, 'unknown capability "CAP_" in "capDrop"'],
    [{ capAdd: 'SYS_ADMIN' }, '"capAdd" must be an array, not a string'],
    [{ capDrop: [3] }, '"capDrop"[0] must be a string, not a number'],
    [{ privileged: 'yes' }, '"privileged" must be a boolean, not a string'],
    [{ noNewPrivileges: 1 }, '"noNewPrivileges" must be a boolean, not a number'],
  ] as const) {
    const r = await runInit(t, base, JSON.stringify({ rootfs, args: ['true'], ...extra }));
    t.deepEqual([r.code, r.stderr, r.stdout], [125, `ufs-init: spec: ${message}\n`, ''], JSON.stringify(extra));
  }
});

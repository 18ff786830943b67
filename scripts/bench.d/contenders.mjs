// The contenders. Each can say why it is unavailable (check) and can open a fresh view of
// the three-layer stack for one session: { root, pid?, close() }. `pid` is the FUSE server
// process, whose CPU time and peak RSS the runner reports.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, mkdirSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  q, run, must, mountAt, sleep, alive, recordPid, firstLine, lastLine, errLine,
} from './lib.mjs';

/** Unmounts target; a FUSE mount that will not go has its connection aborted first. */
export async function unmount(target, { timeoutMs = 120_000 } = {}) {
  if (!mountAt(target)) return;
  const r = await run(`umount ${q(target)}`, { timeoutMs });
  if (!mountAt(target)) return;
  const m = mountAt(target);
  if (m && m.fstype.startsWith('fuse')) {
    // A hung server: abort its connection (the minor of the mount's device is its id).
    await run('findmnt -rn /sys/fs/fuse/connections >/dev/null || mount -t fusectl fusectl /sys/fs/fuse/connections');
    await run(`echo 1 > /sys/fs/fuse/connections/${m.dev.split(':')[1]}/abort`);
  }
  await run(`umount ${q(target)} || umount -l ${q(target)}`);
  if (mountAt(target)) throw new Error(`cannot unmount ${target}: ${firstLine(r.stderr)}`);
}

async function waitExit(pid, ms) {
  for (let t = 0; t < ms; t += 50) {
    if (!alive(pid)) return true;
    await sleep(50);
  }
  return !alive(pid);
}

/**
 * Starts a FUSE daemon in the foreground (-f) as its own process group, so we know its pid,
 * and waits until its mount answers. Its stderr goes to a log beside the session.
 */
async function startDaemon(bin, args, mnt, log, runDir) {
  const fd = openSync(log, 'a');
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  let exited = null;
  child.on('exit', (code, sig) => { exited = code ?? sig; });
  recordPid(runDir, child.pid);
  for (let t = 0; t < 30_000; t += 20) {
    const m = mountAt(mnt);
    if (m && m.fstype.startsWith('fuse')) return child.pid;
    if (exited !== null) break;
    await sleep(20);
  }
  const tail = lastLine(readFileSync(log, 'utf8'));
  if (exited === null) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }
  throw new Error(`${bin} did not mount${exited !== null ? ` (exit ${exited})` : ' in 30 s'}${tail ? `: ${tail}` : ''}`);
}

function daemonClose(mnt, pid) {
  return async () => {
    await unmount(mnt);
    if (!(await waitExit(pid, 30_000))) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      throw new Error(`server ${pid} still running 30 s after unmount`);
    }
  };
}

function freshDirs(s, names) {
  const d = {};
  for (const n of names) { d[n] = `${s.dir}/${n}`; mkdirSync(d[n], { recursive: true }); }
  return d;
}

const has = async (cmd) => (await run(`command -v ${cmd}`)).code === 0;

export const contenderNames = ['plain', 'overlayfs', 'fuse-overlayfs', 'unionfs-fuse', 'ufs'];
// Measured only when --only names them.
export const optionalContenders = [];

export function makeContenders(E) {
  // E: { lowers (top first), plainRoot, runDir, ufsMain, ufsRoot, X }
  const ufs = `${q(process.execPath)} ${q(E.ufsMain)} --root ${q(E.ufsRoot)}`;
  return [
    {
      name: 'plain', fuse: false,
      check: async () => null,
      async open(s) {
        if (!s.writes) return { root: E.plainRoot, close: async () => {} };
        // Writes get a private copy of just what the session touches; the cache stays intact.
        const { scratch } = freshDirs(s, ['scratch']);
        for (const key of s.needs) {
          const rel = E.X[key];
          mkdirSync(dirname(`${scratch}/${rel}`), { recursive: true });
          await must(`cp -a ${q(`${E.plainRoot}/${rel}`)} ${q(`${scratch}/${rel}`)}`);
        }
        return { root: scratch, close: async () => {} };
      },
    },
    {
      name: 'overlayfs', fuse: false,
      check: async () => (/\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8')) ||
        (await run('modprobe overlay')).code === 0 ? null : 'kernel has no overlayfs'),
      async open(s) {
        const d = freshDirs(s, ['upper', 'work', 'mnt']);
        await must(`mount -t overlay overlay -o ${q(`lowerdir=${E.lowers.join(':')},upperdir=${d.upper},workdir=${d.work}`)} ${q(d.mnt)}`);
        return { root: d.mnt, close: () => unmount(d.mnt) };
      },
    },
    {
      name: 'fuse-overlayfs', fuse: true,
      check: async () => (await has('fuse-overlayfs') ? null : 'fuse-overlayfs not installed'),
      async open(s) {
        const d = freshDirs(s, ['upper', 'work', 'mnt']);
        const pid = await startDaemon('fuse-overlayfs',
          ['-f', '-o', `lowerdir=${E.lowers.join(':')},upperdir=${d.upper},workdir=${d.work}`, d.mnt],
          d.mnt, `${s.dir}/server.log`, E.runDir);
        return { root: d.mnt, pid, close: daemonClose(d.mnt, pid) };
      },
    },
    {
      name: 'unionfs-fuse', fuse: true,
      check: async () => (await has('unionfs') ? null : 'unionfs (unionfs-fuse) not installed'),
      async open(s) {
        const d = freshDirs(s, ['upper', 'mnt']);
        const branches = [`${d.upper}=RW`, ...E.lowers.map((l) => `${l}=RO`)].join(':');
        const pid = await startDaemon('unionfs',
          ['-f', '-o', 'cow,allow_other,use_ino', branches, d.mnt],
          d.mnt, `${s.dir}/server.log`, E.runDir);
        return { root: d.mnt, pid, close: daemonClose(d.mnt, pid) };
      },
    },
    ufsContender(E, 'ufs', ufs),
  ];
}

/** ufs as a contender; `ufs` is the command line that runs the CLI. */
function ufsContender(E, name, ufs) {
  return {
    name, fuse: true,
    async check() {
      if (!existsSync(E.ufsMain)) return `not built (${E.ufsMain} missing; npm run build)`;
      const r = await run(`${ufs} mount --help`, { timeoutMs: 60_000 });
      if (r.code !== 0 || !/--lower/.test(r.stdout)) return '`ufs mount` not implemented yet';
      return null;
    },
    async open(s) {
      const d = freshDirs(s, ['upper', 'mnt']);
      const lowers = E.lowers.map((l) => `--lower ${q(l)}`).join(' ');
      const r = await run(`${ufs} mount ${lowers} --upper ${q(d.upper)} ${q(d.mnt)}`, { timeoutMs: 60_000 });
      const m = mountAt(d.mnt);
      if (r.code !== 0 || !m) {
        if (m) await unmount(d.mnt).catch(() => {});
        const why = errLine(r.stderr).replace(/^ufs: /, '').replace(`cannot mount ${d.mnt}: `, '');
        throw new Error(`ufs mount failed: ${why || (r.timedOut ? 'timed out' : `exit ${r.code}`)}`);
      }
      const pid = await ufsServerPid(ufs, d.mnt);
      if (pid) recordPid(E.runDir, pid);
      return {
        root: d.mnt, pid,
        async close() {
          const u = await run(`${ufs} umount ${q(d.mnt)}`, { timeoutMs: 120_000 });
          const stuck = mountAt(d.mnt);
          if (stuck) await unmount(d.mnt);
          if (pid && !(await waitExit(pid, 30_000))) {
            try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
            throw new Error(`ufs server ${pid} still running 30 s after unmount`);
          }
          if (u.code !== 0) throw new Error(`ufs umount failed: ${errLine(u.stderr).replace(/^ufs: /, '')}`);
        },
      };
    },
  };
}

/** The pid serving a ufs mount: from `ufs mounts --json`, else the mount records in /run/ufs. */
async function ufsServerPid(ufs, mnt) {
  const pick = (recs) => {
    for (const rec of Array.isArray(recs) ? recs : Object.values(recs ?? {})) {
      if (rec && typeof rec === 'object' && (rec.mountpoint === mnt || rec.mountPoint === mnt || rec.target === mnt)) {
        const pid = Number(rec.pid ?? rec.serverPid);
        if (pid > 0) return pid;
      }
    }
    return null;
  };
  const r = await run(`${ufs} mounts --json`, { timeoutMs: 30_000 });
  if (r.code === 0) {
    try { const p = pick(JSON.parse(r.stdout)); if (p) return p; } catch { /* not JSON */ }
  }
  try {
    const recs = [];
    for (const f of readdirSync('/run/ufs/mounts')) {
      try { recs.push(JSON.parse(readFileSync(`/run/ufs/mounts/${f}`, 'utf8'))); } catch { /* skip */ }
    }
    return pick(recs);
  } catch { return null; }
}

// Small helpers for the bench runner: running shell commands with a timer and a timeout,
// reading the mount table, dropping caches, and reading a server process's CPU and memory.
import { spawn } from 'node:child_process';
import { readFileSync, existsSync, writeFileSync, appendFileSync } from 'node:fs';

/** Shell-quotes one word. */
export function q(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

// Process groups of commands in flight, so Ctrl-C or a timeout can end them whole.
const running = new Set();
export function killRunning() {
  for (const pid of running) {
    try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

/**
 * Runs `bash -c cmd` in its own process group and times it from spawn to exit.
 * Resolves { code, signal, stdout, stderr, secs, timedOut }; never rejects.
 */
export function run(cmd, { timeoutMs = 0, env } = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('bash', ['-c', cmd], {
      stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: env ?? process.env,
    });
    running.add(child.pid);
    let stdout = '', stderr = '', timedOut = false;
    child.stdout.on('data', (d) => { if (stdout.length < 1 << 20) stdout += d; });
    child.stderr.on('data', (d) => { if (stderr.length < 1 << 16) stderr += d; });
    const timer = timeoutMs > 0 ? setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, timeoutMs) : null;
    child.on('close', (code, signal) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      if (timer) clearTimeout(timer);
      running.delete(child.pid);
      resolve({ code, signal, stdout, stderr, secs, timedOut });
    });
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      running.delete(child.pid);
      resolve({ code: -1, signal: null, stdout, stderr: String(e), secs: 0, timedOut });
    });
  });
}

/** Runs a command that must succeed; throws with its stderr otherwise. */
export async function must(cmd, opts) {
  const r = await run(cmd, opts);
  if (r.code !== 0) throw new Error(`${cmd}: ${firstLine(r.stderr) || `exit ${r.code ?? r.signal}`}`);
  return r;
}

export function firstLine(s) {
  return String(s).split('\n').map((l) => l.trim()).filter(Boolean)[0] ?? '';
}
/** The line of a command's stderr that says what went wrong (a Node crash starts with a source location). */
export function errLine(s) {
  const ls = String(s).split('\n').map((l) => l.trim()).filter(Boolean);
  return ls.find((l) => /^(ufs:|\w*Error\b|\w+: )/.test(l) && !/^file:/.test(l)) ?? ls[0] ?? '';
}
export function lastLine(s) {
  const ls = String(s).split('\n').map((l) => l.trim()).filter(Boolean);
  return ls[ls.length - 1] ?? '';
}

/** Mounts from /proc/self/mountinfo: { target, fstype, dev: 'maj:min' }. */
export function mounts() {
  const out = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    const f = pre.split(' ');
    const unesc = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    out.push({ target: unesc(f[4]), dev: f[2], fstype: post.split(' ')[0] });
  }
  return out;
}
export function mountAt(target) {
  // The last one listed is the one on top.
  return mounts().filter((m) => m.target === target).pop();
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The cold state: dirty data written out, then page, dentry and inode caches dropped. */
export async function dropCaches() {
  await must('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

const CLK_TCK = 100; // Linux USER_HZ; /proc/<pid>/stat reports ticks of it.
/** { user, sys } CPU seconds of a live process (all threads), or null. */
export function cpuTimes(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK }; // fields 14, 15
  } catch { return null; }
}
/** User+system CPU seconds of a live process, or null. */
export function cpuSecs(pid) {
  const t = cpuTimes(pid);
  return t ? t.user + t.sys : null;
}
/** Peak resident set (VmHWM) of a live process in KiB, or null. */
export function peakRssKiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}
export function alive(pid) {
  return existsSync(`/proc/${pid}`) && !/^\S+ \(.*\) Z/.test(safeRead(`/proc/${pid}/stat`));
}
function safeRead(p) { try { return readFileSync(p, 'utf8'); } catch { return ''; } }

/** Remembers a server pid we started, with its command line, for the shell's exit trap. */
export function recordPid(runDir, pid) {
  const cmdline = safeRead(`/proc/${pid}/cmdline`).replace(/\0/g, ' ').trim();
  appendFileSync(`${runDir}/pids`, `${pid} ${cmdline}\n`);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (!n) return null;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function cpuJiffies() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4]; // idle + iowait
  return { total: f.reduce((a, b) => a + b, 0), idle };
}
/** Fraction (0-1) of all CPUs busy during the next `ms`: while the bench itself sleeps, other work. */
export async function othersBusy(ms = 150) {
  const a = cpuJiffies();
  await sleep(ms);
  const b = cpuJiffies();
  const total = b.total - a.total;
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0;
}

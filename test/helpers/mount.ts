// Real ufs mounts for tests, made through the built CLI (never in the test process: a process
// must not serve a FUSE mount it also uses). Each mount gets its own temp dirs and run dir
// (UFS_RUN_DIR), and is torn down in t.teardown, also when the test fails.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI = path.resolve(here, '..', '..', 'src', 'cli', 'main.js');

export type { Result as RunResult } from './process.js';
import { run as runProcess, type RunOpts as RunOptions, type Result as RunResult } from './process.js';

// Runs a program, never throws; stdin is /dev/null unless input is given.
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runProcess(cmd, args, { input: null, timeoutMs: 120_000, ...opts });
}

export function sh(script: string, opts: RunOptions = {}): Promise<RunResult> {
  return run('sh', ['-c', script], opts);
}

// Same as sh, but as an unprivileged user (uid/gid 1000, no groups).
export function shAs(uid: number, gid: number, script: string, opts: RunOptions = {}): Promise<RunResult> {
  return run('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'sh', '-c', script], opts);
}

export async function tempDir(t: ExecutionContext, prefix = 'ufs-test-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  // Other users must reach the mounts inside (permission tests run as uid 1000).
  await fs.chmod(dir, 0o755);
  t.teardown(async () => {
    // Never recurse into a mount (teardowns run last-registered first, so mounts inside are
    // normally gone already; this is the safety net).
    for (const mp of await mountsUnder(dir)) await run('fusermount', ['-uz', mp]);
    if ((await mountsUnder(dir)).length > 0) return;
    await fs.rm(dir, { recursive: true, force: true });
  });
  return dir;
}

export interface Layers {
  base: string; // temp dir holding everything below
  lowers: string[]; // top first
  upper?: string;
  mnt: string;
  runDir: string;
  env: NodeJS.ProcessEnv; // UFS_RUN_DIR set: use for every ufs call about this mount
}

export interface LayerOptions {
  lowers?: number; // how many lower dirs (default 1)
  upper?: boolean; // default true
}

// Empty layer dirs, a mountpoint and a run dir, removed after the test. Fill the layers with
// `fill` below (or anything) before mounting.
export async function makeLayers(t: ExecutionContext, opts: LayerOptions = {}): Promise<Layers> {
  const base = await tempDir(t);
  const lowers: string[] = [];
  for (let i = 0; i < (opts.lowers ?? 1); i++) {
    const dir = path.join(base, `lower${i}`);
    await fs.mkdir(dir, { mode: 0o755 });
    lowers.push(dir);
  }
  const upper = opts.upper === false ? undefined : path.join(base, 'upper');
  if (upper) await fs.mkdir(upper, { mode: 0o755 });
  const mnt = path.join(base, 'mnt');
  await fs.mkdir(mnt, { mode: 0o755 });
  const runDir = path.join(base, 'run');
  await fs.mkdir(runDir);
  return { base, lowers, ...(upper ? { upper } : {}), mnt, runDir, env: { ...process.env, UFS_RUN_DIR: runDir } };
}

// Runs a shell script inside a layer dir (to prepare lowers before mounting).
export async function fill(dir: string, script: string): Promise<void> {
  const r = await sh(`set -e\n${script}`, { cwd: dir });
  if (r.code !== 0) throw new Error(`fill ${dir} failed (${r.code}): ${r.stderr}`);
}

export function ufs(args: string[], env: NodeJS.ProcessEnv, opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], { ...opts, env });
}

export interface MountRecordLite {
  mountpoint: string;
  pid: number;
  lowers: string[];
  upper?: string;
  log: string;
  stale?: boolean;
}

export async function records(runDir: string): Promise<MountRecordLite[]> {
  const dir = path.join(runDir, 'mounts');
  const files = await fs.readdir(dir).catch(() => [] as string[]);
  const out: MountRecordLite[] = [];
  for (const f of files.filter((f) => f.endsWith('.json'))) {
    try {
      out.push(JSON.parse(await fs.readFile(path.join(dir, f), 'utf8')) as MountRecordLite);
    } catch {
      // a record being replaced
    }
  }
  return out;
}

async function mountsUnder(dir: string): Promise<string[]> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => !!mp && mp.startsWith(`${dir}/`))
    .reverse();
}

export async function isMounted(mnt: string): Promise<boolean> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === mnt);
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Last resort when `ufs umount` did not clean up: detach the mount and kill the server whose
// pid its record names (a pid this test started, through the CLI).
async function forceCleanup(l: Layers): Promise<void> {
  const recs = await records(l.runDir);
  if (await isMounted(l.mnt)) await run('fusermount', ['-uz', l.mnt]);
  for (const r of recs) {
    if (r.mountpoint === l.mnt && pidAlive(r.pid)) {
      try {
        process.kill(r.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

export interface Mount extends Layers {
  pid: number;
  // Shell in the mount (cwd = mountpoint).
  sh(script: string, opts?: RunOptions): Promise<RunResult>;
  // Same, failing the test on a non-zero exit; returns stdout.
  ok(script: string, opts?: RunOptions): Promise<string>;
  // Node code run in a child process with cwd = mountpoint; see nodeIn.
  node<T = unknown>(body: string): Promise<T>;
  umount(): Promise<RunResult>;
  serverLog(): Promise<string>;
}

// Mounts `layers` through `ufs mount` and registers its teardown.
export async function mount(t: ExecutionContext, l: Layers, extraArgs: string[] = []): Promise<Mount> {
  const args = ['mount'];
  for (const lower of l.lowers) args.push('--lower', lower);
  if (l.upper) args.push('--upper', l.upper);
  args.push(...extraArgs, l.mnt);
  // Registered before mounting: a half-made mount is cleaned up as well.
  t.teardown(async () => {
    if (!(await isMounted(l.mnt)) && (await records(l.runDir)).length === 0) return;
    const r = await ufs(['umount', l.mnt], l.env);
    if (r.code !== 0 || (await isMounted(l.mnt))) await forceCleanup(l);
  });
  const r = await ufs(args, l.env);
  if (r.code !== 0) throw new Error(`ufs mount failed (${r.code}): ${r.stderr}`);
  if (r.stdout !== '' || r.stderr !== '') throw new Error(`ufs mount printed something: ${JSON.stringify(r)}`);
  const rec = (await records(l.runDir)).find((x) => x.mountpoint === l.mnt);
  if (!rec) throw new Error('no mount record after ufs mount');
  const m: Mount = {
    ...l,
    pid: rec.pid,
    sh: (script, opts = {}) => sh(script, { cwd: l.mnt, ...opts }),
    async ok(script, opts = {}) {
      const res = await sh(script, { cwd: l.mnt, ...opts });
      if (res.code !== 0) throw new Error(`script failed (${res.code}): ${script}\n${res.stderr}`);
      return res.stdout;
    },
    node: <T>(body: string) => nodeIn<T>(l.mnt, body),
    umount: () => ufs(['umount', l.mnt], l.env),
    serverLog: () => fs.readFile(rec.log, 'utf8').catch(() => ''),
  };
  return m;
}

// Unmounts and mounts the same layers again: a fresh kernel cache, and a check that all
// state lives in the layer dirs.
export async function remount(t: ExecutionContext, m: Mount): Promise<Mount> {
  const r = await m.umount();
  if (r.code !== 0) throw new Error(`ufs umount failed (${r.code}): ${r.stderr}`);
  return mount(t, m);
}

// Layers + mount in one call; `setup` fills the layers first.
export async function mountWith(
  t: ExecutionContext,
  opts: LayerOptions & { setup?: (l: Layers) => Promise<void> } = {},
): Promise<Mount> {
  const l = await makeLayers(t, opts);
  if (opts.setup) await opts.setup(l);
  return mount(t, l);
}

// Runs `body` (an async function body using `fs` = node:fs/promises, `fsc` = node:fs, `tryCode`)
// in a child Node process, cwd = dir; returns what the body returns (JSON). `tryCode(fn)`
// awaits fn and gives 'ok' or the error's code, for errno checks.
export async function nodeIn<T = unknown>(dir: string, body: string, uid?: number): Promise<T> {
  const script = `
import fs from 'node:fs/promises';
import fsc from 'node:fs';
const tryCode = async (fn) => { try { await fn(); return 'ok'; } catch (e) { return e.code ?? String(e); } };
const result = await (async () => { ${body} })();
process.stdout.write(JSON.stringify(result, (k, v) => typeof v === 'bigint' ? v.toString() : v));
`;
  const args = ['--input-type=module', '-e', script];
  const r =
    uid === undefined
      ? await run(process.execPath, args, { cwd: dir })
      : await run('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, ...args], { cwd: dir });
  if (r.code !== 0) throw new Error(`node in ${dir} failed (${r.code}): ${r.stderr}`);
  return (r.stdout ? JSON.parse(r.stdout) : undefined) as T;
}

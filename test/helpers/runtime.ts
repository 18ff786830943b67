// End-to-end runtime tests drive the built CLI in child processes, each test on its own temp
// store root and run dir (UFS_RUN_DIR), torn down afterwards also when the test fails:
// containers removed through the CLI, then any pid ufs recorded for them killed, any mount
// left under the root detached, and the root removed.
import { spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import * as nodePty from 'node-pty';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI = path.resolve(here, '..', '..', 'src', 'cli', 'main.js');

export type { Result } from './process.js';
import { run, type Result } from './process.js';

export interface CallOptions {
  input?: string | null;       // null: stdin inherited from nothing (/dev/null)
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface Env {
  root: string;                // store root
  dir: string;                 // temp dir holding root, run dir and scratch space
  env: NodeJS.ProcessEnv;
  ufs(args: string[], opts?: CallOptions): Promise<Result>;
  // Like ufs, failing with the output when the exit code is not 0; returns stdout.
  ok(args: string[], opts?: CallOptions): Promise<string>;
  record(ref: string): Promise<ContainerRecordLite>;
  pty(args: string[], opts?: { cols?: number; rows?: number }): PtySession;
}

export interface ContainerRecordLite {
  Id: string;
  Name: string;
  Image: string;
  State: { Status: string; Pid: number; InitPid?: number; MonitorPid: number; ExitCode: number };
  HostConfig: { AutoRemove: boolean };
}

export function call(args: string[], env: NodeJS.ProcessEnv, opts: CallOptions = {}): Promise<Result> {
  return run(process.execPath, [CLI, ...args], {
    env: { ...env, ...(opts.env ?? {}) },
    input: opts.input,
    timeoutMs: opts.timeoutMs ?? 120_000,
  });
}

function mountsUnder(dir: string): string[] {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((mp): mp is string => !!mp && mp.startsWith(`${dir}/`))
    .reverse();
}

export function mountedUnder(dir: string): string[] {
  return mountsUnder(dir);
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

async function killRecorded(root: string): Promise<void> {
  const dir = path.join(root, 'containers');
  const ids = await fs.readdir(dir).catch(() => [] as string[]);
  for (const id of ids) {
    let rec: { State?: Record<string, number | undefined> };
    try {
      rec = JSON.parse(await fs.readFile(path.join(dir, id, 'config.json'), 'utf8'));
    } catch {
      continue;
    }
    const st = rec.State ?? {};
    for (const [pidKey, startKey] of [['Pid', 'PidStartTime'], ['InitPid', undefined], ['MonitorPid', 'MonitorStartTime']] as const) {
      const pid = st[pidKey];
      if (!pid || !pidAlive(pid)) continue;
      const want = startKey ? st[startKey] : undefined;
      if (want !== undefined && String(want) !== startTime(pid)) continue; // reused pid: not ours
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

async function killMountServers(runDir: string): Promise<void> {
  const dir = path.join(runDir, 'mounts');
  for (const f of await fs.readdir(dir).catch(() => [] as string[])) {
    if (!f.endsWith('.json')) continue;
    try {
      const rec = JSON.parse(await fs.readFile(path.join(dir, f), 'utf8')) as { pid: number };
      if (rec.pid && pidAlive(rec.pid)) process.kill(rec.pid, 'SIGKILL');
    } catch {
      // gone or half-written
    }
  }
}

export async function makeEnv(t: ExecutionContext): Promise<Env> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ufs-test-rt-'));
  const root = path.join(dir, 'root');
  const runDir = path.join(dir, 'run');
  await fs.mkdir(runDir);
  const env: NodeJS.ProcessEnv = { ...process.env, UFS_RUN_DIR: runDir, UFS_ROOT: root };
  delete env.UFS_DEBUG;
  const sessions: PtySession[] = [];

  t.teardown(async () => {
    for (const s of sessions) s.kill();
    const ids = await fs.readdir(path.join(root, 'containers')).catch(() => [] as string[]);
    const real = ids.filter((id) => /^[0-9a-f]{64}$/.test(id));
    if (real.length > 0) await call(['--root', root, 'rm', '-f', ...real], env, { timeoutMs: 60_000 });
    await killRecorded(root);
    for (const mp of mountsUnder(dir)) await new Promise((r) => spawn('fusermount', ['-uz', mp], { stdio: 'ignore' }).on('close', r));
    await killMountServers(runDir);
    if (mountsUnder(dir).length > 0) return; // never recurse into a mount
    await fs.rm(dir, { recursive: true, force: true });
  });

  const ufs = (args: string[], opts: CallOptions = {}) => call(['--root', root, ...args], env, opts);
  return {
    root,
    dir,
    env,
    ufs,
    async ok(args, opts) {
      const r = await ufs(args, opts);
      if (r.code !== 0) throw new Error(`ufs ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      return r.stdout;
    },
    async record(ref) {
      const ids = await fs.readdir(path.join(root, 'containers'));
      for (const id of ids) {
        try {
          const rec = JSON.parse(await fs.readFile(path.join(root, 'containers', id, 'config.json'), 'utf8')) as ContainerRecordLite;
          if (rec.Id === ref || rec.Name === ref || rec.Id.startsWith(ref)) return rec;
        } catch {
          // not a container
        }
      }
      throw new Error(`no container ${ref}`);
    },
    pty(args, opts = {}) {
      const s = new PtySession(['--root', root, ...args], env, opts.cols ?? 80, opts.rows ?? 24);
      sessions.push(s);
      return s;
    },
  };
}

// `ufs ...` on a pseudo-terminal, as a person at a terminal would run it.
export class PtySession {
  private term: nodePty.IPty;
  output = '';
  exit: Promise<number>;

  constructor(args: string[], env: NodeJS.ProcessEnv, cols: number, rows: number) {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
    this.term = nodePty.spawn(process.execPath, [CLI, ...args], { name: 'xterm', cols, rows, env: clean, cwd: '/' });
    this.term.onData((d) => (this.output += d));
    this.exit = new Promise((resolve) => this.term.onExit(({ exitCode, signal }) => resolve(signal ? 128 + signal : exitCode)));
  }

  get pid(): number {
    return this.term.pid;
  }

  write(s: string): void {
    this.term.write(s);
  }

  resize(cols: number, rows: number): void {
    this.term.resize(cols, rows);
  }

  // Waits until the output (from `from` on) matches; returns the match.
  async waitFor(re: RegExp, ms = 30_000, from = 0): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.output.slice(from).match(re);
      if (m) return m;
      if (Date.now() > end) throw new Error(`timed out waiting for ${re} in output:\n${JSON.stringify(this.output)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  kill(): void {
    try {
      this.term.kill('SIGKILL');
    } catch {
      // gone
    }
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

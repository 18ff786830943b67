// Starts the OCI runtime (`run` or `exec`, in the foreground: it stays the container's parent,
// passes our signals on and ends with its status) and waits for it: through node-pty when a
// terminal is wanted (the runtime then makes the container's own pty and copies between it
// and ours), through plain pipes otherwise; attached to our own stdio, or writing a json log.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type * as NodePty from 'node-pty';
import type { AttachServer } from './attach.js';
import { JsonLogWriter } from './logs.js';
import { bound, sleep } from './proc.js';
import type { TerminalIoSource } from './attach.js';

// The signals a foreground `ufs run` passes on to the container (the runtime passes them to pid 1).
export const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

// Catches our signals from the start of `ufs run`, before there is anything to forward them
// to: an early one aborts the start (and is remembered), later ones go to the runtime until
// pid 1 is known, then to pid 1.
export class SignalRelay {
  private target: number | undefined;
  private handlers = new Map<NodeJS.Signals, () => void>();
  early: NodeJS.Signals | undefined;

  install(): this {
    for (const sig of FORWARDED_SIGNALS) {
      const h = () => {
        if (this.target) {
          try {
            process.kill(this.target, sig);
          } catch {
            // already gone
          }
        } else if (!this.early) this.early = sig;
      };
      this.handlers.set(sig, h);
      process.on(sig, h);
    }
    return this;
  }

  forwardTo(pid: number | undefined): void {
    this.target = pid;
  }

  dispose(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
    this.handlers.clear();
  }
}

export interface LaunchOptions {
  binary: string;                       // the OCI runtime
  args: string[];                       // its arguments: [...global, 'run', ...] or [..., 'exec', ...]
  tty: boolean;
  // inherit: our stdin (-i, attached); none: /dev/null; hold: a pipe kept open and never
  // written (-i when detached: the command waits for input as Docker's would).
  stdin: 'inherit' | 'none' | 'hold';
  log?: JsonLogWriter;                  // detached: output goes here instead of our stdout/stderr
  tee?: boolean;                        // with log, without a terminal: to io's stdout/stderr as well
  io?: TerminalIoSource;                // attached: the CLI's stdio (see attach.ts)
  pidFile?: string;                     // the runtime's --pid-file: pid 1's host pid
  relay?: SignalRelay;
  onStart?: (runtimePid: number) => void;
  onPid?: (pid: number) => void;        // pid 1's host pid, once the runtime wrote it
  attach?: AttachServer;                // detached terminal: served to `ufs attach` clients
  size?: { cols: number; rows: number }; // the terminal's first size (an attach client's)
}

export function exitStatus(code: number | null, signal: NodeJS.Signals | number | null | undefined): number {
  if (code !== null && code !== undefined && !signal) return code;
  if (typeof signal === 'number' && signal > 0) return 128 + signal;
  if (typeof signal === 'string') return 128 + (os.constants.signals[signal] ?? 0);
  return code ?? 255;
}

export function launch(opts: LaunchOptions): Promise<number> {
  return opts.tty ? launchPty(opts) : launchPipes(opts);
}

// stty on our terminal (fd 0 or 1 as its stdin); returns what puts the old settings back.
export function setTerminal(fd: 0 | 1, args: string[]): (() => void) | undefined {
  const saved = spawnSync('stty', ['-g'], { stdio: [fd, 'pipe', 'ignore'], encoding: 'utf8' });
  if (saved.status !== 0 || !saved.stdout.trim()) return undefined;
  spawnSync('stty', args, { stdio: [fd, 'ignore', 'ignore'] });
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    spawnSync('stty', [saved.stdout.trim()], { stdio: [fd, 'ignore', 'ignore'] });
  };
}

function parsePid(text: string): number | undefined {
  const m = /^(\d+)\s*$/.exec(text);
  return m ? Number(m[1]) : undefined;
}

// The runtime writes its --pid-file (atomically) once the container exists.
async function watchPidFile(file: string, isDone: () => boolean, onPid: (pid: number) => void): Promise<void> {
  while (!isDone()) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      // not yet
    }
    const pid = parsePid(text);
    if (pid !== undefined) {
      onPid(pid);
      return;
    }
    await sleep(5);
  }
}

// Attached to our own stdio (a foreground run without a terminal): nothing to pipe, so the
// runtime starts through posix_spawn (native/sys), not Node's fork-based spawn.
async function launchInherited(opts: LaunchOptions): Promise<number> {
  const { envList, sys } = await import('../sys/index.js');
  if (opts.pidFile) fs.rmSync(opts.pidFile, { force: true });
  const env = envList(process.env);
  // Its own session: a Ctrl-C on our terminal reaches the container once, through us.
  const child = sys.spawnWait(opts.binary, [opts.binary, ...opts.args], env, opts.stdin !== 'inherit', true);
  let done = false;
  opts.relay?.forwardTo(child.pid);
  opts.onStart?.(child.pid);
  // Once pid 1 is known, signals go to it directly (as Docker's sig-proxy does).
  const onPid = (pid: number) => {
    if (!done) opts.relay?.forwardTo(pid);
    opts.onPid?.(pid);
  };
  if (opts.pidFile) void watchPidFile(opts.pidFile, () => done, onPid);
  const end = await child.exited;
  done = true;
  opts.relay?.forwardTo(undefined);
  return exitStatus(end.code, end.signal);
}

async function launchPipes(opts: LaunchOptions): Promise<number> {
  if (!opts.log && opts.stdin !== 'hold') return launchInherited(opts);
  const stdin = opts.stdin === 'inherit' ? 'inherit' : opts.stdin === 'hold' ? 'pipe' : 'ignore';
  const out = opts.log ? 'pipe' : 'inherit';
  // Its own session: a Ctrl-C on our terminal reaches the container once, through us.
  if (opts.pidFile) fs.rmSync(opts.pidFile, { force: true });
  const child = spawn(opts.binary, opts.args, { stdio: [stdin, out, out], detached: true });
  let done = false;
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      done = true;
      resolve(exitStatus(code, signal));
    });
  });
  if (child.pid) {
    opts.relay?.forwardTo(child.pid);
    opts.onStart?.(child.pid);
  }
  const drained: Promise<void>[] = [];
  if (opts.log) {
    const log = opts.log;
    for (const [i, stream] of [[1, 'stdout'], [2, 'stderr']] as const) {
      const s = child.stdio[i] as Readable;
      const mirror = opts.tee && opts.io ? (i === 1 ? opts.io().stdout : opts.io().stderr) : undefined;
      s.on('data', (chunk: Buffer) => {
        log.write(stream, chunk);
        // Our reader sets the pace, as it would reading the container directly.
        if (mirror && !mirror.write(chunk)) {
          s.pause();
          mirror.once('drain', () => s.resume());
        }
      });
      drained.push(new Promise((r) => { s.once('close', r); s.once('error', () => r()); }));
    }
  }
  // Once pid 1 is known, signals go to it directly (as Docker's sig-proxy does): the runtime
  // in terminal mode does not pass SIGINT on.
  const onPid = (pid: number) => {
    if (!done) opts.relay?.forwardTo(pid);
    opts.onPid?.(pid);
  };
  if (opts.pidFile) void watchPidFile(opts.pidFile, () => done, onPid);
  const status = await exited;
  opts.relay?.forwardTo(undefined);
  await Promise.race([Promise.all(drained), bound(2000)]);
  (child.stdio[0] as { destroy?: () => void } | null)?.destroy?.();
  return status;
}

// node-pty (a native addon) loads only when a terminal is wanted.
function loadPty(): typeof NodePty {
  return createRequire(import.meta.url)('node-pty') as typeof NodePty;
}

async function launchPty(opts: LaunchOptions): Promise<number> {
  const nodePty = loadPty();
  const io = !opts.log && opts.io ? opts.io() : undefined;
  const cols = opts.size?.cols ?? (io?.stdout.isTTY ? io.stdout.columns : 80);
  const rows = opts.size?.rows ?? (io?.stdout.isTTY ? io.stdout.rows : 24);
  if (opts.pidFile) fs.rmSync(opts.pidFile, { force: true });
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'LANG', 'LC_ALL']) if (process.env[k]) env[k] = process.env[k] as string;
  // The runtime makes its terminal (this pty) raw only once its copy of the container's output
  // has started: a container quick to write could get its "\r\n" turned into "\r\r\n" by this
  // pty's line discipline first. So the pty is raw before the runtime runs (exec keeps the pid).
  const term = nodePty.spawn('/bin/sh', ['-c', 'stty raw -echo 2>/dev/null; exec "$0" "$@"', opts.binary, ...opts.args], {
    name: 'xterm', cols, rows, cwd: '/', env, encoding: null,
  });
  opts.relay?.forwardTo(term.pid);
  opts.onStart?.(term.pid);

  let done = false;
  const exited = new Promise<number>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      done = true;
      resolve(exitStatus(exitCode, signal ?? null));
    });
  });
  term.onData((data: string | Buffer) => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (opts.log) opts.log.write('stdout', buf);
    else io?.stdout.write(buf);
    opts.attach?.output(buf);
  });
  opts.attach?.connect({
    write: (d) => {
      if (done) return;
      try {
        term.write(d);
      } catch {
        // the runtime is gone: its exit is on its way
      }
    },
    resize: (c, r) => {
      if (!done) term.resize(c, r);
    },
  });

  const cleanups: (() => void)[] = [];
  if (io) {
    const out = io.stdout;
    const onResize = () => {
      if (!done && out.columns && out.rows) term.resize(out.columns, out.rows);
    };
    out.on('resize', onResize);
    cleanups.push(() => out.off('resize', onResize));
  }
  if (io) {
    // The container's own pty (the runtime's) does the line discipline: ours must pass bytes
    // through untouched, output included (Node's setRawMode keeps ONLCR: \r\r\n), as
    // Docker's client makes its terminal raw. Without -i only the output side changes, so
    // Ctrl-C still signals us and we forward it.
    const interactive = opts.stdin === 'inherit' && io.stdin.isTTY === true;
    const restore = interactive ? setTerminal(0, ['raw', '-echo']) : io.stdout.isTTY ? setTerminal(1, ['-opost']) : undefined;
    if (restore) {
      process.once('exit', restore);
      cleanups.push(() => {
        restore();
        process.off('exit', restore);
      });
    }
  }
  if (io && opts.stdin === 'inherit') {
    const stdin = io.stdin;
    const onData = (d: Buffer) => {
      if (done) return;
      try {
        term.write(d);
      } catch {
        // the runtime is gone: its exit is on its way
      }
    };
    stdin.on('data', onData);
    stdin.resume();
    cleanups.push(() => {
      stdin.off('data', onData);
      stdin.pause();
    });
  }

  // Once pid 1 is known, signals go to it directly (as Docker's sig-proxy does): the runtime
  // in terminal mode does not pass SIGINT on.
  const onPid = (pid: number) => {
    if (!done) opts.relay?.forwardTo(pid);
    opts.onPid?.(pid);
  };
  if (opts.pidFile) void watchPidFile(opts.pidFile, () => done, onPid);

  try {
    return await exited;
  } finally {
    opts.relay?.forwardTo(undefined);
    for (const c of cleanups) c();
  }
}

export interface CreatedLaunchOptions {
  binary: string;
  globalArgs: string[];                 // the runtime's global options (root, log)
  bundle: string;
  id: string;
  pidFile: string;
  stdin: 'none';
  log: JsonLogWriter;
  relay?: SignalRelay;
  onRunning?: (pid: number) => void;    // pid 1 was started (`start` returned)
}

let subreaper = false;

// A detached container without a terminal, the way conmon runs one: `runtime create` makes
// it (pid 1 waits in the runtime's init), `runtime start` lets it go, and neither stays
// resident. We are the child subreaper, so pid 1 becomes our child once `create` exits, and we
// reap it ourselves (libuv reaps only the children it spawned). pid 1 keeps the pipes it got
// from `create` as its stdio: we read them to the end for the log.
export async function launchCreated(opts: CreatedLaunchOptions): Promise<number> {
  const { sys } = await import('../sys/index.js');
  if (!subreaper) {
    sys.setChildSubreaper(true);
    subreaper = true;
  }
  fs.rmSync(opts.pidFile, { force: true });
  const create = spawn(opts.binary, [...opts.globalArgs, 'create', '--bundle', opts.bundle, '--pid-file', opts.pidFile, opts.id], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const drained: Promise<void>[] = [];
  for (const [i, stream] of [[1, 'stdout'], [2, 'stderr']] as const) {
    const s = create.stdio[i] as Readable;
    s.on('data', (chunk: Buffer) => opts.log.write(stream, chunk));
    drained.push(new Promise((r) => { s.once('close', r); s.once('error', () => r()); }));
  }
  const created = await new Promise<number>((resolve, reject) => {
    create.once('error', reject);
    create.once('exit', (code, signal) => resolve(exitStatus(code, signal)));
  });
  const finish = async () => {
    await Promise.race([Promise.all(drained), bound(2000)]);
  };
  if (created !== 0) {
    await finish();
    return created;
  }
  const pid = parsePid(fs.readFileSync(opts.pidFile, 'utf8'));
  if (pid === undefined) throw new Error(`${opts.binary} create wrote no pid to ${opts.pidFile}`);
  const exited = sys.waitpid(pid);
  opts.relay?.forwardTo(pid);
  const started = await new Promise<number>((resolve) => {
    const start = spawn(opts.binary, [...opts.globalArgs, 'start', opts.id], { stdio: ['ignore', 'ignore', 'ignore'] });
    start.once('error', () => resolve(125));
    start.once('exit', (code, signal) => resolve(exitStatus(code, signal)));
  });
  if (started !== 0) {
    // Never started: pid 1 still waits in the runtime's init; end it.
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
    await exited.catch(() => undefined);
    await finish();
    return started;
  }
  opts.onRunning?.(pid);
  const end = await exited;
  opts.relay?.forwardTo(undefined);
  await finish();
  return exitStatus(end.code, end.signal);
}

// What every verb shares about its output: a reader that went away (`ufs images | head -1`)
// ends ufs quietly as it ends Docker (status 141, 128+SIGPIPE, no message), and Ctrl-C at a
// long command removes what this process left in the store's tmp/ before it exits.
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../common/errors.js';
import { PROJECT_ROOT } from '../common/paths.js';

export const BROKEN_PIPE_STATUS = 141;

export function isBrokenPipe(err: unknown): boolean {
  return errnoCode(err) === 'EPIPE' && (process.stdout.destroyed || process.stdout.errored !== null || process.stderr.destroyed);
}

// The stdio streams this process made so far (see onBrokenPipe).
const openedStdio: NodeJS.WriteStream[] = [];

export function stdioOpened(): readonly NodeJS.WriteStream[] {
  return openedStdio;
}

// Node makes process.stdout/stderr on first use (a pipe's loads net and streams, several ms):
// the handler goes on when a stream is first made, and a command that never prints (a
// foreground `ufs run` hands its stdio to the container) never makes one.
export function onBrokenPipe(): void {
  const watch = (s: NodeJS.WriteStream) => {
    openedStdio.push(s);
    s.on('error', (err) => {
      if (errnoCode(err) === 'EPIPE') process.exit(BROKEN_PIPE_STATUS);
      throw err;
    });
    return s;
  };
  for (const name of ['stdout', 'stderr'] as const) {
    const desc = Object.getOwnPropertyDescriptor(process, name);
    const get = desc?.get;
    if (!get || !desc.configurable) {
      watch(process[name]);
      continue;
    }
    let stream: NodeJS.WriteStream | undefined;
    Object.defineProperty(process, name, { configurable: true, enumerable: desc.enumerable, get: () => (stream ??= watch(get.call(process) as NodeJS.WriteStream)) });
  }
}

// Writes `text` to fd 1 directly, without making process.stdout (for a pipe that loads
// net and streams): for a short command's whole output. A non-blocking fd (EAGAIN) gets the
// rest through the stream; a reader that went away ends ufs as onBrokenPipe does.
export function writeStdout(text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  try {
    while (off < buf.length) off += fs.writeSync(1, buf, off);
  } catch (err) {
    if (errnoCode(err) === 'EPIPE') process.exit(BROKEN_PIPE_STATUS);
    if (errnoCode(err) !== 'EAGAIN') throw err;
    process.stdout.write(buf.subarray(off));
  }
}

export function out(s: string): void {
  process.stdout.write(s);
}

// Resolves once what was written to stdout has left (pipes are asynchronous).
export function flushStdout(): Promise<void> {
  return new Promise((resolve) => process.stdout.write('', () => resolve()));
}

// For load, save, import and other long work on a store: SIGINT/SIGTERM remove this process's
// entries under <root>/tmp (the store installs only by rename from there, so nothing else is
// half-written) and anything else the command names, then exit 130/143 as a shell expects.
export function cleanUpOnInterrupt(storeRoot: string, extra: () => string[] = () => []): void {
  const handler = (signal: NodeJS.Signals) => {
    const tmp = path.join(storeRoot, 'tmp');
    let names: string[] = [];
    try {
      names = fs.readdirSync(tmp).filter((n) => n.startsWith(`${process.pid}-`));
    } catch {
      // no tmp dir: nothing of ours
    }
    for (const n of names) fs.rmSync(path.join(tmp, n), { recursive: true, force: true });
    for (const p of extra()) fs.rmSync(p, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

let version: string | undefined;
export function ufsVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

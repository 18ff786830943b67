// The store mutation lock. Node has no flock(2), so a tiny `flock -x FILE cat` child holds
// it for us: the kernel lock lives as long as that child, and the child lives exactly as long
// as its stdin pipe from us is open. If we are killed, the pipe closes, `cat` exits and the
// lock is released: a crashed writer can never leave the store locked.
// Within one process the lock is re-entrant along an async call chain (AsyncLocalStorage),
// and concurrent callers in the same process queue on a promise chain instead of spawning.
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { UfsError } from '../common/errors.js';

const held = new AsyncLocalStorage<ReadonlySet<string>>();
const queues = new Map<string, Promise<void>>();

type Holder = ChildProcessByStdio<Writable, Readable, null>;

export async function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const mine = held.getStore();
  if (mine?.has(file)) return fn();

  // In-process queue: wait for the previous holder in this process.
  const previous = queues.get(file) ?? Promise.resolve();
  let release!: () => void;
  const current = new Promise<void>((resolve) => (release = resolve));
  const tail = previous.then(() => current);
  queues.set(file, tail);
  await previous;
  try {
    const holder = await acquire(file);
    try {
      return await held.run(new Set([...(mine ?? []), file]), fn);
    } finally {
      await releaseHolder(holder);
    }
  } finally {
    release();
    if (queues.get(file) === tail) queues.delete(file);
  }
}

// True when the current async context holds the lock on `file`.
export function holdsFileLock(file: string): boolean {
  return held.getStore()?.has(file) ?? false;
}

function acquire(file: string): Promise<Holder> {
  return new Promise((resolve, reject) => {
    const child = spawn('flock', ['-x', file, 'cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let done = false;
    const waitingNote = setTimeout(() => {
      if (!done && process.stderr.isTTY) process.stderr.write('ufs: waiting for the store lock...\n');
    }, 3000);
    child.once('error', (err) => {
      done = true;
      clearTimeout(waitingNote);
      reject(new UfsError(`cannot take the store lock ${file}: ${err.message}`));
    });
    child.once('exit', (code) => {
      if (done) return;
      done = true;
      clearTimeout(waitingNote);
      reject(new UfsError(`cannot take the store lock ${file} (flock exited with ${code})`));
    });
    // `cat` echoes this byte only once flock has the lock and has started it.
    child.stdout.once('data', () => {
      if (done) return;
      done = true;
      clearTimeout(waitingNote);
      resolve(child);
    });
    child.stdin.on('error', () => {});
    child.stdin.write('\n');
  });
}

function releaseHolder(child: Holder): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.stdout.resume();
    child.stdin.end();
  });
}

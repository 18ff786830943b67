// The store mutation lock: flock(2) on the lock file, held on a file descriptor of this
// process (native/sys). The kernel drops the lock when that descriptor closes, which it does
// when we die, so a crashed writer can never leave the store locked. The descriptor is
// close-on-exec: no child (the OCI runtime, a union server) inherits the lock.
// Within one process the lock is re-entrant along an async call chain (AsyncLocalStorage),
// and concurrent callers in the same process queue on a promise chain (two descriptors of one
// process would conflict with each other, as flock locks belong to the open file).
import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs';
import { UfsError } from '../common/errors.js';
import { LOCK_EX, LOCK_NB, sys } from '../sys/index.js';

const held = new AsyncLocalStorage<ReadonlySet<string>>();
const queues = new Map<string, Promise<void>>();
// Call chains inside withFileLock now. With none, `held` is disabled: an enabled
// AsyncLocalStorage keeps Node's promise hooks on, which tax every promise of the process.
let inside = 0;

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
    const fd = await acquire(file);
    inside++;
    try {
      return await held.run(new Set([...(mine ?? []), file]), fn);
    } finally {
      fs.closeSync(fd);
      if (--inside === 0) held.disable();
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

// Called once when a wait for the lock has lasted a few seconds: the CLI says so on a
// terminal (nothing in the library prints).
let lockWaitNotice: () => void = () => {};
export function setLockWaitNotice(notice: () => void): void {
  lockWaitNotice = notice;
}

// An fd of `file` holding its exclusive lock. The uncontended case is one open and one
// flock; otherwise we wait on a pool thread, telling lockWaitNotice after a while.
async function acquire(file: string): Promise<number> {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_CREAT | fs.constants.O_NOCTTY, 0o644);
  } catch (err) {
    throw new UfsError(`cannot take the store lock ${file}: ${(err as Error).message}`);
  }
  try {
    if (sys.flock(fd, LOCK_EX | LOCK_NB)) return fd;
    const waitingNote = setTimeout(() => lockWaitNotice(), 3000);
    try {
      await sys.flockWait(fd, LOCK_EX);
    } finally {
      clearTimeout(waitingNote);
    }
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw new UfsError(`cannot take the store lock ${file}: ${(err as Error).message}`);
  }
}

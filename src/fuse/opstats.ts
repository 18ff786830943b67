// Per-operation counters for performance work: with UFS_FUSE_OPSTATS=FILE in the server's
// environment, every FUSE operation reaching JS is counted (calls, errors by errno) and the
// totals are written to FILE.<pid>.json when the server exits. Off (no wrapping) otherwise.
import { writeFileSync } from 'node:fs';
import type { LowLevelHandlers } from './lowlevel/binding.js';
import type { FuseOps } from './native.js';

type Counts = Record<string, { calls: number; errors: Record<string, number> }>;

export function withOpStats(ops: FuseOps, file: string | undefined): FuseOps {
  if (!file) return ops;
  const counts: Counts = {};
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops) as [string, (...a: unknown[]) => void][]) {
    wrapped[name] = (...args: unknown[]) => {
      const c = (counts[name] ??= { calls: 0, errors: {} });
      c.calls++;
      const last = args.length - 1;
      const cb = args[last] as (err: number, ...rest: unknown[]) => void;
      args[last] = (err: number, ...rest: unknown[]) => {
        if (err < 0) c.errors[String(-err)] = (c.errors[String(-err)] ?? 0) + 1;
        cb(err, ...rest);
      };
      fn(...args);
    };
  }
  // Extra detail: which xattr names are asked for.
  const getx = wrapped.getxattr as ((p: string, name: string, ...rest: unknown[]) => void) | undefined;
  if (getx) {
    wrapped.getxattr = (p: string, name: string, ...rest: unknown[]) => {
      const k = `getxattr:${name}`;
      (counts[k] ??= { calls: 0, errors: {} }).calls++;
      getx(p, name, ...rest);
    };
  }
  writeOnExit(file, counts);
  return wrapped as FuseOps;
}

// The same counters for the low-level binding: calls per operation (errors are not seen here,
// the replies go straight to C).
export function withLowLevelOpStats(ops: LowLevelHandlers, file: string | undefined): LowLevelHandlers {
  if (!file) return ops;
  const counts: Record<string, number> = {};
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops) as [string, (...a: unknown[]) => void][]) {
    wrapped[name] = (...args: unknown[]) => {
      counts[name] = (counts[name] ?? 0) + 1;
      if (name === 'getxattr') counts[`getxattr:${String(args[2])}`] = (counts[`getxattr:${String(args[2])}`] ?? 0) + 1;
      fn(...args);
    };
  }
  writeOnExit(file, counts);
  return wrapped as unknown as LowLevelHandlers;
}

function writeOnExit(file: string, counts: unknown): void {
  process.on('exit', () => {
    try {
      writeFileSync(`${file}.${process.pid}.json`, `${JSON.stringify(counts, null, 1)}\n`);
    } catch {
      // diagnostics only
    }
  });
}

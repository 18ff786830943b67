// Per-operation counters for performance work: with UFS_FUSE_OPSTATS=FILE in the server's
// environment, every FUSE operation reaching JS is counted and the
// totals are written to FILE.<pid>.json when the server exits. Off (no wrapping) otherwise.
import { writeFileSync } from 'node:fs';
import type { LowLevelHandlers } from './lowlevel/binding.js';

// Calls per operation (errors are not seen here: the replies go straight to C).
export function withLowLevelOpStats(ops: LowLevelHandlers, file: string | undefined): LowLevelHandlers {
  if (!file) return ops;
  const counts: Record<string, number> = {};
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(ops) as [string, (...a: unknown[]) => void][]) {
    wrapped[name] = (...args: unknown[]) => {
      counts[name] = (counts[name] ?? 0) + 1;
      if (name === 'forgets') counts['forget'] = (counts['forget'] ?? 0) + (args[0] as Float64Array).length / 2;
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

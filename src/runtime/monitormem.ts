// A detached monitor's memory once its container runs. Starting the container ran most of
// ufs (the CLI's modules, the store, the runtime spec) and mapped that much of the node
// binary; from then on the monitor only waits and serves the union. So at that point it
// collects its garbage (a full GC: the monitor runs with --expose-gc) and unmaps the binary's
// clean pages (native unmapCleanCode): they stay in the page cache, shared with every other
// node process, and what the monitor runs again is mapped back by a minor fault.
import fs from 'node:fs';
import { sys } from '../sys/index.js';

// The kB of the binary no longer mapped.
export function shedStartupMemory(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return sys.unmapCleanCode(fs.realpathSync(process.execPath));
}

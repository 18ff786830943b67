// A long-lived process's memory once its start is over (a detached container's monitor once
// the container runs, a union's serving process once it is mounted). Starting ran far more
// of ufs than serving does and mapped that much of the node binary; from then on the process
// mostly waits. So it collects its garbage (one full GC) and unmaps the binary's clean pages
// (native unmapCleanCode): they stay in the page cache, shared with every other node
// process, and what the process runs again is mapped back by a minor fault.
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { sys } from '../sys/index.js';

function fullGc(): void {
  let gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    // gc() of a fresh context, available once the flag is set (without exposing it here).
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
}

// The kB of the binary no longer mapped.
export function shedStartupMemory(): number {
  fullGc();
  return sys.unmapCleanCode(fs.realpathSync(process.execPath));
}

// After start-up, a serving process's memory grows with what it serves (a walk of a big tree
// maps the compiler and GC code back, and leaves garbage and emptied heap pages): checked
// every CHECK_MS, once the resident size has grown by GROWTH_BYTES since the last shed and
// stopped growing (the burst is over), it sheds again. One full GC per burst, at most one per
// CHECK_MS; the timer keeps no process alive.
const CHECK_MS = 5_000;
const GROWTH_BYTES = 16 << 20;

export function shedAfterBursts(problem: (message: string) => void, shed: (message: string) => void = () => {}): void {
  let base = process.memoryUsage.rss();
  let last = base;
  setInterval(() => {
    const rss = process.memoryUsage.rss();
    const settled = rss <= last;
    last = rss;
    if (!settled || rss - base < GROWTH_BYTES) return;
    try {
      shedStartupMemory();
    } catch (err) {
      problem(`releasing memory: ${err instanceof Error ? err.message : String(err)}`);
    }
    base = last = process.memoryUsage.rss();
    shed(`memory released after a burst: ${Math.round(rss / 1048576)} -> ${Math.round(base / 1048576)} MiB resident`);
  }, CHECK_MS).unref();
}

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

// The serving thread's JS heap, kept small. Every FUSE request allocates a little short-lived
// garbage, and V8 answers a steady stream of it by growing the young generation to its
// maximum (16 MiB per semi-space here), which then stays resident: about 25 MiB of the
// serving process's RSS after one walk of a Debian root. Not letting it grow (V8's
// semi-space growth factor 1: a flag V8 reads at each resize, so it works when set at run
// time) costs more frequent but smaller scavenges. V8 flags are per process: this also holds
// for the rest of a process that hosts a union on a thread of its own.
import v8 from 'node:v8';

let done = false;

export function keepYoungGenerationSmall(): void {
  if (done) return;
  done = true;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}

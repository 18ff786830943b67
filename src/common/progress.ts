// The sink that long work (load, save, import, commit) reports its progress to. The library
// only calls it; the CLI's implementation (cli/progress.ts) draws a line on a terminal.
//   const p = opts.progress ?? QUIET_PROGRESS; p.phase('Loading', total); p.add(n); ...; p.done();

export interface Progress {
  add(n: number): void; // n more units done
  set(done: number): void;
  setTotal(total: number | undefined): void;
  phase(label: string, total?: number): void; // a new stage: label and counters reset
  note(text: string): void; // extra text after the numbers (e.g. "layer 2/5")
  done(): void;
}

export const QUIET_PROGRESS: Progress = { add() {}, set() {}, setTotal() {}, phase() {}, note() {}, done() {} };

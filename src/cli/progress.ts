// A one-line progress display on stderr for long work (pull, push, build, commit, load,
// save), shown only when stderr is a terminal: pipes and logs stay quiet. At most ~8
// redraws a second; done() erases the line.
//   const p = startProgress('Loading', totalBytes); p.add(n); ...; p.done();

import { humanSize } from '../common/format.js';
import { type Progress, QUIET_PROGRESS } from '../common/progress.js';

export interface ProgressOptions {
  unit?: 'bytes' | 'count';
  stream?: NodeJS.WriteStream;
  force?: boolean; // draw even when not a TTY (tests)
  quiet?: boolean; // never draw (-q)
}

// Sizes as Docker's progress writes them (units.HumanSize: 4 significant digits): 157.3MB.
const human = (n: number): string => humanSize(n, 4);

export function startProgress(label: string, total?: number, opts: ProgressOptions = {}): Progress {
  const out = opts.stream ?? process.stderr;
  if (opts.quiet || (!opts.force && !out.isTTY)) return QUIET_PROGRESS;
  const fmt = opts.unit === 'count' ? (n: number) => String(n) : human;
  let done = 0;
  let tot = total;
  let text = '';
  let last = 0;
  let shown = false;
  let finished = false;
  const started = Date.now();
  const draw = (force = false) => {
    if (finished) return;
    const now = Date.now();
    if (!force && now - last < 120) return;
    last = now;
    const secs = (now - started) / 1000;
    const rate = opts.unit !== 'count' && secs > 0.5 ? ` ${human(done / secs)}/s` : '';
    const pct = tot ? ` (${Math.min(100, Math.floor((done / tot) * 100))}%)` : '';
    const line = `${label}: ${fmt(done)}${tot ? ` / ${fmt(tot)}` : ''}${pct}${rate}${text ? ` ${text}` : ''}`;
    const width = out.columns ? out.columns - 1 : 120;
    out.write(`\r${line.slice(0, width)}\x1b[K`);
    shown = true;
  };
  return {
    add(n) {
      done += n;
      draw();
    },
    set(n) {
      done = n;
      draw();
    },
    setTotal(t) {
      tot = t;
    },
    phase(l, t) {
      label = l;
      tot = t;
      done = 0;
      text = '';
      draw(true);
    },
    note(t) {
      text = t;
      draw();
    },
    done() {
      if (finished) return;
      finished = true;
      if (shown) out.write('\r\x1b[K');
    },
  };
}

// `ufs logs`: a container's output from its json log, as Docker's json-file driver gives it:
// --tail N (the last N lines, then follow from there), --since/--until (times as RFC 3339,
// Unix seconds, or Go durations such as 10m before now), -t (each line's time first), -f
// (follow until the container stops). The caller writes each line where it came from.
import { UfsError } from '../common/errors.js';
import type { Store } from '../store/index.js';
import { containerPaths, findRecord, readRecord } from './container.js';
import { readLogFrom, type LogStream } from './logs.js';
import { sleep } from './proc.js';
import { monitorAlive } from './reconcile.js';

export interface LogOptions {
  follow?: boolean;
  tail?: string;        // a number or 'all'
  since?: string;
  until?: string;
  timestamps?: boolean;
}

export type LogWriter = (stream: LogStream, text: string) => Promise<void>;

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

// Docker's timestamp flags: RFC 3339 (with or without zone and time), Unix seconds with an
// optional fraction, or a Go duration meaning that long before now. Milliseconds since 1970.
export function parseLogTime(value: string, flag: string, now = Date.now()): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const dur = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.test(v) ? [...v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)] : undefined;
  if (dur) return now - dur.reduce((ms, [, n, u]) => ms + Number(n) * UNIT_MS[u!]!, 0);
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(v)) {
    const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(v) ? v : `${v}${v.length === 10 ? 'T00:00:00' : ''}Z`;
    const t = Date.parse(zoned.replace(' ', 'T'));
    if (!Number.isNaN(t)) return t;
  }
  throw new UfsError(`invalid value for "${flag}": failed to parse value as time or duration: "${value}"`);
}

function parseTail(tail: string | undefined): number {
  if (tail === undefined || tail === 'all') return Infinity;
  if (!/^\d+$/.test(tail)) throw new UfsError(`invalid value for "tail": ${JSON.stringify(tail)} is not a number or "all"`);
  return Number(tail);
}

export async function showLogs(store: Store, ref: string, opts: LogOptions, write: LogWriter): Promise<void> {
  const since = opts.since === undefined ? -Infinity : parseLogTime(opts.since, 'since');
  const until = opts.until === undefined ? Infinity : parseLogTime(opts.until, 'until');
  let tail = parseTail(opts.tail);
  const rec = findRecord(store.containersDir(), ref);
  const file = containerPaths(store.containersDir(), rec.Id).log(rec.Id);
  let offset = 0;
  for (;;) {
    const now = readRecord(store.containersDir(), rec.Id);
    const live = !!now && monitorAlive(now);
    const read = readLogFrom(file, offset);
    offset = read.next;
    let entries = read.entries.filter((e) => {
      const t = e.time === undefined ? NaN : Date.parse(e.time);
      return Number.isNaN(t) || (t >= since && t <= until);
    });
    if (tail !== Infinity) {
      entries = tail === 0 ? [] : entries.slice(-tail);
      tail = Infinity; // the first read only: what comes later is followed whole
    }
    for (const e of entries) await write(e.stream, opts.timestamps ? `${e.time ?? ''} ${e.log}` : e.log);
    // One more read after the container is gone picks up its last words; --until ends it too.
    if (!opts.follow || !live || Date.now() > until) return;
    await sleep(100);
  }
}

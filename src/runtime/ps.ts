// `ufs ps`: the container table as Docker prints it (CONTAINER ID, IMAGE, COMMAND, CREATED,
// STATUS, NAMES), or ids only, or JSON.
import type { Store } from '../store/index.js';
import { listRecords, shortId, type ContainerRecord } from './container.js';
import { reconcile } from './reconcile.js';

// go-units' HumanDuration, which Docker uses for CREATED and STATUS.
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(m / 60);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

function since(iso: string, now: number): string {
  return humanDuration(Math.max(0, now - Date.parse(iso)));
}

export function statusText(rec: ContainerRecord, now = Date.now()): string {
  const st = rec.State;
  if (st.Status === 'running') return `Up ${since(st.StartedAt, now)}`;
  if (st.Status === 'exited') return `Exited (${st.ExitCode}) ${since(st.FinishedAt || rec.Created, now)} ago`;
  return 'Created';
}

function commandText(rec: ContainerRecord): string {
  const cmd = [rec.Path, ...rec.Args].join(' ');
  const short = cmd.length > 20 ? `${cmd.slice(0, 19)}…` : cmd;
  return JSON.stringify(short);
}

export interface PsOptions { all: boolean; quiet: boolean; json: boolean }

export async function listContainers(store: Store, all: boolean): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  for (const rec of listRecords(store.containersDir())) {
    const now = await reconcile(store, rec);
    if (all || now.State.Status === 'running') out.push(now);
  }
  return out.sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created) || (a.Id < b.Id ? -1 : 1));
}

export function formatPs(recs: ContainerRecord[], opts: PsOptions): string {
  if (opts.quiet) return recs.map((r) => `${shortId(r.Id)}\n`).join('');
  const now = Date.now();
  if (opts.json) {
    return `${JSON.stringify(recs.map((r) => ({
      Id: r.Id,
      Names: [r.Name],
      Image: r.ImageRef,
      ImageID: r.Image,
      Command: [r.Path, ...r.Args].join(' '),
      Created: r.Created,
      State: r.State.Status,
      Status: statusText(r, now),
      ExitCode: r.State.ExitCode,
      Pid: r.State.Pid,
    })), null, 2)}\n`;
  }
  const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES']];
  for (const r of recs) rows.push([shortId(r.Id), r.ImageRef, commandText(r), `${since(r.Created, now)} ago`, statusText(r, now), r.Name]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => [...row[i]].length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] + 3))).join('').trimEnd() + '\n').join('');
}

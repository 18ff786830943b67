// `ufs ps`: the container table as Docker prints it (CONTAINER ID, IMAGE, COMMAND, CREATED,
// STATUS, NAMES), or ids only, or JSON.
import { ellipsis, humanDuration, table } from '../common/format.js';
import type { Store } from '../store/index.js';
import { listRecords, shortId, type ContainerRecord } from './container.js';
import { isAlive } from './proc.js';

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
  return JSON.stringify(ellipsis([rec.Path, ...rec.Args].join(' '), 20));
}

export interface PsOptions { all: boolean; quiet: boolean; json: boolean }

// A record is settled when it says stopped and names no monitor, or its monitor lives: listing
// such records reads them and writes nothing. Only one left behind by a dead monitor is
// reconciled (which loads the mount and network code and may take the store lock).
function needsReconcile(rec: ContainerRecord): boolean {
  if (rec.State.MonitorPid) return !isAlive(rec.State.MonitorPid, rec.State.MonitorStartTime);
  return rec.State.Status === 'running';
}

export async function listContainers(store: Store, all: boolean): Promise<ContainerRecord[]> {
  const out: ContainerRecord[] = [];
  for (const rec of listRecords(store.containersDir())) {
    const now = needsReconcile(rec) ? await (await import('./reconcile.js')).reconcile(store, rec) : rec;
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
  return table(rows);
}

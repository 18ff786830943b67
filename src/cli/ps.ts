// `ufs ps` rows as Docker's container formatting context has them (--format fields), and its
// --filter keys, over the runtime's container records.
import { UfsError } from '../common/errors.js';
import { ago, ellipsis, humanSize } from '../common/format.js';
import type { ContainerRecord } from '../runtime/container.js';
import type { Store } from '../store/index.js';
import { dockerTime } from './images.js';

export interface PsLine {
  ID: string;
  Image: string;
  Command: string;
  CreatedAt: string;
  RunningFor: string;
  Ports: string;
  State: string;
  Status: string;
  Size: string;
  Names: string;
  Labels: string;
  Mounts: string;
  Networks: string;
}

export const PS_HEADERS: Record<keyof PsLine, string> = {
  ID: 'CONTAINER ID',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Names: 'NAMES',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  Networks: 'NETWORKS',
};

interface Filter {
  key: string;
  value: string;
}

function parseFilters(specs: string[]): Filter[] {
  return specs.map((spec) => {
    const eq = spec.indexOf('=');
    if (eq < 0) throw new UfsError(`bad format of filter (expected name=value): ${spec}`);
    const key = spec.slice(0, eq).toLowerCase();
    if (!['status', 'name', 'id', 'label', 'ancestor', 'exited'].includes(key)) throw new UfsError(`invalid filter '${key}'`);
    return { key, value: spec.slice(eq + 1) };
  });
}

function matches(rec: ContainerRecord, f: Filter): boolean {
  const labels = rec.Config.Labels ?? {};
  switch (f.key) {
    case 'status':
      return rec.State.Status === f.value;
    case 'name':
      return new RegExp(f.value).test(rec.Name);
    case 'id':
      return rec.Id.startsWith(f.value);
    case 'label': {
      const i = f.value.indexOf('=');
      return i < 0 ? Object.hasOwn(labels, f.value) : labels[f.value.slice(0, i)] === f.value.slice(i + 1);
    }
    case 'ancestor':
      return rec.ImageRef === f.value || rec.Image === f.value || rec.Image.replace(/^sha256:/, '').startsWith(f.value.replace(/^sha256:/, '')) || rec.ImageRef === `${f.value}:latest`;
    case 'exited':
      return rec.State.Status === 'exited' && String(rec.State.ExitCode) === f.value;
    default:
      return false;
  }
}

function treeBytes(dir: string, fs: typeof import('node:fs'), path: typeof import('node:path')): number {
  let total = 0;
  const walk = (d: string) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        try {
          total += fs.lstatSync(p).size;
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  walk(dir);
  return total;
}

// Filters of the same key are alternatives (any), different keys must all match, as Docker's.
export async function psLines(store: Store, recs: ContainerRecord[], filterSpecs: string[], opts: { trunc: boolean; size: boolean; all: boolean }): Promise<PsLine[]> {
  const filters = parseFilters(filterSpecs);
  const keys = [...new Set(filters.map((f) => f.key))];
  let list = recs.filter((r) => keys.every((k) => filters.filter((f) => f.key === k).some((f) => matches(r, f))));
  if (!opts.all && !filters.some((f) => f.key === 'status' || f.key === 'exited')) list = list.filter((r) => r.State.Status === 'running');
  const { statusText } = await import('../runtime/ps.js');
  const sizeOf = opts.size ? await sizer(store) : undefined;
  const portsOf = await publishedPorts(store, list);
  const now = Date.now();
  return list.map((r) => {
    const command = [r.Path, ...r.Args].join(' ');
    return {
      ID: opts.trunc ? r.Id.slice(0, 12) : r.Id,
      Image: r.ImageRef,
      Command: JSON.stringify(opts.trunc ? ellipsis(command, 20) : command),
      CreatedAt: dockerTime(r.Created),
      RunningFor: ago(r.Created, now),
      Ports: portsOf(r),
      State: r.State.Status,
      Status: statusText(r, now),
      Size: sizeOf ? sizeOf(r) : '',
      Names: r.Name.replace(/^\//, ''),
      Labels: Object.entries(r.Config.Labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(','),
      Mounts: (r.HostConfig.Mounts ?? []).map((m) => m.source).join(','),
      Networks: String(r.HostConfig.NetworkMode ?? ''),
    };
  });
}

// Docker's PORTS column: a running container's published ports as its network endpoints
// hold them (the host port actually bound, also for -p 80 and -P), "0.0.0.0:8080->80/tcp".
// The network records are read only when some listed container publishes a port.
async function publishedPorts(store: Store, recs: ContainerRecord[]): Promise<(r: ContainerRecord) => string> {
  const publishing = (r: ContainerRecord) => r.State.Status === 'running' && (r.HostConfig.PortBindings?.length ?? 0) > 0;
  if (!recs.some(publishing)) return () => '';
  const { endpointsOf } = await import('../network/records.js');
  return (r) => {
    if (!publishing(r)) return '';
    const ports = endpointsOf(store, r.Id).flatMap((e) => e.ports);
    const seen = new Set<string>();
    return ports
      .map((m) => `${m.hostIp || '0.0.0.0'}:${m.hostPort}->${m.containerPort}/${m.protocol}`)
      .filter((s) => !seen.has(s) && seen.add(s))
      .join(', ');
  };
}

// Docker's SIZE column: the writable layer, and with the image "(virtual ...)".
async function sizer(store: Store): Promise<(r: ContainerRecord) => string> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const { containerPaths } = await import('../runtime/container.js');
  const { readImageConfig } = await import('../image/records.js');
  const { imageSize } = await import('../image/present.js');
  return (r) => {
    const upper = treeBytes(containerPaths(store.containersDir(), r.Id).upper, fs.default, path.default);
    let image = 0;
    try {
      image = imageSize(store, readImageConfig(store, r.Image));
    } catch {
      // the image is gone: only the layer
    }
    return `${humanSize(upper)} (virtual ${humanSize(upper + image)})`;
  };
}

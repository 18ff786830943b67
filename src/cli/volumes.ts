// ufs volume create / ls / inspect / rm / prune: Docker's names, columns and messages over
// src/volume (imported when a verb runs).
import type { Command } from 'commander';
import { UfsError } from '../common/errors.js';
import { compileListFormat, humanSize, renderList } from '../common/format.js';
import { confirm, inspectEach } from './images.js';
import { openStore } from './store.js';
import { out } from './output.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function keyValues(items: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i === 0) throw new UfsError(`invalid ${what} "${item}"`);
    if (i < 0) out[item] = '';
    else out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

interface VolumeLine {
  Name: string;
  Driver: string;
  Scope: string;
  Mountpoint: string;
  Labels: string;
  Links: string;
  Size: string;
  CreatedAt: string;
}

const VOLUME_HEADERS: Record<keyof VolumeLine, string> = {
  Name: 'VOLUME NAME',
  Driver: 'DRIVER',
  Scope: 'SCOPE',
  Mountpoint: 'MOUNTPOINT',
  Labels: 'LABELS',
  Links: 'LINKS',
  Size: 'SIZE',
  CreatedAt: 'CREATED AT',
};

interface VolumeFilter {
  dangling?: boolean;
  names: string[];
  labels: { key: string; value?: string }[];
  drivers: string[];
}

function parseVolumeFilters(filters: string[]): VolumeFilter {
  const f: VolumeFilter = { names: [], labels: [], drivers: [] };
  for (const spec of filters) {
    const eq = spec.indexOf('=');
    if (eq < 0) throw new UfsError(`bad format of filter (expected name=value): ${spec}`);
    const key = spec.slice(0, eq).toLowerCase();
    const value = spec.slice(eq + 1);
    if (key === 'dangling') {
      if (!/^(true|false|1|0)$/i.test(value)) throw new UfsError(`invalid filter 'dangling=${value}'`);
      f.dangling = /^(true|1)$/i.test(value);
    } else if (key === 'name') f.names.push(value);
    else if (key === 'driver') f.drivers.push(value);
    else if (key === 'label') {
      const i = value.indexOf('=');
      f.labels.push(i < 0 ? { key: value } : { key: value.slice(0, i), value: value.slice(i + 1) });
    } else throw new UfsError(`invalid filter '${key}'`);
  }
  return f;
}

export function registerVolumeCommands(program: Command): void {
  const volume = program.command('volume').description('manage volumes');

  volume
    .command('create')
    .description('create a volume (a random name if none is given); an existing name is returned as it is')
    .argument('[name]')
    .option('--name <name>', 'the volume name')
    .option('-d, --driver <driver>', 'volume driver (only local)', 'local')
    .option('-l, --label <label>', 'set a label KEY=VALUE (repeatable)', collect, [] as string[])
    .option('-o, --opt <option>', 'driver option KEY=VALUE (none supported)', collect, [] as string[])
    .action(async (name: string | undefined, opts: { name?: string; driver: string; label: string[]; opt: string[] }, cmd: Command) => {
      if (name !== undefined && opts.name !== undefined && name !== opts.name) throw new UfsError(`conflicting options: either specify --name or provide positional arg, not both`);
      const store = await openStore(cmd);
      const { createVolume } = await import('../volume/index.js');
      const vol = await createVolume(store, {
        ...((name ?? opts.name) !== undefined ? { name: (name ?? opts.name)! } : {}),
        labels: keyValues(opts.label, 'label'),
        driver: opts.driver,
        options: keyValues(opts.opt, 'option'),
      });
      out(`${vol.Name}\n`);
    });

  volume
    .command('ls')
    .alias('list')
    .description('list volumes')
    .option('-q, --quiet', 'only show volume names')
    .option('-f, --filter <filter>', 'filter: dangling=true|false, name=PART, label=KEY[=VALUE], driver=NAME', collect, [] as string[])
    .option('--format <format>', "format: 'table', 'table TEMPLATE', 'json' or a Go template")
    .action(async (opts: { quiet?: boolean; filter: string[]; format?: string }, cmd: Command) => {
      const filter = parseVolumeFilters(opts.filter);
      if (opts.format !== undefined && opts.format !== 'json' && opts.format !== 'table') await compileListFormat(opts.format);
      const store = await openStore(cmd);
      const { listVolumes, volumeUsers, dirBytes } = await import('../volume/index.js');
      let vols = listVolumes(store);
      const users = new Map<string, number>();
      for (const v of vols) users.set(v.Name, (await volumeUsers(store, v.Name)).length);
      if (filter.dangling !== undefined) vols = vols.filter((v) => (users.get(v.Name) === 0) === filter.dangling);
      if (filter.names.length) vols = vols.filter((v) => filter.names.some((n) => v.Name.includes(n)));
      if (filter.drivers.length) vols = vols.filter((v) => filter.drivers.includes(v.Driver));
      if (filter.labels.length) vols = vols.filter((v) => filter.labels.every((l) => Object.hasOwn(v.Labels, l.key) && (l.value === undefined || v.Labels[l.key] === l.value)));
      if (opts.quiet) {
        out(vols.map((v) => `${v.Name}\n`).join(''));
        return;
      }
      const wantsSize = opts.format !== undefined && /\.Size\b/.test(opts.format);
      const lines: VolumeLine[] = vols.map((v) => ({
        Name: v.Name,
        Driver: v.Driver,
        Scope: v.Scope,
        Mountpoint: v.Mountpoint,
        Labels: Object.entries(v.Labels).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => `${k}=${x}`).join(','),
        Links: String(users.get(v.Name) ?? 0),
        Size: wantsSize ? humanSize(dirBytes(v.Mountpoint)) : 'N/A',
        CreatedAt: v.CreatedAt,
      }));
      out(await renderList(opts.format, lines, { table: 'table {{.Driver}}\t{{.Name}}', headers: VOLUME_HEADERS }));
    });

  volume
    .command('inspect')
    .description('show volumes as JSON (Docker shape)')
    .argument('<name...>')
    .option('-f, --format <template>', "format with a Go template, e.g. '{{.Mountpoint}}'")
    .action(async (names: string[], opts: { format?: string }, cmd: Command) => {
      const store = await openStore(cmd);
      const { getVolume } = await import('../volume/index.js');
      await inspectEach(names, opts.format, async (n) => getVolume(store, n));
    });

  volume
    .command('rm')
    .alias('remove')
    .description('remove volumes (not one a container uses)')
    .argument('<name...>')
    .option('-f, --force', 'no error for a volume that does not exist')
    .action(async (names: string[], opts: { force?: boolean }, cmd: Command) => {
      const store = await openStore(cmd);
      const { removeVolume } = await import('../volume/index.js');
      let failed = false;
      for (const n of names) {
        try {
          await removeVolume(store, n, !!opts.force);
          out(`${n}\n`);
        } catch (err) {
          if (!(err instanceof UfsError)) throw err;
          process.stderr.write(`ufs: ${err.message}\n`);
          failed = true;
        }
      }
      if (failed) process.exitCode = 1;
    });

  volume
    .command('prune')
    .description('remove unused anonymous volumes (with -a, every unused volume)')
    .option('-a, --all', 'remove all unused volumes, not just anonymous ones')
    .option('-f, --force', 'do not prompt for confirmation')
    .option('--filter <filter>', 'label=KEY[=VALUE] or label!=KEY[=VALUE]', collect, [] as string[])
    .action(async (opts: { all?: boolean; force?: boolean; filter: string[] }, cmd: Command) => {
      const labels = opts.filter.map((f) => {
        const m = /^label(!?)=([^=]+)(?:=(.*))?$/.exec(f);
        if (!m) throw new UfsError(`invalid filter '${f}': only label=KEY[=VALUE] and label!=KEY[=VALUE]`);
        return { key: m[2]!, ...(m[3] !== undefined ? { value: m[3] } : {}), negate: m[1] === '!' };
      });
      if (!(await confirm(opts.force, opts.all ? 'all local volumes not used by at least one container' : 'all anonymous local volumes not used by at least one container'))) return;
      const store = await openStore(cmd);
      const { pruneVolumes } = await import('../volume/index.js');
      const r = await pruneVolumes(store, { all: !!opts.all, labels });
      if (r.removed.length) out(`Deleted Volumes:\n${r.removed.map((n) => `${n}\n`).join('')}\n`);
      out(`Total reclaimed space: ${humanSize(r.bytes)}\n`);
    });
}

// ufs mount / umount / mounts: thin wrappers over src/fuse (Contract 4).
import type { Command } from 'commander';
import { UfsError } from '../common/errors.js';
import { listMounts, mountUnion, unmountUnion, type MountRecord } from '../fuse/index.js';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { list as listSnapshots, view } from '../snapshot/index.js';
import { existingStore, imageMountLayers } from './images.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface MountOpts {
  lower: string[];
  upper?: string;
  layer?: string;
}

export function registerMountCommands(program: Command): void {
  program
    .command('mount')
    .description(
      'mount layer directories as one union filesystem (first --lower is the top); ' +
        'without --upper the mount is read-only. Layers use OCI whiteouts (.wh.NAME, .wh..wh..opq).',
    )
    .usage('--lower DIR [--lower DIR ...] [--upper DIR] MOUNTPOINT  |  IMAGE [MOUNTPOINT] [--layer N|DIGEST]')
    .argument('[args...]')
    .option('--lower <dir>', 'a read-only layer directory; repeat, top first', collect, [] as string[])
    .option('--upper <dir>', 'the writable layer directory (must exist)')
    .option('--layer <n|digest>', 'with IMAGE: the filesystem as it stood after that layer (0 = bottom)')
    .action(async (args: string[], opts: MountOpts, cmd: Command) => {
      if (opts.lower.length > 0) {
        if (args.length !== 1) throw new UfsError('usage: ufs mount --lower DIR [--lower DIR ...] [--upper DIR] MOUNTPOINT');
        await mountUnion({ lowers: opts.lower, ...(opts.upper !== undefined ? { upper: opts.upper } : {}), mountpoint: args[0]! });
        return;
      }
      // ---- image form: `ufs mount IMAGE [MOUNTPOINT] [--layer N]` (images engineer) goes here ----
      if (args.length >= 1 && args.length <= 2 && opts.upper === undefined) {
        const { store, layers, fsname } = await imageMountLayers(cmd, args[0]!, opts.layer);
        const mountpoint = args[1] ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'ufs-image-')));
        try {
          // A read-only snapshot that lasts as long as the mount (src/snapshot).
          const real = await fs.realpath(mountpoint).catch(() => path.resolve(mountpoint));
          await view(store, `mount:${real}`, layers, { mountpoint, boundToMount: true, fsname });
        } catch (err) {
          if (args[1] === undefined) await fs.rmdir(mountpoint).catch(() => {});
          throw err;
        }
        if (args[1] === undefined) process.stdout.write(`${mountpoint}\n`);
        return;
      }
      throw new UfsError('usage: ufs mount --lower DIR [--lower DIR ...] [--upper DIR] MOUNTPOINT  |  ufs mount IMAGE [MOUNTPOINT] [--layer N]');
    });

  program
    .command('umount')
    .alias('unmount')
    .description('unmount a ufs mount and stop its server')
    .argument('<mountpoint>')
    .action(async (mountpoint: string, _opts: unknown, cmd: Command) => {
      await unmountUnion(mountpoint);
      // An image mount's snapshot ends with its mount: listing sweeps it now.
      const store = await existingStore(cmd);
      if (store) await listSnapshots(store);
    });

  program
    .command('mounts')
    .description('list the mounts ufs has made')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const mounts = await listMounts();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(mounts, null, 2)}\n`);
        return;
      }
      process.stdout.write(table(mounts));
    });
}

function table(mounts: MountRecord[]): string {
  const rows = [['MOUNTPOINT', 'PID', 'LAYERS', 'UPPER']];
  for (const m of mounts) {
    rows.push([m.mountpoint, m.stale ? `${m.pid} (dead)` : String(m.pid), String(m.lowers.length), m.upper ?? '-']);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n') + '\n';
}

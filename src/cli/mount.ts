// ufs mount / umount / mounts: thin wrappers over src/fuse (imported when a verb runs).
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { UfsError } from '../common/errors.js';
import { table } from '../common/format.js';
import { imageMountLayers } from './images.js';
import { existingStore } from './store.js';
import { out } from './output.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface MountOpts {
  lower: string[];
  upper?: string;
  layer?: string;
}

// `ufs mount IMAGE` without a mountpoint makes one of these; `ufs umount` removes it again.
const TEMP_PREFIX = 'ufs-image-';

function isOurTempDir(mountpoint: string): boolean {
  const abs = path.resolve(mountpoint);
  return path.dirname(abs) === path.resolve(os.tmpdir()) && path.basename(abs).startsWith(TEMP_PREFIX);
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
      const { mountUnion } = await import('../fuse/index.js');
      if (opts.lower.length > 0) {
        if (args.length !== 1) throw new UfsError('usage: ufs mount --lower DIR [--lower DIR ...] [--upper DIR] MOUNTPOINT');
        await mountUnion({ lowers: opts.lower, ...(opts.upper !== undefined ? { upper: opts.upper } : {}), mountpoint: args[0]! });
        return;
      }
      // the image form: `ufs mount IMAGE [MOUNTPOINT] [--layer N]`
      if (args.length >= 1 && args.length <= 2 && opts.upper === undefined) {
        const { store, layers, fsname } = await imageMountLayers(cmd, args[0]!, opts.layer);
        let made: string | undefined; // a directory this command created, removed if the mount fails
        let mountpoint: string;
        if (args[1] === undefined) {
          mountpoint = made = await fs.mkdtemp(path.join(os.tmpdir(), TEMP_PREFIX));
        } else {
          mountpoint = path.resolve(args[1]);
          // created if missing, as `mount` users expect from Docker-style tools
          const st = await fs.stat(mountpoint).catch(() => undefined);
          if (st && !st.isDirectory()) throw new UfsError(`mount: ${args[1]} is not a directory`);
          if (!st) made = (await fs.mkdir(mountpoint, { recursive: true })) ?? mountpoint;
        }
        try {
          // A read-only snapshot that lasts as long as the mount (src/snapshot).
          const real = await fs.realpath(mountpoint).catch(() => path.resolve(mountpoint));
          const { view } = await import('../snapshot/index.js');
          await view(store, `mount:${real}`, layers, { mountpoint, boundToMount: true, fsname });
        } catch (err) {
          if (made) await fs.rm(made, { recursive: true }).catch(() => {});
          throw err;
        }
        if (args[1] === undefined) out(`${mountpoint}\n`);
        return;
      }
      throw new UfsError('usage: ufs mount --lower DIR [--lower DIR ...] [--upper DIR] MOUNTPOINT  |  ufs mount IMAGE [MOUNTPOINT] [--layer N]');
    });

  program
    .command('umount')
    .alias('unmount')
    .description('unmount a ufs mount and stop its server (and remove the directory `ufs mount IMAGE` made)')
    .argument('<mountpoint>')
    .action(async (mountpoint: string, _opts: unknown, cmd: Command) => {
      const { unmountUnion } = await import('../fuse/index.js');
      await unmountUnion(mountpoint);
      // An image mount's snapshot ends with its mount: listing sweeps it now.
      const store = await existingStore(cmd);
      if (store) {
        const { list } = await import('../snapshot/index.js');
        await list(store);
      }
      // only an empty directory of our own naming in the temp dir: never a user's directory
      if (isOurTempDir(mountpoint)) await fs.rmdir(mountpoint).catch(() => {});
    });

  program
    .command('mounts')
    .description('list the mounts ufs has made')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { listMounts } = await import('../fuse/index.js');
      const mounts = await listMounts();
      if (opts.json) {
        out(`${JSON.stringify(mounts, null, 2)}\n`);
        return;
      }
      out(table([['MOUNTPOINT', 'PID', 'LAYERS', 'UPPER'], ...mounts.map((m) => [m.mountpoint, m.stale ? `${m.pid} (dead)` : String(m.pid), String(m.lowers.length), m.upper ?? '-'])]));
    });
}

#!/usr/bin/env node
// The ufs command line: one file per command family registers its commands here.
import { Command, CommanderError } from 'commander';
import { UfsError } from '../common/errors.js';
import { registerContainerCommands } from './containers.js';
import { registerImageCommands } from './images.js';
import { registerMountCommands } from './mount.js';
import { registerNetworkCommands } from './network.js';
import { registerRegistryCommands } from './registry.js';

const program = new Command('ufs')
  .description('daemonless containers on a FUSE union filesystem')
  .option('--root <dir>', 'store root (default $UFS_ROOT or /var/lib/ufs)')
  .showHelpAfterError(false)
  .enablePositionalOptions()
  .exitOverride();

registerContainerCommands(program);
registerImageCommands(program);
registerMountCommands(program);
registerNetworkCommands(program);
registerRegistryCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander already printed its message (or help/version)
    process.exit(err.exitCode);
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`ufs: ${message}\n`);
  if (process.env.UFS_DEBUG && err instanceof Error && !(err instanceof UfsError)) process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof UfsError ? err.exitCode : 1);
}

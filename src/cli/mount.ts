import type { Command } from 'commander';

// ufs mount / umount / mounts: filled in with the union filesystem (issue 2).
export function registerMountCommands(_program: Command): void {}

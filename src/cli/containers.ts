import type { Command } from 'commander';

// run, ps, start, stop, kill, rm, logs, exec, diff, commit (issue 4).
export function registerContainerCommands(_program: Command): void {}

import type { Command } from 'commander';

// load, save, import, images, tag, rmi, history, inspect, image prune, layers (issue 3).
export function registerImageCommands(_program: Command): void {}

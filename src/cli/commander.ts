// commander, loaded through require(): importing its CommonJS build as ESM makes Node scan
// all its source for named exports, which cost ~35 ms of CPU at every start. Every file in
// src/cli/ takes commander's values from here (types may still come from 'commander').
import { createRequire } from 'node:module';
import type * as CommanderModule from 'commander';

const commander = createRequire(import.meta.url)('commander') as typeof CommanderModule;

export const { Argument, Command, CommanderError, Option } = commander;


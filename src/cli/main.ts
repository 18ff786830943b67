#!/usr/bin/env node
// The ufs command line. Each command family is a module under src/cli/ that registers its
// commands; a family is imported only when one of its verbs runs, so a command loads only the
// libraries it uses (help, completion and an unknown verb load every family).
import type { Command } from 'commander';
import { Command as NewCommand, CommanderError } from './commander.js';
import { UfsError } from '../common/errors.js';
import { isBrokenPipe, onBrokenPipe, ufsVersion } from './output.js';

type Register = (program: Command) => void;

interface Family {
  verbs: string[]; // its top-level commands (aliases included)
  load: () => Promise<Register>;
}

// ---- Registration: one line per command family (its verbs, its module), in help order ----
const FAMILIES: Family[] = [
  { verbs: ['run', 'create', 'restart', 'rename', 'cp', 'ps', 'start', 'stop', 'kill', 'rm', 'logs', 'exec', 'attach', 'top', 'stats', 'wait', 'pause', 'unpause', 'diff', 'commit'], load: async () => (await import('./containers.js')).registerContainerCommands },
  { verbs: ['container'], load: async () => (await import('./containers.js')).registerContainerFamily },
  { verbs: ['images', 'image', 'load', 'save', 'import', 'tag', 'rmi', 'history', 'layers'], load: async () => (await import('./images.js')).registerImageCommands },
  { verbs: ['mount', 'umount', 'unmount', 'mounts'], load: async () => (await import('./mount.js')).registerMountCommands },
  { verbs: ['pull', 'push', 'login', 'logout'], load: async () => (await import('./registry.js')).registerRegistryCommands },
  { verbs: ['inspect', 'version', 'info', 'system', 'completion'], load: async () => (await import('./system.js')).registerSystemCommands },
  { verbs: ['network', 'port'], load: async () => (await import('./network.js')).registerNetworkCommands },
  { verbs: ['build'], load: async () => (await import('./build.js')).registerBuildCommands },
  { verbs: ['volume'], load: async () => (await import('./volumes.js')).registerVolumeCommands },
];

// Verbs that need the whole command tree.
const WHOLE_TREE = new Set(['help', 'completion']);

function newProgram(): Command {
  return new NewCommand('ufs')
    .description('daemonless containers on a FUSE union filesystem')
    .usage('[--root DIR] COMMAND [ARG...]')
    .option('--root <dir>', 'store root (default $UFS_ROOT or /var/lib/ufs)')
    .version(`ufs version ${ufsVersion()}`, '-v, --version', 'print version information and quit')
    .showHelpAfterError(false)
    .showSuggestionAfterError(false)
    // usage errors as one line like ufs's own: "ufs: unknown option '--x'"
    .configureOutput({ outputError: (str, write) => write(`ufs: ${str.replace(/^error: /, '')}`) })
    .enablePositionalOptions()
    .exitOverride();
}

// The verb: the first operand after the program's own options (which go before it, as Docker's).
function verbOf(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--root') i++;
    else if (a === '--') return args[i + 1];
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

// Only likely typos get a suggestion: an edit distance of 1, or 2 for names of 6 or more.
function suggest(word: string, names: string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) {
        const cost = a[i - 1] === b[j - 1] ? 0 : 1;
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
        if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
      }
    }
    return d[a.length]![b.length]!;
  };
  let best: { name: string; d: number } | undefined;
  for (const n of names) {
    const d = dist(word, n);
    if (d <= (word.length >= 6 ? 2 : 1) && (!best || d < best.d)) best = { name: n, d };
  }
  return best?.name;
}

async function buildProgram(args: string[]): Promise<Command> {
  const program = newProgram();
  const verb = verbOf(args);
  const wanted = verb !== undefined && !WHOLE_TREE.has(verb) ? FAMILIES.filter((f) => f.verbs.includes(verb)) : [];
  for (const f of wanted.length ? wanted : FAMILIES) (await f.load())(program);
  return program;
}

async function main(): Promise<void> {
  onBrokenPipe();
  const args = process.argv.slice(2);
  const program = await buildProgram(args);
  const verb = verbOf(args);
  if (verb === undefined && !args.some((a) => a.startsWith('-') && a !== '--root')) {
    program.outputHelp(); // bare `ufs`: the usage, and success, as Docker does
    return;
  }
  if (verb !== undefined && verb !== 'help' && !program.commands.some((c) => c.name() === verb || c.aliases().includes(verb))) {
    const names = program.commands.filter((c) => !(c as unknown as { _hidden: boolean })._hidden).flatMap((c) => [c.name(), ...c.aliases()]);
    const hint = suggest(verb, names);
    process.stderr.write(`ufs: '${verb}' is not a ufs command.\n${hint ? `Did you mean '${hint}'?\n` : ''}See 'ufs --help'\n`);
    process.exitCode = 1;
    return;
  }
  await program.parseAsync(process.argv);
}

function fail(err: unknown): never {
  if (err instanceof CommanderError) {
    // commander already printed its message (or help/version)
    process.exit(err.exitCode);
  }
  if (isBrokenPipe(err)) process.exit(141);
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`ufs: ${message}\n`);
  if (process.env.UFS_DEBUG && err instanceof Error && !(err instanceof UfsError)) process.stderr.write(`${err.stack}\n`);
  process.exit(err instanceof UfsError ? err.exitCode : 1);
}

// No top-level await: the same source is bundled as CommonJS (scripts/bundle-cli.mjs).
main().catch(fail);

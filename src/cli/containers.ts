import { Command, CommanderError } from 'commander';
import { UfsError } from '../common/errors.js';
import { storeRoot } from '../common/paths.js';
import { Store } from '../store/index.js';
import {
  commitContainer,
  diffContainer,
  execInContainer,
  formatPs,
  killContainer,
  listContainers,
  monitorMain,
  removeContainer,
  runContainer,
  showLogs,
  startContainer,
  stopContainer,
} from '../runtime/index.js';

// run, ps, start, stop, kill, rm, logs, exec, diff, commit (issue 4).

// Repeatable options (no default, so help does not print "(default: [])").
const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

async function openStore(cmd: Command): Promise<Store> {
  return Store.open(storeRoot(cmd.optsWithGlobals().root as string | undefined));
}

// Exit with `code` once what we wrote to stdout/stderr has left (pipes are asynchronous).
async function exitAfterFlush(code: number): Promise<never> {
  for (const s of [process.stdout, process.stderr]) {
    if (s.writableLength > 0) await new Promise((r) => s.once('drain', r));
  }
  process.exit(code);
}

// Options stop at the first operand (IMAGE / CONTAINER), as Docker's do: everything after it
// is the container's command. (main.ts makes the program's options positional, so global
// options such as --root go before the subcommand, as Docker's do.)
function passThrough(cmd: Command): Command {
  return cmd.passThroughOptions();
}

// Usage errors of run exit 125 like ufs's own errors (Docker's rule); help still exits 0.
function usageExit125(cmd: Command): Command {
  return cmd.exitOverride((err) => {
    if (err.exitCode === 0) throw err;
    throw new CommanderError(125, err.code, err.message);
  });
}

export function registerContainerCommands(program: Command): void {
  const run = program
    .command('run')
    .description('run a command in a new container')
    .usage('[options] IMAGE [COMMAND] [ARG...]')
    .helpOption('--help', 'display help for command')
    .option('-i, --interactive', 'keep stdin open (pipe it to the container)')
    .option('-t, --tty', 'allocate a terminal')
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--rm', 'remove the container and its writable layer when it exits')
    .option('--name <name>', 'name the container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user (name or uid) and group')
    .option('-h, --hostname <name>', 'container hostname (default: the short id)')
    .option('-v, --volume <HOSTDIR:DIR[:ro]>', 'bind mount a host directory (repeatable)', collect)
    .option('--network <mode>', 'network: none (loopback only) or host', 'none')
    .option('--entrypoint <cmd>', 'override the image ENTRYPOINT')
    .argument('<image>')
    .argument('[command...]')
    .action(async (image: string, command: string[], opts, cmd: Command) => {
      let result;
      try {
        const store = await openStore(cmd);
        result = await runContainer(store, {
          image,
          cmd: command,
          interactive: !!opts.interactive,
          tty: !!opts.tty,
          detach: !!opts.detach,
          autoRemove: !!opts.rm,
          name: opts.name,
          env: opts.env ?? [],
          envFile: opts.envFile ?? [],
          workdir: opts.workdir,
          user: opts.user,
          hostname: opts.hostname,
          volumes: opts.volume ?? [],
          network: opts.network,
          entrypoint: opts.entrypoint,
        });
      } catch (err) {
        // Anything that kept the container from running is ufs's error: 125, as Docker's.
        if (err instanceof UfsError && err.exitCode === 1 && /not a TTY/.test(err.message)) throw err;
        throw new UfsError(err instanceof Error ? err.message : String(err), 125);
      }
      if (result.detached) {
        process.stdout.write(`${result.id}\n`);
        return;
      }
      await exitAfterFlush(result.status);
    });
  passThrough(usageExit125(run));

  program
    .command('ps')
    .description('list containers')
    .option('-a, --all', 'show all containers (default: running only)')
    .option('-q, --quiet', 'only show container ids')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const store = await openStore(cmd);
      const recs = await listContainers(store, !!opts.all);
      process.stdout.write(formatPs(recs, { all: !!opts.all, quiet: !!opts.quiet, json: !!opts.json }));
    });

  program
    .command('start')
    .description('start a stopped container again, on the same writable layer')
    .option('-a, --attach', 'attach stdout/stderr and wait for the exit status')
    .option('-i, --interactive', "attach the container's stdin")
    .argument('<container>')
    .action(async (ref: string, opts, cmd: Command) => {
      const store = await openStore(cmd);
      const status = await startContainer(store, ref, { attach: !!opts.attach || !!opts.interactive, interactive: !!opts.interactive });
      if (status === undefined) {
        process.stdout.write(`${ref}\n`);
        return;
      }
      await exitAfterFlush(status);
    });

  program
    .command('stop')
    .description('stop running containers (SIGTERM, then SIGKILL after a grace period)')
    .option('-t, --time <seconds>', 'seconds to wait before killing', '10')
    .argument('<container...>')
    .action(async (refs: string[], opts, cmd: Command) => {
      const seconds = Number(opts.time);
      if (!Number.isFinite(seconds) || seconds < 0) throw new UfsError(`invalid time: ${opts.time}`);
      const store = await openStore(cmd);
      await eachRef(refs, async (ref) => stopContainer(store, ref, seconds));
    });

  program
    .command('kill')
    .description('send a signal to running containers')
    .option('-s, --signal <signal>', 'signal to send', 'KILL')
    .argument('<container...>')
    .action(async (refs: string[], opts, cmd: Command) => {
      const store = await openStore(cmd);
      await eachRef(refs, async (ref) => killContainer(store, ref, opts.signal));
    });

  program
    .command('rm')
    .description('remove containers and their writable layers')
    .option('-f, --force', 'kill and remove running containers')
    .argument('<container...>')
    .action(async (refs: string[], opts, cmd: Command) => {
      const store = await openStore(cmd);
      await eachRef(refs, async (ref) => removeContainer(store, ref, !!opts.force));
    });

  program
    .command('logs')
    .description("print a detached container's output")
    .option('-f, --follow', 'follow the output until the container stops')
    .argument('<container>')
    .action(async (ref: string, opts, cmd: Command) => {
      const store = await openStore(cmd);
      await showLogs(store, ref, !!opts.follow);
    });

  const exec = program
    .command('exec')
    .description('run a command in a running container')
    .usage('[options] CONTAINER COMMAND [ARG...]')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a terminal')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user (name or uid) and group')
    .argument('<container>')
    .argument('<command...>')
    .action(async (ref: string, command: string[], opts, cmd: Command) => {
      if (opts.tty && opts.interactive && !process.stdin.isTTY) throw new UfsError('the input device is not a TTY');
      const store = await openStore(cmd);
      const status = await execInContainer(store, ref, {
        cmd: command,
        interactive: !!opts.interactive,
        tty: !!opts.tty,
        env: opts.env ?? [],
        envFile: opts.envFile ?? [],
        workdir: opts.workdir,
        user: opts.user,
      });
      await exitAfterFlush(status);
    });
  passThrough(exec);

  program
    .command('diff')
    .description("show the changes in a container's writable layer (A added, C changed, D deleted)")
    .argument('<container>')
    .action(async (ref: string, _opts, cmd: Command) => {
      const store = await openStore(cmd);
      const changes = await diffContainer(store, ref);
      process.stdout.write(changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
    });

  program
    .command('commit')
    .description("make a new image from a container's writable layer")
    .option('-m, --message <message>', 'commit message')
    .option('-a, --author <author>', 'author (e.g. "Jane <jane@example.com>")')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL)', collect)
    .argument('<container>')
    .argument('[ref]', 'REPOSITORY[:TAG] for the new image')
    .action(async (container: string, ref: string | undefined, opts, cmd: Command) => {
      const store = await openStore(cmd);
      const id = await commitContainer(store, container, { message: opts.message, author: opts.author, changes: opts.change ?? [], ref });
      process.stdout.write(`${id}\n`);
    });

  program
    .command('container-monitor', { hidden: true })
    .description('(internal) own a detached container until it exits')
    .option('--stdin <mode>', 'none or hold', 'none')
    .option('--ready-fd <fd>', 'report readiness on this fd')
    .argument('<id>')
    .action(async (id: string, opts, cmd: Command) => {
      const root = storeRoot(cmd.optsWithGlobals().root as string | undefined);
      const fd = opts.readyFd === undefined ? undefined : Number(opts.readyFd);
      const status = await monitorMain(root, id, opts.stdin === 'hold' ? 'hold' : 'none', fd);
      await exitAfterFlush(status);
    });
}

// Docker's multi-container commands: print each reference done, report each failure, and
// fail at the end if any did.
async function eachRef(refs: string[], fn: (ref: string) => Promise<void>): Promise<void> {
  let failed = 0;
  for (const ref of refs) {
    try {
      await fn(ref);
      process.stdout.write(`${ref}\n`);
    } catch (err) {
      failed++;
      if (refs.length === 1) throw err;
      process.stderr.write(`ufs: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  if (failed) await exitAfterFlush(1);
}

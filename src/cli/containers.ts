import type { Command } from 'commander';
import { openStore } from './store.js';
import { startProgress } from './progress.js';
import { CommanderError } from './commander.js';
import { UfsError } from '../common/errors.js';
import { flushStdout, stdioOpened, writeStdout } from './output.js';
import { humanSize, table } from '../common/format.js';
import type { Store } from '../store/index.js';
import type * as RuntimeLib from '../runtime/index.js';

// The runtime library (and the store) load when a container verb runs, never when the command
// tree is built for another verb or for help (main.ts).
let runtimeLib: Promise<typeof RuntimeLib> | undefined;
const runtime = () => (runtimeLib ??= import('../runtime/index.js'));
type Fn = (...args: never[]) => unknown;
function lazy<K extends keyof typeof RuntimeLib>(name: K) {
  type F = (typeof RuntimeLib)[K] extends Fn ? (typeof RuntimeLib)[K] : never;
  return async (...args: Parameters<F>): Promise<Awaited<ReturnType<F>>> => ((await runtime())[name] as unknown as (...a: Parameters<F>) => Awaited<ReturnType<F>>)(...args);
}
const attachContainer = lazy('attachContainer');
const commitContainer = lazy('commitContainer');
// diff loads only its own module (about 20 modules instead of the runtime's 100): a short command.
const diffContainer = async (...args: Parameters<typeof RuntimeLib.diffContainer>) => (await import('../runtime/diff.js')).diffContainer(...args);
const execInContainer = lazy('execInContainer');
const killContainer = lazy('killContainer');
const pauseContainer = lazy('pauseContainer');
const removeContainer = lazy('removeContainer');
const statsContainers = lazy('statsContainers');
const topContainer = lazy('topContainer');
const unpauseContainer = lazy('unpauseContainer');
const waitContainer = lazy('waitContainer');
// run loads its own module and what a foreground run needs, not the whole runtime library.
const runContainer = async (...args: Parameters<typeof RuntimeLib.runContainer>) => (await import('../runtime/run.js')).runContainer(...args);
const startContainer = lazy('startContainer');
const stopContainer = lazy('stopContainer');


// run, ps, start, stop, kill, rm, logs, exec, diff, commit (issue 4).

// stop/restart -t: the grace period before SIGKILL, or undefined for the container's own.
function graceSeconds(time: string | undefined): number | undefined {
  const seconds = time === undefined ? undefined : Number(time);
  if (seconds !== undefined && (!Number.isFinite(seconds) || seconds < 0)) throw new UfsError(`invalid time: ${time}`);
  return seconds;
}

// The terminal a foreground run, start -a or attach works on: ours (made on first use).
const terminalIo = () => ({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });

// A problem the library tells without failing the command: one line on stderr.
const warnLine = (message: string): void => void process.stderr.write(`ufs: ${message}\n`);

// Repeatable options (no default, so help does not print "(default: [])").
const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

// Exit with `code` once what we wrote to stdout/stderr has left (pipes are asynchronous).
async function exitAfterFlush(code: number): Promise<never> {
  for (const s of stdioOpened()) {
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

// `run` pulls a missing image first, as Docker does (--pull always|missing|never).
async function pullForRun(store: Store, image: string, pull: string, platform: string | undefined): Promise<void> {
  if (pull !== 'missing' && pull !== 'always' && pull !== 'never') throw new UfsError(`invalid pull policy: ${pull} (missing, always or never)`, 125);
  const { ensureImage } = await import('../registry/ensure.js');
  try {
    await ensureImage(store, image, { pull, ...(platform ? { platform } : {}) });
  } catch (err) {
    // Docker's words first, so the line names the image whatever the registry said
    const msg = err instanceof Error ? err.message : String(err);
    throw new UfsError(pull === 'always' || /No such image/.test(msg) ? msg : `Unable to find image '${image}' locally: ${msg}`, 125);
  }
}

// The flags run and create share (run adds -d).
function addRunOptions(cmd: Command): Command {
  return cmd
    .option('-i, --interactive', 'keep stdin open (pipe it to the container)')
    .option('-t, --tty', 'allocate a terminal')
    .option('--rm', 'remove the container and its writable layer when it exits')
    .option('--name <name>', 'name the container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user (name or uid) and group')
    .option('-h, --hostname <name>', 'container hostname (default: the short id)')
    .option('-v, --volume <HOSTDIR:DIR[:ro]>', 'bind mount a host directory (repeatable)', collect)
    .option('--network <mode>', 'bridge (default), none, host, container:NAME, a network made with `ufs network create`, or ns:PATH', 'bridge')
    .option('-p, --publish <[ip:][host:]port[/proto]>', "publish a container's port on the host (repeatable)", collect)
    .option('-P, --publish-all', 'publish every EXPOSEd port on a free host port')
    .option('--network-alias <name>', 'another name of the container on its user network (repeatable)', collect)
    .option('--ip <address>', 'IPv4 address on a user network')
    .option('--mac-address <mac>', 'MAC address of the container interface')
    .option('--dns <ip>', 'DNS server (repeatable)', collect)
    .option('--dns-search <domain>', 'DNS search domain (repeatable)', collect)
    .option('--dns-option <option>', 'resolv.conf option (repeatable)', collect)
    .option('--add-host <name:ip>', 'add a line to /etc/hosts (repeatable)', collect)
    .option('--entrypoint <cmd>', 'override the image ENTRYPOINT')
    .option('--runtime <name|path>', 'OCI runtime (default: runc)')
    .option('--init', 'run an init as pid 1 that forwards signals and reaps processes')
    .option('-m, --memory <bytes>', 'memory limit (e.g. 512m)')
    .option('--memory-swap <bytes>', 'memory plus swap limit; -1 for unlimited swap')
    .option('--cpus <n>', 'number of CPUs (e.g. 1.5)')
    .option('-c, --cpu-shares <n>', 'CPU shares (relative weight)')
    .option('--pids-limit <n>', 'limit on the number of processes (-1 unlimited)')
    .option('--cap-add <cap>', 'add a Linux capability (repeatable; ALL for all)', collect)
    .option('--cap-drop <cap>', 'drop a Linux capability (repeatable; ALL for all)', collect)
    .option('--privileged', 'give the container all capabilities and devices, no seccomp or masked paths')
    .option('--security-opt <opt>', 'seccomp=unconfined|FILE, no-new-privileges (repeatable)', collect)
    .option('--read-only', "mount the container's root read-only")
    .option('--tmpfs <dir[:options]>', 'mount a tmpfs (repeatable)', collect)
    .option('--mount <spec>', 'type=bind,source=,target=[,readonly] or type=tmpfs,target= (repeatable)', collect)
    .option('--device <host[:container][:rwm]>', 'give the container a host device (repeatable)', collect)
    .option('--ulimit <name=soft[:hard]>', 'set a resource limit (repeatable)', collect)
    .option('--shm-size <bytes>', 'size of /dev/shm (default 64m)')
    .option('--stop-signal <signal>', 'signal that stops the container (default SIGTERM)')
    .option('--stop-timeout <seconds>', 'seconds to wait before killing on stop (default 10)')
    .option('--group-add <group>', 'add a supplementary group (repeatable)', collect)
    .option('-l, --label <KEY=VALUE>', 'set a label (repeatable)', collect)
    .option('--cidfile <file>', 'write the container id to this file')
    .option('--pull <policy>', 'pull the image before running: missing, always or never', 'missing')
    .option('--platform <os/arch>', 'the platform to pull when the image is pulled');
}

// run's and create's flags as the runtime's options.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function createOptions(image: string, command: string[], opts: Record<string, any>): Omit<RuntimeLib.RunOptions, 'io'> {
  return {
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
    publish: opts.publish ?? [],
    publishAll: !!opts.publishAll,
    networkAliases: opts.networkAlias ?? [],
    ip: opts.ip,
    macAddress: opts.macAddress,
    dns: opts.dns ?? [],
    dnsSearch: opts.dnsSearch ?? [],
    dnsOptions: opts.dnsOption ?? [],
    addHost: opts.addHost ?? [],
    entrypoint: opts.entrypoint,
    runtime: opts.runtime,
    init: !!opts.init,
    memory: opts.memory,
    memorySwap: opts.memorySwap,
    cpus: opts.cpus,
    cpuShares: opts.cpuShares,
    pidsLimit: opts.pidsLimit,
    capAdd: opts.capAdd,
    capDrop: opts.capDrop,
    privileged: !!opts.privileged,
    securityOpt: opts.securityOpt,
    readOnly: !!opts.readOnly,
    tmpfs: opts.tmpfs,
    mount: opts.mount,
    device: opts.device,
    ulimit: opts.ulimit,
    shmSize: opts.shmSize,
    stopSignal: opts.stopSignal,
    stopTimeout: opts.stopTimeout,
    groupAdd: opts.groupAdd,
    labels: opts.label,
    cidfile: opts.cidfile,
  };
}

export function registerContainerCommands(program: Command): void {
  addVerbs(program, false);
}

// The container verbs, at the top level (ufs ps) or in the container family (ufs container ls).
function addVerbs(parent: Command, family: boolean): void {
  const run = addRunOptions(
    parent
      .command('run')
      .description('run a command in a new container')
      .usage('[options] IMAGE [COMMAND] [ARG...]')
      .helpOption('--help', 'display help for command')
      .option('-d, --detach', 'run in the background and print the container id'),
  )
    .argument('<image>')
    .argument('[command...]')
    .action(async (image: string, command: string[], opts, cmd: Command) => {
      let result;
      try {
        const store = await openStore(cmd);
        await pullForRun(store, image, opts.pull, opts.platform);
        result = await runContainer(store, { ...createOptions(image, command, opts), warn: warnLine, io: terminalIo });
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

  const ps = parent
    .command(family ? 'ls' : 'ps')
    .description('list containers')
    .option('-a, --all', 'show all containers (default: running only)')
    .option('-q, --quiet', 'only show container ids')
    .option('-f, --filter <filter>', 'filter: status=, name=, id=, label=KEY[=VALUE], ancestor=IMAGE, exited=CODE', collect)
    .option('--format <format>', "format: 'table', 'table TEMPLATE', 'json' or a Go template")
    .option('-n, --last <n>', 'show the n last created containers (all states)')
    .option('-l, --latest', 'show the latest created container (all states)')
    .option('--no-trunc', 'do not truncate output')
    .option('-s, --size', 'show the size of each writable layer')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const { psLines, PS_HEADERS } = await import('./ps.js');
      // the listing alone, not the whole runtime library (startup budget, issue 13)
      const { listContainers, formatPs } = await import('../runtime/ps.js');
      const store = await openStore(cmd);
      const last = opts.latest ? 1 : opts.last !== undefined ? Number(opts.last) : undefined;
      if (last !== undefined && (!Number.isInteger(last) || last < 0)) throw new UfsError(`invalid argument "${opts.last}" for "-n, --last" flag`);
      let recs = await listContainers(store, !!opts.all || last !== undefined || (opts.filter ?? []).length > 0);
      if (last !== undefined) recs = recs.slice(0, last);
      if (opts.json) {
        process.stdout.write(formatPs(recs, { all: true, quiet: false, json: true }));
        return;
      }
      const lines = await psLines(store, recs, opts.filter ?? [], { trunc: opts.trunc !== false, size: !!opts.size, all: !!opts.all || last !== undefined });
      if (opts.quiet) {
        process.stdout.write(lines.map((l) => `${l.ID}\n`).join(''));
        return;
      }
      const { renderList } = await import('../common/format.js');
      const table = `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}${opts.size ? '\t{{.Size}}' : ''}`;
      process.stdout.write(await renderList(opts.format, lines, { table, headers: PS_HEADERS }));
    });
  if (family) ps.aliases(['ps', 'list']);

  parent
    .command('start')
    .description('start a stopped container again, on the same writable layer')
    .option('-a, --attach', 'attach stdout/stderr and wait for the exit status')
    .option('-i, --interactive', "attach the container's stdin")
    .argument('<container>')
    .action(async (ref: string, opts, cmd: Command) => {
      const store = await openStore(cmd);
      const status = await startContainer(store, ref, { attach: !!opts.attach || !!opts.interactive, interactive: !!opts.interactive, warn: warnLine, io: terminalIo });
      if (status === undefined) {
        process.stdout.write(`${ref}\n`);
        return;
      }
      await exitAfterFlush(status);
    });

  parent
    .command('stop')
    .description('stop running containers (SIGTERM, then SIGKILL after a grace period)')
    .option('-t, --time <seconds>', "seconds to wait before killing (default: the container's --stop-timeout, or 10)")
    .argument('<container...>')
    .action(async (refs: string[], opts, cmd: Command) => {
      const seconds = graceSeconds(opts.time);
      const store = await openStore(cmd);
      await eachRef(refs, async (ref) => stopContainer(store, ref, seconds));
    });

  parent
    .command('kill')
    .description('send a signal to running containers')
    .option('-s, --signal <signal>', 'signal to send', 'KILL')
    .argument('<container...>')
    .action(async (refs: string[], opts, cmd: Command) => {
      const store = await openStore(cmd);
      await eachRef(refs, async (ref) => killContainer(store, ref, opts.signal));
    });

  parent
    .command('rm')
    .description('remove containers and their writable layers')
    .option('-f, --force', 'kill and remove running containers')
    .option('-v, --volumes', 'remove the anonymous volumes of the containers (named volumes stay)')
    .argument('<container...>')
    .action(async (refs: string[], opts, cmd: Command) => {
      const store = await openStore(cmd);
      const { findRecord } = await import('../runtime/container.js');
      const { removeAnonymousVolumes } = await import('../runtime/create.js');
      await eachRef(refs, async (ref) => {
        const rec = opts.volumes ? findRecord(store.containersDir(), ref) : undefined;
        await removeContainer(store, ref, !!opts.force);
        if (rec) for (const v of (await removeAnonymousVolumes(store, rec)).kept) process.stderr.write(`ufs: volume ${v} is in use by another container: kept\n`);
      });
    });

  parent
    .command('logs')
    .description("print a container's output")
    .option('-f, --follow', 'follow the output until the container stops')
    .option('-n, --tail <n>', 'number of lines to show from the end, or "all"', 'all')
    .option('--since <time>', 'show lines since a time (RFC 3339, Unix seconds, or a duration such as 10m)')
    .option('--until <time>', 'show lines before a time (RFC 3339, Unix seconds, or a duration such as 10m)')
    .option('-t, --timestamps', 'show the time of each line')
    .argument('<container>')
    .action(async (ref: string, opts, cmd: Command) => {
      const store = await openStore(cmd);
      const { showLogs } = await import('../runtime/logcmd.js');
      await showLogs(store, ref, { follow: !!opts.follow, tail: opts.tail, since: opts.since, until: opts.until, timestamps: !!opts.timestamps }, (stream, text) => writeTo(stream === 'stderr' ? process.stderr : process.stdout, text));
    });

  const exec = parent
    .command('exec')
    .description('run a command in a running container')
    .usage('[options] CONTAINER COMMAND [ARG...]')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a terminal')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-u, --user <user[:group]>', 'user (name or uid) and group')
    .option('--privileged', 'give the process all capabilities')
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
        privileged: !!opts.privileged,
      });
      await exitAfterFlush(status);
    });
  passThrough(exec);

  for (const [name, what, fn] of [
    ['pause', 'freeze all processes of running containers', pauseContainer],
    ['unpause', 'thaw paused containers', unpauseContainer],
  ] as const) {
    parent
      .command(name)
      .description(what)
      .argument('<container...>')
      .action(async (refs: string[], _opts, cmd: Command) => {
        const store = await openStore(cmd);
        await eachRef(refs, async (ref) => fn(store, ref));
      });
  }

  parent
    .command('attach')
    .description("attach to a running terminal container (-t); Ctrl-P Ctrl-Q detaches")
    .option('--no-stdin', 'do not attach stdin')
    .argument('<container>')
    .action(async (ref: string, opts, cmd: Command) => {
      const store = await openStore(cmd);
      await exitAfterFlush(await attachContainer(store, ref, opts.stdin === false, terminalIo));
    });

  parent
    .command('top')
    .description("list a running container's processes")
    .argument('<container>')
    .argument('[ps-options...]', 'options for ps (default -ef)')
    .action(async (ref: string, psArgs: string[], _opts, cmd: Command) => {
      const store = await openStore(cmd);
      process.stdout.write(await topContainer(store, ref, psArgs));
    });

  parent
    .command('stats')
    .description("show running containers' resource use (from their cgroups)")
    .option('--no-stream', 'print one reading and exit (the only mode)')
    .option('--json', 'print JSON')
    .argument('[container...]')
    .action(async (refs: string[], opts, cmd: Command) => {
      const store = await openStore(cmd);
      const stats = await statsContainers(store, refs);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
        return;
      }
      const rows = [['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'BLOCK I/O', 'PIDS']];
      for (const s of stats) {
        rows.push([
          s.id.replace(/^sha256:/, '').slice(0, 12),
          s.name,
          `${s.cpuPercent.toFixed(2)}%`,
          `${humanSize(s.memUsage)} / ${humanSize(s.memLimit)}`,
          `${s.memLimit > 0 ? ((100 * s.memUsage) / s.memLimit).toFixed(2) : '0.00'}%`,
          `${humanSize(s.blkRead)} / ${humanSize(s.blkWrite)}`,
          String(s.pids),
        ]);
      }
      process.stdout.write(table(rows));
    });

  parent
    .command('wait')
    .description('block until containers stop, then print their exit codes')
    .argument('<container...>')
    .action(async (refs: string[], _opts, cmd: Command) => {
      const store = await openStore(cmd);
      for (const ref of refs) process.stdout.write(`${await waitContainer(store, ref)}\n`);
    });

  parent
    .command('diff')
    .description("show the changes in a container's writable layer (A added, C changed, D deleted)")
    .argument('<container>')
    .action(async (ref: string, _opts, cmd: Command) => {
      const store = await openStore(cmd);
      const changes = await diffContainer(store, ref);
      writeStdout(changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
    });

  parent
    .command('commit')
    .description("make a new image from a container's writable layer")
    .option('-m, --message <message>', 'commit message')
    .option('-a, --author <author>', 'author (e.g. "Jane <jane@example.com>")')
    .option('-c, --change <instruction>', 'apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL)', collect)
    .option('-p, --pause <bool>', 'pause the container while committing (--pause=false to not)', 'true')
    .argument('<container>')
    .argument('[ref]', 'REPOSITORY[:TAG] for the new image')
    .action(async (container: string, ref: string | undefined, opts, cmd: Command) => {
      const store = await openStore(cmd);
      if (!['true', 'false', '1', '0'].includes(String(opts.pause))) throw new UfsError(`invalid --pause value: ${opts.pause}`);
      const pause = opts.pause === 'true' || opts.pause === '1';
      const id = await commitContainer(store, container, { message: opts.message, author: opts.author, changes: opts.change ?? [], ref, pause, progress: startProgress('Committing') });
      process.stdout.write(`${id}\n`);
    });


  addLifecycleVerbs(parent);
}

// create, restart, rename and cp (issue 13).
function addLifecycleVerbs(parent: Command): void {
  const create = addRunOptions(
    parent
      .command('create')
      .description('create a new container without starting it (ufs start runs it)')
      .usage('[options] IMAGE [COMMAND] [ARG...]')
      .helpOption('--help', 'display help for command'),
  )
    .argument('<image>')
    .argument('[command...]')
    .action(async (image: string, command: string[], opts, cmd: Command) => {
      let id: string;
      try {
        const store = await openStore(cmd);
        await pullForRun(store, image, opts.pull, opts.platform);
        const { createContainer } = await import('../runtime/create.js');
        id = (await createContainer(store, { ...createOptions(image, command, opts) })).Id;
      } catch (err) {
        throw new UfsError(err instanceof Error ? err.message : String(err), 125);
      }
      process.stdout.write(`${id}\n`);
    });
  passThrough(usageExit125(create));

  parent
    .command('restart')
    .description('restart containers (stop, then start in the background; a stopped one is started)')
    .option('-t, --time <seconds>', "seconds to wait before killing (default: the container's --stop-timeout, or 10)")
    .argument('<container...>')
    .action(async (refs: string[], opts, cmd: Command) => {
      const seconds = graceSeconds(opts.time);
      const store = await openStore(cmd);
      const { restartContainer } = await import('../runtime/restart.js');
      await eachRef(refs, async (ref) => restartContainer(store, ref, seconds));
    });

  parent
    .command('rename')
    .description('rename a container')
    .argument('<container>')
    .argument('<new-name>')
    .action(async (ref: string, name: string, _opts, cmd: Command) => {
      const store = await openStore(cmd);
      const { renameContainer } = await import('../runtime/rename.js');
      await renameContainer(store, ref, name);
    });

  parent
    .command('cp')
    .description("copy files between a container and the host, or a tar stream on stdin/stdout ('-')")
    .usage('[options] CONTAINER:SRC_PATH DEST_PATH|-\n       ufs cp [options] SRC_PATH|- CONTAINER:DEST_PATH')
    .option('-a, --archive', 'archive mode: keep owners (uid:gid) as in the source')
    .option('-L, --follow-link', 'follow a symbolic link given as the source')
    .option('-q, --quiet', 'print nothing on a terminal (else a last "Successfully copied" line)')
    .argument('<src>')
    .argument('<dest>')
    .action(async (src: string, dest: string, opts, cmd: Command) => {
      const store = await openStore(cmd);
      const { copyFromContainer, copyToContainer, splitCpArg } = await import('../runtime/cp.js');
      const from = splitCpArg(src);
      const to = splitCpArg(dest);
      if (from.container !== undefined && to.container !== undefined) throw new UfsError('copying between containers is not supported');
      if (from.container === undefined && to.container === undefined) throw new UfsError('must specify at least one container source');
      const cpOpts = { archive: !!opts.archive, followLink: !!opts.followLink };
      let bytes: number;
      if (from.container !== undefined) {
        const toStdout = to.path === '-';
        bytes = await copyFromContainer(store, from.container, from.path, toStdout ? { stream: process.stdout } : { hostPath: to.path }, cpOpts);
        if (toStdout) return flushStdout();
      } else {
        bytes = await copyToContainer(store, to.container!, to.path, from.path === '-' ? { stream: process.stdin } : { hostPath: from.path }, cpOpts);
      }
      // Docker's last line on a terminal (-q, or no terminal, leaves it out)
      if (!opts.quiet && process.stderr.isTTY) process.stderr.write(`Successfully copied ${humanSize(bytes)} to ${dest}\n`);
    });
}

// `ufs container ...`: the container verbs as Docker's management command has them (a family
// of its own in main.ts, so that `ufs ps` does not build the whole tree twice).
export function registerContainerFamily(program: Command): void {
  const family = program.command('container').description('manage containers');
  addVerbs(family, true);
  family
    .command('inspect')
    .description('show low-level information on containers as JSON')
    .option('-f, --format <template>', "format with a Go template, e.g. '{{.State.Status}}'")
    .option('-s, --size', 'accepted for Docker compatibility')
    .argument('<container...>')
    .action(async (refs: string[], opts: { format?: string }, cmd: Command) => {
      const { inspectEach } = await import('./images.js');
      const { lookupContainer } = await import('./system.js');
      const store = await openStore(cmd);
      await inspectEach(refs, opts.format, (ref) => lookupContainer(store, ref));
    });
  family
    .command('prune')
    .description('remove all stopped containers')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (opts: { force?: boolean }, cmd: Command) => {
      const { confirm } = await import('./images.js');
      if (!(await confirm(opts.force, 'all stopped containers'))) return;
      const store = await openStore(cmd);
      const { pruneContainers } = await import('./system.js');
      const { deleted, bytes } = await pruneContainers(store);
      if (deleted.length) process.stdout.write(`Deleted Containers:\n${deleted.map((d) => `${d}\n`).join('')}\n`);
      process.stdout.write(`Total reclaimed space: ${humanSize(bytes)}\n`);
    });
}

function writeTo(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.write(text)) resolve();
    else stream.once('drain', resolve);
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

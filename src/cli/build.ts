// ufs build: Docker's flags; the progress display (a live line per running step on a
// terminal, `#N [i/n] ...` lines in a pipe or with --progress plain) and the final lines.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { openStore } from './store.js';
import { UfsError } from '../common/errors.js';
import type { BuildEvents, StepInfo } from '../build/builder.js';
import { familiarName, normalizeTagged } from '../image/reference.js';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface BuildFlags {
  tag: string[];
  file?: string;
  buildArg: string[];
  target?: string;
  cache: boolean;
  pull?: boolean;
  squash?: boolean;
  squashAll?: boolean;
  quiet?: boolean;
  progress: string;
  label: string[];
  network?: string;
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

// Plain lines, as BuildKit's plain progress prints them.
function plainEvents(err: NodeJS.WritableStream): BuildEvents {
  const started = new Map<number, number>();
  const partial = new Map<number, string>();
  return {
    step(s) {
      started.set(s.seq, Date.now());
      err.write(`#${s.seq} ${s.label} ${s.text}\n`);
    },
    cached(s) {
      err.write(`#${s.seq} CACHED\n`);
    },
    output(s, chunk) {
      const t = ((Date.now() - (started.get(s.seq) ?? Date.now())) / 1000).toFixed(3);
      const text = (partial.get(s.seq) ?? '') + chunk.toString('utf8');
      const lines = text.split('\n');
      partial.set(s.seq, lines.pop()!);
      for (const l of lines) err.write(`#${s.seq} ${t} ${l}\n`);
    },
    done(s, ms) {
      const rest = partial.get(s.seq);
      if (rest) err.write(`#${s.seq} ${rest}\n`);
      partial.delete(s.seq);
      err.write(`#${s.seq} DONE ${secs(ms)}\n`);
    },
    warn(m) {
      err.write(`[Warning] ${m}\n`);
    },
  };
}

// A terminal: finished steps stay as one line each; the running one is redrawn with its
// elapsed time and the last line of its output.
function ttyEvents(err: NodeJS.WriteStream): BuildEvents & { stop(): void } {
  let cur: { s: StepInfo; t0: number; last: string } | undefined;
  const width = () => (err.columns ? err.columns - 1 : 119);
  const draw = () => {
    if (!cur) return;
    const line = ` => ${cur.s.label} ${cur.s.text.replace(/\s+/g, ' ')}`;
    const tail = `${secs(Date.now() - cur.t0)}${cur.last ? `  ${cur.last}` : ''}`;
    err.write(`\r${`${line.slice(0, Math.max(10, width() - tail.length - 2))}  ${tail}`.slice(0, width())}\x1b[K`);
  };
  const timer = setInterval(draw, 100);
  timer.unref();
  const finish = (text: string) => {
    err.write(`\r${text.slice(0, width())}\x1b[K\n`);
    cur = undefined;
  };
  return {
    step(s) {
      cur = { s, t0: Date.now(), last: '' };
      draw();
    },
    cached(s) {
      finish(` => CACHED ${s.label} ${s.text.replace(/\s+/g, ' ')}`);
    },
    output(_s, chunk) {
      if (!cur) return;
      const lines = chunk.toString('utf8').split('\n').map((l) => l.replace(/\r/g, '').trim()).filter(Boolean);
      if (lines.length) cur.last = lines.at(-1)!;
    },
    done(s, ms) {
      finish(` => ${s.label} ${s.text.replace(/\s+/g, ' ')}  ${secs(ms)}`);
    },
    warn(m) {
      err.write(`\r\x1b[K[Warning] ${m}\n`);
    },
    stop() {
      clearInterval(timer);
      if (cur) err.write('\n');
    },
  };
}

const QUIET: BuildEvents = { step() {}, cached() {}, output() {}, done() {}, warn() {} };

function keyValue(flag: string, v: string, fromEnv: boolean): [string, string] {
  const i = v.indexOf('=');
  if (i === 0) throw new UfsError(`${flag}: invalid ${JSON.stringify(v)}: expected KEY=VALUE`);
  if (i < 0) {
    if (fromEnv && process.env[v] !== undefined) return [v, process.env[v]!];
    if (fromEnv) return ['', ''];
    throw new UfsError(`${flag}: invalid ${JSON.stringify(v)}: expected KEY=VALUE`);
  }
  return [v.slice(0, i), v.slice(i + 1)];
}

export function registerBuildCommands(program: Command): void {
  program
    .command('build')
    .description('build an image from a Dockerfile')
    .argument('<context>', 'the build context directory, or - to read the Dockerfile from stdin (no context)')
    .option('-t, --tag <name>', 'name[:tag] for the image; repeat for several', collect, [] as string[])
    .option('-f, --file <file>', 'the Dockerfile (default CONTEXT/Dockerfile; may be outside the context)')
    .option('--build-arg <k=v>', 'set a build-time variable (KEY alone takes it from the environment)', collect, [] as string[])
    .option('--target <stage>', 'build up to this stage')
    .option('--no-cache', 'do not use the build cache')
    .option('--pull', 'always pull the base images')
    .option('--squash', "squash this build's layers into one on top of the base image")
    .option('--squash-all', 'squash the whole image into one layer')
    .option('-q, --quiet', 'print only the image ID')
    .option('--progress <mode>', 'auto, plain or tty', 'auto')
    .option('--label <k=v>', 'set a label on the image', collect, [] as string[])
    .option('--network <mode>', 'network for RUN steps: bridge (default), none, host or a network name')
    .action(async (contextArg: string, flags: BuildFlags, cmd: Command) => {
      if (flags.squash && flags.squashAll) throw new UfsError('--squash and --squash-all cannot be used together');
      if (!['auto', 'plain', 'tty'].includes(flags.progress)) throw new UfsError(`--progress must be auto, plain or tty, not ${JSON.stringify(flags.progress)}`);
      for (const t of flags.tag) normalizeTagged(t);
      let dockerfile: string;
      let dockerfileName: string;
      let contextDir: string | undefined;
      if (contextArg === '-') {
        if (flags.file) throw new UfsError('with - the Dockerfile comes from stdin: -f cannot be used');
        dockerfile = fs.readFileSync(0, 'utf8');
        dockerfileName = 'Dockerfile';
      } else {
        contextDir = path.resolve(contextArg);
        if (!fs.existsSync(contextDir) || !fs.statSync(contextDir).isDirectory()) throw new UfsError(`unable to prepare context: path ${JSON.stringify(contextArg)} not found or not a directory`);
        const file = flags.file ? path.resolve(flags.file) : path.join(contextDir, 'Dockerfile');
        try {
          dockerfile = fs.readFileSync(file, 'utf8');
        } catch {
          throw new UfsError(`cannot read the Dockerfile ${flags.file ?? path.join(contextArg, 'Dockerfile')}: no such file`);
        }
        dockerfileName = path.basename(file);
      }
      const buildArgs = new Map<string, string>();
      for (const a of flags.buildArg) {
        const [k, v] = keyValue('--build-arg', a, true);
        if (k) buildArgs.set(k, v);
      }
      const labels = flags.label.map((l) => keyValue('--label', l, false));
      // the builder and the store load only when a build runs, never for --help
      const { buildImage } = await import('../build/builder.js');
      const store = await openStore(cmd);
      if (flags.network !== undefined) {
        const { parseBuildNetwork } = await import('../build/network.js');
        const net = parseBuildNetwork(flags.network);
        // A user network must exist before any step runs.
        if (net.kind === 'network' && net.name !== 'bridge') (await import('../network/index.js')).getNetwork(store, net.name);
      }

      const err = process.stderr;
      const tty = flags.progress === 'tty' || (flags.progress === 'auto' && err.isTTY);
      const display = flags.quiet ? undefined : tty ? ttyEvents(err) : undefined;
      const events = flags.quiet ? QUIET : (display ?? plainEvents(err));
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let id: string;
      try {
        id = await buildImage(store, {
          dockerfile,
          dockerfileName,
          ...(contextDir ? { contextDir } : {}),
          tags: flags.tag,
          buildArgs,
          ...(flags.target ? { target: flags.target } : {}),
          noCache: !flags.cache,
          pull: !!flags.pull,
          ...(flags.squash ? { squash: 'layers' as const } : flags.squashAll ? { squash: 'all' as const } : {}),
          labels,
          ...(flags.network ? { network: flags.network } : {}),
          signal: abort.signal,
          events,
          ...(process.env.SOURCE_DATE_EPOCH ? { sourceDateEpoch: Number(process.env.SOURCE_DATE_EPOCH) } : {}),
        });
      } catch (e) {
        if (abort.signal.aborted) throw new UfsError('build interrupted: nothing was tagged', 130);
        throw e;
      } finally {
        display?.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      if (flags.quiet) {
        process.stdout.write(`${id}\n`);
        return;
      }
      for (const t of flags.tag) process.stdout.write(`Successfully tagged ${familiarName(normalizeTagged(t))}\n`);
      process.stdout.write(`${id}\n`);
    });
}

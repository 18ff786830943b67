// pull, push, login, logout (issue 10): Docker's names, flags and output. On a terminal the
// per-layer progress lines are redrawn in place; in a pipe, one line per finished layer.
import type { Command } from 'commander';
import { openStore } from './store.js';
import { UfsError } from '../common/errors.js';
import { humanSize } from '../common/format.js';
import type { LayerEvent } from '../image/ingest.js';
import { familiarName, parseReference, repoName } from '../image/reference.js';
import { domainOfServer, registryOptionsFromEnv } from '../registry/hosts.js';
import type { PushEvent } from '../registry/push.js';

// The registry client, ingest and the store load when one of these verbs runs (main.ts).
const login: typeof import('../registry/login.js').login = async (...a) => (await import('../registry/login.js')).login(...a);
const logout: typeof import('../registry/login.js').logout = async (...a) => (await import('../registry/login.js')).logout(...a);
const pullImage: typeof import('../registry/pull.js').pullImage = async (...a) => (await import('../registry/pull.js')).pullImage(...a);
const pushImage: typeof import('../registry/push.js').pushImage = async (...a) => (await import('../registry/push.js')).pushImage(...a);

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function out(s: string): void {
  process.stdout.write(s);
}

interface RegistryFlags {
  insecureRegistry: string[];
  registryMirror?: string;
}

function registryFlags(c: Command): Command {
  return c
    .option('--insecure-registry <host>', 'allow plain HTTP to this registry (host[:port] or CIDR; also $UFS_INSECURE_REGISTRIES)', collect, [] as string[])
    .option('--registry-mirror <url>', 'a mirror for docker.io, tried first (also $UFS_REGISTRY_MIRROR)');
}

const FINAL = new Set(['Pull complete', 'Already exists', 'Pushed', 'Layer already exists']);
const final = (status: string) => FINAL.has(status) || status.startsWith('Mounted from ');

// Docker's layer board: one line per layer id, redrawn in place on a terminal.
class Board {
  private order: string[] = [];
  private lines = new Map<string, string>();
  private drawn = 0;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tty: boolean,
    private readonly quiet: boolean,
  ) {}

  update(id: string, status: string, current?: number, total?: number): void {
    if (this.quiet) return;
    if (!this.lines.has(id)) this.order.push(id);
    let text = `${id}: ${status}`;
    if ((status === 'Downloading' || status === 'Pushing') && current !== undefined && total) {
      const width = 50;
      const filled = Math.min(width, Math.floor((current / total) * width));
      const bar = `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}]`;
      text += ` ${bar} ${humanSize(current)}/${humanSize(total)}`;
    }
    this.lines.set(id, text);
    if (!this.tty) {
      if (final(status)) out(`${text}\n`);
      return;
    }
    const now = Date.now();
    if (final(status) || now - this.last > 100) this.draw();
    else this.timer ??= setTimeout(() => this.draw(), 100);
  }

  draw(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.tty || this.quiet) return;
    this.last = Date.now();
    let s = this.drawn ? `\x1b[${this.drawn}A` : '';
    const cols = process.stdout.columns ? process.stdout.columns - 1 : 200;
    for (const id of this.order) s += `\r${this.lines.get(id)!.slice(0, cols)}\x1b[K\n`;
    this.drawn = this.order.length;
    out(s);
  }

  done(): void {
    this.draw();
  }
}

function pullEvent(board: Board): (e: LayerEvent) => void {
  return (e) => board.update(e.id, e.status === 'Waiting' ? 'Waiting' : e.status, e.current, e.total);
}

function addPull(parent: Command, name: string): void {
  registryFlags(
    parent
      .command(name)
      .description('download an image from a registry')
      .argument('<name>', 'NAME[:TAG|@DIGEST]')
      .option('-a, --all-tags', 'download all tagged images in the repository')
      .option('--platform <os/arch[/variant]>', 'the platform to pull from a multi-platform image (default: this host)')
      .option('-q, --quiet', 'suppress verbose output'),
  ).action(async (name: string, opts: RegistryFlags & { allTags?: boolean; platform?: string; quiet?: boolean }, cmd: Command) => {
    const ref = parseReference(name);
    const store = await openStore(cmd);
    const quiet = !!opts.quiet;
    const tty = !!process.stdout.isTTY;
    if (!quiet && !ref.tag && !ref.digest && !opts.allTags) out('Using default tag: latest\n');
    let board = new Board(tty, quiet);
    const results = await pullImage(store, name, {
      ...registryOptionsFromEnv(opts),
      ...(opts.platform ? { platform: opts.platform } : {}),
      ...(opts.allTags ? { allTags: true } : {}),
      onStart: (w) => {
        board.done();
        board = new Board(tty, quiet);
        if (!quiet) out(`${w.tag ?? w.full.slice(w.full.indexOf('@') + 1)}: Pulling from ${w.repo.replace(/^library\//, 'library/')}\n`);
      },
      onLayer: (e) => pullEvent(board)(e),
    });
    board.done();
    if (quiet) {
      out(`${opts.allTags ? repoName(ref) : results[0]!.full}\n`);
      return;
    }
    if (opts.allTags) {
      out(`Digest: ${results.at(-1)!.digest}\n`);
      out(`Status: Downloaded newer image for ${familiarName(repoName(ref))}\n${repoName(ref)}\n`);
      return;
    }
    const r = results[0]!;
    out(`Digest: ${r.digest}\n`);
    out(`Status: ${r.upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${familiarName(r.full)}\n`);
    out(`${r.full}\n`);
  });
}

function addPush(parent: Command, name: string): void {
  registryFlags(
    parent
      .command(name)
      .description('upload an image to a registry')
      .argument('<name>', 'NAME[:TAG]')
      .option('--format <format>', 'manifest format for images made here: v2s2 (Docker, the default) or oci')
      .option('-q, --quiet', 'suppress verbose output'),
  ).action(async (name: string, opts: RegistryFlags & { format?: string; quiet?: boolean }, cmd: Command) => {
    const format = opts.format?.toLowerCase();
    if (format !== undefined && format !== 'v2s2' && format !== 'oci') throw new UfsError(`unknown --format ${JSON.stringify(opts.format)}: use v2s2 or oci`);
    const ref = parseReference(name);
    const store = await openStore(cmd);
    const quiet = !!opts.quiet;
    if (!quiet) out(`The push refers to repository [${repoName(ref)}]\n`);
    const board = new Board(!!process.stdout.isTTY, quiet);
    const res = await pushImage(store, name, {
      ...registryOptionsFromEnv(opts),
      ...(format ? { format: format as 'v2s2' | 'oci' } : {}),
      onLayer: (e: PushEvent) => board.update(e.id, e.status === 'Mounted from' ? `Mounted from ${e.from}` : e.status, e.current, e.total),
    });
    board.done();
    if (quiet) out(`${res.repository}:${res.tag}\n`);
    else out(`${res.tag}: digest: ${res.digest} size: ${res.size}\n`);
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function prompt(question: string, hidden: boolean): Promise<string> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  if (hidden) {
    const rlAny = rl as unknown as { _writeToOutput: (s: string) => void };
    let asked = false;
    rlAny._writeToOutput = (s: string) => {
      if (!asked) {
        process.stderr.write(s);
        asked = true;
      }
    };
  }
  try {
    return await rl.question(question);
  } finally {
    if (hidden) process.stderr.write('\n');
    rl.close();
  }
}

function addLogin(parent: Command): void {
  registryFlags(
    parent
      .command('login')
      .description("log in to a registry (credentials in Docker's config.json or its credential helper)")
      .argument('[server]', 'the registry (default docker.io)')
      .option('-u, --username <name>', 'username')
      .option('-p, --password <password>', 'password')
      .option('--password-stdin', 'take the password from stdin'),
  ).action(async (server: string | undefined, opts: RegistryFlags & { username?: string; password?: string; passwordStdin?: boolean }) => {
    const domain = domainOfServer(server);
    let password = opts.password;
    if (opts.passwordStdin) {
      if (password !== undefined) throw new UfsError('--password and --password-stdin are mutually exclusive');
      if (!opts.username) throw new UfsError('must provide --username with --password-stdin');
      password = (await readStdin()).trim();
    } else if (password !== undefined) {
      process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    let username = opts.username;
    if (!username || password === undefined) {
      if (!process.stdin.isTTY) throw new UfsError('cannot perform an interactive login from a non TTY device');
      username ??= (await prompt('Username: ', false)).trim();
      password ??= await prompt('Password: ', true);
    }
    const { helper } = await login(domain, { username, password: password ?? '' }, registryOptionsFromEnv(opts));
    if (helper) out(`Credentials stored by docker-credential-${helper}\n`);
    out('Login Succeeded\n');
  });
}

function addLogout(parent: Command): void {
  parent
    .command('logout')
    .description('log out from a registry')
    .argument('[server]', 'the registry (default docker.io)')
    .action(async (server: string | undefined) => {
      const domain = domainOfServer(server);
      const shown = domain === 'docker.io' ? 'https://index.docker.io/v1/' : domain;
      if (await logout(domain)) out(`Removing login credentials for ${shown}\n`);
      else out(`Not logged in to ${shown}\n`);
    });
}

export function registerRegistryCommands(program: Command): void {
  addPull(program, 'pull');
  addPush(program, 'push');
  addLogin(program);
  addLogout(program);
  const image = program.commands.find((c) => c.name() === 'image');
  if (image) {
    addPull(image, 'pull');
    addPush(image, 'push');
  }
}

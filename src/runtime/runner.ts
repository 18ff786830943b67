// The process runner: one command on an already mounted root, run by the OCI runtime with
// the same spec defaults as `ufs run` (capabilities, seccomp, device cgroup, masked paths),
// without a container record. The builder's RUN steps use it.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { UfsError } from '../common/errors.js';
import { runDir } from '../fuse/spec.js';
import { buildSpec, type BindSpec, type NetworkSpec } from './ocispec.js';
import { deleteState, globalArgs, runtimeBinary, runtimeCommand, runtimeError, startFailureStatus, writeJson } from './ociruntime.js';
import { bound } from './proc.js';
import { mkdirInRoot, resolveInRoot } from './rootfs.js';
import { resolveUser } from './user.js';
import { exitStatus } from './launch.js';

export interface RunProcessOptions {
  rootfs: string;                 // an already mounted root (snapshot.prepare's mountpoint)
  args: string[];                 // argv; the caller wraps shell form (["/bin/sh","-c",cmd])
  env: string[];                  // KEY=VALUE, complete (the caller merges image Env)
  cwd?: string;                   // default "/"; created if missing, as Docker does
  user?: string;                  // "name|uid[:group|gid]", resolved in rootfs's /etc/passwd,/etc/group
  hostname?: string;
  network?: { mode: 'none' | 'host' } | { mode: 'netns'; path: string };
  stdin?: 'null' | NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;  // the process's output (pipes, no tty)
  stderr: NodeJS.WritableStream;
  extraHosts?: string[];          // "name:ip" lines for /etc/hosts
  runtime?: string;               // OCI runtime name or path; default runc
  signal?: AbortSignal;           // abort: kill the process, clean up, reject
}

const DEFAULT_HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';

// A file of the root we may bind over: only one that is already there, so that running a
// step never adds /etc/hosts or /etc/resolv.conf to the layer it makes.
function existingFile(rootfs: string, p: string): boolean {
  try {
    return fs.statSync(resolveInRoot(rootfs, p)).isFile();
  } catch {
    return false;
  }
}

function hostsFile(base: string, hostname: string, extra: string[]): string {
  let text = base.endsWith('\n') ? base : `${base}\n`;
  for (const h of extra) {
    const i = h.indexOf(':');
    const [name, ip] = i > 0 ? [h.slice(0, i), h.slice(i + 1)] : [h, ''];
    if (!name || !ip) throw new UfsError(`invalid extra host "${h}" (want name:ip)`, 125);
    text += `${ip}\t${name}\n`;
  }
  return `${text}127.0.0.1\t${hostname}\n`;
}

export async function runProcess(opts: RunProcessOptions): Promise<{ exitCode: number }> {
  if (opts.signal?.aborted) throw new UfsError('aborted', 125);
  if (opts.args.length === 0) throw new UfsError('no command given', 125);
  const binary = runtimeBinary(opts.runtime);
  const id = `ufs-run-${crypto.randomBytes(8).toString('hex')}`;
  const bundle = path.join(runDir(), 'bundles', id);
  fs.mkdirSync(bundle, { recursive: true, mode: 0o700 });
  const logFile = path.join(bundle, 'runtime.log');
  let started = false;
  try {
    const user = resolveUser(opts.rootfs, opts.user);
    const cwd = opts.cwd || '/';
    if (!path.posix.isAbsolute(cwd)) throw new UfsError(`the working directory '${cwd}' is invalid, it needs to be an absolute path`, 125);
    mkdirInRoot(opts.rootfs, cwd);
    const network: NetworkSpec = opts.network ?? { mode: 'none' };
    const hostname = opts.hostname ?? id.slice(-12);
    const binds: BindSpec[] = [];
    if (existingFile(opts.rootfs, '/etc/hosts')) {
      const hosts = path.join(bundle, 'hosts');
      const base = network.mode === 'host' ? (readOr('/etc/hosts') ?? DEFAULT_HOSTS) : DEFAULT_HOSTS;
      fs.writeFileSync(hosts, hostsFile(base, hostname, opts.extraHosts ?? []));
      binds.push({ source: hosts, target: '/etc/hosts', readonly: false });
    }
    if (network.mode !== 'none' && existingFile(opts.rootfs, '/etc/resolv.conf')) {
      const resolv = readOr('/etc/resolv.conf');
      if (resolv !== undefined) {
        fs.writeFileSync(path.join(bundle, 'resolv.conf'), resolv);
        binds.push({ source: path.join(bundle, 'resolv.conf'), target: '/etc/resolv.conf', readonly: false });
      }
    }
    const spec = buildSpec({
      rootfs: opts.rootfs,
      args: opts.args,
      env: opts.env,
      cwd,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.groups },
      terminal: false,
      hostname,
      network,
      binds,
      cgroupsPath: `/ufs/${id}`,
    });
    writeJson(path.join(bundle, 'config.json'), spec);

    const useStdin = opts.stdin !== undefined && opts.stdin !== 'null';
    const child = spawn(binary, [...globalArgs(binary, logFile), 'run', '--bundle', bundle, id], {
      stdio: [useStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    started = true;
    const exited = new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new UfsError(`cannot run ${binary}: ${err.message}`, 125)));
      child.once('exit', (code, sig) => resolve(exitStatus(code, sig)));
    });
    const drained = [pipeTo(child.stdout as Readable, opts.stdout), pipeTo(child.stderr as Readable, opts.stderr)];
    if (useStdin) {
      const input = opts.stdin as NodeJS.ReadableStream;
      const sink = child.stdin as Writable;
      sink.on('error', () => {});
      input.pipe(sink);
    }
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      void runtimeCommand(binary, ['kill', id, 'KILL']);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let status: number;
    try {
      status = await exited;
      await Promise.race([Promise.all(drained), bound(2000)]);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    if (aborted) throw new UfsError('aborted', 125);
    const err = runtimeError(logFile);
    if (err && status !== 0) {
      const mapped = startFailureStatus(err);
      if (mapped === 125) throw new UfsError(`${path.basename(binary)}: ${err}`, 125);
      return { exitCode: mapped };
    }
    return { exitCode: status };
  } finally {
    // runc deletes the container when `run` ends; a killed runtime may leave its state.
    if (started) await deleteState(binary, id).catch(() => undefined);
    await fs.promises.rm(bundle, { recursive: true, force: true }).catch(() => undefined);
  }
}

function readOr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

// Copies a child's output to a caller's stream without ending it (the caller owns it).
function pipeTo(src: Readable, dst: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    src.on('data', (chunk: Buffer) => {
      if (!dst.write(chunk)) {
        src.pause();
        dst.once('drain', () => src.resume());
      }
    });
    src.once('end', () => resolve());
    src.once('error', () => resolve());
  });
}

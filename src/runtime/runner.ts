// TEMPORARY (build branch): runProcess with the signature of INTERFACES.md section 1, on the
// existing runtime (ufs-init run SPEC), so that the builder's RUN works and is tested until
// the runtime's own runner (on runc) replaces this file at merge. No container record; the
// process's output goes to the caller's streams through pipes.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { initBinary, writeSpec } from './spec.js';
import { mkdirInRoot } from './rootfs.js';
import { resolveUser } from './user.js';
import { exitStatus } from './launch.js';

export interface RunProcessOptions {
  rootfs: string;
  args: string[];
  env: string[];
  cwd?: string;
  user?: string;
  hostname?: string;
  network?: { mode: 'none' | 'host' } | { mode: 'netns'; path: string };
  stdin?: 'null' | NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  extraHosts?: string[];
  runtime?: string;
  signal?: AbortSignal;
}

export async function runProcess(opts: RunProcessOptions): Promise<{ exitCode: number }> {
  if (opts.signal?.aborted) throw new Error('aborted');
  const user = resolveUser(opts.rootfs, opts.user);
  const cwd = opts.cwd || '/';
  mkdirInRoot(opts.rootfs, cwd);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ufs-runner-'));
  const specFile = path.join(dir, 'spec.json');
  try {
    writeSpec(specFile, {
      rootfs: opts.rootfs,
      args: opts.args,
      env: opts.env,
      cwd,
      uid: user.uid,
      gid: user.gid,
      groups: user.groups,
      hostname: opts.hostname ?? crypto.randomBytes(6).toString('hex'),
      network: opts.network?.mode === 'host' ? 'host' : 'none',
      tty: false,
      mounts: [],
    });
    const stdinIsStream = opts.stdin !== undefined && opts.stdin !== 'null';
    const child = spawn(initBinary(), ['run', specFile], { stdio: [stdinIsStream ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true });
    if (stdinIsStream) (opts.stdin as NodeJS.ReadableStream).pipe(child.stdin!);
    const drained = [1, 2].map((i) => {
      const s = child.stdio[i] as Readable;
      s.on('data', (chunk: Buffer) => (i === 1 ? opts.stdout : opts.stderr).write(chunk));
      return new Promise<void>((r) => {
        s.once('close', () => r());
        s.once('error', () => r());
      });
    });
    const onAbort = () => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('exit', (code, sig) => resolve(exitStatus(code, sig)));
      });
      await Promise.race([Promise.all(drained), new Promise((r) => setTimeout(r, 2000))]);
      if (opts.signal?.aborted) throw new Error('aborted');
      return { exitCode: status };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

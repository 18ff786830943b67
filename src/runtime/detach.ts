// Starting a container in the background: a detached monitor process (monitormain.js, the
// monitor and its union server in one Node process) owns it from then on. We wait until it reports the container running (or why it could not
// start) over a pipe on its fd 3, then leave it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { UfsError } from '../common/errors.js';
import { SERVING_NODE_ARGS } from '../common/serving.js';
import { containerPaths } from './container.js';

export const READY_FD = 3;

const MONITOR_ENTRY = fileURLToPath(new URL('./monitormain.js', import.meta.url));

// A monitor is mostly idle, lives as long as its container and serves its union: the flags
// of a serving process (a small heap, no TurboFan) and one GC thread.
// UFS_MONITOR_NODE_ARGS adds flags (profiling).
export const MONITOR_NODE_ARGS = [...SERVING_NODE_ARGS, '--single-threaded-gc'];

function monitorNodeArgs(): string[] {
  return [...MONITOR_NODE_ARGS, ...(process.env.UFS_MONITOR_NODE_ARGS ?? '').split(' ').filter(Boolean)];
}

export function spawnMonitor(root: string, containersDir: string, id: string, stdin: 'none' | 'hold', waitAttach = false): Promise<void> {
  const paths = containerPaths(containersDir, id);
  const logFd = fs.openSync(paths.monitorLog, 'a', 0o600);
  let child;
  try {
    child = spawn(process.execPath, [...monitorNodeArgs(), MONITOR_ENTRY, '--root', root, '--stdin', stdin, '--ready-fd', String(READY_FD), ...(waitAttach ? ['--wait-attach'] : []), id], {
      detached: true,
      cwd: '/', // holding no directory of any mount
      stdio: ['ignore', logFd, logFd, 'pipe'],
      // libuv's pool serves the union's copy-ups and fsyncs: a few threads are enough.
      env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '4' },
    });
  } finally {
    fs.closeSync(logFd);
  }
  const pipe = child.stdio[READY_FD] as Readable;
  return new Promise<void>((resolve, reject) => {
    let text = '';
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      pipe.destroy();
      child.unref();
      if (err) reject(err);
      else resolve();
    };
    pipe.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      const line = text.slice(0, nl);
      if (line === 'ok') settle();
      else {
        const m = /^error (\d+) (.*)$/.exec(line);
        settle(new UfsError(m ? m[2] : line, m ? Number(m[1]) : 125));
      }
    });
    pipe.on('error', () => {});
    pipe.on('close', () => settle(new UfsError(`the container monitor exited before the container started (see ${paths.monitorLog})`, 125)));
    child.on('error', (err) => settle(new UfsError(`cannot start the container monitor: ${err.message}`, 125)));
  });
}

// The monitor's side: one line on the ready fd, then close it so the parent can go.
export function reportReady(fd: number | undefined, err?: Error): void {
  if (fd === undefined) return;
  const code = err instanceof UfsError ? err.exitCode : 125;
  const line = err ? `error ${code} ${err.message.replace(/\n/g, ' ')}\n` : 'ok\n';
  try {
    fs.writeSync(fd, line);
    fs.closeSync(fd);
  } catch {
    // the parent is gone: nothing to tell
  }
}

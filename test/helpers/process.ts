// Running a program from a test: to completion, output collected, never throws, killed after
// a timeout. Shared by the mount, image and runtime helpers.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

export interface Result {
  code: number; // 128+n when killed by signal n; 127 when it could not start
  stdout: string;
  stderr: string;
}

export interface RunOpts {
  input?: Buffer | string | null; // null: stdin is /dev/null; default: an empty pipe
  inputFile?: string; // piped to stdin
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number; // default 180 s
}

export function run(cmd: string, args: string[], opts: RunOpts = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.input === null ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: stderr + err.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal ? os.constants.signals[signal] : 0), stdout, stderr });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {}); // a program may exit without reading its input
      if (opts.inputFile) fs.createReadStream(opts.inputFile).pipe(child.stdin);
      else child.stdin.end(opts.input ?? '');
    }
  });
}

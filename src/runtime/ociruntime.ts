// The OCI runtime binary (runc by default, `--runtime NAME|PATH` for another): where it is,
// its state directory, bundles, its one-shot commands, and what its failures mean.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import { runDir } from '../fuse/spec.js';
import type { OciProcess, OciSpec } from './ocispec.js';

export const DEFAULT_RUNTIME = 'runc';

// A name is looked up in PATH (as Docker's --runtime names a configured runtime); a path is
// taken as is.
export function runtimeBinary(name?: string): string {
  const want = name || process.env.UFS_RUNTIME || DEFAULT_RUNTIME;
  if (want.includes('/')) {
    const abs = path.resolve(want);
    try {
      fs.accessSync(abs, fs.constants.X_OK);
      return abs;
    } catch {
      throw new UfsError(`OCI runtime ${want} not found or not executable`, 125);
    }
  }
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir || '.', want);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  throw new UfsError(`unknown or invalid runtime name: ${want} (not found in PATH)`, 125);
}

// The runtime's state lives beside ufs's mount records (tmpfs under /run), one directory
// per runtime binary so runc and crun never read each other's state.
export function runtimeRoot(binary: string): string {
  return path.join(runDir(), 'runtime', path.basename(binary));
}

// The global options every invocation gets: its state root, and its log as JSON in the
// bundle (so its own errors can be told from the container's output).
export function globalArgs(binary: string, logFile?: string): string[] {
  return ['--root', runtimeRoot(binary), ...(logFile ? ['--log', logFile, '--log-format', 'json'] : [])];
}

export function writeJson(file: string, value: OciSpec | OciProcess): void {
  const tmp = `${file}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

// Whether the runtime still keeps state for `id` (runc and crun: a directory per container
// under their root): a crash's leftover, which `delete --force` clears.
export function hasState(binary: string, id: string): boolean {
  return fs.existsSync(path.join(runtimeRoot(binary), id));
}

// Clears what the runtime keeps for `id` (state, cgroup), only when there is something.
export async function deleteState(binary: string, id: string): Promise<void> {
  if (hasState(binary, id)) await runtimeCommand(binary, ['delete', '--force', id]);
}

export interface RuntimeResult { code: number; stdout: string; stderr: string }

// A one-shot runtime command (kill, pause, resume, delete, state, ps, events --stats).
export function runtimeCommand(binary: string, args: string[], timeoutMs = 30_000): Promise<RuntimeResult> {
  return new Promise((resolve) => {
    execFile(binary, [...globalArgs(binary), ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function runtimeOk(binary: string, args: string[], what: string): Promise<string> {
  const r = await runtimeCommand(binary, args);
  if (r.code !== 0) throw new UfsError(`${what}: ${lastError(r.stderr) || `${path.basename(binary)} exited ${r.code}`}`);
  return r.stdout;
}

function lastError(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? '';
}

// The runtime's own error from its JSON log (level error), if it logged one.
export function runtimeError(logFile: string): string | undefined {
  let text = '';
  try {
    text = fs.readFileSync(logFile, 'utf8');
  } catch {
    return undefined;
  }
  let msg: string | undefined;
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const e = JSON.parse(line) as { level?: string; msg?: string };
      if ((e.level === 'error' || e.level === 'fatal') && e.msg) msg = e.msg;
    } catch {
      // not JSON (crun writes plain lines too)
      if (/error/i.test(line)) msg = line;
    }
  }
  return msg;
}

// Docker's mapping of a failed start: 127 the command is missing, 126 it cannot be run,
// 125 anything else (the container never ran).
export function startFailureStatus(msg: string): number {
  if (/executable file not found|exec: "[^"]*": (stat [^:]*: )?no such file or directory/.test(msg)) return 127;
  if (/exec: "[^"]*": (permission denied|exec format error|is a directory)|exec format error/.test(msg)) return 126;
  return 125;
}

// The container's effective configuration: the image's config with the `run` flags over it,
// combined as Docker combines them (ENTRYPOINT + CMD, Env replaced or appended by key).
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import type { ContainerConfig } from './container.js';

// The part of an OCI image config ("config" inside the config JSON) that running uses.
export interface ImageRunConfig {
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  ExposedPorts?: Record<string, unknown> | null; // "80/tcp": {} (for -P)
  Volumes?: Record<string, unknown> | null; // "/data": {} (VOLUME: an anonymous volume each)
}

export interface ConfigFlags {
  env: string[];          // -e, in order
  envFile: string[];      // --env-file, in order
  workdir?: string;
  user?: string;
  hostname: string;
  entrypoint?: string;    // '' clears the image's
  cmd: string[];
  tty: boolean;
  interactive: boolean;
}

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function envKey(kv: string): string {
  const i = kv.indexOf('=');
  return i < 0 ? kv : kv.slice(0, i);
}

// Docker's ReplaceOrAppendEnvValues: a later value for a key replaces the earlier one in place.
export function mergeEnv(base: string[], over: string[]): string[] {
  const out = [...base];
  for (const kv of over) {
    const i = out.findIndex((e) => envKey(e) === envKey(kv));
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}

// `K=V` as is; a bare `K` takes the host's value, or is dropped when the host has none.
function expandEnvEntry(entry: string, where: string): string | undefined {
  const key = envKey(entry);
  if (key === '') throw new UfsError(`invalid environment variable ${JSON.stringify(entry)}${where}`, 125);
  if (/\s/.test(key)) throw new UfsError(`variable '${key}' contains whitespaces${where}`, 125);
  if (entry.includes('=')) return entry;
  const v = process.env[key];
  return v === undefined ? undefined : `${key}=${v}`;
}

export function readEnvFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UfsError(`cannot read env file ${file}: ${(err as Error).message}`, 125);
  }
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const kv = expandEnvEntry(line, ` (${file}:${n + 1})`);
    if (kv !== undefined) out.push(kv);
  });
  return out;
}

export function userEnv(flags: Pick<ConfigFlags, 'env' | 'envFile'>): string[] {
  const out: string[] = [];
  for (const f of flags.envFile) out.push(...readEnvFile(f));
  for (const e of flags.env) {
    const kv = expandEnvEntry(e, '');
    if (kv !== undefined) out.push(kv);
  }
  return out;
}

export function effectiveConfig(image: ImageRunConfig, imageRef: string, flags: ConfigFlags): ContainerConfig {
  let entrypoint = image.Entrypoint && image.Entrypoint.length ? [...image.Entrypoint] : null;
  let cmd = image.Cmd && image.Cmd.length ? [...image.Cmd] : null;
  if (flags.entrypoint !== undefined) {
    entrypoint = flags.entrypoint === '' ? null : [flags.entrypoint];
    cmd = null; // a new entrypoint drops the image's CMD, as Docker does
  }
  if (flags.cmd.length > 0) cmd = [...flags.cmd];
  const workdir = flags.workdir ?? image.WorkingDir ?? '';
  if (flags.workdir !== undefined && !path.posix.isAbsolute(flags.workdir)) {
    throw new UfsError(`the working directory '${flags.workdir}' is invalid, it needs to be an absolute path`, 125);
  }
  return {
    Hostname: flags.hostname,
    User: flags.user ?? image.User ?? '',
    Env: mergeEnv(image.Env ?? [], userEnv(flags)),
    Cmd: cmd,
    Entrypoint: entrypoint,
    WorkingDir: workdir,
    Tty: flags.tty,
    OpenStdin: flags.interactive,
    Image: imageRef,
    Labels: image.Labels ?? undefined,
    StopSignal: image.StopSignal,
  };
}

export function commandOf(config: ContainerConfig): string[] {
  const args = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  if (args.length === 0) throw new UfsError('no command specified', 125);
  return args;
}

// The process environment: Docker's defaults (PATH, HOSTNAME, TERM for a tty) under the
// container's Env, then HOME from the user's passwd entry when still unset.
export function processEnv(config: ContainerConfig, tty: boolean, home: string, extra: string[] = []): string[] {
  const base = [DEFAULT_PATH, `HOSTNAME=${config.Hostname}`];
  if (tty) base.push('TERM=xterm');
  const env = mergeEnv(mergeEnv(base, config.Env), extra);
  if (!env.some((e) => envKey(e) === 'HOME')) env.push(`HOME=${home}`);
  return env;
}

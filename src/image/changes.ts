// Dockerfile-style config changes: `ufs import --change`, `ufs commit -c`, createImage.
// CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR, as Docker
// accepts them for commit/import (JSON or shell form, key=value with quotes, $VAR from Env).
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import type { ContainerConfig } from './types.js';

export const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'];

function bad(change: string, why: string): never {
  throw new UfsError(`invalid change ${JSON.stringify(change)}: ${why}`);
}

// A JSON array of strings, or undefined if `s` is not one (then it is the shell form).
function jsonArray(s: string): string[] | undefined {
  if (!s.trimStart().startsWith('[')) return undefined;
  try {
    const v = JSON.parse(s) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: shell form
  }
  return undefined;
}

function envMap(env: string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

// Splits on unquoted whitespace, removing quotes; expands $VAR/${VAR} outside single quotes.
export function splitWords(s: string, env: Map<string, string>, change = s): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
      continue;
    }
    if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
      continue;
    }
    if (c === '$') {
      const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(s.slice(i));
      if (m) {
        cur += env.get(m[1] ?? m[2]!) ?? '';
        i += m[0].length - 1;
        inWord = true;
        continue;
      }
    }
    if (quote === '"') {
      if (c === '"') quote = null;
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
      continue;
    }
    if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    cur += c;
    inWord = true;
  }
  if (quote) bad(change, 'unterminated quote');
  if (inWord) words.push(cur);
  return words;
}

function keyValues(args: string, env: Map<string, string>, change: string, instr: string): [string, string][] {
  const words = splitWords(args, env, change);
  if (words.length === 0) bad(change, `${instr} needs at least one argument`);
  if (!words[0]!.includes('=')) {
    // legacy form: KEY value with spaces
    if (instr === 'LABEL') bad(change, 'LABEL needs key=value');
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(args);
    if (!m) bad(change, `${instr} needs a value`);
    const value = splitWords(m[2]!, env, change).join(' ');
    return [[m[1]!, value]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) bad(change, `${instr} expects key=value, got ${JSON.stringify(w)}`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

function shellForm(args: string, config: ContainerConfig): string[] {
  const shell = config.Shell && config.Shell.length ? config.Shell : ['/bin/sh', '-c'];
  return [...shell, args];
}

// Applies one change to `config` (mutated and returned).
export function applyChange(config: ContainerConfig, change: string): ContainerConfig {
  const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(change);
  if (!m) bad(change, 'expected an instruction like CMD ["sh"]');
  const instr = m[1]!.toUpperCase();
  const args = (m[2] ?? '').trim();
  const env = envMap(config.Env);
  switch (instr) {
    case 'CMD':
    case 'ENTRYPOINT': {
      const list = args === '' ? [] : (jsonArray(args) ?? shellForm(args, config));
      if (instr === 'CMD') config.Cmd = list;
      else {
        config.Entrypoint = list;
      }
      return config;
    }
    case 'ENV': {
      const pairs = keyValues(args, env, change, instr);
      const list = [...(config.Env ?? [])];
      for (const [k, v] of pairs) {
        const i = list.findIndex((e) => e.startsWith(`${k}=`));
        if (i >= 0) list[i] = `${k}=${v}`;
        else list.push(`${k}=${v}`);
        env.set(k, v);
      }
      config.Env = list;
      return config;
    }
    case 'LABEL': {
      const labels = { ...(config.Labels ?? {}) };
      for (const [k, v] of keyValues(args, env, change, instr)) labels[k] = v;
      config.Labels = labels;
      return config;
    }
    case 'EXPOSE': {
      const ports = { ...(config.ExposedPorts ?? {}) };
      const words = splitWords(args, env, change);
      if (words.length === 0) bad(change, 'EXPOSE needs a port');
      for (const w of words) {
        const pm = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
        if (!pm) bad(change, `invalid port ${JSON.stringify(w)}`);
        const from = Number(pm[1]);
        const to = pm[2] ? Number(pm[2]) : from;
        if (from < 1 || to > 65535 || to < from) bad(change, `invalid port range ${JSON.stringify(w)}`);
        for (let p = from; p <= to; p++) ports[`${p}/${(pm[3] ?? 'tcp').toLowerCase()}`] = {};
      }
      config.ExposedPorts = ports;
      return config;
    }
    case 'VOLUME': {
      const vols = { ...(config.Volumes ?? {}) };
      const list = jsonArray(args) ?? splitWords(args, env, change);
      if (list.length === 0) bad(change, 'VOLUME needs a path');
      for (const v of list) vols[v] = {};
      config.Volumes = vols;
      return config;
    }
    case 'WORKDIR': {
      const words = splitWords(args, env, change);
      if (words.length !== 1) bad(change, 'WORKDIR takes exactly one path');
      config.WorkingDir = path.posix.resolve(config.WorkingDir || '/', words[0]!);
      return config;
    }
    case 'USER': {
      const words = splitWords(args, env, change);
      if (words.length !== 1) bad(change, 'USER takes exactly one user[:group]');
      config.User = words[0]!;
      return config;
    }
    case 'STOPSIGNAL': {
      const words = splitWords(args, env, change);
      if (words.length !== 1) bad(change, 'STOPSIGNAL takes one signal');
      config.StopSignal = words[0]!;
      return config;
    }
    case 'ONBUILD':
      if (args === '') bad(change, 'ONBUILD needs an instruction');
      config.OnBuild = [...(config.OnBuild ?? []), args];
      return config;
    default:
      bad(change, `${instr} is not a valid change (use one of ${CHANGE_INSTRUCTIONS.join(', ')})`);
  }
}

export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  for (const c of changes) applyChange(config, c);
  return config;
}

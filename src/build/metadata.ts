// The instructions that change only the image config (CMD, ENTRYPOINT, ENV, LABEL, EXPOSE,
// VOLUME, WORKDIR, USER, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER): the new
// config and the history line, as Docker makes them. Substitution happens where Docker does
// it (not in CMD, ENTRYPOINT, SHELL, HEALTHCHECK or ONBUILD).
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import type { ContainerConfig } from '../image/types.js';
import { lexWord, lexWords, splitRaw, type Vars } from './lexer.js';
import { flagValue, type Instruction, jsonForm, parseDockerfile } from './parser.js';

export interface MetaState {
  config: ContainerConfig;
  cmdSetInStage: boolean; // an ENTRYPOINT resets an inherited CMD only
  author?: string;
}

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

export function shellOf(config: ContainerConfig): string[] {
  return config.Shell && config.Shell.length ? config.Shell : DEFAULT_SHELL;
}

// KEY=VALUE pairs (ENV, LABEL, ARG) or the legacy `KEY value with spaces` form.
export function keyValues(ins: Instruction, vars: Vars, escape: string, legacyOk: boolean): [string, string][] {
  const words = splitRaw(ins.rest, escape);
  if (words.length === 0) throw new UfsError(`${ins.keyword} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    if (!legacyOk) throw new UfsError(`${ins.keyword} names must be given as key=value`);
    const m = /^(\S+)\s+([\s\S]*)$/.exec(ins.rest);
    if (!m) throw new UfsError(`${ins.keyword} ${words[0]} needs a value`);
    return [[lexWord(m[1]!, vars, escape), lexWord(m[2]!, vars, escape)]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw new UfsError(`${ins.keyword} expects key=value, got ${JSON.stringify(w)}`);
    return [lexWord(w.slice(0, i), vars, escape), lexWord(w.slice(i + 1), vars, escape)];
  });
}

export function setEnv(config: ContainerConfig, key: string, value: string): void {
  const list = [...(config.Env ?? [])];
  const i = list.findIndex((e) => e.startsWith(`${key}=`));
  if (i >= 0) list[i] = `${key}=${value}`;
  else list.push(`${key}=${value}`);
  config.Env = list;
}

// Go's time.ParseDuration, to nanoseconds (HEALTHCHECK's options).
export function parseDuration(s: string, what: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  if (s === '0') return 0;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * unit[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos !== s.length || s === '') throw new UfsError(`invalid duration for ${what}: ${JSON.stringify(s)}`);
  return Math.round(total);
}

function execOrShell(ins: Instruction, config: ContainerConfig): string[] {
  if (ins.json) return ins.json;
  if (ins.rest === '') return [];
  return [...shellOf(config), ins.rest];
}

// Applies a metadata instruction to state.config; returns the history line.
export function applyMetadata(ins: Instruction, st: MetaState, vars: Vars, escape: string): string {
  const c = st.config;
  switch (ins.keyword) {
    case 'CMD': {
      c.Cmd = execOrShell(ins, c);
      st.cmdSetInStage = true;
      return `CMD ${JSON.stringify(c.Cmd)}`;
    }
    case 'ENTRYPOINT': {
      c.Entrypoint = execOrShell(ins, c);
      if (!st.cmdSetInStage) c.Cmd = null;
      return `ENTRYPOINT ${JSON.stringify(c.Entrypoint)}`;
    }
    case 'ENV': {
      const pairs = keyValues(ins, vars, escape, true);
      for (const [k, v] of pairs) setEnv(c, k, v);
      return `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'LABEL': {
      const pairs = keyValues(ins, vars, escape, true);
      c.Labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of pairs) c.Labels[k] = v;
      return `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'MAINTAINER': {
      st.author = lexWord(ins.rest, vars, escape);
      return `MAINTAINER ${st.author}`;
    }
    case 'EXPOSE': {
      const ports = { ...(c.ExposedPorts ?? {}) };
      const words = lexWords(ins.rest, vars, escape);
      if (words.length === 0) throw new UfsError('EXPOSE requires at least one argument');
      const added: string[] = [];
      for (const w of words) {
        const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
        if (!m) throw new UfsError(`EXPOSE: invalid port ${JSON.stringify(w)}`);
        const from = Number(m[1]);
        const to = m[2] ? Number(m[2]) : from;
        if (from < 1 || to > 65535 || to < from) throw new UfsError(`EXPOSE: invalid port range ${JSON.stringify(w)}`);
        for (let p = from; p <= to; p++) {
          const key = `${p}/${(m[3] ?? 'tcp').toLowerCase()}`;
          ports[key] = {};
          added.push(key);
        }
      }
      c.ExposedPorts = ports;
      return `EXPOSE ${added.join(' ')}`;
    }
    case 'VOLUME': {
      const list = ins.json ?? lexWords(ins.rest, vars, escape);
      if (list.length === 0 || list.some((v) => v.trim() === '')) throw new UfsError('VOLUME specified can not be an empty string');
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of list) c.Volumes[v] = {};
      return `VOLUME [${list.join(' ')}]`;
    }
    case 'WORKDIR': {
      const dir = lexWord(ins.rest, vars, escape);
      if (dir === '') throw new UfsError('WORKDIR requires exactly one argument');
      c.WorkingDir = path.posix.resolve(c.WorkingDir || '/', dir);
      return `WORKDIR ${c.WorkingDir}`;
    }
    case 'USER': {
      const u = lexWord(ins.rest, vars, escape);
      if (u === '') throw new UfsError('USER requires exactly one argument');
      c.User = u;
      return `USER ${u}`;
    }
    case 'STOPSIGNAL': {
      const s = lexWord(ins.rest, vars, escape);
      if (!/^(SIG[A-Z0-9+-]+|\d+)$/.test(s)) throw new UfsError(`STOPSIGNAL: invalid signal ${JSON.stringify(s)}`);
      c.StopSignal = s;
      return `STOPSIGNAL ${s}`;
    }
    case 'SHELL': {
      const shell = ins.json;
      if (!shell || shell.length === 0) throw new UfsError('SHELL requires the arguments to be in JSON form');
      c.Shell = shell;
      return `SHELL ${JSON.stringify(shell)}`;
    }
    case 'HEALTHCHECK':
      c.Healthcheck = healthcheck(ins, c);
      return ins.source;
    case 'ONBUILD': {
      const inner = parseDockerfile(ins.rest, 'ONBUILD').instructions[0];
      if (!inner) throw new UfsError('ONBUILD requires an instruction');
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(inner.keyword)) throw new UfsError(`${inner.keyword} isn't allowed as an ONBUILD trigger`);
      const trigger = `${inner.keyword} ${ins.rest.replace(/^\S+\s*/, '')}`.trim();
      c.OnBuild = [...(c.OnBuild ?? []), trigger];
      return `ONBUILD ${trigger}`;
    }
    default:
      throw new Error(`not a metadata instruction: ${ins.keyword}`);
  }
}

function healthcheck(ins: Instruction, c: ContainerConfig): Record<string, unknown> {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(ins.rest);
  const kind = m?.[1]?.toUpperCase();
  if (kind === 'NONE') {
    if (m![2]!.trim() !== '' || ins.flags.length) throw new UfsError('HEALTHCHECK NONE takes no arguments');
    return { Test: ['NONE'] };
  }
  if (kind !== 'CMD') throw new UfsError('HEALTHCHECK: expected CMD or NONE');
  const rest = m![2]!.trim();
  if (rest === '') throw new UfsError('HEALTHCHECK CMD requires a command');
  const json = jsonForm(rest);
  const hc: Record<string, unknown> = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', rest] };
  const dur: [string, string][] = [['interval', 'Interval'], ['timeout', 'Timeout'], ['start-period', 'StartPeriod'], ['start-interval', 'StartInterval']];
  for (const [flag, key] of dur) {
    const v = flagValue(ins, flag);
    if (v === undefined) continue;
    const ns = parseDuration(v, `--${flag}`);
    if (ns !== 0 && ns < 1e6) throw new UfsError(`HEALTHCHECK --${flag} cannot be less than 1ms`);
    hc[key] = ns;
  }
  const retries = flagValue(ins, 'retries');
  if (retries !== undefined) {
    if (!/^\d+$/.test(retries)) throw new UfsError(`HEALTHCHECK --retries: invalid number ${JSON.stringify(retries)}`);
    hc.Retries = Number(retries);
  }
  void c;
  return hc;
}

// Dockerfile text -> instructions: parser directives (syntax, escape, check), comments, line
// continuations, flags, JSON (exec) form and here-documents (RUN/COPY/ADD <<EOF). What the
// instructions mean (substitution, stages) is the planner's job.
import { UfsError } from '../common/errors.js';

export interface Heredoc {
  name: string;
  content: string; // ends with a newline unless empty
  expand: boolean; // an unquoted delimiter: variables are expanded in COPY's content
}

export interface Flag {
  name: string;
  value: string | true;
}

export interface Instruction {
  keyword: string; // upper case
  line: number; // 1-based, of the keyword
  rest: string; // after the keyword and its flags, continuations joined
  flags: Flag[];
  json?: string[]; // the exec (JSON array) form
  heredocs: Heredoc[];
  source: string; // the instruction as written (keyword included), for history and errors
}

export interface Dockerfile {
  escape: string;
  syntax?: string;
  instructions: Instruction[];
}

export const INSTRUCTIONS = [
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT',
  'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
];

const FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  RUN: ['network', 'mount', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'checksum', 'link', 'keep-git-dir'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);

export class DockerfileError extends UfsError {
  constructor(readonly file: string, readonly line: number, what: string) {
    super(`${file}:${line}: ${what}`);
  }
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/;

export function parseDockerfile(text: string, file = 'Dockerfile'): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split('\n').map((l) => l.replace(/\r$/, ''));
  const bad = (line: number, what: string): never => {
    throw new DockerfileError(file, line, what);
  };
  let escape = '\\';
  let syntax: string | undefined;
  const seen = new Set<string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (!['syntax', 'escape', 'check'].includes(key)) break;
    if (seen.has(key)) bad(i + 1, `only one ${key} parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') bad(i + 1, `invalid escape token ${JSON.stringify(m[2])}: must be \` or \\`);
      escape = m[2]!;
    } else if (key === 'syntax') syntax = m[2]!;
  }

  const isComment = (l: string) => l.trimStart().startsWith('#');
  const endsWithEscape = (l: string) => l.trimEnd().endsWith(escape);
  const instructions: Instruction[] = [];
  while (i < lines.length) {
    const first = lines[i]!;
    if (first.trim() === '' || isComment(first)) {
      i++;
      continue;
    }
    const start = i + 1;
    let text = first;
    const raw = [first];
    while (endsWithEscape(text)) {
      text = text.trimEnd().slice(0, -1);
      i++;
      // Comment and empty lines inside a continuation are dropped.
      while (i < lines.length && (isComment(lines[i]!) || lines[i]!.trim() === '')) i++;
      if (i >= lines.length) break;
      raw.push(lines[i]!);
      text += lines[i]!;
    }
    i++;
    const m = /^\s*(\S+)(?:\s+([\s\S]*))?$/.exec(text)!;
    const keyword = m[1]!.toUpperCase();
    if (!INSTRUCTIONS.includes(keyword)) bad(start, `unknown instruction: ${m[1]}`);
    let rest = (m[2] ?? '').trim();
    const flags: Flag[] = [];
    while (rest.startsWith('--')) {
      const fm = /^--([A-Za-z0-9-]+)(?:=(\S*))?(?:\s+|$)/.exec(rest);
      if (!fm) break;
      const allowed = FLAGS[keyword] ?? [];
      if (!allowed.includes(fm[1]!)) bad(start, `unknown flag for ${keyword}: --${fm[1]}`);
      flags.push({ name: fm[1]!, value: fm[2] ?? true });
      rest = rest.slice(fm[0].length);
    }
    const ins: Instruction = { keyword, line: start, rest, flags, heredocs: [], source: `${keyword} ${raw.join('\n').trim().replace(/^\S+\s*/, '')}`.trim() };
    const json = jsonForm(rest);
    if (json) ins.json = json;
    if (!json && HEREDOC_KEYWORDS.has(keyword)) {
      for (const hm of rest.matchAll(/<<(-?)(["']?)([A-Za-z0-9_.]+)\2/g)) {
        const chomp = hm[1] === '-';
        const name = hm[3]!;
        const body: string[] = [];
        for (;;) {
          if (i >= lines.length) bad(start, `here-document ${name} is not terminated (no line "${name}")`);
          let l = lines[i++]!;
          if (chomp) l = l.replace(/^\t+/, '');
          if (l === name) break;
          body.push(l);
          raw.push(l);
        }
        raw.push(name);
        ins.heredocs.push({ name, content: body.length ? `${body.join('\n')}\n` : '', expand: hm[2] === '' });
      }
      if (ins.heredocs.length) ins.source = `${keyword} ${raw.join('\n').trim().replace(/^\S+\s*/, '')}`;
    }
    instructions.push(ins);
  }
  return { escape, ...(syntax ? { syntax } : {}), instructions };
}

// A JSON array of strings, or undefined (then it is the shell form).
export function jsonForm(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(rest) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // shell form
  }
  return undefined;
}

export function flagValue(ins: Instruction, name: string): string | undefined {
  const f = ins.flags.filter((x) => x.name === name).pop();
  if (!f) return undefined;
  return f.value === true ? 'true' : f.value;
}

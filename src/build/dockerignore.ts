// .dockerignore as Docker reads it: one pattern a line, '#' comments, a leading '!' makes an
// exception; patterns are cleaned paths relative to the context root ('/' prefix dropped);
// '*' and '?' match within one path component, '**' any number of components, [...] a
// class, '\' escapes. The last pattern that matches a path (or one of its parent
// directories) decides; an exception re-includes.
import path from 'node:path';

export interface IgnorePattern {
  text: string;
  exclusion: boolean; // a '!' pattern
  re: RegExp;
  dirs: number; // components in the pattern
}

export function parseDockerignore(text: string): IgnorePattern[] {
  const out: IgnorePattern[] = [];
  for (let line of text.split('\n')) {
    line = line.replace(/\r$/, '');
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    let exclusion = false;
    if (line.startsWith('!')) {
      exclusion = true;
      line = line.slice(1).trim();
    }
    let p = path.posix.normalize(line);
    p = p.replace(/^\/+/, '').replace(/\/+$/, '');
    if (p === '' || p === '.') {
      p = '.';
    }
    out.push({ text: p, exclusion, re: compile(p), dirs: p.split('/').length });
  }
  return out;
}

function compile(p: string): RegExp {
  let re = '^';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (p[i + 1] === '*') {
        i++;
        if (p[i + 1] === '/') i++;
        re += i + 1 >= p.length ? '.*' : '(?:.*/)?';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < p.length) re += escapeRe(p[++i]!);
    else if (c === '[') {
      const end = p.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = p.slice(i + 1, end);
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += escapeRe(c);
  }
  return new RegExp(`${re}$`);
}

function escapeRe(c: string): string {
  return /[.+*?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

// Is `rel` (a path relative to the context, '/'-separated) excluded?
export function isIgnored(patterns: readonly IgnorePattern[], rel: string): boolean {
  if (patterns.length === 0) return false;
  const parts = rel.split('/');
  let ignored = false;
  for (const p of patterns) {
    if (p.exclusion === !ignored) continue; // cannot change the outcome
    let match = p.re.test(rel);
    // A pattern for a directory covers what is under it.
    for (let n = parts.length - 1; !match && n >= 1; n--) match = p.re.test(parts.slice(0, n).join('/'));
    if (match) ignored = !p.exclusion;
  }
  return ignored;
}

// Could an exception re-include something below directory `rel`? (Then an ignored directory
// must still be walked.)
export function mayReinclude(patterns: readonly IgnorePattern[], rel: string): boolean {
  return patterns.some((p) => p.exclusion && (p.text.startsWith(`${rel}/`) || p.text.includes('*') || p.text.includes('?') || p.text.includes('[')));
}

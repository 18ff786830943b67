// Dockerfile words: quotes, the escape character and variable substitution as Docker's shell
// lexer does them ($V, ${V}, ${V:-x}, ${V-x}, ${V:+x}, ${V+x}, ${V:?msg}, ${V?msg}). Single
// quotes are literal; in double quotes the escape character escapes only " $ and itself.
// Unset variables expand to nothing.
import { UfsError } from '../common/errors.js';

export type Vars = ReadonlyMap<string, string>;

const NAME = /[A-Za-z0-9_]/;

class Lex {
  private i = 0;
  private words: string[] = [];
  private cur = '';
  private started = false;

  constructor(
    private readonly s: string,
    private readonly vars: Vars,
    private readonly escape: string,
    private readonly split: boolean,
  ) {}

  run(): string[] {
    const { s } = this;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === this.escape) {
        this.started = true;
        if (this.i + 1 < s.length) {
          this.cur += s[this.i + 1];
          this.i += 2;
        } else {
          this.cur += c; // a trailing escape stays
          this.i++;
        }
        continue;
      }
      if (c === "'") {
        this.started = true;
        const end = s.indexOf("'", this.i + 1);
        if (end < 0) throw new UfsError('unexpected end of statement while looking for matching single-quote');
        this.cur += s.slice(this.i + 1, end);
        this.i = end + 1;
        continue;
      }
      if (c === '"') {
        this.started = true;
        this.doubleQuoted();
        continue;
      }
      if (c === '$') {
        const value = this.dollar();
        if (!this.split) this.cur += value;
        else this.splitInto(value);
        continue;
      }
      if (this.split && /\s/.test(c)) {
        this.flush();
        this.i++;
        continue;
      }
      this.started = true;
      this.cur += c;
      this.i++;
    }
    this.flush();
    if (!this.split && this.words.length === 0) return [''];
    return this.words;
  }

  private flush(): void {
    if (this.started || this.cur !== '') this.words.push(this.cur);
    this.cur = '';
    this.started = false;
  }

  // An unquoted expansion splits on whitespace when splitting words.
  private splitInto(value: string): void {
    const parts = value.split(/\s+/);
    for (let k = 0; k < parts.length; k++) {
      if (k > 0) this.flush();
      if (parts[k] !== '') {
        this.cur += parts[k];
        this.started = true;
      }
    }
  }

  private doubleQuoted(): void {
    const { s } = this;
    this.i++; // the opening quote
    for (;;) {
      if (this.i >= s.length) throw new UfsError('unexpected end of statement while looking for matching double-quote');
      const c = s[this.i]!;
      if (c === '"') {
        this.i++;
        return;
      }
      if (c === '$') {
        this.cur += this.dollar();
        continue;
      }
      if (c === this.escape && this.i + 1 < s.length) {
        const n = s[this.i + 1]!;
        if (n === '"' || n === '$' || n === this.escape) {
          this.cur += n;
          this.i += 2;
          continue;
        }
      }
      this.cur += c;
      this.i++;
    }
  }

  // At a '$': the expansion, with this.i moved past it.
  private dollar(): string {
    const { s } = this;
    const next = s[this.i + 1];
    if (next === '{') {
      const close = matchingBrace(s, this.i + 1);
      if (close < 0) throw new UfsError(`missing '}' in ${JSON.stringify(s.slice(this.i))}`);
      const body = s.slice(this.i + 2, close);
      this.i = close + 1;
      this.started = true;
      return this.braced(body);
    }
    let j = this.i + 1;
    while (j < s.length && NAME.test(s[j]!)) j++;
    if (j === this.i + 1) {
      this.i++;
      this.started = true;
      return '$';
    }
    const name = s.slice(this.i + 1, j);
    this.i = j;
    const v = this.vars.get(name) ?? '';
    if (!this.split || v !== '') this.started = true;
    return v;
  }

  private braced(body: string): string {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([\s\S]*))?$/.exec(body);
    if (!m) throw new UfsError(`bad substitution: \${${body}}`);
    const name = m[1]!;
    const op = m[2];
    const value = this.vars.get(name);
    if (!op) return value ?? '';
    const word = () => lexWord(m[3] ?? '', this.vars, this.escape);
    const colon = op.startsWith(':');
    const unsetOrEmpty = value === undefined || (colon && value === '');
    switch (op.replace(':', '')) {
      case '-':
        return unsetOrEmpty ? word() : value!;
      case '+':
        return unsetOrEmpty ? '' : word();
      default: // '?'
        if (unsetOrEmpty) throw new UfsError(`${name}: ${m[3] || 'is not allowed to be unset'}`);
        return value!;
    }
  }
}

function matchingBrace(s: string, open: number): number {
  let depth = 0;
  for (let k = open; k < s.length; k++) {
    if (s[k] === '{') depth++;
    else if (s[k] === '}' && --depth === 0) return k;
  }
  return -1;
}

// One word: quotes removed, variables expanded, no splitting.
export function lexWord(s: string, vars: Vars, escape = '\\'): string {
  return new Lex(s, vars, escape, false).run()[0]!;
}

// Words split on unquoted whitespace (also inside unquoted expansions), then processed.
export function lexWords(s: string, vars: Vars, escape = '\\'): string[] {
  return new Lex(s, vars, escape, true).run();
}

// Splits on unquoted whitespace keeping quotes and escapes as they are (ENV/LABEL pairs are
// split first, then each is processed).
export function splitRaw(s: string, escape = '\\'): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === escape && quote !== "'" && i + 1 < s.length) {
      cur += c + s[++i];
      continue;
    }
    if (quote) {
      if (c === quote) quote = null;
      cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      cur += c;
      continue;
    }
    if (/\s/.test(c)) {
      if (cur) out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  if (quote) throw new UfsError(`unmatched ${quote} in ${JSON.stringify(s)}`);
  if (cur) out.push(cur);
  return out;
}

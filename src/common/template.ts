// Docker's --format and `inspect -f` language: Go's text/template over JSON-shaped data, with
// Docker's extra functions (json, join, split, title, lower, upper, pad, truncate). Parsing and
// execution errors are TemplateError (a UfsError): one line, as Docker prints them.
import { UfsError } from './errors.js';

export class TemplateError extends UfsError {}

// ---------------------------------------------------------------- lexing

type TokKind = 'field' | 'var' | 'ident' | 'string' | 'number' | 'char' | 'bool' | 'nil' | 'dot' | 'pipe' | 'lparen' | 'rparen' | 'declare' | 'assign' | 'comma' | 'end';

interface Tok {
  kind: TokKind;
  text: string; // field: the chain '.A.B' ; var: '$x' or '$x.A.B'
  pos: number; // offset in the template, for messages
}

interface Piece {
  text?: string; // literal text
  action?: Tok[]; // the tokens of an action
  pos: number;
}

function lineOf(src: string, pos: number): number {
  let n = 1;
  for (let i = 0; i < pos && i < src.length; i++) if (src.charCodeAt(i) === 10) n++;
  return n;
}

function parseError(src: string, pos: number, msg: string): TemplateError {
  return new TemplateError(`template parsing error: template: :${lineOf(src, pos)}: ${msg}`);
}

// Splits the template into text and actions, applying the {{- and -}} trim markers.
function split(src: string): Piece[] {
  const pieces: Piece[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) pieces.push({ text, pos: i });
      break;
    }
    let start = open + 2;
    if (/^-[ \t\r\n]/.test(src.slice(start, start + 2))) {
      text = text.replace(/[ \t\r\n]+$/, '');
      start += 1;
    }
    if (text) pieces.push({ text, pos: i });
    // comments: {{/* ... */}}
    const rest = src.slice(start).replace(/^[ \t\r\n]*/, '');
    if (rest.startsWith('/*')) {
      const cstart = src.indexOf('/*', start);
      const cend = src.indexOf('*/', cstart + 2);
      if (cend < 0) throw parseError(src, open, 'unclosed comment');
      const after = src.slice(cend + 2);
      const m = /^([ \t\r\n]*)(-?)([ \t\r\n]*)\}\}/.exec(after);
      if (!m) throw parseError(src, open, 'comment ends before closing delimiter');
      if (m[2]) trimNext = true;
      i = cend + 2 + m[0].length;
      continue;
    }
    const { toks, end, trim } = lexAction(src, start);
    pieces.push({ action: toks, pos: open });
    trimNext = trim;
    i = end;
  }
  return pieces;
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const TRIM_CLOSE = /[ \t\r\n]+-\}\}/y;

function lexAction(src: string, start: number): { toks: Tok[]; end: number; trim: boolean } {
  const toks: Tok[] = [];
  let i = start;
  let depth = 0;
  for (;;) {
    if (i >= src.length) throw parseError(src, start, 'unclosed action');
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      // ' -}}' closes with a trim
      TRIM_CLOSE.lastIndex = i;
      const m = TRIM_CLOSE.exec(src);
      if (m) {
        if (depth) throw parseError(src, i, 'unclosed left paren');
        return { toks, end: i + m[0].length, trim: true };
      }
      i++;
      continue;
    }
    if (src.startsWith('}}', i)) {
      if (depth) throw parseError(src, i, 'unclosed left paren');
      return { toks, end: i + 2, trim: false };
    }
    const pos = i;
    if (c === '|') {
      toks.push({ kind: 'pipe', text: '|', pos });
      i++;
    } else if (c === '(') {
      depth++;
      toks.push({ kind: 'lparen', text: '(', pos });
      i++;
    } else if (c === ')') {
      if (--depth < 0) throw parseError(src, i, 'unexpected right paren U+0029 \')\'');
      toks.push({ kind: 'rparen', text: ')', pos });
      i++;
    } else if (c === ',') {
      toks.push({ kind: 'comma', text: ',', pos });
      i++;
    } else if (src.startsWith(':=', i)) {
      toks.push({ kind: 'declare', text: ':=', pos });
      i += 2;
    } else if (c === '=') {
      toks.push({ kind: 'assign', text: '=', pos });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') j++;
        if (src[j] === '\n') throw parseError(src, i, 'unterminated quoted string');
        j++;
      }
      if (j >= src.length) throw parseError(src, i, 'unterminated quoted string');
      toks.push({ kind: 'string', text: unquote(src, src.slice(i + 1, j), i), pos });
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw parseError(src, i, 'unterminated raw quoted string');
      toks.push({ kind: 'string', text: src.slice(i + 1, j), pos });
      i = j + 1;
    } else if (c === "'") {
      const m = /^'(\\.|[^\\'])'/u.exec(src.slice(i));
      if (!m) throw parseError(src, i, 'unterminated character constant');
      const ch = unquote(src, m[1]!, i);
      toks.push({ kind: 'char', text: String(ch.codePointAt(0)), pos });
      i += m[0].length;
    } else if (/[0-9+-]/.test(c) && /^[+-]?(0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|[0-9_]*\.?[0-9_]+([eE][+-]?[0-9]+)?|[0-9_]+\.)/.test(src.slice(i))) {
      const m = /^[+-]?(0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|[0-9_]*\.?[0-9_]+([eE][+-]?[0-9]+)?|[0-9_]+\.)/.exec(src.slice(i))!;
      toks.push({ kind: 'number', text: m[0], pos });
      i += m[0].length;
    } else if (c === '.' || c === '$') {
      // .A.B, ., $, $x, $x.A.B
      const m = /^(\$[A-Za-z0-9_]*|\.)((\.?[A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z_][A-Za-z0-9_]*)*)?/.exec(src.slice(i))!;
      const text = m[0];
      toks.push({ kind: c === '$' ? 'var' : text === '.' ? 'dot' : 'field', text, pos });
      i += text.length;
    } else {
      IDENT.lastIndex = i;
      const m = IDENT.exec(src);
      if (!m) throw parseError(src, i, `unexpected ${JSON.stringify(c)} in command`);
      const word = m[0];
      const kind: TokKind = word === 'true' || word === 'false' ? 'bool' : word === 'nil' ? 'nil' : 'ident';
      toks.push({ kind, text: word, pos });
      i += word.length;
    }
    // a field chain directly after ')': (x).A.B
    if (toks.at(-1)?.kind === 'rparen' && src[i] === '.' && /[A-Za-z_]/.test(src[i + 1] ?? '')) {
      const m = /^(\.[A-Za-z_][A-Za-z0-9_]*)+/.exec(src.slice(i))!;
      toks.push({ kind: 'field', text: `)${m[0]}`, pos: i });
      i += m[0].length;
    }
  }
}

function unquote(src: string, s: string, pos: number): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)/g, (_m, e: string) => {
    switch (e[0]) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case 'a': return '\x07';
      case 'b': return '\b';
      case 'f': return '\f';
      case 'v': return '\v';
      case '\\': return '\\';
      case '"': return '"';
      case "'": return "'";
      case 'x': case 'u': case 'U': return String.fromCodePoint(parseInt(e.slice(1), 16));
      default:
        if (/^[0-7]{3}$/.test(e)) return String.fromCharCode(parseInt(e, 8));
        throw parseError(src, pos, `invalid syntax: unknown escape \\${e}`);
    }
  });
}

// ---------------------------------------------------------------- parsing

type Arg =
  | { t: 'field'; chain: string[]; pos: number } // .A.B on dot
  | { t: 'var'; name: string; chain: string[]; pos: number }
  | { t: 'dot'; pos: number }
  | { t: 'lit'; value: unknown; pos: number }
  | { t: 'ident'; name: string; pos: number } // a function
  | { t: 'sub'; pipe: Pipe; chain: string[]; pos: number };

interface Cmd {
  args: Arg[];
  pos: number;
}

interface Pipe {
  decl: string[]; // variables declared (:=) or assigned (=)
  assign: boolean;
  cmds: Cmd[];
  pos: number;
  text: string; // for messages: "at <...>"
}

type Node =
  | { t: 'text'; text: string }
  | { t: 'action'; pipe: Pipe }
  | { t: 'if' | 'with'; pipe: Pipe; body: Node[]; else?: Node[] }
  | { t: 'range'; pipe: Pipe; body: Node[]; else?: Node[] }
  | { t: 'break' | 'continue'; pos: number };

class Parser {
  private i = 0;
  constructor(private readonly src: string, private readonly pieces: Piece[], private readonly funcs: Record<string, unknown>) {}

  parse(): Node[] {
    const { nodes, end } = this.list();
    if (end) throw parseError(this.src, end.pos, `unexpected {{${end.word}}}`);
    return nodes;
  }

  // Parses nodes until {{end}} or {{else ...}}; returns which one stopped it.
  private list(): { nodes: Node[]; end?: { word: 'end' | 'else'; rest: Tok[]; pos: number } } {
    const nodes: Node[] = [];
    while (this.i < this.pieces.length) {
      const p = this.pieces[this.i++]!;
      if (p.text !== undefined) {
        nodes.push({ t: 'text', text: p.text });
        continue;
      }
      const toks = p.action!;
      if (toks.length === 0) throw parseError(this.src, p.pos, 'missing value for command');
      const head = toks[0]!;
      if (head.kind === 'ident') {
        switch (head.text) {
          case 'end':
            if (toks.length > 1) throw parseError(this.src, p.pos, 'unexpected ' + toks[1]!.text + ' in end');
            return { nodes, end: { word: 'end', rest: [], pos: p.pos } };
          case 'else':
            return { nodes, end: { word: 'else', rest: toks.slice(1), pos: p.pos } };
          case 'if':
          case 'with':
          case 'range':
            nodes.push(this.control(head.text, toks.slice(1), p.pos));
            continue;
          case 'break':
          case 'continue':
            nodes.push({ t: head.text, pos: p.pos });
            continue;
          case 'define':
          case 'template':
          case 'block':
            throw parseError(this.src, p.pos, `{{${head.text}}} is not supported here`);
        }
      }
      nodes.push({ t: 'action', pipe: this.pipe(toks, p.pos, false) });
    }
    return { nodes };
  }

  private control(word: 'if' | 'with' | 'range', toks: Tok[], pos: number): Node {
    if (toks.length === 0) throw parseError(this.src, pos, `missing value for ${word}`);
    const pipe = this.pipe(toks, pos, word === 'range');
    const body = this.list();
    if (!body.end) throw parseError(this.src, pos, `unexpected EOF`);
    let elseNodes: Node[] | undefined;
    if (body.end.word === 'else') {
      const rest = body.end.rest;
      if (rest.length > 0 && rest[0]!.kind === 'ident' && (rest[0]!.text === 'if' || rest[0]!.text === 'with') && word !== 'range') {
        // {{else if x}} is {{else}}{{if x}}...{{end}} sharing the outer {{end}}
        elseNodes = [this.control(rest[0]!.text as 'if' | 'with', rest.slice(1), body.end.pos)];
      } else {
        if (rest.length) throw parseError(this.src, body.end.pos, `unexpected ${rest[0]!.text} in else`);
        const tail = this.list();
        if (!tail.end) throw parseError(this.src, pos, 'unexpected EOF');
        if (tail.end.word !== 'end') throw parseError(this.src, tail.end.pos, 'expected end; found {{else}}');
        elseNodes = tail.nodes;
      }
    }
    if (word === 'range') return { t: 'range', pipe, body: body.nodes, ...(elseNodes ? { else: elseNodes } : {}) };
    return { t: word, pipe, body: body.nodes, ...(elseNodes ? { else: elseNodes } : {}) };
  }

  private pipe(toks: Tok[], pos: number, isRange: boolean): Pipe {
    let k = 0;
    const decl: string[] = [];
    let assign = false;
    // $x := ..., $i, $v := ..., $x = ...
    if (toks[0]?.kind === 'var' && !toks[0].text.slice(1).includes('.')) {
      if (toks[1]?.kind === 'declare' || toks[1]?.kind === 'assign') {
        decl.push(toks[0].text);
        assign = toks[1].kind === 'assign';
        k = 2;
      } else if (isRange && toks[1]?.kind === 'comma' && toks[2]?.kind === 'var' && (toks[3]?.kind === 'declare' || toks[3]?.kind === 'assign')) {
        decl.push(toks[0].text, toks[2].text);
        assign = toks[3].kind === 'assign';
        k = 4;
      }
    }
    const text = this.src.slice(toks[k]?.pos ?? pos, undefined).split('}}')[0]!.trim();
    const cmds: Cmd[] = [];
    let cur: Arg[] = [];
    let cmdPos = toks[k]?.pos ?? pos;
    const end = (at: number) => {
      if (cur.length === 0) throw parseError(this.src, at, 'missing value for command');
      cmds.push({ args: cur, pos: cmdPos });
      cur = [];
    };
    for (; k < toks.length; k++) {
      const t = toks[k]!;
      if (t.kind === 'pipe') {
        end(t.pos);
        cmdPos = toks[k + 1]?.pos ?? t.pos;
        continue;
      }
      if (t.kind === 'lparen') {
        // find the matching paren
        let depth = 1;
        let j = k + 1;
        for (; j < toks.length && depth; j++) {
          if (toks[j]!.kind === 'lparen') depth++;
          else if (toks[j]!.kind === 'rparen') depth--;
        }
        const inner = toks.slice(k + 1, j - 1);
        if (inner.length === 0) throw parseError(this.src, t.pos, 'missing value for parenthesized pipeline');
        const sub = this.pipe(inner, t.pos, false);
        let chain: string[] = [];
        if (toks[j]?.kind === 'field' && toks[j]!.text.startsWith(')')) {
          chain = toks[j]!.text.slice(2).split('.');
          j++;
        }
        cur.push({ t: 'sub', pipe: sub, chain, pos: t.pos });
        k = j - 1;
        continue;
      }
      cur.push(this.arg(t));
    }
    end(pos);
    for (const c of cmds) {
      // only a function takes arguments: {{.A .B}} is an error, as in Go
      const first = c.args[0]!;
      if (c.args.length > 1 && first.t !== 'ident') {
        throw parseError(this.src, c.pos, `can't give argument to non-function ${this.src.slice(first.pos).split(/[\s}]/)[0]}`);
      }
    }
    for (let n = 1; n < cmds.length; n++) {
      const first = cmds[n]!.args[0]!;
      if (first.t !== 'ident') throw parseError(this.src, cmds[n]!.pos, `non executable command in pipeline stage ${n + 1}`);
    }
    return { decl, assign, cmds, pos, text };
  }

  private arg(t: Tok): Arg {
    switch (t.kind) {
      case 'dot':
        return { t: 'dot', pos: t.pos };
      case 'field':
        return { t: 'field', chain: t.text.slice(1).split('.'), pos: t.pos };
      case 'var': {
        const [name, ...chain] = t.text.split('.');
        return { t: 'var', name: name!, chain, pos: t.pos };
      }
      case 'string':
        return { t: 'lit', value: t.text, pos: t.pos };
      case 'char':
        return { t: 'lit', value: Number(t.text), pos: t.pos };
      case 'number': {
        const v = Number(t.text.replace(/_/g, '').replace(/^([+-]?)0o/, '$10o'));
        if (Number.isNaN(v)) throw parseError(this.src, t.pos, `bad number syntax: "${t.text}"`);
        return { t: 'lit', value: v, pos: t.pos };
      }
      case 'bool':
        return { t: 'lit', value: t.text === 'true', pos: t.pos };
      case 'nil':
        return { t: 'lit', value: null, pos: t.pos };
      case 'ident':
        if (!(t.text in this.funcs)) throw parseError(this.src, t.pos, `function "${t.text}" not defined`);
        return { t: 'ident', name: t.text, pos: t.pos };
      default:
        throw parseError(this.src, t.pos, `unexpected "${t.text}" in operand`);
    }
  }
}

// ---------------------------------------------------------------- values

// Go's fmt %v of JSON-shaped data.
export function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goNumber(v);
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === null ? '<nil>' : goString(x))).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `map[${keys.map((k) => `${k}:${(v as Record<string, unknown>)[k] === null ? '<nil>' : goString((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function goNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  // %v of a float64: shortest representation, exponent past 1e21 or below 1e-4 (as %g)
  const a = Math.abs(n);
  if (a !== 0 && (a < 1e-4 || a >= 1e21)) return n.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  return String(n);
}

// Go's template truth: false, 0, nil, and empty strings, slices and maps are false.
export function truth(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

class ExecError extends Error {}

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (Array.isArray(v)) return '[]interface {}';
  if (typeof v === 'object') return 'map[string]interface {}';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  return typeof v === 'boolean' ? 'bool' : 'string';
}

function basicKind(v: unknown): 'string' | 'number' | 'bool' | 'nil' | 'other' {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  return 'other';
}

function eq(a: unknown, ...bs: unknown[]): boolean {
  if (bs.length === 0) throw new ExecError('missing argument for comparison');
  const ka = basicKind(a);
  if (ka === 'other') throw new ExecError('invalid type for comparison');
  for (const b of bs) {
    const kb = basicKind(b);
    if (ka === 'nil' || kb === 'nil') {
      if (ka === kb) return true;
      continue;
    }
    if (kb === 'other') throw new ExecError('invalid type for comparison');
    if (ka !== kb) throw new ExecError('incompatible types for comparison');
    if (a === b) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (ka === 'bool' || ka === 'other' || ka === 'nil' || kb === 'other' || kb === 'nil') throw new ExecError('invalid type for comparison');
  if (ka !== kb) throw new ExecError('incompatible types for comparison');
  return (a as number | string) < (b as number | string);
}

function length(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (v && typeof v === 'object') return Object.keys(v).length;
  throw new ExecError(`len of type ${typeName(v)}`);
}

function index(v: unknown, ...keys: unknown[]): unknown {
  let cur = v;
  for (const k of keys) {
    if (Array.isArray(cur) || typeof cur === 'string') {
      if (typeof k !== 'number' || !Number.isInteger(k)) throw new ExecError(`cannot index slice/array with type ${typeName(k)}`);
      const len = Array.isArray(cur) ? cur.length : Buffer.byteLength(cur);
      if (k < 0 || k >= len) throw new ExecError(`error calling index: index out of range: ${k}`);
      cur = Array.isArray(cur) ? cur[k] : Buffer.from(cur)[k];
    } else if (cur && typeof cur === 'object') {
      if (typeof k !== 'string') throw new ExecError(`value has type ${typeName(k)}; should be string`);
      cur = Object.hasOwn(cur, k) ? (cur as Record<string, unknown>)[k] : undefined;
    } else if (cur === null || cur === undefined) {
      throw new ExecError('error calling index: index of untyped nil');
    } else {
      throw new ExecError(`error calling index: can't index item of type ${typeName(cur)}`);
    }
  }
  return cur;
}

function sliceOf(v: unknown, ...ix: unknown[]): unknown {
  const len = typeof v === 'string' ? v.length : Array.isArray(v) ? v.length : -1;
  if (len < 0) throw new ExecError(`error calling slice: can't slice item of type ${typeName(v)}`);
  const a = (ix[0] as number | undefined) ?? 0;
  const b = (ix[1] as number | undefined) ?? len;
  if (a < 0 || b > len || a > b) throw new ExecError(`error calling slice: index out of range: ${b}`);
  return (v as string | unknown[]).slice(a, b);
}

// A subset of Go's fmt verbs: %v %s %d %q %t %x %X %f %e %g %c %%, with flags, width, precision.
export function sprintf(format: string, ...args: unknown[]): string {
  let n = 0;
  return format.replace(/%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])/g, (_m, flags: string, width: string | undefined, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    if (width === '*') width = String(args[n++]);
    if (prec === '*') prec = String(args[n++]);
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const a = args[n++];
    let s: string;
    const p = prec === undefined ? undefined : Number(prec || 0);
    switch (verb) {
      case 'v':
        s = goString(a);
        break;
      case 's':
        s = typeof a === 'string' ? a : goString(a);
        if (p !== undefined) s = [...s].slice(0, p).join('');
        break;
      case 'q':
        s = typeof a === 'string' ? JSON.stringify(a) : `%!q(${typeName(a)}=${goString(a)})`;
        break;
      case 'd':
        s = typeof a === 'number' && Number.isInteger(a) ? String(a) : `%!d(${typeName(a)}=${goString(a)})`;
        if (flags.includes('+') && typeof a === 'number' && a >= 0) s = `+${s}`;
        break;
      case 't':
        s = typeof a === 'boolean' ? String(a) : `%!t(${typeName(a)}=${goString(a)})`;
        break;
      case 'x':
      case 'X':
        s = typeof a === 'number' ? Math.trunc(a).toString(16) : Buffer.from(String(a)).toString('hex');
        if (verb === 'X') s = s.toUpperCase();
        break;
      case 'f':
      case 'F':
        s = typeof a === 'number' ? a.toFixed(p ?? 6) : `%!f(${typeName(a)}=${goString(a)})`;
        break;
      case 'e':
        s = typeof a === 'number' ? a.toExponential(p ?? 6).replace(/e([+-])(\d)$/, 'e$10$2') : `%!e(${typeName(a)}=${goString(a)})`;
        break;
      case 'g':
        s = typeof a === 'number' ? (p !== undefined ? String(Number(a.toPrecision(p || 1))) : goNumber(a)) : `%!g(${typeName(a)}=${goString(a)})`;
        break;
      case 'c':
        s = typeof a === 'number' ? String.fromCodePoint(a) : `%!c(${typeName(a)}=${goString(a)})`;
        break;
      default:
        return `%!${verb}(${typeName(a)}=${goString(a)})`;
    }
    const w = width === undefined ? 0 : Number(width);
    const len = [...s].length;
    if (len < w) {
      if (flags.includes('-')) s += ' '.repeat(w - len);
      else if (flags.includes('0') && /[dfFeEgxX]/.test(verb)) s = s.startsWith('-') ? `-${'0'.repeat(w - len)}${s.slice(1)}` : '0'.repeat(w - len) + s;
      else s = ' '.repeat(w - len) + s;
    }
    return s;
  }) + (n < args.length ? `%!(EXTRA ${args.slice(n).map((a) => `${typeName(a)}=${goString(a)}`).join(', ')})` : '');
}

// Go's print/println: spaces between operands when neither side is a string (print), always (println).
function goPrint(args: unknown[]): string {
  let s = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') s += ' ';
    s += goString(a);
  });
  return s;
}

// Go's strings.Title: the first letter of each word upper-cased.
function title(s: string): string {
  return s.replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, pre: string, ch: string) => pre + ch.toUpperCase());
}

// Docker's json: encoding/json of the value, without the trailing newline.
function toJson(v: unknown): string {
  return JSON.stringify(v === undefined ? null : v)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026');
}

function str(v: unknown, fn: string): string {
  if (typeof v === 'string') return v;
  throw new ExecError(`wrong type for value; expected string; got ${typeName(v)} in ${fn}`);
}

type Fn = (...args: unknown[]) => unknown;
const LAZY = new Set(['and', 'or']);

export const FUNCS: Record<string, Fn> = {
  // Go's builtins
  and: (...a) => {
    for (const x of a) if (!truth(x)) return x;
    return a.at(-1);
  },
  or: (...a) => {
    for (const x of a) if (truth(x)) return x;
    return a.at(-1);
  },
  not: (a) => !truth(a),
  len: (a) => length(a),
  index: (v, ...k) => index(v, ...k),
  slice: (v, ...k) => sliceOf(v, ...k),
  print: (...a) => goPrint(a),
  println: (...a) => `${a.map((x) => goString(x)).join(' ')}\n`,
  printf: (f, ...a) => sprintf(str(f, 'printf'), ...a),
  eq: (a, ...b) => eq(a, ...b),
  ne: (a, b) => !eq(a, b),
  lt: (a, b) => lt(a, b),
  le: (a, b) => lt(a, b) || eq(a, b),
  gt: (a, b) => !lt(a, b) && !eq(a, b),
  ge: (a, b) => !lt(a, b),
  html: (...a) => goPrint(a).replace(/[&'<>"\0]/g, (c) => ({ '&': '&amp;', "'": '&#39;', '<': '&lt;', '>': '&gt;', '"': '&#34;', '\0': '\uFFFD' })[c]!),
  js: (...a) => goPrint(a).replace(/[\\'"<>&=\n\r\t]/g, (c) => ({ '\\': '\\\\', "'": "\\'", '"': '\\"', '<': '\\u003C', '>': '\\u003E', '&': '\\u0026', '=': '\\u003D', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c]!),
  urlquery: (...a) => encodeURIComponent(goPrint(a)).replace(/%20/g, '+'),
  // Docker's additions
  json: (v) => toJson(v),
  split: (s, sep) => str(s, 'split').split(str(sep, 'split')),
  join: (a, sep) => {
    if (!Array.isArray(a)) throw new ExecError(`wrong type for value; expected []string; got ${typeName(a)}`);
    return a.map((x) => goString(x)).join(str(sep, 'join'));
  },
  title: (s) => title(str(s, 'title')),
  lower: (s) => str(s, 'lower').toLowerCase(),
  upper: (s) => str(s, 'upper').toUpperCase(),
  pad: (s, l, r) => `${' '.repeat(Number(l))}${str(s, 'pad')}${' '.repeat(Number(r))}`,
  truncate: (s, n) => [...str(s, 'truncate')].slice(0, Number(n)).join(''),
};

// ---------------------------------------------------------------- execution

export interface TemplateOptions {
  // What a missing field gives: '<no value>' as for Go maps (Docker's inspect), or an error as
  // for Go structs (the listing commands' fixed field sets).
  missing?: 'novalue' | 'error';
}

class Break {}
class Continue {}

export class Template {
  private readonly nodes: Node[];

  constructor(readonly source: string, private readonly opts: TemplateOptions = {}) {
    this.nodes = new Parser(source, split(source), FUNCS).parse();
  }

  execute(data: unknown): string {
    const out: string[] = [];
    const vars: [string, unknown][] = [['$', data]];
    try {
      this.walk(this.nodes, data, vars, out);
    } catch (err) {
      if (err instanceof Break || err instanceof Continue) throw new TemplateError(`template: :1: {{break}} or {{continue}} outside {{range}}`);
      throw err;
    }
    return out.join('');
  }

  private fail(pos: number, at: string, msg: string): TemplateError {
    const before = this.source.slice(0, pos);
    const line = before.split('\n').length;
    const col = pos - before.lastIndexOf('\n');
    return new TemplateError(`template: :${line}:${col - 1}: executing "" at <${at}>: ${msg}`);
  }

  private walk(nodes: Node[], dot: unknown, vars: [string, unknown][], out: string[]): void {
    for (const n of nodes) {
      switch (n.t) {
        case 'text':
          out.push(n.text);
          break;
        case 'action': {
          const v = this.pipe(n.pipe, dot, vars);
          if (n.pipe.decl.length === 0) out.push(goString(v));
          break;
        }
        case 'if':
        case 'with': {
          const mark = vars.length;
          const v = this.pipe(n.pipe, dot, vars);
          if (truth(v)) this.walk(n.body, n.t === 'with' ? v : dot, vars, out);
          else if (n.else) this.walk(n.else, dot, vars, out);
          vars.length = mark;
          break;
        }
        case 'range':
          this.range(n, dot, vars, out);
          break;
        case 'break':
          throw new Break();
        case 'continue':
          throw new Continue();
      }
    }
  }

  private range(n: Extract<Node, { t: 'range' }>, dot: unknown, vars: [string, unknown][], out: string[]): void {
    const mark = vars.length;
    const decl = n.pipe.decl;
    const v = this.pipe({ ...n.pipe, decl: [] }, dot, vars);
    let items: [unknown, unknown][];
    if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
    else if (v && typeof v === 'object') items = Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]);
    else if (typeof v === 'number' && Number.isInteger(v)) items = Array.from({ length: Math.max(0, v) }, (_, i) => [i, i]);
    else if (v === null || v === undefined) items = [];
    else throw this.fail(n.pipe.pos, n.pipe.text, `range can't iterate over ${goString(v)}`);
    if (items.length === 0) {
      if (n.else) this.walk(n.else, dot, vars, out);
      vars.length = mark;
      return;
    }
    for (const [k, x] of items) {
      const inner = vars.length;
      if (decl.length === 1) this.setVar(vars, decl[0]!, typeof v === 'number' ? k : x, n.pipe.assign);
      if (decl.length === 2) {
        this.setVar(vars, decl[0]!, k, n.pipe.assign);
        this.setVar(vars, decl[1]!, x, n.pipe.assign);
      }
      try {
        this.walk(n.body, typeof v === 'number' ? k : x, vars, out);
      } catch (err) {
        if (err instanceof Break) {
          vars.length = inner;
          break;
        }
        if (!(err instanceof Continue)) throw err;
      }
      vars.length = inner;
    }
    vars.length = mark;
  }

  private setVar(vars: [string, unknown][], name: string, value: unknown, assign: boolean): void {
    if (!assign) {
      vars.push([name, value]);
      return;
    }
    for (let i = vars.length - 1; i >= 0; i--) {
      if (vars[i]![0] === name) {
        vars[i]![1] = value;
        return;
      }
    }
    throw new TemplateError(`template: :1: undefined variable: ${name}`);
  }

  private pipe(p: Pipe, dot: unknown, vars: [string, unknown][]): unknown {
    let v: unknown;
    let first = true;
    for (const c of p.cmds) {
      v = this.cmd(c, dot, vars, first ? undefined : { value: v }, p.text);
      first = false;
    }
    if (p.decl.length) this.setVar(vars, p.decl[0]!, v, p.assign);
    return v;
  }

  private cmd(c: Cmd, dot: unknown, vars: [string, unknown][], piped: { value: unknown } | undefined, text: string): unknown {
    const head = c.args[0]!;
    if (head.t !== 'ident') {
      if (piped) throw this.fail(c.pos, text, 'non executable command in pipeline');
      return this.arg(head, dot, vars, text);
    }
    const fn = FUNCS[head.name]!;
    const at = this.source.slice(head.pos).split('}}')[0]!.replace(/\s*-?$/, '').split('|')[0]!.trim();
    try {
      if (LAZY.has(head.name)) {
        // and/or stop evaluating at the first decisive operand (Go 1.18+)
        const want = head.name === 'or';
        let last: unknown;
        const rest = c.args.slice(1);
        if (rest.length + (piped ? 1 : 0) < 1) throw new ExecError(`wrong number of args for ${head.name}: want at least 1 got 0`);
        for (const a of rest) {
          last = this.arg(a, dot, vars, text);
          if (truth(last) === want) return last;
        }
        if (piped) last = piped.value;
        return last;
      }
      const args = c.args.slice(1).map((a) => this.arg(a, dot, vars, text));
      if (piped) args.push(piped.value);
      checkArity(head.name, args.length);
      return fn(...args);
    } catch (err) {
      if (err instanceof ExecError) {
        const msg = err.message.startsWith('error calling') ? err.message : `error calling ${head.name}: ${err.message}`;
        throw this.fail(head.pos, at, msg);
      }
      throw err;
    }
  }

  private arg(a: Arg, dot: unknown, vars: [string, unknown][], text: string): unknown {
    switch (a.t) {
      case 'lit':
        return a.value;
      case 'dot':
        return dot;
      case 'ident':
        // a function with no arguments used as an operand: call it
        checkArity(a.name, 0);
        return FUNCS[a.name]!();
      case 'field':
        return this.chain(dot, a.chain, a.pos);
      case 'var': {
        let found: [string, unknown] | undefined;
        for (let i = vars.length - 1; i >= 0; i--) {
          if (vars[i]![0] === a.name) {
            found = vars[i];
            break;
          }
        }
        if (!found) throw new TemplateError(`template parsing error: template: :${lineOf(this.source, a.pos)}: undefined variable "${a.name}"`);
        return this.chain(found[1], a.chain, a.pos);
      }
      case 'sub':
        return this.chain(this.pipe(a.pipe, dot, vars), a.chain, a.pos);
    }
  }

  private chain(v: unknown, chain: string[], pos: number): unknown {
    let cur = v;
    for (const key of chain) {
      if (cur && typeof cur === 'object' && !Array.isArray(cur)) {
        if (Object.hasOwn(cur, key)) cur = (cur as Record<string, unknown>)[key];
        else if (this.opts.missing === 'error') throw this.fail(pos, `.${key}`, `can't evaluate field ${key}`);
        else cur = undefined;
      } else if (cur === undefined || cur === null) {
        if (this.opts.missing === 'error') throw this.fail(pos, `.${key}`, `nil pointer evaluating .${key}`);
        cur = undefined;
      } else {
        throw this.fail(pos, `.${key}`, `can't evaluate field ${key} in type ${typeName(cur)}`);
      }
    }
    return cur;
  }
}

const ARITY: Record<string, [number, number]> = {
  not: [1, 1], len: [1, 1], index: [1, Infinity], slice: [1, 3], printf: [1, Infinity], eq: [2, Infinity], ne: [2, 2],
  lt: [2, 2], le: [2, 2], gt: [2, 2], ge: [2, 2], json: [1, 1], split: [2, 2], join: [2, 2], title: [1, 1], lower: [1, 1],
  upper: [1, 1], pad: [3, 3], truncate: [2, 2],
};

function checkArity(name: string, n: number): void {
  const a = ARITY[name];
  if (!a) return;
  if (n < a[0] || n > a[1]) {
    throw new ExecError(`wrong number of args for ${name}: want ${a[0] === a[1] ? a[0] : `at least ${a[0]}`} got ${n}`);
  }
}

// Parse once, then execute for each item.
export function compileTemplate(source: string, opts: TemplateOptions = {}): Template {
  return new Template(source, opts);
}

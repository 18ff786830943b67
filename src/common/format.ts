import type { Template, TemplateOptions } from './template.js';

// Docker's ways of printing sizes, ages and tables (go-units, text/tabwriter), shared by every
// verb: one way to write a size, an age or a table everywhere.

// units.HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits (Docker's listings).
// With precision 4 it is units.HumanSize (Docker's progress, system df).
export function humanSize(bytes: number, precision = 3): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(precision))}${units[i]}`;
}

// units.HumanDuration.
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3600000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t) || t <= 0) return 'N/A';
  return `${humanDuration(Math.max(0, now - t))} ago`;
}

// Go's text/tabwriter as Docker sets it up (minwidth 10, padding 3, spaces): cells end at a tab;
// a column is as wide as its widest cell in each run of lines that have it; the text after the
// last tab of a line is not padded.
export function tabwrite(text: string, minwidth = 10, padding = 3): string {
  const trailing = text.endsWith('\n');
  const lines = (trailing ? text.slice(0, -1) : text).split('\n').map((l) => l.split('\t'));
  const widths: number[][] = lines.map(() => []);
  const width = (s: string) => [...s].length;
  const column = (from: number, to: number, col: number): void => {
    let i = from;
    while (i < to) {
      if (lines[i]!.length - 1 <= col) {
        i++;
        continue;
      }
      let j = i;
      let w = minwidth;
      while (j < to && lines[j]!.length - 1 > col) {
        w = Math.max(w, width(lines[j]![col]!) + padding);
        j++;
      }
      for (let k = i; k < j; k++) widths[k]![col] = w;
      column(i, j, col + 1);
      i = j;
    }
  };
  column(0, lines.length, 0);
  const out = lines.map((cells, n) => cells.map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(Math.max(0, widths[n]![i]! - width(c))))).join(''));
  return out.join('\n') + (trailing ? '\n' : '');
}

// Rows of cells as Docker's tables print them: each line through tabwrite.
export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  return tabwrite(rows.map((r) => `${r.map((c) => c.replace(/[\t\n]/g, ' ')).join('\t')}\n`).join(''));
}

// stringutils.Ellipsis: at most n characters, the last one '…' when cut.
export function ellipsis(s: string, n: number): string {
  const chars = [...s];
  if (chars.length <= n) return s;
  return `${chars.slice(0, n - 1).join('')}…`;
}

// ---- --format for the listing commands (images, ps, history, volume ls, ...)

// As Docker's listing formats: 'table' dropped, spaces trimmed, and the two-character \t and \n
// that a shell passes through single quotes made a tab and a newline.
export function compileListFormat(format: string): Promise<Template> {
  return parseTemplate(listFormatBody(format), { missing: 'error' });
}

function listFormatBody(format: string): string {
  return (format.startsWith('table') ? format.slice('table'.length) : format).trim().replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

// The template engine loads only when a command has a template to run (startup stays small).
export async function parseTemplate(source: string, opts: TemplateOptions = {}): Promise<Template> {
  const { compileTemplate } = await import('./template.js');
  return compileTemplate(source, opts);
}

// A template of plain text and {{.Field}} actions only (every default table): run without the
// engine. Returns undefined for anything else.
function plainFields(body: string): ((row: object) => string) | undefined {
  if (!/^([^{}]|\{\{\.[A-Za-z_][A-Za-z0-9_]*\}\})*$/.test(body)) return undefined;
  return (row) => body.replace(/\{\{\.([A-Za-z_][A-Za-z0-9_]*)\}\}/g, (_m, k: string) => String((row as Record<string, unknown>)[k]));
}

export interface ListFormat<T> {
  // Docker's default table, e.g. 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}'
  table: string;
  // the column header of each field, e.g. { ID: 'IMAGE ID', Repository: 'REPOSITORY' }
  headers: Record<string, string>;
  // what --format json prints for a row (default: the row itself)
  json?: (row: T) => unknown;
}

// Docker's --format: '' or 'table' -> the default table; 'json' -> one JSON object a line;
// 'table TEMPLATE' -> a header line, then a line per row, through tabwrite; otherwise the
// template once per row, each followed by a newline. Unknown fields are an error, as for
// Docker's listing contexts.
export async function renderList<T extends object>(format: string | undefined, rows: T[], spec: ListFormat<T>): Promise<string> {
  const f = format ?? '';
  if (f === 'json') return rows.map((r) => `${JSON.stringify(spec.json ? spec.json(r) : r)}\n`).join('');
  const isTable = f === '' || f.startsWith('table');
  const body = listFormatBody(f === '' || f === 'table' ? spec.table : f);
  const fast = f === '' || f === 'table' ? plainFields(body) : undefined;
  const run = fast ?? ((tpl) => (row: object) => tpl.execute(row))(await parseTemplate(body, { missing: 'error' }));
  let out = '';
  if (isTable) {
    // the header: the same template run on the field names' headers
    const header = new Proxy({} as Record<string, string>, {
      get: (_t, k) => (typeof k === 'string' ? (spec.headers[k] ?? k.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase()) : undefined),
      has: () => true,
      getOwnPropertyDescriptor: (_t, k) => ({ configurable: true, enumerable: true, value: typeof k === 'string' ? (spec.headers[k] ?? k.toUpperCase()) : undefined }),
      ownKeys: () => Object.keys(spec.headers),
    });
    out += `${run(header)}\n`;
  }
  for (const r of rows) out += `${run(r)}\n`;
  return isTable ? tabwrite(out) : out;
}

// units.BytesSize: binary units, 4 significant digits (Docker's "Total Memory: 3.842GiB").
export function bytesSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

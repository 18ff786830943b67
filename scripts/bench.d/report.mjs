// Turns the collected results into the markdown tables the bench prints and saves.
import { median } from './lib.mjs';

function fmtSecs(x) {
  if (x == null) return '';
  if (x < 0.01) return x.toFixed(4);
  if (x < 1) return x.toFixed(3);
  if (x < 100) return x.toFixed(2);
  return x.toFixed(1);
}
function fmtRatio(x) {
  if (x == null || !Number.isFinite(x)) return '';
  return x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : x.toFixed(0);
}

function table(header, rows) {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join(' | ')} |`;
  return [line(header), `|${w.map((n, i) => (i === 0 ? ':' : '') + '-'.repeat(n + 1) + (i === 0 ? '' : ':')).join('|')}|`,
    ...rows.map(line)].join('\n');
}

/** The one cell text for contender c on step s: median seconds, or n/a / FAIL with a short reason. */
function cell(R, stepId, c) {
  const res = R.cells[stepId]?.[c];
  if (!res) return '';
  if (res.unavailable) return `n/a (${res.short})`;
  if (res.fail) return `FAIL (${res.short})`;
  return fmtSecs(res.median);
}

export function medianOf(res) {
  return res && !res.fail && !res.unavailable && res.runs.length ? median(res.runs.map((r) => r.secs)) : null;
}

export function render(R) {
  const others = R.contenders.filter((c) => c !== 'plain');
  const header = ['row', ...(R.contenders.includes('plain') ? ['plain s'] : [])];
  for (const c of others) header.push(`${c} s`, '×plain');
  const vs = others.includes('ufs') && others.includes('fuse-overlayfs');
  if (vs) header.push('ufs/fuse-ovl');

  const rows = R.steps.map((st) => {
    const plain = R.cells[st.id]?.plain?.median ?? null;
    const row = [st.label];
    if (R.contenders.includes('plain')) row.push(cell(R, st.id, 'plain'));
    for (const c of others) {
      const m = R.cells[st.id]?.[c]?.median ?? null;
      row.push(cell(R, st.id, c), m != null && plain ? fmtRatio(m / plain) : '');
    }
    if (vs) {
      const u = R.cells[st.id]?.ufs?.median, f = R.cells[st.id]?.['fuse-overlayfs']?.median;
      row.push(u != null && f != null ? `${fmtRatio(u / f)} ${u < f ? '✓' : '✗'}` : '');
    }
    return row;
  });

  const out = [];
  out.push(`## Union filesystems: median seconds of ${R.runs} run${R.runs > 1 ? 's' : ''} (lower is better)`, '');
  out.push(`Stack (${R.mode}): ${R.stackText}. ×plain = time / plain directory's time` +
    (vs ? '; ufs/fuse-ovl < 1 (✓) means ufs beat fuse-overlayfs.' : '.'), '');
  out.push(table(header, rows), '');

  // FUSE contenders that served at least one row (one that never mounted has nothing to say).
  const fuse = R.contenders.filter((c) => R.servers[c] && R.steps.some((st) => R.cells[st.id]?.[c]?.runs?.length));
  if (fuse.length) {
    out.push('### FUSE server processes', '');
    const cpuHeader = ['row', ...fuse.map((c) => `${c} CPU s`)];
    const cpuRows = R.steps.map((st) => [st.label, ...fuse.map((c) => {
      const res = R.cells[st.id]?.[c];
      const cpus = (res?.runs ?? []).map((r) => r.cpu).filter((x) => x != null);
      return cpus.length && !res.fail ? median(cpus).toFixed(2) : '';
    })]);
    cpuRows.push(['peak RSS MiB (max VmHWM over all mounts)', ...fuse.map((c) => {
      const k = R.servers[c].peakRssKiB;
      return k ? (k / 1024).toFixed(1) : 'n/a';
    })]);
    out.push('Server CPU time (user+sys, median) spent during each row, and the peak RSS of the server:', '');
    out.push(table(cpuHeader, cpuRows), '');
  }

  if (R.notes.length) {
    out.push('Notes:', '');
    for (const n of R.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}

// Runs the ava suite (already compiled to dist/) and ends with the plain totals line
// `N passed, N failed` that CI reads. Extra args go to ava (e.g. a file glob).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ava = path.join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const child = spawn(process.execPath, [ava, '--tap', ...process.argv.slice(2)], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'inherit'],
});

let passed = 0;
let failed = 0;
let skipped = 0;
// test.failing() tests that fail as expected come out as plain `ok` in ava's TAP; their titles
// start with "known defect:" so they are counted apart, not as passes.
const known = [];
const lines = createInterface({ input: child.stdout });
lines.on('line', (line) => {
  process.stdout.write(`${line}\n`);
  if (/^not ok \d+/.test(line)) {
    if (/# TODO/.test(line)) skipped++;
    else failed++;
  } else if (/^ok \d+/.test(line)) {
    if (/# SKIP/.test(line)) skipped++;
    else if (/ known defect: /.test(line)) known.push(line.replace(/^ok \d+ - /, ''));
    else passed++;
  }
});

child.on('close', (code, signal) => {
  for (const k of known) process.stdout.write(`\nknown defect, failing as expected (not counted as passed): ${k}`);
  const notRun = skipped + known.length;
  const totals = `${passed} passed, ${failed} failed` + (notRun ? `, ${notRun} skipped` : '');
  process.stdout.write(`\n${totals}\n`);
  if (signal) process.exit(1);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});

#!/usr/bin/env node
// The ufs command. It runs the CLI bundled by scripts/bundle-cli.mjs (dist/ufs.cjs) through
// vm.Script with a V8 code cache, so a command compiles almost nothing before it runs;
// without the bundle it runs the unbundled dist/src/cli/main.js.
//
// The build's cache (dist/ufs.cjs.cache: what `ufs --help` compiles, the command tree) and
// one per verb beside it, named after the bundle's mtime and size (a rebuilt bundle never
// meets an old one): the first successful run of a verb (`run`, `ps`, ...) runs without a
// cache and writes at exit what it compiled, so from then on that verb's own code (a
// container's whole start, say) is not compiled again at every start, and no verb loads
// another's functions. Nothing is written when dist/ is not writable.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const bundle = path.join(dist, 'ufs.cjs');
const buildCache = `${bundle}.cache`;

let source;
let stamp;
try {
  const fd = fs.openSync(bundle, 'r');
  try {
    const st = fs.fstatSync(fd);
    stamp = `${Math.trunc(st.mtimeMs)}-${st.size}`;
    source = fs.readFileSync(fd, 'latin1'); // esbuild writes ASCII
  } finally {
    fs.closeSync(fd);
  }
} catch {
  import(require('node:url').pathToFileURL(path.join(dist, 'src', 'cli', 'main.js')).href);
  return;
}
const vm = require('node:vm');
const writeCache = process.env.UFS_WRITE_CODE_CACHE;
delete process.env.UFS_WRITE_CODE_CACHE; // not for the processes the command starts
// The verb: the first word that is not an option (`ufs --root DIR run` trains nothing).
const verb = process.argv.slice(2).find((a) => !a.startsWith('-'));
const verbCache = verb && /^[a-z][a-z-]{0,19}$/.test(verb) && process.execArgv.length === 0 ? path.join(dist, `ufs.cjs.${stamp}.${verb}.cache`) : undefined;

function readOr(file) {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined; // none: V8 compiles as it goes
  }
}

let cachedData;
let training = false;
if (!writeCache) {
  cachedData = verbCache ? readOr(verbCache) : undefined;
  if (verbCache && !cachedData) {
    try {
      fs.accessSync(dist, fs.constants.W_OK);
      training = true;
    } catch {
      // not ours to write: the build's cache
    }
  }
  if (!cachedData && !training) cachedData = readOr(buildCache);
}
// scripts/bundle-cli.mjs writes the bundle as a function already: compiled as read (the
// text is not copied into a wrapper).
const WRAPPER = '(function (exports, require, module, __filename, __dirname) {';
const script = new vm.Script(source.startsWith(WRAPPER) ? source : `${WRAPPER}${source}\n})`, {
  filename: bundle,
  cachedData,
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});

if (writeCache) process.once('exit', () => fs.writeFileSync(writeCache, script.createCachedData()));
else if (script.cachedDataRejected) {
  if (process.env.UFS_DEBUG) process.stderr.write('ufs: code cache rejected\n');
  // Made under other V8 flags, or damaged: the verb trains again next time.
  if (verbCache) fs.rmSync(verbCache, { force: true });
} else if (training) {
  process.once('exit', (code) => {
    if (code !== 0) return;
    // Atomically: a concurrent command reads the whole file or none.
    const tmp = `${verbCache}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, verbCache);
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  });
}
const mod = { exports: {} };
script.runInThisContext()(mod.exports, require, mod, bundle, dist);

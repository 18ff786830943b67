#!/usr/bin/env node
// The ufs command. It runs the CLI bundled by scripts/bundle-cli.mjs (dist/ufs.cjs) through
// vm.Script with a V8 code cache, so a command compiles almost nothing before it runs;
// without the bundle it runs the unbundled dist/src/cli/main.js.
//
// Two caches: the build's (dist/ufs.cjs.cache, what `ufs --help` compiles: the command tree)
// and a trained one beside it, named after the bundle's mtime and size (so a rebuilt bundle
// never meets an old one). The first successful run of each verb (`run`, `ps`, ...) writes
// the trained cache anew at exit with everything compiled so far, previous verbs' functions
// included: from then on that verb's own code (the container's start, say) is not compiled
// again at every start. Nothing is trained when dist/ is not writable.
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
const trainedCache = path.join(dist, `ufs.cjs.${stamp}.cache`);
const trainedVerbs = `${trainedCache}.verbs`;

function readOr(file, fallback) {
  try {
    return fs.readFileSync(file);
  } catch {
    return fallback;
  }
}

let cachedData;
let trained = false;
if (!writeCache) {
  cachedData = readOr(trainedCache, undefined);
  trained = cachedData !== undefined;
  cachedData ??= readOr(buildCache, undefined); // none: V8 compiles as it goes
}
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  cachedData,
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});

// Atomically, so that a concurrent command reads the old file or the new one.
function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

if (writeCache) process.once('exit', () => fs.writeFileSync(writeCache, script.createCachedData()));
else if (script.cachedDataRejected) {
  if (process.env.UFS_DEBUG) process.stderr.write('ufs: code cache rejected\n');
  // Made under other V8 flags, or damaged: the build's cache serves until a verb trains again.
  if (trained && process.execArgv.length === 0) fs.rmSync(trainedVerbs, { force: true });
} else if (process.execArgv.length === 0) {
  // The verb: the first word that is not an option (`ufs --root DIR run` trains nothing).
  const verb = process.argv.slice(2).find((a) => !a.startsWith('-'));
  const verbs = trained ? String(readOr(trainedVerbs, '')).split('\n').filter(Boolean) : [];
  if (verb && /^[a-z][a-z-]{0,19}$/.test(verb) && !verbs.includes(verb)) {
    process.once('exit', (code) => {
      if (code !== 0) return;
      try {
        fs.accessSync(dist, fs.constants.W_OK);
      } catch {
        return;
      }
      writeAtomic(trainedCache, script.createCachedData());
      writeAtomic(trainedVerbs, `${[...verbs, verb].join('\n')}\n`);
    });
  }
}
const mod = { exports: {} };
script.runInThisContext()(mod.exports, require, mod, bundle, dist);

#!/usr/bin/env node
// The ufs command. It runs the CLI bundled by scripts/bundle-cli.mjs (dist/ufs.cjs) through
// vm.Script with the V8 code cache made at build time, so a command compiles almost nothing
// before it runs; without the bundle it runs the unbundled dist/src/cli/main.js.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const bundle = path.join(dist, 'ufs.cjs');
const cacheFile = `${bundle}.cache`;

let source;
try {
  source = fs.readFileSync(bundle, 'latin1'); // esbuild writes ASCII
} catch {
  import(require('node:url').pathToFileURL(path.join(dist, 'src', 'cli', 'main.js')).href);
  return;
}
const vm = require('node:vm');
const writeCache = process.env.UFS_WRITE_CODE_CACHE;
delete process.env.UFS_WRITE_CODE_CACHE; // not for the processes the command starts
let cachedData;
if (!writeCache) {
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // no cache: V8 compiles as it goes
  }
}
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  cachedData,
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
if (writeCache) process.once('exit', () => fs.writeFileSync(writeCache, script.createCachedData()));
else if (script.cachedDataRejected && process.env.UFS_DEBUG) process.stderr.write('ufs: code cache rejected\n');
const mod = { exports: {} };
script.runInThisContext()(mod.exports, require, mod, bundle, dist);

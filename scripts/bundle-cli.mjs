#!/usr/bin/env node
// scripts/bundle-cli.mjs: the CLI as one CommonJS file (dist/ufs.cjs) plus a V8 code cache for
// it (dist/ufs.cjs.cache), which bin/ufs.cjs loads. Run by `npm run build` after tsc.
//
// Why: a command that touches no container must start within 50 ms of `node -e 0`. An ESM
// entry makes Node load its ESM loader, and each of ~170 modules is resolved, read and compiled
// on every run; Node 20 keeps no compile cache for either. One CommonJS file compiled through
// vm.Script with cachedData skips all three. Modules are still evaluated lazily: what main.ts
// imports with import() runs only when a verb needs it.
//
// What the bundle changes, and how it is kept equivalent to dist/src:
// - import.meta.url of each module becomes the URL of that module's file under dist/src, so
//   paths computed from it (the project root, native addons, the mount server, workers) are
//   the same as in the unbundled build.
// - `import x from 'node:fs'` would copy every property of the builtin into a new object in
//   each importing module (esbuild's interop); builtins are instead shared objects whose
//   prototype is the builtin itself.
// - src/image/native.ts loads the native addon with a top-level await, which CommonJS cannot
//   have; the bundle loads it with require() (the addon is a synchronous require either way).
//
// Without esbuild installed (node_modules from before it was a devDependency) this prints a
// warning and exits 0: bin/ufs.cjs then runs dist/src/cli/main.js.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outFile = path.join(repo, 'dist', 'ufs.cjs');
const cacheFile = `${outFile}.cache`;

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle-cli: esbuild is not installed (npm install): bin/ufs.cjs will run dist/src/cli/main.js unbundled\n');
  process.exit(0);
}

// Builtins that no command needs before it does its work; each pulls in more of Node's own
// modules, which are compiled at every start (about 1 ms each here).
const LAZY_BUILTINS = new Set(['node:child_process', 'node:crypto', 'node:dgram', 'node:dns', 'node:http', 'node:https', 'node:net', 'node:os', 'node:readline', 'node:stream', 'node:stream/promises', 'node:tty', 'node:util', 'node:worker_threads', 'node:zlib', 'node:fs/promises', 'node:timers/promises', 'node:string_decoder', 'node:vm', 'node:v8', 'node:perf_hooks']);
const builtinModule = createRequire(import.meta.url);

const COMMANDER_CHILD = "const childProcess = require('node:child_process');";
const TLA_NATIVE = "(await import('../sys/index.js'))";

const ufsPlugin = {
  name: 'ufs',
  setup(build) {
    // commander through require() (src/cli/commander.ts does the same with createRequire).
    build.onResolve({ filter: /^\.\/commander\.js$/ }, (args) =>
      args.importer.startsWith(path.join(repo, 'src', 'cli')) ? { path: 'commander', namespace: 'ufs-commander' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'ufs-commander' }, () => ({
      contents: "export const { Argument, Command, CommanderError, Option } = require('commander');",
      resolveDir: repo,
      loader: 'js',
    }));
    // src/ imports its siblings as './x.js'; the sources are './x.ts'.
    build.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      const ts = path.join(args.resolveDir, args.path.replace(/\.js$/, '.ts'));
      return fs.existsSync(ts) ? { path: ts } : undefined;
    });
    // Node's builtins, one shared object each (see the header).
    build.onResolve({ filter: /^node:/ }, (args) =>
      args.importer.endsWith('.ts') ? { path: args.path, namespace: 'ufs-builtin' } : { path: args.path, external: true },
    );
    build.onLoad({ filter: /.*/, namespace: 'ufs-builtin' }, (args) => {
      const name = JSON.stringify(args.path);
      if (!LAZY_BUILTINS.has(args.path)) {
        return { contents: `const m = require(${name}); const e = Object.create(m); e.__esModule = true; e.default = m; module.exports = e;`, loader: 'js' };
      }
      // loaded at its first use, not when a module that imports it is evaluated
      const keys = JSON.stringify(Object.keys(builtinModule(args.path)));
      return {
        contents: `let m; const load = () => (m ??= require(${name})); const e = { __esModule: true };
for (const k of ${keys}) Object.defineProperty(e, k, { get: () => load()[k], enumerable: true });
Object.defineProperty(e, 'default', { get: load, enumerable: true }); module.exports = e;`,
        loader: 'js',
      };
    });
    // commander loads child_process (and with it net, dgram, ...) for executable subcommands,
    // which ufs has none of: it is required when first used instead.
    build.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const text = await fs.promises.readFile(args.path, 'utf8');
      if (!text.includes(COMMANDER_CHILD)) throw new Error(`${args.path} no longer has ${COMMANDER_CHILD}: update scripts/bundle-cli.mjs`);
      return { contents: text.replace(COMMANDER_CHILD, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: 'js' };
    });
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      let text = await fs.promises.readFile(args.path, 'utf8');
      const rel = path.relative(repo, args.path);
      if (rel === path.join('src', 'image', 'native.ts')) {
        if (!text.includes(TLA_NATIVE)) throw new Error(`${rel} no longer has ${TLA_NATIVE}: update scripts/bundle-cli.mjs`);
        text = text.replace(TLA_NATIVE, "require('../sys/index.js')");
      }
      if (text.includes('import.meta.url')) {
        const distFile = path.relative(path.dirname(outFile), path.join(repo, 'dist', rel.replace(/\.ts$/, '.js')));
        text = text.replaceAll('import.meta.url', `__ufsDistUrl(${JSON.stringify(distFile)})`);
      }
      return { contents: text, loader: 'ts' };
    });
  },
};

await esbuild.build({
  entryPoints: [path.join(repo, 'src', 'cli', 'main.ts')],
  outfile: outFile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  minifyIdentifiers: true, // a smaller source to read and hash at every start; names are in dist/ufs.cjs.map
  sourcemap: 'linked',
  external: ['node-pty', '*.node'],
  plugins: [ufsPlugin],
  banner: { js: "const __ufsDistUrl = (rel) => require('node:url').pathToFileURL(require('node:path').join(__dirname, rel)).href;" },
  logLevel: 'warning',
});

// The bundle is a CommonJS module body: bin/ufs.cjs compiles it as a function. The file
// holds that function already (on the first line, before the comment that takes main.ts's
// '#!' line, so the source map's lines stay), so that bin/ufs.cjs compiles the text as read:
// wrapping it there would copy the whole source once more at every start.
const BUNDLE_WRAPPER = ['(function (exports, require, module, __filename, __dirname) {', '\n})'];
fs.writeFileSync(outFile, BUNDLE_WRAPPER[0] + fs.readFileSync(outFile, 'latin1').replace(/^#!.*/, '//') + BUNDLE_WRAPPER[1], 'latin1');

// The code cache: what V8 compiled while the whole command tree was built and its help
// printed (`ufs --help` registers every family), taken by bin/ufs.cjs at exit.
fs.rmSync(cacheFile, { force: true });
const r = spawnSync(process.execPath, [path.join(repo, 'bin', 'ufs.cjs'), '--help'], {
  env: { ...process.env, UFS_WRITE_CODE_CACHE: cacheFile },
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (r.status !== 0 || !fs.existsSync(cacheFile)) {
  process.stderr.write(`bundle-cli: making the code cache failed (status ${r.status}); bin/ufs.cjs compiles without it\n`);
}

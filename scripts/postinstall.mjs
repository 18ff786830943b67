// Runs after `npm install`/`npm ci`: applies our patches to dependencies (tar-stream) and
// builds native/ (our libfuse3 binding, ufs-init, the system-call addon).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nodeGyp = path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const quiet = !process.stdout.isTTY;

// Build against the installed Node headers (Debian's nodejs ships them in /usr/include/node);
// node-gyp would otherwise try to download them, and the network may not allow it.
const gypArgs = ['rebuild'];
if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) gypArgs.push('--nodedir=/usr');
if (quiet) gypArgs.push('--loglevel=warn');

function run(cmd, args, cwd = root) {
  execFileSync(cmd, args, { cwd, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });
}

const patchDir = path.join(root, 'native', 'patches');
if (existsSync(patchDir) && readdirSync(patchDir).some((f) => f.endsWith('.patch'))) {
  // --error-on-fail: a patch that does not apply must stop the install (patch-package only
  // fails on its own on CI), never leave an unpatched dependency behind.
  run(process.execPath, [path.join(root, 'node_modules', 'patch-package', 'index.js'), '--patch-dir', 'native/patches', '--error-on-fail']);
}

if (existsSync(path.join(root, 'native', 'binding.gyp'))) {
  run(process.execPath, [nodeGyp, ...gypArgs], path.join(root, 'native'));
}

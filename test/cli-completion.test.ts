// The zsh completion script (`ufs completion zsh`), run in a real zsh: its _ufs function is
// called as the completion system would call it (words, CURRENT, PREFIX set), with compadd,
// _describe and _files standing in for the system's builtins by printing what they were
// given, which the test then filters by the prefix as zsh would.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { CLI, imageEnv, run } from './helpers/images.js';

const hasZsh = fs.existsSync('/usr/bin/zsh') || fs.existsSync('/bin/zsh');

test('zsh completion from the command tree: commands, families, options, names, files', async (t) => {
  if (!hasZsh) return t.fail('zsh is not installed (scripts/setup installs it)');
  const e = await imageEnv(t);
  await e.ok(['inspect', '-f', '{{.Id}}', 'busybox']);
  await e.ok(['volume', 'create', 'vol-one']);
  const script = path.join(e.dir, '_ufs');
  fs.writeFileSync(script, await e.ok(['completion', 'zsh']));
  const bin = path.join(e.dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'ufs'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
  const stubs = [
    'compdef() { :; }',
    'compadd() { while [[ $# -gt 0 && "$1" != "--" ]]; do shift; done; shift; print -rl -- "$@"; }',
    '_describe() { setopt localoptions noksharrays; local -a items; items=("${(@P)${@[-1]}}"); print -rl -- "${items[@]%%:*}"; }',
    '_files() { print -r -- "<files>"; }',
  ].join('\n');
  const complete = async (line: string): Promise<string[]> => {
    const words = line.split(' ');
    const prefix = words[words.length - 1]!;
    const prog = `${stubs}\nsource "$1"\nwords=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; PREFIX='${prefix}'\n_ufs`;
    const r = await run('zsh', ['-f', '-c', prog, 'zsh', script], { env: { ...e.env, PATH: `${bin}:${process.env.PATH}` } });
    t.is(r.stderr, '', line);
    t.is(r.code, 0, line);
    return r.stdout.split('\n').filter((w) => w && (w === '<files>' || w.startsWith(prefix))).sort();
  };
  t.deepEqual(await complete('ufs ima'), ['image', 'images']);
  t.deepEqual(await complete('ufs cr'), ['create']);
  t.deepEqual(await complete('ufs container l'), ['list', 'logs', 'ls']);
  t.deepEqual(await complete('ufs image l'), ['layers', 'list', 'load', 'ls']);
  t.deepEqual(await complete('ufs --root /x sys'), ['system']);
  t.deepEqual(await complete('ufs images --fo'), ['--format']);
  t.deepEqual(await complete('ufs logs --t'), ['--tail', '--timestamps']);
  t.deepEqual(await complete('ufs cp -'), ['--archive', '--follow-link', '--help', '--quiet', '-L', '-a', '-h', '-q'].filter((o) => o !== '-h'));
  t.deepEqual(await complete(`ufs --root ${e.root} history bu`), ['busybox:latest']);
  t.deepEqual(await complete(`ufs --root ${e.root} volume rm vol`), ['vol-one']);
  t.deepEqual(await complete('ufs completion '), ['bash', 'zsh']);
  t.deepEqual(await complete(`ufs load -i ${e.dir}/x`), ['<files>'], 'a value option completes file names');
});

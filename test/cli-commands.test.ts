// The command line as a Docker user drives it: --format and inspect -f templates, images
// filters, history -H=false, version/info/system df, inspect of containers and images, unknown
// commands, exit codes, a reader that goes away (broken pipe), Ctrl-C in the middle of a load,
// and the bash completion script loaded into a real bash.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { CLI, dockerArchive, imageEnv, type ImageEnv, rawTar, run } from './helpers/images.js';

const base = rawTar([{ name: 'etc/', type: '5' }, { name: 'etc/base', content: 'base\n' }]);
const topA = rawTar([{ name: 'a', content: 'a'.repeat(3000) }]);
const topB = rawTar([{ name: 'b', content: 'b'.repeat(5000) }]);

// app:a (2020, labelled) and app:b (2021): two images sharing a base layer.
async function loadTwo(e: ImageEnv): Promise<void> {
  const archive = path.join(e.dir, 'two.tar');
  fs.writeFileSync(
    archive,
    dockerArchive([
      { layers: [base, topA], tags: ['app:a', 'other/thing:v1'], config: { created: '2020-01-01T00:00:00Z', config: { Labels: { tier: 'web', team: 'x' } }, history: [{ created: '2020-01-01T00:00:00Z', created_by: 'ADD base' }, { created: '2020-01-01T00:00:00Z', created_by: 'ADD a', comment: 'made a' }] } },
      { layers: [base, topB], tags: ['app:b'], config: { created: '2021-06-01T00:00:00Z' } },
    ]),
  );
  await e.ok(['load', '-q', '-i', archive]);
}

test('inspect -f: index, range, json, join, if/else, and one-line errors with exit 1', async (t) => {
  const e = await imageEnv(t);
  await loadTwo(e);
  t.is(await e.ok(['inspect', '-f', '{{index .RepoTags 0}}', 'app:a']), 'app:a\n');
  t.is(await e.ok(['inspect', '-f', '{{range .RepoTags}}{{.}} {{end}}', 'app:a']), 'app:a other/thing:v1 \n');
  t.is(await e.ok(['inspect', '-f', '{{join .RepoTags ","}}|{{len .RootFS.Layers}}|{{.Config.Labels.tier}}|{{index .Config.Labels "team"}}', 'app:a']), 'app:a,other/thing:v1|2|web|x\n');
  t.is(await e.ok(['inspect', '-f', '{{if .Config.Labels}}labelled{{else}}plain{{end}}', 'app:a', 'app:b']), 'labelled\nplain\n');
  t.deepEqual(JSON.parse(await e.ok(['inspect', '--format', '{{json .Config.Labels}}', 'app:a'])), { team: 'x', tier: 'web' });
  t.is(await e.ok(['image', 'inspect', '-f', '{{upper .Os}} {{.Architecture | printf "%q"}}', 'app:b']), 'LINUX "amd64"\n');
  for (const bad of ['{{index .RepoTags 0', '{{range .RepoTags}}', '{{nosuch .Id}}']) {
    const r = await e.ufs(['inspect', '-f', bad, 'app:a']);
    t.is(r.code, 1, bad);
    t.is(r.stdout, '', bad);
    t.regex(r.stderr, /^ufs: template parsing error: template: :1: [^\n]+\n$/, bad);
  }
  const exec = await e.ufs(['inspect', '-f', '{{index .RepoTags 7}}', 'app:a']);
  t.is(exec.code, 1);
  t.regex(exec.stderr, /^ufs: template: :1:\d+: executing "" at <index .RepoTags 7>: error calling index: index out of range: 7\n$/);
});

test('images --format (template, table, json), --filter and --no-trunc', async (t) => {
  const e = await imageEnv(t);
  await loadTwo(e);
  t.is(await e.ok(['images', '--format', '{{.Repository}}:{{.Tag}}']), 'app:b\napp:a\nother/thing:v1\n');
  const tbl = await e.ok(['images', '--format', 'table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}']);
  t.is(tbl, 'REPOSITORY    TAG       SIZE\napp           b         5kB\napp           a         3kB\nother/thing   v1        3kB\n');
  const json = (await e.ok(['images', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
  t.deepEqual(json.map((j) => j.Tag), ['b', 'a', 'v1']);
  t.deepEqual(Object.keys(json[0]!).sort(), ['Containers', 'CreatedAt', 'CreatedSince', 'Digest', 'ID', 'Repository', 'SharedSize', 'Size', 'Tag', 'UniqueSize', 'VirtualSize']);
  t.regex(json[0]!.CreatedAt!, /^2021-06-01 00:00:00 \+0000 UTC$/);
  const f = (args: string[]) => e.ok(['images', ...args, '--format', '{{.Repository}}:{{.Tag}}']);
  t.is(await f(['--filter', 'reference=app']), 'app:b\napp:a\n');
  t.is(await f(['--filter', 'reference=*/thing']), 'other/thing:v1\n');
  t.is(await f(['-f', 'reference=app:a']), 'app:a\n');
  t.is(await f(['--filter', 'label=tier']), 'app:a\nother/thing:v1\n');
  t.is(await f(['--filter', 'label=tier=db']), '');
  t.is(await f(['--filter', 'before=app:b']), 'app:a\nother/thing:v1\n');
  t.is(await f(['--filter', 'since=app:a']), 'app:b\n');
  t.is(await f(['--filter', 'dangling=true']), '');
  t.is(await f(['--filter', 'dangling=false', '--filter', 'reference=app']), 'app:b\napp:a\n');
  t.regex(await e.ok(['images', '--no-trunc', '--format', '{{.ID}}', 'app:a']), /^sha256:[0-9a-f]{64}\n$/);
  t.regex(await e.ok(['image', 'ls', '--format', '{{.ID}}', 'app:a']), /^[0-9a-f]{12}\n$/);
  const bad = await e.ufs(['images', '--filter', 'colour=red']);
  t.is(bad.code, 1);
  t.is(bad.stderr, "ufs: invalid filter 'colour'\n");
  const unknownField = await e.ufs(['images', '--format', '{{.Nope}}']);
  t.is(unknownField.code, 1);
  t.regex(unknownField.stderr, /can't evaluate field Nope/);
  // both of app:a's names move to app:b's image: app:a's image is left dangling
  await e.ok(['tag', 'app:b', 'app:a']);
  await e.ok(['tag', 'app:b', 'other/thing:v1']);
  t.regex(await e.ok(['images', '--filter', 'dangling=true', '--format', '{{.Repository}}:{{.Tag}} {{.Size}}']), /^<none>:<none> 3kB\n$/);
});

test('history: -H=false prints bytes and RFC 3339 times; --format', async (t) => {
  const e = await imageEnv(t);
  await loadTwo(e);
  const plain = (await e.ok(['history', '-H=false', 'app:a'])).trim().split('\n');
  t.regex(plain[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  t.regex(plain[1]!, /^[0-9a-f]{12}\s+2020-01-01T00:00:00Z\s+ADD a\s+3000\s+made a$/);
  t.regex(plain[2]!, /^<missing>\s+2020-01-01T00:00:00Z\s+ADD base\s+\d+\s*$/);
  t.regex(await e.ok(['history', '--human=false', 'app:a']), /\s3000\s/);
  t.regex(await e.ok(['history', 'app:a']), /\d+ years ago\s+ADD a\s+3kB\s+made a/);
  t.regex(await e.ok(['history', '--format', '{{.CreatedBy}}={{.Size}}', 'app:a']), /^ADD a=3kB\nADD base=\d+B\n$/);
  t.is((await e.ufs(['history', '-H=maybe', 'app:a'])).code, 1);
});

test('version, --version, info and system df, with --format', async (t) => {
  const e = await imageEnv(t);
  await loadTwo(e);
  const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(CLI), '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  t.is(await e.ok(['--version']), `ufs version ${pkg.version}\n`);
  t.is(await e.ok(['-v']), `ufs version ${pkg.version}\n`);
  t.regex(await e.ok(['version']), new RegExp(`^Client:\\n Version:\\s+${pkg.version}\\n Node version:\\s+v\\d+`));
  t.is(await e.ok(['version', '--format', '{{.Client.Version}}']), `${pkg.version}\n`);
  t.is((JSON.parse(await e.ok(['version', '-f', 'json'])) as { Client: { Version: string } }).Client.Version, pkg.version);
  const info = await e.ok(['info']);
  t.regex(info, /\n Images: 2\n/);
  t.regex(info, /\n Storage Driver: ufs \(FUSE\)\n/);
  t.regex(info, new RegExp(`\\n Docker Root Dir: ${e.root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
  t.regex(info, new RegExp(`\\n Kernel Version: ${os.release().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
  t.regex(info, /\n Cgroup Version: [12]\n/);
  t.is(await e.ok(['info', '--format', '{{.Images}} {{.Containers}} {{.Driver}} {{.DockerRootDir}}']), `2 0 ufs (FUSE) ${e.root}\n`);
  t.is(await e.ok(['system', 'info', '-f', '{{.Images}}']), '2\n');
  const df = (await e.ok(['system', 'df'])).split('\n');
  t.regex(df[0]!, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
  // three distinct layers: base (shared, 1536 bytes) + 3000 + 5000... sizes as the store measures them
  t.regex(df[1]!, /^Images\s+2\s+0\s+\S+B\s+\S+B \(100%\)$/);
  t.regex(df[2]!, /^Containers\s+0\s+0\s+0B\s+0B$/);
  t.is(await e.ok(['system', 'df', '--format', '{{.Type}}={{.TotalCount}}']), 'Images=2\nContainers=0\nLocal Volumes=0\nBuild Cache=0\n');
});

test('inspect finds containers and images; --type picks one; errors name the kind', async (t) => {
  const e = await imageEnv(t);
  const name = `cli-inspect-${process.pid}`;
  await e.ok(['run', '--name', name, 'busybox', 'true']);
  t.teardown(() => e.ufs(['rm', '-f', name]).then(() => undefined));
  t.is(await e.ok(['inspect', '-f', '{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{len .Mounts}}', name]), `/${name} exited 0 false 0\n`);
  const id = (await e.ok(['inspect', '--type', 'container', '-f', '{{.Id}}', name])).trim();
  t.regex(id, /^[0-9a-f]{64}$/);
  t.is(await e.ok(['inspect', '-f', '{{.Name}}', id.slice(0, 12)]), `/${name}\n`);
  t.is(await e.ok(['inspect', '-f', '{{index .RepoTags 0}}', 'busybox']), 'busybox:latest\n');
  const both = JSON.parse(await e.ok(['inspect', name, 'busybox'])) as { Id: string }[];
  t.is(both.length, 2);
  t.is(both[0]!.Id, id);
  const notImage = await e.ufs(['inspect', '--type', 'image', name]);
  t.is(notImage.code, 1);
  t.is(notImage.stderr, `ufs: No such image: ${name}:latest\n`);
  const notContainer = await e.ufs(['inspect', '--type', 'container', 'busybox']);
  t.is(notContainer.code, 1);
  t.is(notContainer.stderr, 'ufs: No such container: busybox\n');
  const badType = await e.ufs(['inspect', '--type', 'volume', 'x']);
  t.is(badType.code, 1);
  t.regex(await e.ok(['system', 'df']), /\nContainers\s+1\s+0\s/);
  t.regex(await e.ok(['system', 'prune', '-f']), new RegExp(`^Deleted Containers:\\n${id}\\n\\nTotal reclaimed space: `));
  t.is((await e.ufs(['inspect', name])).code, 1);
});

test('unknown commands: one message, a suggestion only for a likely typo, exit 1', async (t) => {
  const e = await imageEnv(t);
  const typo = await e.ufs(['imagse']);
  t.is(typo.code, 1);
  t.is(typo.stderr, "ufs: 'imagse' is not a ufs command.\nDid you mean 'images'?\nSee 'ufs --help'\n");
  const far = await e.ufs(['frobnicate']);
  t.is(far.code, 1);
  t.is(far.stderr, "ufs: 'frobnicate' is not a ufs command.\nSee 'ufs --help'\n");
  // 'kil' is one letter from kill; 'zz' is two from every command here (ps, rm)
  t.regex((await e.ufs(['kil'])).stderr, /Did you mean 'kill'\?/);
  t.notRegex((await e.ufs(['zz'])).stderr, /Did you mean/);
  const help = await e.ufs(['--help']);
  t.is(help.code, 0);
  for (const c of ['run', 'images', 'image', 'inspect', 'version', 'info', 'system', 'completion', 'mount']) t.regex(help.stdout, new RegExp(`\\n  ${c}[ |]`), c);
  t.is((await e.ufs(['images', '--nope'])).code, 1);
  const bare = await e.ufs([]);
  t.is(bare.code, 0);
  t.is(bare.stdout, help.stdout);
  const helpImages = await e.ufs(['help', 'images']);
  t.is(helpImages.code, 0);
  t.regex(helpImages.stdout, /^Usage: ufs images \[options\] \[reference\]/);
});

// Runs `ufs ARGS | head -c 1` in bash; returns ufs's status and stderr.
async function intoHead(e: ImageEnv, args: string[]): Promise<{ status: number; stderr: string }> {
  const errFile = path.join(e.dir, `stderr-${Math.random().toString(16).slice(2)}`);
  const cmd = `"$0" "$1" --root "$2" ${args.map((a) => `'${a}'`).join(' ')} 2>"$3" | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`;
  const r = await run('bash', ['-c', cmd, process.execPath, CLI, e.root, errFile], { env: e.env });
  return { status: Number(r.stdout.trim()), stderr: fs.readFileSync(errFile, 'utf8') };
}

test('a reader that goes away ends ufs quietly, as it ends Docker (SIGPIPE status 141)', async (t) => {
  const e = await imageEnv(t);
  await loadTwo(e);
  const save = await intoHead(e, ['save', 'busybox']);
  t.is(save.stderr, '');
  t.is(save.status, 141);
  // ~1.5 MB of JSON: more than a pipe holds, so the write fails while head has gone
  const many = await intoHead(e, ['inspect', ...Array<string>(1000).fill('app:a')]);
  t.is(many.stderr, '');
  t.true(many.status === 141 || many.status === 0, String(many.status));
  const small = await intoHead(e, ['images', '--format', 'json']);
  t.is(small.stderr, '');
  t.true(small.status === 141 || small.status === 0);
});

test('Ctrl-C in the middle of a load leaves nothing half-done in the store', async (t) => {
  const e = await imageEnv(t);
  // a large archive: several layers of 40 MB, so the load is still going when SIGINT comes
  const layers = Array.from({ length: 4 }, (_, i) => rawTar([{ name: `big${i}`, content: Buffer.alloc(40 << 20, i + 1) }]));
  const archive = path.join(e.dir, 'big.tar');
  fs.writeFileSync(archive, dockerArchive([{ layers, tags: ['big:1'] }]));
  await e.ok(['images']); // the store exists before the load starts
  const child = spawn(process.execPath, [CLI, '--root', e.root, 'load', '-i', archive], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const tmp = path.join(e.root, 'tmp');
  const ours = () => (fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((n) => n.startsWith(`${child.pid}-`)) : []);
  const deadline = Date.now() + 60_000;
  while (ours().length === 0 && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.true(ours().length > 0, 'the load was writing to tmp/ when interrupted');
  child.kill('SIGINT');
  const { code } = await exited;
  t.is(code, 130);
  t.is(stderr, '');
  t.deepEqual(ours(), [], 'its tmp/ entries are gone');
  t.deepEqual(fs.readdirSync(tmp), []);
  t.is(await e.ok(['images', '--format', '{{.Repository}}']), '');
  // every layer directory present is complete: it has its metadata beside it
  for (const n of fs.readdirSync(path.join(e.root, 'layers')).filter((x) => /^[0-9a-f]{64}$/.test(x))) {
    t.true(fs.existsSync(path.join(e.root, 'layers', `${n}.json`)), n);
  }
  // and the same load then completes
  await e.ok(['load', '-q', '-i', archive]);
  t.is(await e.ok(['images', '--format', '{{.Repository}}:{{.Tag}}']), 'big:1\n');

  // Ctrl-C at save -o: neither the target nor the file being written is left
  const target = path.join(e.dir, 'out.tar');
  const saver = spawn(process.execPath, [CLI, '--root', e.root, 'save', '-o', target, 'big:1'], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let saveErr = '';
  saver.stderr.setEncoding('utf8').on('data', (d: string) => (saveErr += d));
  const saved = new Promise<number | null>((resolve) => saver.on('close', (c) => resolve(c)));
  t.teardown(() => {
    if (saver.exitCode === null && saver.signalCode === null) saver.kill('SIGKILL');
  });
  const partial = `${target}.ufs-${saver.pid}.tmp`;
  const until = Date.now() + 60_000;
  while (!(fs.existsSync(partial) && fs.statSync(partial).size > 0) && saver.exitCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  t.true(fs.existsSync(partial), 'save was writing when interrupted');
  saver.kill('SIGINT');
  t.is(await saved, 130);
  t.is(saveErr, '');
  t.false(fs.existsSync(partial));
  t.false(fs.existsSync(target));
});

test('bash completion from the command tree: commands, subcommands, options, image names', async (t) => {
  const e = await imageEnv(t);
  await loadTwo(e);
  const script = path.join(e.dir, 'ufs.bash');
  fs.writeFileSync(script, await e.ok(['completion', 'bash']));
  const bin = path.join(e.dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'ufs'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
  const complete = async (line: string): Promise<string[]> => {
    const words = line.split(' ');
    const prog = `source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _ufs; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = await run('bash', ['-c', prog, 'bash', script], { env: { ...e.env, PATH: `${bin}:${process.env.PATH}` } });
    t.is(r.stderr, '', line);
    return r.stdout.split('\n').filter(Boolean).sort();
  };
  t.deepEqual(await complete('ufs ima'), ['image', 'images']);
  t.deepEqual(await complete('ufs image l'), ['layers', 'list', 'load', 'ls']);
  t.deepEqual(await complete('ufs --root /x sys'), ['system']);
  t.deepEqual(await complete('ufs images --fo'), ['--format']);
  t.true((await complete('ufs images -')).includes('--filter'));
  t.deepEqual(await complete(`ufs --root ${e.root} history ap`), ['app:a', 'app:b']);
  t.deepEqual(await complete('ufs completion '), ['bash', 'zsh']);
  t.true((await complete(`ufs load -i ${e.dir}/tw`)).includes(`${e.dir}/two.tar`), 'a value option completes file names');
  t.deepEqual(await complete('ufs system '), ['df', 'info', 'prune']);
  await e.ok(['volume', 'create', 'vol-one']);
  t.deepEqual(await complete(`ufs --root ${e.root} volume rm vol`), ['vol-one']);
  // the zsh script is generated from the same tree
  const zsh = await e.ok(['completion', 'zsh']);
  t.regex(zsh, /^#compdef ufs\n/);
  t.regex(zsh, /"image"\) reply=\(.*'ls:list images'/);
  const bad = await e.ufs(['completion', 'fish']);
  t.is(bad.code, 1);
  t.is(bad.stderr, "ufs: command-argument value 'fish' is invalid for argument 'shell'. Allowed choices are bash, zsh.\n");
});

test('mount IMAGE DIR creates DIR; umount removes the temp dir that mount IMAGE made', async (t) => {
  const e = await imageEnv(t);
  const mp = path.join(e.dir, 'not', 'yet');
  await e.ok(['mount', 'busybox', mp]);
  t.teardown(() => run('fusermount', ['-uz', mp]).then(() => undefined));
  t.true(fs.existsSync(path.join(mp, 'bin', 'busybox')));
  await e.ok(['umount', mp]);
  t.deepEqual(fs.readdirSync(mp), [], 'unmounted; a directory the user named stays');
  const temp = (await e.ok(['mount', 'busybox'])).trim();
  t.teardown(() => run('fusermount', ['-uz', temp]).then(() => fs.rmSync(temp, { recursive: true, force: true })));
  t.true(temp.startsWith(path.join(os.tmpdir(), 'ufs-image-')), temp);
  t.true(fs.existsSync(path.join(temp, 'bin', 'busybox')));
  await e.ok(['umount', temp]);
  t.false(fs.existsSync(temp), 'the temp dir is gone');
  const file = path.join(e.dir, 'afile');
  fs.writeFileSync(file, '');
  const r = await e.ufs(['mount', 'busybox', file]);
  t.is(r.code, 1);
  t.is(r.stderr, `ufs: mount: ${file} is not a directory\n`);
});

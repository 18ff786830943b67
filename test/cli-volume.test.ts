// ufs volume create / ls / inspect / rm / prune through the CLI, on a temp store: Docker's
// names, idempotent create, filters and formats, in-use refusal (a real container mounting the
// volume's directory), prune of anonymous volumes only unless -a, and nothing half-made.
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { imageEnv } from './helpers/images.js';

test('create, ls, inspect, rm: names, labels, formats, filters, errors', async (t) => {
  const e = await imageEnv(t);
  t.is(await e.ok(['volume', 'create', 'data1']), 'data1\n');
  t.is(await e.ok(['volume', 'create', '--name', 'data1']), 'data1\n', 'create is idempotent');
  const anon = (await e.ok(['volume', 'create', '-l', 'tier=db', '--label', 'k'])).trim();
  t.regex(anon, /^[0-9a-f]{64}$/);
  t.is(await e.ok(['volume', 'ls']), `DRIVER    VOLUME NAME\n${[anon, 'data1'].sort().map((n) => `local     ${n}\n`).join('')}`);
  t.is(await e.ok(['volume', 'ls', '-q', '--filter', 'label=tier=db']), `${anon}\n`);
  t.is(await e.ok(['volume', 'ls', '-q', '-f', 'name=ata']), 'data1\n');
  t.is(await e.ok(['volume', 'ls', '-q', '-f', 'dangling=false']), '');
  t.is(await e.ok(['volume', 'ls', '--format', '{{.Name}}|{{.Labels}}|{{.Links}}', '-f', 'label=k']), `${anon}|k=,tier=db|0\n`);
  const [v] = JSON.parse(await e.ok(['volume', 'inspect', 'data1'])) as Record<string, unknown>[];
  t.deepEqual(Object.keys(v!).sort(), ['CreatedAt', 'Driver', 'Labels', 'Mountpoint', 'Name', 'Options', 'Scope']);
  t.is(v!.Mountpoint, path.join(e.root, 'volumes', 'data1', '_data'));
  t.true(fs.statSync(v!.Mountpoint as string).isDirectory());
  t.is(await e.ok(['volume', 'inspect', '-f', '{{.Driver}} {{.Scope}} {{.Name}}', 'data1']), 'local local data1\n');
  for (const [args, msg] of [
    [['volume', 'create', 'a/b'], /^ufs: create a\/b: "a\/b" includes invalid characters for a local volume name/],
    [['volume', 'create', '-d', 'nfs', 'x1'], /volume driver "nfs" is not supported/],
    [['volume', 'inspect', 'nope'], /^ufs: get nope: no such volume\n$/],
    [['volume', 'rm', 'nope'], /^ufs: get nope: no such volume\n$/],
    [['volume', 'ls', '-f', 'colour=red'], /^ufs: invalid filter 'colour'\n$/],
  ] as [string[], RegExp][]) {
    const r = await e.ufs(args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, msg, args.join(' '));
  }
  t.is(await e.ok(['volume', 'rm', '-f', 'nope']), 'nope\n');
  fs.writeFileSync(path.join(v!.Mountpoint as string, 'f'), 'x'.repeat(1000));
  t.regex(await e.ok(['system', 'df']), /\nLocal Volumes\s+2\s+0\s+1kB\s+1kB \(100%\)\n/);
  t.is(await e.ok(['volume', 'rm', 'data1', anon]), `data1\n${anon}\n`);
  t.deepEqual(fs.readdirSync(path.join(e.root, 'volumes')), []);
  t.deepEqual(fs.readdirSync(path.join(e.root, 'tmp')), [], 'nothing left in tmp/');
});

test('a volume a container mounts is in use: rm refuses, prune keeps it; prune takes anonymous ones', async (t) => {
  const e = await imageEnv(t);
  await e.ok(['volume', 'create', 'keep']);
  await e.ok(['volume', 'create', 'named']);
  await e.ok(['volume', 'create', '-l', 'com.docker.volume.anonymous=', 'anon1']);
  const mp = (await e.ok(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'keep'])).trim();
  const name = `cli-vol-${process.pid}`;
  await e.ok(['run', '--name', name, '-v', `${mp}:/data`, 'busybox', 'sh', '-c', 'echo hello > /data/greeting']);
  t.teardown(() => e.ufs(['rm', '-f', name]).then(() => undefined));
  t.is(fs.readFileSync(path.join(mp, 'greeting'), 'utf8'), 'hello\n', 'the container wrote into the volume');
  const id = (await e.ok(['inspect', '-f', '{{.Id}}', name])).trim();
  t.is(await e.ok(['inspect', '-f', '{{range .Mounts}}{{.Type}} {{.Source}}:{{.Destination}} {{.RW}}{{end}}', name]), `bind ${mp}:/data true\n`);
  const busy = await e.ufs(['volume', 'rm', 'keep']);
  t.is(busy.code, 1);
  t.is(busy.stderr, `ufs: remove keep: volume is in use - [${id}]\n`);
  t.is(await e.ok(['volume', 'ls', '-q', '-f', 'dangling=false']), 'keep\n');
  t.is(await e.ok(['volume', 'ls', '--format', '{{.Name}}={{.Links}}']), 'anon1=0\nkeep=1\nnamed=0\n');
  t.is(await e.ok(['volume', 'prune', '-f']), 'Deleted Volumes:\nanon1\n\nTotal reclaimed space: 0B\n');
  t.is(await e.ok(['volume', 'prune', '-f', '-a']), 'Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n');
  t.is(await e.ok(['volume', 'ls', '-q']), 'keep\n');
  await e.ok(['rm', name]);
  t.is(await e.ok(['volume', 'rm', 'keep']), 'keep\n');
  // system prune takes anonymous volumes only with --volumes
  await e.ok(['volume', 'create', '-l', 'com.docker.volume.anonymous=', 'anon2']);
  t.is(await e.ok(['system', 'prune', '-f']), 'Total reclaimed space: 0B\n');
  t.is(await e.ok(['system', 'prune', '-f', '--volumes']), 'Deleted Volumes:\nanon2\n\nTotal reclaimed space: 0B\n');
  t.is(await e.ok(['volume', 'ls', '-q']), '');
});

test("an empty volume is filled from the image's directory; VOLUME gives an anonymous volume; a host directory is not filled", async (t) => {
  const e = await imageEnv(t);
  const src = `cli-vol-src-${process.pid}`;
  const names = [src, `cli-vol-a-${process.pid}`, `cli-vol-b-${process.pid}`];
  t.teardown(async () => {
    for (const n of names) await e.ufs(['rm', '-f', '-v', n]);
  });
  await e.ok(['run', '--name', src, 'busybox', 'sh', '-c',
    'mkdir -p /data/sub && echo hi > /data/sub/f && chown 5:6 /data/sub/f && chmod 640 /data/sub/f && ln -s /etc/passwd /data/link && mkfifo /data/fifo && chown 7:8 /data && chmod 711 /data && ln -s data /alias']);
  await e.ok(['commit', '-c', 'VOLUME /data', src, 'withvol:1']);
  // A named volume, new and so empty, takes the image's /data (reached here through /alias).
  await e.ok(['run', '--name', names[1]!, '-v', 'filled:/alias', 'withvol:1', 'true']);
  const mp = (await e.ok(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'filled'])).trim();
  t.is(fs.readFileSync(path.join(mp, 'sub', 'f'), 'utf8'), 'hi\n');
  const f = fs.statSync(path.join(mp, 'sub', 'f'));
  t.deepEqual([f.uid, f.gid, f.mode & 0o7777], [5, 6, 0o640]);
  t.is(fs.readlinkSync(path.join(mp, 'link')), '/etc/passwd', 'a symlink is copied as a symlink, not followed');
  t.true(fs.lstatSync(path.join(mp, 'fifo')).isFIFO());
  const root = fs.statSync(mp);
  t.deepEqual([root.uid, root.gid, root.mode & 0o7777], [7, 8, 0o711], "the volume's root takes the directory's owner and mode");
  // Not empty any more: the next container sees what the last one left, not the image's.
  await e.ok(['run', '--rm', '-v', 'filled:/data', 'withvol:1', 'sh', '-c', 'echo changed > /data/sub/f']);
  t.is(await e.ok(['run', '--rm', '-v', 'filled:/data', 'withvol:1', 'cat', '/data/sub/f']), 'changed\n');
  // No -v: the image's VOLUME gets an anonymous volume, filled, which rm -v removes.
  t.is(await e.ok(['run', '--name', names[2]!, 'withvol:1', 'cat', '/data/sub/f']), 'hi\n');
  const mounts = await e.ok(['inspect', '-f', '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}', names[2]!]);
  t.regex(mounts, /^volume [0-9a-f]{64} \/data\n$/);
  const anon = mounts.split(' ')[1]!;
  t.is(await e.ok(['rm', '-v', names[2]!]), `${names[2]}\n`);
  t.false((await e.ok(['volume', 'ls', '-q'])).includes(anon));
  // A host directory is mounted as it is.
  const hostDir = fs.mkdtempSync(path.join(e.root, 'hostdir-'));
  t.is(await e.ok(['run', '--rm', '-v', `${hostDir}:/data`, 'withvol:1', 'ls', '-A', '/data']), '');
});

// ufs ps as Docker's: --format (template, table, json), --filter, -n/-l, --no-trunc, -s, -q,
// on real containers in a temp store.
import test from 'ava';
import { imageEnv } from './helpers/images.js';

test('ps --format, --filter, -n/-l, --no-trunc, -s', async (t) => {
  const e = await imageEnv(t);
  const p = `cli-ps-${process.pid}`;
  const names = [`${p}-ok`, `${p}-fail`, `${p}-up`];
  t.teardown(async () => {
    await e.ufs(['rm', '-f', ...names]);
  });
  await e.ok(['run', '--name', names[0]!, 'busybox', 'sh', '-c', 'echo x > /f']);
  t.is((await e.ufs(['run', '--name', names[1]!, 'busybox', 'sh', '-c', 'exit 3'])).code, 3);
  await e.ok(['run', '-d', '--name', names[2]!, 'busybox', 'sleep', '300']);

  t.is(await e.ok(['ps', '--format', '{{.Names}} {{.State}}']), `${names[2]} running\n`);
  t.is(await e.ok(['ps', '-a', '--format', '{{.Names}}']), `${names[2]}\n${names[1]}\n${names[0]}\n`);
  t.is(await e.ok(['ps', '-n', '2', '--format', '{{.Names}}']), `${names[2]}\n${names[1]}\n`);
  t.is(await e.ok(['ps', '-l', '--format', '{{.Names}}']), `${names[2]}\n`);
  t.is(await e.ok(['ps', '--filter', 'status=exited', '--format', '{{.Names}}']), `${names[1]}\n${names[0]}\n`);
  t.is(await e.ok(['ps', '-f', 'exited=3', '--format', '{{.Names}} {{.Status}}']).then((s) => s.replace(/ \d+ seconds? ago| Less than a second ago| About a minute ago/, ' T')), `${names[1]} Exited (3) T\n`);
  t.is(await e.ok(['ps', '-a', '-f', `name=${p}-(ok|up)`, '--format', '{{.Names}}']), `${names[2]}\n${names[0]}\n`);
  t.is(await e.ok(['ps', '-a', '-f', 'ancestor=busybox', '-q']).then((s) => s.trim().split('\n').length), 3);
  const id = (await e.ok(['inspect', '-f', '{{.Id}}', names[0]!])).trim();
  t.is(await e.ok(['ps', '-a', '-f', `id=${id.slice(0, 8)}`, '--no-trunc', '-q']), `${id}\n`);
  t.is(await e.ok(['ps', '-a', '-f', `id=${id.slice(0, 8)}`, '--no-trunc', '--format', '{{.Command}}']), '"sh -c echo x > /f"\n');
  t.is(await e.ok(['ps', '-a', '-f', `id=${id.slice(0, 8)}`, '--format', 'table {{.ID}}\\t{{.Image}}']), `CONTAINER ID   IMAGE\n${id.slice(0, 12)}   busybox\n`);
  const json = JSON.parse((await e.ok(['ps', '--format', 'json'])).trim()) as Record<string, string>;
  t.is(json.Names, names[2]);
  t.is(json.State, 'running');
  const sized = await e.ok(['ps', '-a', '-s', '-f', `id=${id.slice(0, 8)}`]);
  t.regex(sized.split('\n')[0]!, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES\s+SIZE$/);
  t.regex(sized.split('\n')[1]!, /\s\d+B \(virtual 1\.98MB\)$/);
  for (const [args, msg] of [
    [['ps', '--filter', 'colour=red'], "ufs: invalid filter 'colour'\n"],
    [['ps', '-n', 'x'], 'ufs: invalid argument "x" for "-n, --last" flag\n'],
  ] as [string[], string][]) {
    const r = await e.ufs(args);
    t.is(r.code, 1, args.join(' '));
    t.is(r.stderr, msg, args.join(' '));
  }
  t.regex((await e.ufs(['ps', '--format', '{{.Nope}}'])).stderr, /can't evaluate field Nope/);
});

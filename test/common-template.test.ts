// Docker's template language (Go text/template plus Docker's functions): the cases from
// Docker's "Format command and log output" page and the inspect reference, and Go's rules
// for pipelines, variables, scoping, whitespace trimming and errors.
import test from 'ava';
import { compileTemplate, TemplateError } from '../src/common/template.js';
import { renderList, tabwrite, humanSize } from '../src/common/format.js';

const run = (tpl: string, data: unknown, missing?: 'error') => compileTemplate(tpl, missing ? { missing } : {}).execute(data);

const container = {
  Id: 'e5a8b3ae7f41',
  Name: '/web',
  Args: ['-g', 'daemon off;'],
  Image: 'sha256:0123abcd',
  LogPath: '/var/lib/ufs/containers/e5/e5-json.log',
  Config: { Image: 'nginx:latest', Cmd: ['nginx', '-g', 'daemon off;'], Labels: { b: '2', a: '1' }, Entrypoint: null, Env: [] },
  Mounts: [{ Destination: '/data' }, { Destination: '/logs' }],
  NetworkSettings: {
    Networks: { bridge: { IPAddress: '172.17.0.2' }, other: { IPAddress: '10.0.0.5' } },
    Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }], '443/tcp': [{ HostIp: '0.0.0.0', HostPort: '8443' }] },
  },
  State: { Running: true, ExitCode: 0, Pid: 4242 },
  Size: 4261550,
  RepoTags: ['busybox:latest', 'busybox:1.36'],
};

test('field chains, index and the inspect examples from Docker docs', (t) => {
  t.is(run('{{.Config.Image}}', container), 'nginx:latest');
  t.is(run('{{.LogPath}}', container), container.LogPath);
  t.is(run('{{index .RepoTags 0}}', container), 'busybox:latest');
  t.is(run('{{range .RepoTags}}{{.}} {{end}}', container), 'busybox:latest busybox:1.36 ');
  t.is(run('{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container), '172.17.0.210.0.0.5');
  t.is(run('{{range $p, $conf := .NetworkSettings.Ports}} {{$p}} -> {{(index $conf 0).HostPort}} {{end}}', container), ' 443/tcp -> 8443  80/tcp -> 8080 ');
  t.is(run('{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}', container), '8080');
  t.is(run('{{index .Config.Labels "a"}}', container), '1');
  t.is(run('{{json .Config.Labels}}', container), '{"b":"2","a":"1"}');
  t.is(run('{{json .Config.Cmd}}', container), '["nginx","-g","daemon off;"]');
  t.is(run('{{.Config.Cmd}}', container), '[nginx -g daemon off;]');
  t.is(run('{{.Config.Labels}}', container), 'map[a:1 b:2]');
  t.is(run('{{.Size}}', container), '4261550');
  t.is(run('{{.State.Running}} {{.State.Pid}}', container), 'true 4242');
  t.is(run('{{.Nope}}', container), '<no value>');
  t.is(run('{{.Config.Entrypoint}}', container), '<nil>');
  t.is(run('{{.}}', 'x'), 'x');
  t.is(run('{{$.Name}}{{with .Config}}{{$.Name}}{{end}}', container), '/web/web');
});

test("Docker's functions: join, json, lower, upper, title, split, println, pad, truncate, len", (t) => {
  t.is(run('{{join .Args " , "}}', container), '-g , daemon off;');
  t.is(run('{{json .Mounts}}', container), '[{"Destination":"/data"},{"Destination":"/logs"}]');
  t.is(run('{{json .}}', { a: '<&>' }), '{"a":"\\u003c\\u0026\\u003e"}');
  t.is(run('{{lower .Name}}', { Name: 'ABC' }), 'abc');
  t.is(run('{{upper .Name}}', container), '/WEB');
  t.is(run('{{title .Name}}', { Name: 'hello world-x' }), 'Hello World-X');
  t.is(run('{{split .Image ":"}}', container), '[sha256 0123abcd]');
  t.is(run('{{range .Mounts}}{{println .Destination}}{{end}}', container), '/data\n/logs\n');
  t.is(run('{{pad .Name 1 2}}|', container), ' /web  |');
  t.is(run('{{truncate .Id 4}}', container), 'e5a8');
  t.is(run('{{len .RepoTags}} {{len .Config.Labels}} {{len .Name}}', container), '2 2 4');
  t.is(run('{{.Name | upper | printf "%s!"}}', container), '/WEB!');
  t.is(run('{{printf "%-6s|%5d|%.2f|%q|%v|%x" "ab" 42 3.14159 "q" .Args 255}}', container), 'ab    |   42|3.14|"q"|[-g daemon off;]|ff');
  t.is(run('{{print "a" 1 2 "b"}}', {}), 'a1 2b');
  t.is(run('{{slice .Name 1 3}}', container), 'we');
});

test('if / else if / else, with, range else, comparisons, and/or/not', (t) => {
  const tpl = '{{if eq .State.ExitCode 0}}ok{{else if gt .State.ExitCode 100}}bad{{else}}fail{{end}}';
  t.is(run(tpl, { State: { ExitCode: 0 } }), 'ok');
  t.is(run(tpl, { State: { ExitCode: 137 } }), 'bad');
  t.is(run(tpl, { State: { ExitCode: 1 } }), 'fail');
  t.is(run('{{with .Config}}{{.Image}}{{else}}none{{end}}', container), 'nginx:latest');
  t.is(run('{{with .Missing}}{{.}}{{else}}none{{end}}', container), 'none');
  t.is(run('{{range .Config.Env}}x{{else}}empty{{end}}', container), 'empty');
  t.is(run('{{range $i, $v := .RepoTags}}{{$i}}={{$v}};{{end}}', container), '0=busybox:latest;1=busybox:1.36;');
  t.is(run('{{range $v := .RepoTags}}{{$v}};{{end}}', container), 'busybox:latest;busybox:1.36;');
  t.is(run('{{range .RepoTags}}{{if eq . "busybox:1.36"}}{{break}}{{end}}{{.}}{{end}}', container), 'busybox:latest');
  t.is(run('{{range .RepoTags}}{{if eq . "busybox:latest"}}{{continue}}{{end}}{{.}}{{end}}', container), 'busybox:1.36');
  t.is(run('{{eq .Name "/a" "/web"}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}', container), 'true true true true true false');
  t.is(run('{{and 1 0 2}} {{or 0 "" "x"}} {{not .State.Running}} {{and .Name .Id}}', container), '0 x false e5a8b3ae7f41');
  // and/or stop at the decisive operand: the failing index is never evaluated
  t.is(run('{{if or true (index .RepoTags 9)}}y{{end}}', container), 'y');
  t.is(run('{{if and .Config .Config.Image}}{{.Config.Image}}{{end}}', container), 'nginx:latest');
});

test('variables: declaration, assignment, scope', (t) => {
  t.is(run('{{$x := .Name}}{{$x}}', container), '/web');
  t.is(run('{{$n := 0}}{{range .RepoTags}}{{$n = len .}}{{end}}{{$n}}', container), '12');
  t.is(run('{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}', {}), '21');
  const err = t.throws(() => run('{{if true}}{{$y := 1}}{{end}}{{$y}}', {}), { instanceOf: TemplateError });
  t.regex(err.message, /undefined variable "\$y"/);
});

test('whitespace trimming and comments', (t) => {
  t.is(run('a  {{- .Name -}}  b', container), 'a/webb');
  t.is(run('{{range .RepoTags -}}\n  {{.}}\n{{- end}}', container), 'busybox:latestbusybox:1.36');
  t.is(run('x{{/* a comment */}}y{{- /* trimmed */ -}} z', {}), 'xyz');
  t.is(run('{{-3}}', {}), '-3', 'a minus sign without a space is a number');
  t.is(run('{{"a\\tb"}}{{`raw\\t`}}{{\'x\'}}', {}), 'a\tbraw\\t120');
});

test('bad templates fail with one line, before anything runs', (t) => {
  for (const bad of ['{{index .RepoTags 0', '{{.Name}', '{{if .A}}x', '{{end}}', '{{nosuch .A}}', '{{range}}{{end}}', '{{.A .B}}', '{{"unterminated}}', '{{(.A}}', '{{else}}']) {
    const err = t.throws(() => compileTemplate(bad), { instanceOf: TemplateError }, bad);
    t.false(err.message.includes('\n'), bad);
    t.regex(err.message, /^template parsing error: template: :1: /, bad);
  }
});

test('execution errors name the action', (t) => {
  t.throws(() => run('{{index .RepoTags 5}}', container), { message: /^template: :1:\d+: executing "" at <index .RepoTags 5>: error calling index: index out of range: 5$/ });
  t.throws(() => run('{{.Nope}}', container, 'error'), { message: /can't evaluate field Nope/ });
  t.throws(() => run('{{.Name.X}}', container), { message: /can't evaluate field X in type string/ });
  t.throws(() => run('{{eq .Name 1}}', container), { message: /incompatible types for comparison/ });
  t.throws(() => run('{{upper 1}}', container), { message: /expected string/ });
  t.throws(() => run('{{len 3}}', container), { message: /len of type int/ });
});

test('listing formats: table with headers, json, plain templates, unknown fields', async (t) => {
  const rows = [
    { ID: 'a416a98b71e2', Repository: 'busybox', Tag: 'latest', Size: '4.26MB' },
    { ID: '0123456789ab', Repository: 'registry.example.com/team/app', Tag: 'v1', Size: '120MB' },
  ];
  const spec = { table: 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}', headers: { ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Size: 'SIZE' } };
  t.is(
    await renderList(undefined, rows, spec),
    'REPOSITORY                      TAG       IMAGE ID       SIZE\n' +
      'busybox                         latest    a416a98b71e2   4.26MB\n' +
      'registry.example.com/team/app   v1        0123456789ab   120MB\n',
  );
  t.is(await renderList('table {{.ID}}\t{{.Tag}}', rows, spec), 'IMAGE ID       TAG\na416a98b71e2   latest\n0123456789ab   v1\n');
  t.is(await renderList('{{.ID}}: {{.Repository}}', rows, spec), 'a416a98b71e2: busybox\n0123456789ab: registry.example.com/team/app\n');
  t.is(await renderList('json', rows.slice(0, 1), spec), `${JSON.stringify(rows[0])}\n`);
  t.is(await renderList('table', [], spec), 'REPOSITORY   TAG       IMAGE ID   SIZE\n');
  await t.throwsAsync(() => renderList('{{.Nope}}', rows, spec), { message: /can't evaluate field Nope/ });
});

test('tabwrite and sizes as Docker writes them', (t) => {
  t.is(tabwrite('a\tbb\tc\nxxxxxxxxxxxx\ty\tz\n'), 'a              bb        c\nxxxxxxxxxxxx   y         z\n');
  t.is(humanSize(0), '0B');
  t.is(humanSize(999), '999B');
  t.is(humanSize(4261550), '4.26MB');
  t.is(humanSize(159_300_000), '159MB');
  t.is(humanSize(159_300_000, 4), '159.3MB');
  t.is(humanSize(1_500_000_000), '1.5GB');
});

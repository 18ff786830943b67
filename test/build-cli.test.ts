// ufs build through the CLI on real builds (busybox is built in): instructions and flags,
// substitution, .dockerignore, the cache, stages and --target, squash, intermediate images,
// history/inspect, determinism, bad input leaving nothing behind, and the tree compared with
// what `buildah build --layers` makes from the same Dockerfile.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import test, { type ExecutionContext } from 'ava';
import { CLI, imageEnv, type ImageEnv, must, run } from './helpers/images.js';

interface Ctx {
  e: ImageEnv;
  dir: (files: Record<string, string>) => string;
  build: (ctx: string, args?: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }) => Promise<{ id: string; err: string; code: number; out: string }>;
  inspect: (ref: string) => Promise<Record<string, any>>;
  sh: (ref: string, script: string) => Promise<string>;
}

async function setup(t: ExecutionContext): Promise<Ctx> {
  const e = await imageEnv(t);
  let n = 0;
  return {
    e,
    dir(files) {
      const d = path.join(e.dir, `ctx${n++}`);
      for (const [name, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(d, name)), { recursive: true });
        fs.writeFileSync(path.join(d, name), content);
      }
      fs.mkdirSync(d, { recursive: true });
      return d;
    },
    async build(ctx, args = [], opts = {}) {
      const r = await e.ufs(['build', '--progress', 'plain', ...args, ctx], { ...(opts.input !== undefined ? { input: opts.input } : {}), ...(opts.env ? { env: opts.env } : {}) });
      const id = r.stdout.trim().split('\n').at(-1) ?? '';
      return { id, err: r.stderr, code: r.code, out: r.stdout };
    },
    async inspect(ref) {
      return (JSON.parse(await e.ok(['inspect', ref])) as Record<string, any>[])[0]!;
    },
    async sh(ref, script) {
      return e.ok(['run', '--rm', ref, 'sh', '-c', script]);
    },
  };
}

function ok(t: ExecutionContext, r: { code: number; err: string; out: string }): void {
  t.is(r.code, 0, `${r.out}\n${r.err}`);
}

test.serial('instructions: metadata, COPY/ADD forms and flags, here-documents, RUN as USER; -q prints the ID', async (t) => {
  const c = await setup(t);
  const tarsrc = path.join(c.e.dir, 'tarsrc');
  fs.mkdirSync(tarsrc);
  fs.writeFileSync(path.join(tarsrc, 't.txt'), 'in tar\n');
  const ctx = c.dir({
    'src/a.txt': 'one\n',
    'src/b.txt': 'two\n',
    'src/c.dat': 'no\n',
    'with space.txt': 'sp\n',
    'tree/x/y.txt': 'deep\n',
    Dockerfile: [
      'FROM busybox',
      'LABEL a=b "c d"="e f"',
      'EXPOSE 80 53/udp 8000-8001',
      'VOLUME ["/data"]',
      'STOPSIGNAL SIGKILL',
      'HEALTHCHECK --interval=30s --timeout=5s --start-period=1s --start-interval=2s --retries=3 CMD wget -q localhost || exit 1',
      'WORKDIR /w',
      'WORKDIR sub',
      'COPY --chown=nobody:nogroup --chmod=600 src/*.txt ./',
      'COPY ["with space.txt", "/sp/"]',
      'COPY tree /t',
      'COPY src/a.txt /renamed.txt',
      'ADD arch.tar.gz /gz/',
      'ADD arch.tar.xz /xz/',
      'ADD arch.tar.bz2 /bz/',
      'ADD plain.tar /plain/',
      'ENV HOME=/root GREETING="hello world"',
      'COPY <<EOF /here.txt',
      'home $HOME',
      'EOF',
      "COPY <<'EOF' /literal.txt",
      'home $HOME',
      'EOF',
      'RUN <<EOF',
      'echo from heredoc > /hd.txt',
      'echo "$GREETING" >> /hd.txt',
      'EOF',
      'RUN cat <<A > /two.txt',
      'inline',
      'A',
      'USER nobody',
      'RUN id -u > /tmp/uid',
      'USER root',
      'SHELL ["/bin/sh", "-ec"]',
      'RUN ["/bin/sh", "-c", "echo exec form > /exec.txt"]',
      'ENTRYPOINT ["/bin/sh"]',
      'CMD ["-c", "echo hi"]',
      '',
    ].join('\n'),
  });
  await must('tar', ['-C', tarsrc, '-czf', path.join(ctx, 'arch.tar.gz'), '.']);
  await must('tar', ['-C', tarsrc, '-cJf', path.join(ctx, 'arch.tar.xz'), '.']);
  await must('tar', ['-C', tarsrc, '-cjf', path.join(ctx, 'arch.tar.bz2'), '.']);
  await must('tar', ['-C', tarsrc, '-cf', path.join(ctx, 'plain.tar'), '.']);
  const r = await c.e.ufs(['build', '-q', '-t', 'full:1', ctx]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^sha256:[a-f0-9]{64}\n$/, '-q prints only the ID');
  t.is(r.stderr, '');
  const cfg = (await c.inspect('full:1')).Config;
  t.deepEqual(cfg.Labels, { a: 'b', 'c d': 'e f' });
  t.deepEqual(Object.keys(cfg.ExposedPorts).sort(), ['53/udp', '80/tcp', '8000/tcp', '8001/tcp']);
  t.deepEqual(cfg.Volumes, { '/data': {} });
  t.is(cfg.StopSignal, 'SIGKILL');
  t.deepEqual(cfg.Healthcheck, { Test: ['CMD-SHELL', 'wget -q localhost || exit 1'], Interval: 30e9, Timeout: 5e9, StartPeriod: 1e9, StartInterval: 2e9, Retries: 3 });
  t.is(cfg.WorkingDir, '/w/sub');
  t.deepEqual(cfg.Entrypoint, ['/bin/sh']);
  t.deepEqual(cfg.Cmd, ['-c', 'echo hi']);
  t.deepEqual(cfg.Shell, ['/bin/sh', '-ec']);
  t.true(cfg.Env.includes('GREETING=hello world'));
  t.is(cfg.User, 'root');
  const out = await c.e.ok(['run', '--rm', '--entrypoint', 'sh', 'full:1', '-c',
    'ls -ln /w/sub; cat /sp/"with space.txt" /t/x/y.txt /renamed.txt /gz/t.txt /xz/t.txt /bz/t.txt /plain/t.txt /here.txt /literal.txt /hd.txt /two.txt /tmp/uid /exec.txt; ls /w/sub/c.dat 2>&1 || true']);
  t.regex(out, /-rw-------\s+1 65534\s+65534\s+4 .* a\.txt/);
  t.regex(out, /-rw-------\s+1 65534\s+65534\s+4 .* b\.txt/);
  t.true(out.includes('sp\ndeep\none\nin tar\nin tar\nin tar\nin tar\nhome /root\nhome $HOME\nfrom heredoc\nhello world\ninline\n65534\nexec form\n'), out);
  t.regex(out, /c\.dat.*No such file/);
});

test.serial('history and inspect look like Docker: IDs on every step, created_by forms, empty_layer', async (t) => {
  const c = await setup(t);
  const ctx = c.dir({ 'f.txt': 'f\n', 'd/g.txt': 'g\n', Dockerfile: 'FROM busybox\nARG V=1\nENV E=$V\nCOPY f.txt /dst/\nCOPY d /dd\nRUN echo $E > /r\nCMD ["sh"]\n' });
  const b = await c.build(ctx, ['-t', 'hist']);
  ok(t, b);
  const ids = (await c.e.ok(['history', '--no-trunc', '-q', 'hist'])).trim().split('\n');
  const table = (await c.e.ok(['history', '--no-trunc', 'hist'])).trim().split('\n').slice(1).map((l) => l.split(/\s{3,}/));
  const rows = ids.map((id, i) => [id, table[i]![2]!, table[i]![3]!]);
  const ours = rows.slice(0, 6);
  for (const r of ours) t.regex(r[0]!, /^sha256:[a-f0-9]{64}$/, 'every step has an ID');
  t.is(new Set(ours.map((r) => r[0])).size, 6);
  t.is(ours[0]![1], 'CMD ["sh"]');
  t.is(ours[1]![1], 'RUN |1 V=1 /bin/sh -c echo $E > /r');
  t.regex(ours[2]![1]!, /^COPY dir:[a-f0-9]{64} in \/dd$/);
  t.regex(ours[3]![1]!, /^COPY file:[a-f0-9]{64} in \/dst\/$/);
  t.is(ours[4]![1], 'ENV E=1');
  t.is(ours[5]![1], 'ARG V=1');
  t.is(ours[0]![2], '0B');
  t.is(ours[0]![0], b.id);
  const cfg = JSON.parse(fs.readFileSync(path.join(c.e.root, 'blobs', 'sha256', b.id.slice(7)), 'utf8'));
  const hist = cfg.history.slice(-6);
  t.deepEqual(hist.map((h: any) => !!h.empty_layer), [true, true, false, false, false, true]);
  t.is(cfg.rootfs.diff_ids.length, 4);
  // Intermediate images: hidden from `images`, listed by `images -a`, runnable by ID.
  const listed = await c.e.ok(['images', '-q', '--no-trunc']);
  const all = await c.e.ok(['images', '-a', '-q', '--no-trunc']);
  t.false(listed.includes(ours[2]![0]!));
  t.true(all.includes(ours[2]![0]!));
  t.is(await c.sh(ours[2]![0]!, 'cat /dst/f.txt /dd/g.txt; test -e /r && echo has-r || echo no-r'), 'f\ng\nno-r\n');
  t.is(await c.sh(ours[1]![0]!, 'cat /r'), '1\n');
  // Removing the image and pruning removes its intermediates too; the cache then misses.
  await c.e.ok(['rmi', 'hist']);
  await c.e.ok(['image', 'prune', '-f']);
  t.false((await c.e.ok(['images', '-a', '-q', '--no-trunc'])).includes(ours[2]![0]!));
  const again = await c.build(ctx, ['-t', 'hist']);
  ok(t, again);
  t.notRegex(again.err, /CACHED/);
});

test.serial('substitution: ARG before FROM, defaults, --build-arg, ${V:-x} ${V:+x}, none in RUN/CMD, ENV beats ARG', async (t) => {
  const c = await setup(t);
  const ctx = c.dir({
    'busybox-file': 'bf\n',
    Dockerfile: [
      'ARG BASE=busybox',
      'ARG UNUSED_GLOBAL=1',
      'FROM ${BASE}',
      'ARG BASE',
      'ARG A=adef',
      'ARG B',
      'ARG C=cdef',
      'ENV FROMARG=$A ALT=${B:+set} DEF=${B:-bdef} BASECOPY=$BASE',
      'ENV C=env-c',
      'ARG C=ignored',
      'LABEL l=${C}',
      'WORKDIR /dir-$A',
      'COPY ${BASE}-file ./',
      'RUN echo "run:$A:$B:$C" > /run.txt',
      'CMD echo $A',
      '',
    ].join('\n'),
  });
  const b = await c.build(ctx, ['-t', 'subst', '--build-arg', 'B=bval', '--build-arg', 'NOPE=1', '--build-arg', 'HTTP_PROXY=http://proxy.invalid:3128']);
  ok(t, b);
  t.regex(b.err, /build-args \[NOPE\] were not consumed/);
  const cfg = (await c.inspect('subst')).Config;
  for (const kv of ['FROMARG=adef', 'ALT=set', 'DEF=bval', 'BASECOPY=busybox', 'C=env-c']) t.true(cfg.Env.includes(kv), kv);
  t.deepEqual(cfg.Labels, { l: 'env-c' });
  t.is(cfg.WorkingDir, '/dir-adef');
  t.deepEqual(cfg.Cmd, ['/bin/sh', '-c', 'echo $A'], 'no substitution in CMD');
  t.is(await c.sh('subst', 'cat /run.txt /dir-adef/busybox-file'), 'run:adef:bval:env-c\nbf\n');
  const hist = await c.e.ok(['history', '--no-trunc', 'subst']);
  t.false(hist.includes('proxy.invalid'), 'proxy args stay out of history');
  t.true(hist.includes('RUN |3 BASE=busybox A=adef B=bval /bin/sh -c echo "run:$A:$B:$C" > /run.txt'), hist);
  // Without the build-arg: the defaults.
  const d = await c.build(ctx, ['-q']);
  ok(t, d);
  const cfg2 = (await c.inspect(d.id)).Config;
  t.true(cfg2.Env.includes('ALT=') && cfg2.Env.includes('DEF=bdef'));
});

test.serial('.dockerignore: patterns, ** and ! exceptions in order; an ignored source is an error', async (t) => {
  const c = await setup(t);
  const ctx = c.dir({
    '.dockerignore': '# comment\n*.log\n**/*.tmp\ndocs\n!docs/keep.md\nsecret*\n!secret-ok\n',
    'a.log': 'x', 'sub/b.log': 'keep-sub-log', 'sub/c.tmp': 'x', 'sub/deep/d.tmp': 'x', 'docs/drop.md': 'x', 'docs/keep.md': 'k',
    'secret1': 'x', 'secret-ok': 'ok', 'kept.txt': 'kept',
    Dockerfile: 'FROM busybox\nCOPY . /ctx/\n',
  });
  const b = await c.build(ctx, ['-t', 'ign']);
  ok(t, b);
  const files = (await c.sh('ign', 'cd /ctx && find . -type f | sort')).trim().split('\n');
  t.deepEqual(files, ['./.dockerignore', './Dockerfile', './docs/keep.md', './kept.txt', './secret-ok', './sub/b.log']);
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY a.log /\n');
  const bad = await c.build(ctx, []);
  t.is(bad.code, 1);
  t.regex(bad.err, /ufs: Dockerfile:2: COPY failed: a\.log: not found in the build context \(excluded by \.dockerignore\)\n$/);
});

test.serial('cache: all hits on a rebuild, mtime-only change hits, a content change reruns from that step; --no-cache is deterministic', async (t) => {
  const c = await setup(t);
  const ctx = c.dir({
    'a.txt': 'a\n',
    'last.txt': 'v1\n',
    Dockerfile: 'FROM busybox\nENV X=1\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN echo two > /two\nCOPY last.txt /last.txt\nRUN cat /last.txt > /copy\n',
  });
  const env = { ...c.e.env, SOURCE_DATE_EPOCH: '1700000000' };
  const first = await c.build(ctx, ['-t', 'cached'], { env });
  ok(t, first);
  t.notRegex(first.err, /CACHED/);
  const again = await c.build(ctx, ['-t', 'cached'], { env });
  ok(t, again);
  t.is(again.id, first.id);
  t.is((again.err.match(/CACHED/g) ?? []).length, 6, again.err);
  // Only the mtime changes: still all cached.
  const future = new Date(Date.now() + 3600_000);
  fs.utimesSync(path.join(ctx, 'a.txt'), future, future);
  fs.utimesSync(path.join(ctx, 'last.txt'), future, future);
  const touched = await c.build(ctx, ['-t', 'cached'], { env });
  t.is(touched.id, first.id);
  t.is((touched.err.match(/CACHED/g) ?? []).length, 6);
  // The last COPYed file's content changes: the steps before it are cached, it and after run.
  fs.writeFileSync(path.join(ctx, 'last.txt'), 'v2\n');
  const changed = await c.build(ctx, ['-t', 'cached'], { env });
  ok(t, changed);
  t.not(changed.id, first.id);
  t.regex(changed.err, /#5 \[5\/7\] RUN echo two > \/two\n#5 CACHED\n#6 \[6\/7\] COPY last\.txt \/last\.txt\n#6 DONE/);
  t.is((changed.err.match(/CACHED/g) ?? []).length, 4);
  t.is(await c.sh('cached', 'cat /copy'), 'v2\n');
  // A terminal display (forced): one line per step, cached ones marked, redrawn with \r.
  const tty = await c.e.ufs(['build', '--progress', 'tty', ctx], { env });
  t.is(tty.code, 0);
  t.regex(tty.stderr, /\r => CACHED \[2\/7\] ENV X=1\x1b\[K\n/);
  t.regex(tty.stderr, /\r => CACHED \[7\/7\] RUN cat \/last\.txt > \/copy\x1b\[K\n/);
  // The cache lives in the store: a new process finds it (every build above was one).
  // --no-cache twice: nothing cached, the same layers.
  const n1 = await c.build(ctx, ['--no-cache', '-q'], { env });
  const n2 = await c.build(ctx, ['--no-cache', '-q'], { env });
  ok(t, n1);
  ok(t, n2);
  t.notRegex(n1.err + n2.err, /CACHED/);
  const layers = async (id: string) => (await c.inspect(id)).RootFS.Layers as string[];
  t.deepEqual(await layers(n1.id), await layers(n2.id));
  t.deepEqual(await layers(n1.id), await layers(changed.id));
});

test.serial('COPY without SOURCE_DATE_EPOCH is deterministic too (dirs and files keep fixed times)', async (t) => {
  const c = await setup(t);
  const ctx = c.dir({ 'tree/a/b.txt': 'b\n', 'f.txt': 'f\n', Dockerfile: 'FROM busybox\nCOPY tree /opt/tree\nCOPY f.txt /new/dir/\n' });
  const a = await c.build(ctx, ['--no-cache', '-q']);
  await new Promise((r) => setTimeout(r, 1100));
  const b = await c.build(ctx, ['--no-cache', '-q']);
  ok(t, a);
  ok(t, b);
  t.deepEqual((await c.inspect(a.id)).RootFS.Layers, (await c.inspect(b.id)).RootFS.Layers);
});

test.serial('multi-stage: --target builds only what it needs; COPY --from a stage, an index and an image', async (t) => {
  const c = await setup(t);
  const ctx = c.dir({
    Dockerfile: [
      'FROM busybox AS builder',
      'RUN mkdir /out && echo built > /out/artifact',
      'FROM busybox AS broken',
      'RUN echo broken-stage-ran && exit 1',
      'FROM builder AS tester',
      'RUN cat /out/artifact > /tested',
      'FROM scratch AS final',
      'COPY --from=builder /out/artifact /artifact',
      'COPY --from=0 /out /out0',
      'COPY --from=busybox /bin/busybox /bin/busybox',
      'CMD ["/bin/busybox", "cat", "/artifact"]',
      '',
    ].join('\n'),
  });
  const b = await c.build(ctx, ['-t', 'ms']);
  ok(t, b);
  t.notRegex(b.err, /broken-stage-ran|tester/);
  t.is((await c.e.ok(['run', '--rm', 'ms'])), 'built\n');
  t.is((await c.inspect('ms')).RootFS.Layers.length, 3, 'only the final stage layers');
  const tt = await c.build(ctx, ['--target', 'tester', '-t', 'ms-tester']);
  ok(t, tt);
  t.notRegex(tt.err, /broken/);
  t.is(await c.sh('ms-tester', 'cat /tested'), 'built\n');
  const bad = await c.build(ctx, ['--target', 'nope']);
  t.is(bad.code, 1);
  t.regex(bad.err, /ufs: target stage "nope" could not be found\n$/);
});

test.serial('ONBUILD is recorded, and runs when the image is used as a base', async (t) => {
  const c = await setup(t);
  const base = c.dir({ Dockerfile: 'FROM busybox\nONBUILD RUN echo triggered > /ob.txt\n' });
  ok(t, await c.build(base, ['-t', 'obbase']));
  t.deepEqual((await c.inspect('obbase')).Config.OnBuild, ['RUN echo triggered > /ob.txt']);
  const child = c.dir({ Dockerfile: 'FROM obbase\nRUN cat /ob.txt\n' });
  const b = await c.build(child, ['-t', 'obchild']);
  ok(t, b);
  t.regex(b.err, /#\d+ [\d.]+ triggered/);
  t.is((await c.inspect('obchild')).Config.OnBuild, null);
});

test.serial('squash: --squash puts this build in one layer on the base, --squash-all makes one layer; same tree', async (t) => {
  const c = await setup(t);
  const ctx = c.dir({ Dockerfile: 'FROM busybox\nRUN echo a > /a && echo gone > /gone\nRUN rm /gone /etc/group && echo b > /b\nRUN mkdir -p /d && echo c > /d/c\n' });
  const plain = await c.build(ctx, ['-t', 'sq0']);
  const sq = await c.build(ctx, ['--squash', '-t', 'sq1']);
  const all = await c.build(ctx, ['--squash-all', '-t', 'sq2']);
  ok(t, plain);
  ok(t, sq);
  ok(t, all);
  const base = (await c.inspect('busybox')).RootFS.Layers.length;
  t.is((await c.inspect('sq0')).RootFS.Layers.length, base + 3);
  t.is((await c.inspect('sq1')).RootFS.Layers.length, base + 1);
  t.is((await c.inspect('sq2')).RootFS.Layers.length, 1);
  const tree = 'find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -print | sort; cat /a /b /d/c';
  const want = await c.sh('sq0', tree);
  t.is(await c.sh('sq1', tree), want);
  t.is(await c.sh('sq2', tree), want);
  t.false(want.includes('/gone') || want.includes('/etc/group'));
  const both = await c.build(ctx, ['--squash', '--squash-all']);
  t.is(both.code, 1);
});

test.serial('stdin Dockerfile with no context, -f outside the context, --label, ADD of a URL with --checksum', async (t) => {
  const c = await setup(t);
  const body = 'served content\n';
  const server = http.createServer((req, res) => {
    res.setHeader('Last-Modified', new Date(1_600_000_000_000).toUTCString());
    if (req.url === '/file.txt') res.end(body);
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const sha = crypto.createHash('sha256').update(body).digest('hex');
  const r = await c.e.ufs(['build', '-q', '-t', 'stdin', '--label', 'who=me', '-'], { input: `FROM busybox\nADD --checksum=sha256:${sha} http://127.0.0.1:${port}/file.txt /dl/\nRUN echo x > /x\n` });
  t.is(r.code, 0, r.stderr);
  t.deepEqual((await c.inspect('stdin')).Config.Labels, { who: 'me' });
  t.is(await c.sh('stdin', 'cat /dl/file.txt; stat -c "%a %Y" /dl/file.txt'), `${body}600 1600000000\n`);
  const wrong = await c.e.ufs(['build', '-'], { input: `FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/file.txt /dl/\n` });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /Dockerfile:2: ADD http.*checksum mismatch/);
  const nocontext = await c.e.ufs(['build', '-'], { input: 'FROM busybox\nCOPY x /x\n' });
  t.regex(nocontext.stderr, /Dockerfile:2: COPY: no build context/);
  const ctx = c.dir({ 'in.txt': 'in\n' });
  const df = path.join(c.e.dir, 'elsewhere.Dockerfile');
  fs.writeFileSync(df, 'FROM busybox\nCOPY in.txt /\n');
  const b = await c.build(ctx, ['-f', df, '-t', 'outside']);
  ok(t, b);
  t.is(await c.sh('outside', 'cat /in.txt'), 'in\n');
});

function storeState(root: string): { snapshots: string[]; leases: string[]; tmp: string[]; tags: string } {
  const ls = (d: string) => (fs.existsSync(path.join(root, d)) ? fs.readdirSync(path.join(root, d)).sort() : []);
  return { snapshots: ls('snapshots'), leases: ls('leases'), tmp: ls('tmp'), tags: JSON.stringify(JSON.parse(fs.readFileSync(path.join(root, 'images.json'), 'utf8')).tags) };
}

test.serial('bad input: one line with the line number; a failed RUN names step and status; the tag never moves; nothing left', async (t) => {
  const c = await setup(t);
  const ctx = c.dir({ Dockerfile: 'FROM busybox\nRUN echo good > /g\n' });
  const good = await c.build(ctx, ['-t', 'keep']);
  ok(t, good);
  const before = storeState(c.e.root);
  const cases: [string, RegExp][] = [
    ['FROM busybox\nFROBNICATE x\n', /^ufs: Dockerfile:2: unknown instruction: FROBNICATE\n$/],
    ['FROM busybox\nCOPY --bogus=1 a b\n', /^ufs: Dockerfile:2: unknown flag for COPY: --bogus\n$/],
    ['FROM busybox\nCOPY missing.txt /\n', /^ufs: Dockerfile:2: COPY failed: missing\.txt: no such file or directory in the build context\n$/],
    // Not here, so asked of the registry (which this test machine may not reach).
    ['FROM no-such-image-here\n', /^ufs: Dockerfile:1: base image no-such-image-here: [^\n]+\n$/],
    ['FROM busybox\nCOPY --from=nostage /x /x\n', /^ufs: Dockerfile:2: base image nostage: [^\n]+\n$/],
    ['FROM busybox\nSHELL /bin/bash\n', /^ufs: Dockerfile:2: SHELL: SHELL requires the arguments to be in JSON form\n$/],
    ['FROM busybox\nCOPY a b c\n', /^ufs: Dockerfile:2: COPY failed: a: no such file/],
    ['FROM busybox\nRUN echo partial > /p && exit 7\n', /ufs: \[2\/2\] RUN echo partial > \/p && exit 7: process "\/bin\/sh -c echo partial > \/p && exit 7" did not complete successfully: exit code: 7\n$/],
  ];
  for (const [text, re] of cases) {
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), text);
    const r = await c.e.ufs(['build', '-q', '-t', 'keep', ctx]);
    t.is(r.code, 1, text);
    t.regex(r.stderr, re, text);
  }
  t.deepEqual(storeState(c.e.root), before, 'no snapshot, lease, temp file or tag change');
  t.is((await c.inspect('keep')).Id, good.id);
});

test.serial('an interrupted build leaves no half layer and moves no tag', async (t) => {
  const c = await setup(t);
  const ctx = c.dir({ Dockerfile: 'FROM busybox\nRUN echo started; echo data > /half; sleep 30\n' });
  const first = c.dir({ Dockerfile: 'FROM busybox\nRUN true\n' });
  ok(t, await c.build(first, ['-t', 'intr']));
  const before = storeState(c.e.root);
  const child = spawn(process.execPath, [CLI, '--root', c.e.root, 'build', '--progress', 'plain', '-t', 'intr', ctx], { env: c.e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('started')) resolve();
    });
  });
  child.kill('SIGINT');
  const code = await new Promise<number>((r) => child.on('exit', (c2) => r(c2 ?? -1)));
  t.is(code, 130, err);
  t.regex(err, /build interrupted/);
  t.deepEqual(storeState(c.e.root), before);
});

test.serial('the tree matches what buildah build --layers makes from the same Dockerfile', async (t) => {
  const c = await setup(t);
  const bb = path.join(c.e.dir, 'bb.tar');
  await c.e.ok(['save', 'busybox', '-o', bb]);
  const steps = 'COPY f.txt /app/\nCOPY d /app/d\nCOPY --chmod=640 f.txt /app/mode.txt\nRUN echo hi > /app/r && rm /etc/group && mkdir -p /var/x && ln -s /app/r /app/link\nWORKDIR /app/w\nCOPY f.txt rel.txt\n';
  const ctx = c.dir({ 'f.txt': 'content\n', 'd/e/g': 'deep\n', Dockerfile: `FROM busybox\n${steps}`, 'Dockerfile.buildah': `FROM docker-archive:${bb}\n${steps}` });
  const ours = await c.build(ctx, ['-t', 'cmp']);
  ok(t, ours);
  const bh = path.join(c.e.dir, 'buildah');
  const bhArgs = ['--root', `${bh}/root`, '--runroot', `${bh}/run`, '--storage-driver', 'vfs'];
  t.teardown(async () => {
    await run('buildah', [...bhArgs, 'rm', '--all']);
    await run('buildah', [...bhArgs, 'rmi', '--all', '--force']);
    await run('sh', ['-c', `umount -R ${bh}/root/* 2>/dev/null; true`]);
  });
  await must('buildah', [...bhArgs, 'build', '--layers', '-q', '-f', path.join(ctx, 'Dockerfile.buildah'), '-t', 'cmp', ctx], { timeoutMs: 120_000 });
  const ctr = (await must('buildah', [...bhArgs, 'from', 'cmp'])).trim();
  const theirRoot = (await must('buildah', [...bhArgs, 'mount', ctr])).trim();
  const mp = fs.mkdtempSync(path.join(c.e.dir, 'mp-'));
  await c.e.ok(['mount', 'cmp', mp]);
  t.teardown(() => run('fusermount', ['-uz', mp]));
  const listing = (root: string) => must('sh', ['-c', `cd ${root} && find . -mindepth 1 \\( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./etc/hosts -o -path ./etc/hostname -o -path ./etc/resolv.conf \\) -prune -o -printf '%p %y %m %U:%G %s %l\\n' | sort`]);
  const mine = await listing(mp);
  const theirs = await listing(theirRoot);
  t.is(mine, theirs);
  const sums = (root: string) => must('sh', ['-c', `cd ${root} && find ./app -type f -exec md5sum {} + | sort`]);
  t.is(await sums(mp), await sums(theirRoot));
});

test.serial('COPY never reads the host through a symlink (in the context or in a --from image)', async (t) => {
  const c = await setup(t);
  const hostDir = path.join(c.e.dir, 'host-secret');
  fs.mkdirSync(hostDir);
  fs.writeFileSync(path.join(hostDir, 'secret'), 'HOST\n');
  const ctx = c.dir({ 'inside/secret': 'CTX\n', Dockerfile: 'FROM busybox\nCOPY esc/secret /got\n' });
  fs.symlinkSync(hostDir, path.join(ctx, 'esc')); // absolute: means the context's root
  const r = await c.build(ctx, []);
  t.is(r.code, 1);
  t.regex(r.err, /COPY failed: esc\/secret: no such file/);
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM busybox AS a\nRUN ln -s ${hostDir}/secret /lnk && ln -s ${hostDir} /dir\nFROM busybox\nCOPY --from=a /lnk /got\n`);
  const f = await c.build(ctx, []);
  t.is(f.code, 1);
  t.regex(f.err, /COPY failed: \/lnk: no such file/);
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM busybox AS a\nRUN mkdir -p ${hostDir} && echo IMAGE > ${hostDir}/secret && ln -s ${hostDir} /dir\nFROM busybox\nCOPY --from=a /dir/secret /got\n`);
  const g = await c.build(ctx, ['-t', 'symlink-ok']);
  ok(t, g);
  t.is(await c.sh('symlink-ok', 'cat /got'), 'IMAGE\n', 'the link is followed inside the image');
  // Writing through a link in the image lands inside the image too.
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM busybox\nRUN ln -s ${hostDir} /out\nCOPY inside/secret /out/\n`);
  const w = await c.build(ctx, ['-t', 'symlink-write']);
  ok(t, w);
  t.is(fs.readFileSync(path.join(hostDir, 'secret'), 'utf8'), 'HOST\n');
  t.is(await c.sh('symlink-write', `cat ${hostDir}/secret`), 'CTX\n');
});

test.serial('WORKDIR makes a layer with its directory (owned by USER, through symlinks); ADD --chown owns what an archive extracts', async (t) => {
  const c = await setup(t);
  const tarsrc = path.join(c.e.dir, 'wdtar');
  fs.mkdirSync(path.join(tarsrc, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(tarsrc, 'sub', 'f'), 'in tar\n');
  const ctx = c.dir({
    Dockerfile: [
      'FROM busybox',
      'WORKDIR /app/sub',
      'USER 1000:1001',
      'WORKDIR /data',
      'USER nobody',
      'WORKDIR /nb',
      'USER root',
      'RUN ln -s /real /link && mkdir /real',
      'WORKDIR /link/inside',
      'WORKDIR /',
      'ADD --chown=1000:1001 a.tgz /x/',
      'CMD ["sh"]',
    ].join('\n'),
  });
  await must('tar', ['czf', path.join(ctx, 'a.tgz'), '-C', tarsrc, '.']);
  const b = await c.build(ctx, ['-t', 'wd', '--network', 'none']);
  ok(t, b);
  const got = await c.sh('wd', 'stat -c "%n %F %u:%g %a" /app /app/sub /data /nb /real/inside /x/sub /x/sub/f; pwd');
  t.is(
    got,
    ['/app directory 0:0 755', '/app/sub directory 0:0 755', '/data directory 1000:1001 755', '/nb directory 65534:65534 755', '/real/inside directory 0:0 755', '/x/sub directory 1000:1001 755', '/x/sub/f regular file 1000:1001 644', '/', ''].join('\n'),
  );
  const cfg = await c.inspect('wd');
  t.is(cfg.Config.WorkingDir, '/');
  const hist = JSON.parse(fs.readFileSync(path.join(c.e.root, 'blobs', 'sha256', b.id.slice(7)), 'utf8')).history.slice(-11);
  // WORKDIR /dir is a layer (as BuildKit's), WORKDIR / and USER are not.
  t.deepEqual(
    hist.map((h: any) => `${h.created_by} ${h.empty_layer ? 'empty' : 'layer'}`),
    ['WORKDIR /app/sub layer', 'USER 1000:1001 empty', 'WORKDIR /data layer', 'USER nobody empty', 'WORKDIR /nb layer', 'USER root empty', 'RUN /bin/sh -c ln -s /real /link && mkdir /real layer', 'WORKDIR /link/inside layer', 'WORKDIR / empty', `ADD file:${hist[9].created_by.slice(9, 73)} in /x/ layer`, 'CMD ["sh"] empty'],
  );
  // Cached as a whole the second time; no mount was needed for the plain WORKDIRs.
  const again = await c.build(ctx, ['-t', 'wd', '--network', 'none']);
  ok(t, again);
  t.is(again.id, b.id);
});

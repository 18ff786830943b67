// The Dockerfile parser, the word lexer (substitution rules) and .dockerignore matching, as
// Docker documents them: pure functions, many cases.
import test from 'ava';
import { isIgnored, parseDockerignore } from '../src/build/dockerignore.js';
import { lexWord, lexWords, splitRaw } from '../src/build/lexer.js';
import { parseDockerfile } from '../src/build/parser.js';
import { makePlan } from '../src/build/plan.js';

const vars = new Map([
  ['A', 'a'],
  ['EMPTY', ''],
  ['SP', 'x y'],
]);

const words: [string, string][] = [
  ['$A', 'a'],
  ['${A}', 'a'],
  ['pre${A}post', 'preapost'],
  ['$A$A', 'aa'],
  ['$UNSET', ''],
  ['${UNSET:-def}', 'def'],
  ['${EMPTY:-def}', 'def'],
  ['${EMPTY-def}', ''],
  ['${UNSET-def}', 'def'],
  ['${A:-def}', 'a'],
  ['${A:+alt}', 'alt'],
  ['${EMPTY:+alt}', ''],
  ['${EMPTY+alt}', 'alt'],
  ['${UNSET:+alt}', ''],
  ['${UNSET:-$A}', 'a'],
  ["'$A'", '$A'],
  ['"$A"', 'a'],
  ['"\\$A"', '$A'],
  ['\\$A', '$A'],
  ['"a b"', 'a b'],
  ["a'b c'd", 'ab cd'],
  ['$', '$'],
  ['$1', ''],
  ['"\\n"', '\\n'],
  ['${A}_${A}', 'a_a'],
];
for (const [input, want] of words) {
  test(`lexWord ${input}`, (t) => t.is(lexWord(input, vars), want));
}

test('lexWord: ${V:?msg} fails when unset', (t) => {
  t.throws(() => lexWord('${UNSET:?need it}', vars), { message: /UNSET: need it/ });
  t.is(lexWord('${A:?x}', vars), 'a');
});

test('lexWord: unterminated quotes and braces are errors', (t) => {
  t.throws(() => lexWord('"abc', vars), { message: /double-quote/ });
  t.throws(() => lexWord("'abc", vars), { message: /single-quote/ });
  t.throws(() => lexWord('${A', vars), { message: /missing '}'/ });
  t.throws(() => lexWord('${1x}', vars), { message: /bad substitution/ });
});

test('lexWords splits unquoted expansions, not quoted ones', (t) => {
  t.deepEqual(lexWords('$SP z', vars), ['x', 'y', 'z']);
  t.deepEqual(lexWords('"$SP" z', vars), ['x y', 'z']);
  t.deepEqual(lexWords('  a   b  ', vars), ['a', 'b']);
  t.deepEqual(lexWords('"" b', vars), ['', 'b']);
  t.deepEqual(lexWords('$UNSET b', vars), ['b']);
});

test('the escape character can be a backtick', (t) => {
  t.is(lexWord('`$A', vars, '`'), '$A');
  t.is(lexWord('c:\\dir', vars, '`'), 'c:\\dir');
});

test('splitRaw keeps quotes for later', (t) => {
  t.deepEqual(splitRaw('a="x y" b=\'z\' c'), ['a="x y"', "b='z'", 'c']);
  t.throws(() => splitRaw('a="x'), { message: /unmatched/ });
});

test('parser: comments, blank lines, continuations and case', (t) => {
  const df = parseDockerfile('# a comment\n\nfrom busybox\nRUN echo a \\\n  # inside\n\n  b\n  # trailing\nrun true\n');
  t.deepEqual(df.instructions.map((i) => [i.keyword, i.line, i.rest]), [
    ['FROM', 3, 'busybox'],
    ['RUN', 4, 'echo a   b'],
    ['RUN', 9, 'true'],
  ]);
});

test('parser: directives only at the top; escape changes the continuation character', (t) => {
  const df = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo a `\n b\n');
  t.is(df.escape, '`');
  t.is(df.syntax, 'docker/dockerfile:1');
  t.is(df.instructions[1]!.rest, 'echo a  b');
  const late = parseDockerfile('FROM busybox\n# escape=`\nRUN echo a \\\n b\n');
  t.is(late.escape, '\\');
  t.is(late.instructions[1]!.rest, 'echo a  b');
  t.throws(() => parseDockerfile('# escape=x\nFROM a\n'), { message: /Dockerfile:1: invalid escape token/ });
  t.throws(() => parseDockerfile('# escape=`\n# escape=\\\nFROM a\n'), { message: /only one escape/ });
});

test('parser: JSON and shell forms', (t) => {
  const df = parseDockerfile('FROM a\nCMD ["sh", "-c", "echo hi"]\nCMD [not json\nENTRYPOINT echo hi\n');
  t.deepEqual(df.instructions[1]!.json, ['sh', '-c', 'echo hi']);
  t.is(df.instructions[2]!.json, undefined);
  t.is(df.instructions[2]!.rest, '[not json');
  t.is(df.instructions[3]!.json, undefined);
});

test('parser: flags, and unknown instructions or flags name their line', (t) => {
  const df = parseDockerfile('FROM a\nCOPY --chown=1:2 --chmod=644 --from=b x y\n');
  t.deepEqual(df.instructions[1]!.flags, [
    { name: 'chown', value: '1:2' },
    { name: 'chmod', value: '644' },
    { name: 'from', value: 'b' },
  ]);
  t.is(df.instructions[1]!.rest, 'x y');
  t.throws(() => parseDockerfile('FROM a\n\nFOO bar\n'), { message: 'Dockerfile:3: unknown instruction: FOO' });
  t.throws(() => parseDockerfile('FROM a\nCOPY --bogus=1 a b\n'), { message: 'Dockerfile:2: unknown flag for COPY: --bogus' });
  t.throws(() => parseDockerfile('FROM a\nRUN --from=x true\n'), { message: /Dockerfile:2: unknown flag for RUN: --from/ });
});

test('parser: here-documents', (t) => {
  const df = parseDockerfile('FROM a\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<-"END" /f\n\tx $A\n\tEND\nRUN cat <<A <<B\na\nA\nb\nB\nRUN echo after\n');
  const [, run, copy, two, after] = df.instructions;
  t.deepEqual(run!.heredocs, [{ name: 'EOF', content: 'echo one\necho two\n', expand: true }]);
  t.deepEqual(copy!.heredocs, [{ name: 'END', content: 'x $A\n', expand: false }]);
  t.deepEqual(two!.heredocs.map((h) => h.content), ['a\n', 'b\n']);
  t.is(after!.rest, 'echo after');
  t.is(after!.line, 14);
  t.throws(() => parseDockerfile('FROM a\nRUN <<EOF\necho\n'), { message: /Dockerfile:2: here-document EOF is not terminated/ });
});

test('parser: CRLF line ends and a BOM are accepted', (t) => {
  const df = parseDockerfile('\uFEFFFROM a\r\nRUN echo hi\r\n');
  t.deepEqual(df.instructions.map((i) => i.rest), ['a', 'echo hi']);
});

test('plan: stages, ARG before FROM, only what the target needs', (t) => {
  const text = 'ARG BASE=busybox\nFROM $BASE AS one\nRUN true\nFROM busybox AS two\nRUN true\nFROM one AS three\nCOPY --from=two /x /x\nFROM busybox AS other\n';
  const df = parseDockerfile(text);
  const plan = makePlan(df, 'Dockerfile', new Map([['BASE', 'busybox']]), 'three');
  t.deepEqual(plan.needed, [0, 1, 2]);
  t.is(plan.stages[0]!.base, 'busybox');
  t.deepEqual(makePlan(df, 'Dockerfile', new Map([['BASE', 'busybox']])).needed, [3]);
  t.throws(() => makePlan(df, 'Dockerfile', new Map([['BASE', 'busybox']]), 'nope'), { message: /target stage "nope" could not be found/ });
  t.throws(() => makePlan(parseDockerfile('RUN true\nFROM a\n'), 'Dockerfile', new Map()), { message: /Dockerfile:1: RUN before the first FROM/ });
  t.throws(() => makePlan(parseDockerfile('FROM a AS x\nFROM b AS x\n'), 'Dockerfile', new Map()), { message: /Dockerfile:2: duplicate stage name/ });
  t.throws(() => makePlan(parseDockerfile('# only a comment\n'), 'Dockerfile', new Map()), { message: /no FROM/ });
});

// .dockerignore: [patterns, path, ignored?]
const ignoreCases: [string, string, boolean][] = [
  ['*.md', 'README.md', true],
  ['*.md', 'docs/README.md', false],
  ['**/*.md', 'docs/README.md', true],
  ['**/*.md', 'README.md', true],
  ['docs', 'docs/a/b.txt', true],
  ['/docs', 'docs/a', true],
  ['docs/', 'docs/a', true],
  ['temp?', 'temp1', true],
  ['temp?', 'temp12', false],
  ['*/temp*', 'somedir/temporary.txt', true],
  ['*/temp*', 'temp.txt', false],
  ['*/*/temp*', 'a/b/temp', true],
  ['a/**/b', 'a/b', true],
  ['a/**/b', 'a/x/y/b', true],
  ['a/**', 'a/x', true],
  ['[ab].txt', 'a.txt', true],
  ['[!ab].txt', 'a.txt', false],
  ['[!ab].txt', 'c.txt', true],
  ['*.md\n!README.md', 'README.md', false],
  ['*.md\n!README.md', 'other.md', true],
  ['!README.md\n*.md', 'README.md', true],
  ['docs\n!docs/keep', 'docs/keep', false],
  ['docs\n!docs/keep', 'docs/keep/x', false],
  ['docs\n!docs/keep', 'docs/drop', true],
  ['# comment\n\n  x  ', 'x', true],
  ['# comment', 'comment', false],
  ['./x/../y', 'y', true],
  ['**', 'anything/at/all', true],
  ['**\n!src/**', 'src/a.ts', false],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['.git', '.git/HEAD', true],
  ['*', 'Dockerfile', true],
];
for (const [pats, p, want] of ignoreCases) {
  test(`.dockerignore ${JSON.stringify(pats)} ${want ? 'ignores' : 'keeps'} ${p}`, (t) => {
    t.is(isIgnored(parseDockerignore(pats), p), want);
  });
}

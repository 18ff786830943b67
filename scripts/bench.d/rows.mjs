// The benchmark rows, grouped in sessions. `prime` says what a session reads (metadata of
// the trees, the big file, the small files, the tar), which the runner reads once from the
// contender's sources before dropping caches: see primeCmd in run.mjs.
// A session is one fresh mount (fresh empty upper),
// after which caches are dropped; its steps then run in order on that mount, so the second
// step of a session is the "warm" repeat of the first. Each step has a shell command (timed)
// and a check (untimed) that the result is right: a fast wrong answer must not count.
import { dirname, basename } from 'node:path';
import { q, run, firstLine } from './lib.mjs';

const findCmd = (r) => `find ${q(r)} -printf '%y %m %n %U %G %s %T@ %p\\n' | wc -l`;

async function expectOut(res, want, what) {
  const got = res.stdout.trim();
  return got === String(want) ? null : `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(String(want))}`;
}

// Runs an untimed check command; null when it succeeds, else its message.
async function checkCmd(cmd, what) {
  const r = await run(cmd, { timeoutMs: 600_000 });
  return r.code === 0 ? null : `${what}${r.stderr.trim() ? `: ${firstLine(r.stderr)}` : ''}`;
}

// After a 4 KiB write at the start of the big file: that 4 KiB is zero, the rest still the
// lower's bytes, size unchanged.
function copyUpCheck(r, X) {
  const f = q(`${r}/${X.bigRel}`), l = q(X.lowerBig);
  return checkCmd(
    `test "$(stat -c %s ${f})" = ${X.bigBytes} && cmp -s -n 4096 ${f} /dev/zero && ` +
    `cmp -s -i 4096 -n 1048576 ${f} ${l} && cmp -s <(tail -c 1048576 ${f}) <(tail -c 1048576 ${l})`,
    'file content after copy-up is wrong');
}

/**
 * X (the stack): { bigRel, bigBytes, smallRel, smallFiles, smallDirs, entries, smallTar,
 *   lowerBig, python, randread, randCount, expect: { tarBytes, randread } }
 */
export const sessions = [
  {
    id: 'find', prime: ['meta'], writes: false, needs: [],
    steps: [
      { id: 'find-cold', label: 'find -printf walk, cold', cmd: (r) => findCmd(r),
        check: (res, r, X) => expectOut(res, X.entries, 'entries') },
      { id: 'find-warm', label: 'find -printf walk, warm', cmd: (r) => findCmd(r),
        check: (res, r, X) => expectOut(res, X.entries, 'entries') },
    ],
  },
  {
    id: 'seq', prime: ['big'], writes: false, needs: [],
    steps: ['cold', 'warm'].map((w) => ({
      id: `seq-${w}`, label: (X) => `seq read ${X.bigLabel}, ${w}`,
      cmd: (r, X) => `dd if=${q(`${r}/${X.bigRel}`)} of=/dev/null bs=1M 2>&1 | tail -n1`,
      check: async (res, r, X) => {
        const n = /^(\d+) bytes/.exec(res.stdout.trim());
        return n && Number(n[1]) === X.bigBytes ? null : `read ${n ? n[1] : '?'} bytes, want ${X.bigBytes}`;
      },
    })),
  },
  {
    id: 'tar', prime: ['meta', 'small'], writes: false, needs: [],
    steps: [{
      id: 'tar-c', label: (X) => `tar c ${X.smallFiles} small files, cold`,
      cmd: (r, X) => `tar cf - -C ${q(r)} ${q(X.smallRel)} | wc -c`,
      check: (res, r, X) => expectOut(res, X.expect.tarBytes, 'tar bytes'),
    }],
  },
  {
    id: 'untar', prime: ['tar'], writes: true, needs: [],
    steps: [{
      id: 'untar', label: (X) => `untar ${X.smallFiles} small files`,
      cmd: (r, X) => `mkdir ${q(`${r}/untar`)} && tar xf ${q(X.smallTar)} -C ${q(`${r}/untar`)}`,
      check: (res, r, X) => checkCmd(
        `test "$(find ${q(`${r}/untar`)} -type f | wc -l)" = ${X.smallFiles} && ` +
        `test "$(tar cf - -C ${q(`${r}/untar`)} small | wc -c)" = ${X.expect.tarBytes}`,
        'untarred tree differs'),
    }],
  },
  {
    id: 'copyup', prime: ['big'], writes: true, needs: ['bigRel'],
    steps: [{
      id: 'copy-up', label: (X) => `copy-up: 4 KiB write to ${X.bigLabel} lower file`,
      cmd: (r, X) => `dd if=/dev/zero of=${q(`${r}/${X.bigRel}`)} bs=4k count=1 conv=notrunc status=none`,
      check: (res, r, X) => copyUpCheck(r, X),
    }],
  },
  {
    // The same write, then a read of the file's end: the whole copy is in this time for every
    // contender, also for one that copies up in the background (ufs: see the README).
    id: 'copyupend', prime: ['big'], writes: true, needs: ['bigRel'],
    steps: [{
      id: 'copy-up-end', label: 'copy-up, then read the last 4 KiB',
      cmd: (r, X) => `dd if=/dev/zero of=${q(`${r}/${X.bigRel}`)} bs=4k count=1 conv=notrunc status=none && ` +
        `tail -c 4096 ${q(`${r}/${X.bigRel}`)} | wc -c`,
      check: async (res, r, X) => (await expectOut(res, 4096, 'bytes read back')) ?? copyUpCheck(r, X),
    }],
  },
  {
    id: 'rm', prime: ['meta'], writes: true, needs: ['smallRel'],
    steps: [{
      id: 'rm-rf', label: (X) => `rm -rf lower tree (${X.smallFiles} files)`,
      cmd: (r, X) => `rm -rf ${q(`${r}/${X.smallRel}`)}`,
      check: (res, r, X) => {
        const parent = q(`${r}/${dirname(X.smallRel)}`);
        return checkCmd(`! test -e ${q(`${r}/${X.smallRel}`)} && test -d ${parent} && ` +
          `! ls -A ${parent} | grep -qx ${q(basename(X.smallRel))}`, 'tree still visible');
      },
    }],
  },
  {
    id: 'rename', prime: ['meta', 'small'], writes: true, needs: ['smallRel'],
    steps: [{
      id: 'rename', label: (X) => `mv lower dir (${X.smallFiles} files)`,
      cmd: (r, X) => `mv ${q(`${r}/${X.smallRel}`)} ${q(`${r}/${X.smallRel}2`)}`,
      check: (res, r, X) => checkCmd(
        `! test -e ${q(`${r}/${X.smallRel}`)} && ` +
        `test "$(find ${q(`${r}/${X.smallRel}2`)} -type f | wc -l)" = ${X.smallFiles}`,
        'renamed tree wrong'),
    }],
  },
  {
    id: 'rand', prime: ['big'], writes: false, needs: [],
    steps: [{
      id: 'rand-4k', label: (X) => `${X.randCount} random 4 KiB preads, cold`,
      cmd: (r, X) => `${q(X.python)} ${q(X.randread)} ${q(`${r}/${X.bigRel}`)} ${X.randCount}`,
      check: (res, r, X) => expectOut(res, X.expect.randread, 'reads/crc32'),
    }],
  },
];

export const allSteps = sessions.flatMap((s) => s.steps);
export const labelOf = (step, X) => (typeof step.label === 'function' ? step.label(X) : step.label);

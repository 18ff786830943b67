#!/usr/bin/env node
// The bench runner (started by scripts/bench, which owns the run dir and the exit trap).
// For each run, each session and each contender: a fresh view of the stack, caches
// dropped, then the session's steps timed one after another. Contenders are interleaved
// within a run so slow drift of the machine spreads over all of them.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import {
  q, run, must, sleep, dropCaches, cpuSecs, cpuTimes, peakRssKiB, othersBusy, median, killRunning, mounts, firstLine, errLine,
} from './lib.mjs';
import { makeContenders, contenderNames, optionalContenders, unmount } from './contenders.mjs';
import { sessions, labelOf } from './rows.mjs';
import { render } from './report.mjs';

const here = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const a = { runs: 3, only: null, rows: null, timeout: 900, quietWait: 0 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = () => argv[++i];
    if (k === '--stack') a.stack = v();
    else if (k === '--run-dir') a.runDir = v();
    else if (k === '--runs') a.runs = Number(v());
    else if (k === '--only') a.only = v().split(',').filter(Boolean);
    else if (k === '--rows') a.rows = v().split(',').filter(Boolean);
    else if (k === '--out') a.out = v();
    else if (k === '--ufs-main') a.ufsMain = v();
    else if (k === '--timeout') a.timeout = Number(v());
    else if (k === '--quiet-wait') a.quietWait = Number(v());
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

function readEnv(file) {
  const e = {};
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(l);
    if (m) e[m[1]] = m[2];
  }
  return e;
}

// The reason shown inside a table cell: no paths, no program prefix, at most 48 characters.
const short = (msg) => {
  const s = String(msg).replace(/\s+/g, ' ').replace(/\bufs: /g, '').replace(/\/[^\s:'"]+/g, '…').trim();
  return s.length > 48 ? `${s.slice(0, 47)}…` : s;
};
const log = (s) => process.stderr.write(`${s}\n`);

// A fresh ext4 (sparse image, loop-mounted) at `dir`, inode tables written now so no lazy
// init runs behind the timed commands.
async function freshDisk(img, dir) {
  await must(`rm -f ${q(img)} && truncate -s 8G ${q(img)} && mkfs.ext4 -q -F -N 400000 -E lazy_itable_init=0,lazy_journal_init=0 ${q(img)}`);
  await must(`mount -o loop ${q(img)} ${q(dir)}`);
}

async function main() {
  const A = parseArgs(process.argv.slice(2));
  const S = readEnv(`${A.stack}/stack.env`);
  const unknown = (A.only ?? []).filter((n) => !contenderNames.includes(n));
  if (unknown.length) throw new Error(`--only: unknown contender ${unknown.join(', ')} (have ${contenderNames.join(', ')})`);
  let chosen = sessions;
  if (A.rows) {
    const ids = [...new Set(sessions.flatMap((s) => [s.id, ...s.steps.map((st) => st.id)]))];
    const bad = A.rows.filter((r) => !ids.includes(r));
    if (bad.length) throw new Error(`--rows: unknown ${bad.join(', ')} (have ${ids.join(', ')})`);
    chosen = sessions.filter((s) => A.rows.includes(s.id) || s.steps.some((st) => A.rows.includes(st.id)));
  }
  const runDir = A.runDir;

  // Read-only bind mounts of the cached layers: every contender reads the lowers through
  // them, so a buggy union can never damage the cache.
  const ro = {};
  for (const n of ['layer1', 'layer2', 'layer3', 'plain']) {
    ro[n] = `${runDir}/ro/${n}`;
    mkdirSync(ro[n], { recursive: true });
    await must(`mount --bind ${q(`${A.stack}/${n}`)} ${q(ro[n])} && mount -o remount,bind,ro ${q(ro[n])}`);
  }
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const bigBytes = Number(S.BIG_BYTES);
  const X = {
    bigRel: S.BIG_REL, bigBytes,
    bigLabel: bigBytes >= 1 << 30 ? `${bigBytes / (1 << 30)} GiB` : `${bigBytes / (1 << 20)} MiB`,
    smallRel: S.SMALL_REL, smallFiles: Number(S.SMALL_FILES), smallDirs: Number(S.SMALL_DIRS),
    entries: Number(S.PLAIN_ENTRIES), smallTar: `${A.stack}/small.tar`,
    lowerBig: `${ro.layer2}/${S.BIG_REL}`, python, randread: `${here}/randread.py`,
    randCount: S.MODE === 'full' ? 20000 : 2000, expect: {},
  };
  const E = {
    lowers: [ro.layer3, ro.layer2, ro.layer1], plainRoot: ro.plain, runDir, X,
    ufsMain: A.ufsMain, ufsRoot: `${runDir}/ufs-root`,
  };

  // Untimed reference answers, from the plain directory.
  X.expect.tarBytes = (await must(`tar cf - -C ${q(ro.plain)} ${q(X.smallRel)} | wc -c`)).stdout.trim();
  X.expect.randread = (await must(`${q(python)} ${q(X.randread)} ${q(`${ro.plain}/${X.bigRel}`)} ${X.randCount}`)).stdout.trim();

  let contenders = makeContenders(E);
  if (A.only) contenders = contenders.filter((c) => c.name === 'plain' || A.only.includes(c.name));
  else contenders = contenders.filter((c) => !optionalContenders.includes(c.name));
  const steps = chosen.flatMap((s) => s.steps);

  const R = {
    mode: S.MODE, runs: A.runs, contenders: contenders.map((c) => c.name),
    steps: steps.map((st) => ({ id: st.id, label: labelOf(st, X) })),
    cells: {}, servers: {}, notes: [], stack: S,
    stackText: `${S.MODE === 'full' ? 'Debian 12 minbase' : 'busybox'} root (${S.LAYER1_ENTRIES} entries) + ` +
      `${X.bigLabel} file + ${X.smallFiles} files of 1-8 KiB in ${X.smallDirs} dirs; ${X.entries} entries merged`,
  };
  for (const st of steps) R.cells[st.id] = {};
  const note = (n) => { if (!R.notes.includes(n)) R.notes.push(n); };

  // Timings mean little on a machine busy with other work. Before each session, while the
  // bench itself sleeps, sample how busy the CPUs are; the notes say so when it was notable.
  const busySamples = [];
  // With --quiet-wait S, a session waits up to S seconds for other work to calm down first.
  let waited = 0;
  const sampleBusy = async () => {
    let b = await othersBusy();
    for (const t0 = Date.now(); b > 0.1 && Date.now() - t0 < A.quietWait * 1000;) {
      if (Date.now() - t0 < 1000) log(`bench: other work keeps the CPUs ${(b * 100).toFixed(0)}% busy: waiting (--quiet-wait)`);
      await sleep(1000);
      waited += 1;
      b = await othersBusy(300);
    }
    busySamples.push(b);
  };

  const dead = new Map(); // contender -> reason it is out for the rest of the run
  for (const c of contenders) {
    const why = await c.check();
    if (why) { dead.set(c.name, why); note(`${c.name}: n/a: ${why}`); }
    if (c.fuse) R.servers[c.name] = { peakRssKiB: null, cpuTotal: 0 };
  }

  const open = new Set(); // views not yet closed, for Ctrl-C
  let stopping = false;
  const stop = async (sig) => {
    if (stopping) return;
    stopping = true;
    log(`bench: ${sig}: unmounting`);
    killRunning();
    for (const v of open) await v.close().catch(() => {});
    process.exit(130);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  // The inputs of a session, read once from the contender's own sources (plain: its copy;
  // unions: the layers) before the guest's caches are dropped. On a VM the host caches the
  // disk: without this, whoever reads a file first pays the host's cold read (5-8x slower
  // here) and the others get it cheap. Primed, every contender starts from the same state:
  // guest caches empty, host cache warm.
  const primeCmd = (c, s) => {
    const cmds = [];
    for (const src of c.name === 'plain' ? [E.plainRoot] : E.lowers) {
      if (s.prime.includes('meta')) cmds.push(`find ${q(src)} -printf ''`);
      if (s.prime.includes('big')) cmds.push(`{ [ ! -f ${q(`${src}/${X.bigRel}`)} ] || cat ${q(`${src}/${X.bigRel}`)} > /dev/null; }`);
      if (s.prime.includes('small')) cmds.push(`{ [ ! -d ${q(`${src}/${X.smallRel}`)} ] || find ${q(`${src}/${X.smallRel}`)} -type f -exec cat {} + > /dev/null; }`);
    }
    if (s.prime.includes('tar')) cmds.push(`cat ${q(X.smallTar)} > /dev/null`);
    return cmds.join(' && ') || 'true';
  };

  let seq = 0;
  for (let runNo = 1; runNo <= A.runs; runNo++) {
    // Rotate the order each run, so no contender always goes first.
    const k = (runNo - 1) % contenders.length;
    const order = [...contenders.slice(k), ...contenders.slice(0, k)];
    for (const s of chosen) {
      for (const c of order) {
        if (stopping) await new Promise(() => {}); // stop() is unmounting and will exit
        const cells = s.steps.map((st) => (R.cells[st.id][c.name] ??= { runs: [] }));
        if (dead.has(c.name)) {
          for (const cl of cells) Object.assign(cl, { unavailable: true, short: short(dead.get(c.name)) });
          continue;
        }
        if (cells.some((cl) => cl.fail)) continue; // failed before: its later runs would too
        await sampleBusy();
        const sdir = `${runDir}/s/${String(++seq).padStart(3, '0')}-${c.name}-${s.id}`;
        mkdirSync(sdir, { recursive: true });
        let view;
        try {
          // A session that writes gets a new ext4 of its own for its upper (or plain's copy):
          // file creation on ext4 slows down sharply next to many recently deleted inodes (the
          // rm rows make plenty), which would favour whoever writes first on a fresh disk.
          if (s.writes) await freshDisk(`${runDir}/disk.img`, sdir);
          view = await c.open({ dir: sdir, writes: s.writes, needs: s.needs });
        } catch (e) {
          dead.set(c.name, e.message);
          note(`${c.name}: ${e.message}`);
          for (const cl of cells) Object.assign(cl, { unavailable: true, short: short(e.message) });
          log(`[${runNo}/${A.runs}] ${s.id.padEnd(7)} ${c.name.padEnd(15)} ${e.message}`);
          continue;
        }
        open.add(view);
        const line = [];
        try {
          await must(primeCmd(c, s), { timeoutMs: 1_800_000 });
          await dropCaches();
          for (let i = 0; i < s.steps.length; i++) {
            const st = s.steps[i], cl = cells[i];
            const cpu0 = view.pid ? cpuTimes(view.pid) : null;
            const r = await run(st.cmd(view.root, X), { timeoutMs: A.timeout * 1000 });
            const cpu1 = view.pid ? cpuTimes(view.pid) : null;
            let err = null;
            if (r.timedOut) err = `timed out after ${A.timeout} s`;
            else if (r.code !== 0) err = errLine(r.stderr) || `exit ${r.code ?? r.signal}`;
            else err = await st.check(r, view.root, X);
            if (err) {
              Object.assign(cl, { fail: err, short: short(err) });
              note(`${c.name}, ${labelOf(st, X)}: ${err}`);
              line.push(`${st.id} FAIL: ${err}`);
              break; // the session's later steps depend on this one
            }
            const cpu = cpu0 && cpu1 ? { user: cpu1.user - cpu0.user, sys: cpu1.sys - cpu0.sys } : null;
            cl.runs.push({ secs: r.secs, cpu: cpu ? cpu.user + cpu.sys : null, cpuUser: cpu?.user ?? null, cpuSys: cpu?.sys ?? null });
            line.push(`${st.id} ${r.secs.toFixed(3)}s`);
          }
          if (view.pid) {
            const srv = R.servers[c.name];
            const k = peakRssKiB(view.pid);
            if (k != null) srv.peakRssKiB = Math.max(srv.peakRssKiB ?? 0, k);
            srv.cpuTotal += cpuSecs(view.pid) ?? 0;
          }
        } finally {
          open.delete(view);
          try {
            await view.close();
          } catch (e) {
            dead.set(c.name, e.message);
            note(`${c.name}: ${e.message}`);
          }
        }
        log(`[${runNo}/${A.runs}] ${s.id.padEnd(7)} ${c.name.padEnd(15)} ${line.join('  ')}`);
        // The session's files go, unless something is still mounted inside (the trap's job then).
        if (!mounts().some((m) => m.target.startsWith(`${sdir}/`))) {
          if (s.writes) await run(`umount ${q(sdir)} && rm -f ${q(`${runDir}/disk.img`)}`);
          await run(`rm -rf --one-file-system ${q(sdir)}`);
        }
      }
    }
  }

  for (const st of steps) {
    for (const [name, cl] of Object.entries(R.cells[st.id])) {
      cl.median = !cl.fail && !cl.unavailable && cl.runs.length ? median(cl.runs.map((r) => r.secs)) : null;
      if (cl.median != null && cl.runs.length < A.runs) note(`${name}, ${labelOf(st, X)}: only ${cl.runs.length} of ${A.runs} runs`);
    }
  }
  if (busySamples.length) {
    const avg = busySamples.reduce((a, b) => a + b, 0) / busySamples.length;
    const hi = busySamples.filter((x) => x > 0.5).length;
    R.othersBusy = { mean: avg, max: Math.max(...busySamples), samples: busySamples.length, waitedSecs: waited };
    if (waited) note(`waited ${waited} s in all for other work to calm down (--quiet-wait)`);
    if (avg > 0.15 || hi > busySamples.length / 10) {
      const n = `other work kept the CPUs ${(avg * 100).toFixed(0)}% busy on average between sessions ` +
        `(over 50% in ${hi} of ${busySamples.length} samples): timings are skewed, rerun on a quiet machine`;
      note(n);
      log(`bench: warning: ${n}`);
    }
  }
  R.meta = await meta(A);
  const md = render(R);
  mkdirSync(A.out, { recursive: true });
  writeFileSync(`${A.out}/results.md`, `# ufs bench, ${R.meta.date}\n\n${R.meta.text}\n\n${md}`);
  writeFileSync(`${A.out}/results.json`, `${JSON.stringify(R, null, 2)}\n`);
  process.stdout.write(`\n${md}\n`);
  // (Anything left mounted here is the exit trap's to clean up.)
  for (const n of ['layer1', 'layer2', 'layer3', 'plain']) await unmount(ro[n]).catch(() => {});
}

async function meta(A) {
  const one = async (cmd) => firstLine((await run(cmd, { timeoutMs: 30_000 })).stdout);
  const m = {
    date: new Date().toISOString(),
    kernel: await one('uname -r'),
    cpus: await one('nproc'),
    memory: await one("free -m | awk '/^Mem:/ {print $2 \" MiB\"}'"),
    disk: await one(`findmnt -n -o SOURCE,FSTYPE -T ${q(A.runDir)}`),
    node: process.version,
    fuseOverlayfs: await one('fuse-overlayfs --version 2>&1 | grep -i "fuse-overlayfs: version"'),
    unionfs: await one('unionfs --version 2>&1 | grep -i "unionfs-fuse version"'),
    ufs: await one(`git -C ${q(`${here}/../..`)} rev-parse --short HEAD`),
  };
  m.text = `Machine: Linux ${m.kernel}, ${m.cpus} CPUs, ${m.memory}, ${m.disk}; node ${m.node}; ` +
    `${m.fuseOverlayfs || 'fuse-overlayfs ?'}; ${m.unionfs || 'unionfs-fuse ?'}; ufs: the checkout at ${m.ufs || '?'} with its working tree, as built when the bench started.`;
  return m;
}

main().catch((e) => {
  log(`bench: ${e.message}`);
  process.exitCode = 1;
});

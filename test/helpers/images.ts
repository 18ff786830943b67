// Helpers for the image and store tests: a temp store driven through the built CLI, fixture
// archives written by the real tools (skopeo, umoci) from a busybox rootfs made here, and a
// raw tar writer independent of src/ for hostile archives.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import type { ExecutionContext } from 'ava';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CLI = path.resolve(here, '..', '..', 'src', 'cli', 'main.js');

export { run, type Result, type RunOpts } from './process.js';
import { run, type Result, type RunOpts } from './process.js';

export async function must(cmd: string, args: string[], opts: RunOpts = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export async function tempDir(t: ExecutionContext, prefix = 'img'): Promise<string> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `ufs-test-${prefix}-`));
  t.teardown(() => cleanupDir(dir));
  return dir;
}

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((mp): mp is string => !!mp && (mp === dir || mp.startsWith(`${dir}/`)))
    .reverse();
}

// Unmounts anything under dir, stops mount servers recorded in dir/run, removes dir.
async function cleanupDir(dir: string): Promise<void> {
  for (const mp of mountsUnder(dir)) await run('fusermount', ['-uz', mp]);
  const recs = path.join(dir, 'run', 'mounts');
  for (const f of fs.existsSync(recs) ? fs.readdirSync(recs) : []) {
    try {
      const rec = JSON.parse(fs.readFileSync(path.join(recs, f), 'utf8')) as { pid?: number };
      if (rec.pid) process.kill(rec.pid, 'SIGKILL');
    } catch {
      // gone or not a record
    }
  }
  if (mountsUnder(dir).length) return; // never recurse into a mount
  fs.rmSync(dir, { recursive: true, force: true });
}

export interface ImageEnv {
  dir: string;
  root: string;
  env: NodeJS.ProcessEnv;
  ufs(args: string[], opts?: RunOpts): Promise<Result>;
  ok(args: string[], opts?: RunOpts): Promise<string>; // throws with the output if exit != 0
}

export async function imageEnv(t: ExecutionContext): Promise<ImageEnv> {
  const dir = await tempDir(t, 'img');
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(dir, 'run'));
  const env: NodeJS.ProcessEnv = { ...process.env, UFS_RUN_DIR: path.join(dir, 'run'), UFS_ROOT: root };
  delete env.UFS_DEBUG;
  const ufs = (args: string[], opts: RunOpts = {}) => run(process.execPath, [CLI, '--root', root, ...args], { ...opts, env: { ...env, ...(opts.env ?? {}) } });
  return {
    dir,
    root,
    env,
    ufs,
    async ok(args, opts) {
      const r = await ufs(args, opts);
      if (r.code !== 0) throw new Error(`ufs ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      return r.stdout;
    },
  };
}

// Every path under the store root with type, size and (for files) content hash: equal
// snapshots mean the store was left exactly as it was. The lock file is not content.
export function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const p = rel ? path.join(root, rel) : root;
    const st = fs.lstatSync(p);
    if (st.isDirectory()) {
      out.push(`${rel}/ d`);
      for (const n of fs.readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
    } else if (st.isFile()) {
      if (rel === 'lock') return;
      out.push(`${rel} f ${st.size} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16)}`);
    } else out.push(`${rel} ${st.mode.toString(8)}`);
  };
  if (fs.existsSync(root)) walk('');
  return out;
}

// --- fixtures made by the real tools ---

// A small busybox root filesystem: /bin/busybox and a few applet links, /etc basics.
export function makeBusyboxRootfs(dir: string): string {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true, mode: 0o1777 });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  fs.copyFileSync('/bin/busybox', path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'ls', 'cat', 'echo', 'id']) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n');
  fs.writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  return dir;
}

// An OCI layout made by umoci: one layer with the busybox rootfs, Cmd sh, tag `tag`.
export async function umociLayout(dir: string, rootfs: string, tag = 'latest'): Promise<string> {
  const layout = path.join(dir, 'layout');
  await must('umoci', ['init', '--layout', layout]);
  await must('umoci', ['new', '--image', `${layout}:${tag}`]);
  await must('umoci', ['insert', '--image', `${layout}:${tag}`, rootfs, '/']);
  await must('umoci', ['config', '--image', `${layout}:${tag}`, '--config.cmd', 'sh', '--config.env', 'PATH=/bin']);
  return layout;
}

// The staged image for layer tests: 0 busybox rootfs; 1 adds /data (a.bin 200 kB, keep.txt);
// 2 replaces /etc/passwd; 3 deletes /data/a.bin (whiteout); 4 makes /data opaque with new.txt.
export async function umociStaged(dir: string, rootfs: string): Promise<string> {
  const layout = path.join(dir, 'staged');
  const img = `${layout}:staged`;
  await must('umoci', ['init', '--layout', layout]);
  await must('umoci', ['new', '--image', img]);
  await must('umoci', ['insert', '--image', img, rootfs, '/']);
  const s1 = path.join(dir, 's1', 'data');
  fs.mkdirSync(s1, { recursive: true });
  fs.writeFileSync(path.join(s1, 'a.bin'), crypto.randomBytes(200_000));
  fs.writeFileSync(path.join(s1, 'keep.txt'), 'keep\n');
  await must('umoci', ['insert', '--image', img, s1, '/data']);
  const pw = path.join(dir, 's2-passwd');
  fs.writeFileSync(pw, 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n');
  await must('umoci', ['insert', '--image', img, pw, '/etc/passwd']);
  await must('umoci', ['insert', '--image', img, '--whiteout', '/data/a.bin']);
  const s3 = path.join(dir, 's3');
  fs.mkdirSync(s3);
  fs.writeFileSync(path.join(s3, 'new.txt'), 'new\n');
  await must('umoci', ['insert', '--image', img, '--opaque', s3, '/data']);
  await must('umoci', ['config', '--image', img, '--config.cmd', 'sh']);
  return layout;
}

export async function tarOf(dir: string, out: string): Promise<string> {
  await must('tar', ['-C', dir, '-cf', out, '.']);
  return out;
}

// --- raw tars, written here without src/ (so hostile entries are exactly as meant) ---

export interface RawEntry {
  name: string;
  type?: string; // typeflag character: '0' file, '1' link, '2' symlink, '5' dir, 'S', ...
  content?: Buffer | string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string | Buffer>;
}

function oct(b: Buffer, off: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

function header(e: RawEntry, size: number, typeflag: string, name: string): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  oct(b, 100, 8, e.mode ?? (typeflag === '5' ? 0o755 : 0o644));
  oct(b, 108, 8, e.uid ?? 0);
  oct(b, 116, 8, e.gid ?? 0);
  oct(b, 124, 12, size);
  oct(b, 136, 12, e.mtime ?? 1_600_000_000);
  b.write(typeflag, 156, 1, 'latin1');
  b.write(e.linkname ?? '', 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 8, 'latin1');
  oct(b, 329, 8, e.devmajor ?? 0);
  oct(b, 337, 8, e.devminor ?? 0);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

export function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const content = Buffer.from(e.content ?? '');
    if (e.pax) {
      const recs = Object.entries(e.pax).map(([k, v]) => {
        const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.from(v), Buffer.from('\n')]);
        let len = body.length + 1;
        while (String(len).length + body.length !== len) len = String(len).length + body.length;
        return Buffer.concat([Buffer.from(String(len)), body]);
      });
      const data = Buffer.concat(recs);
      parts.push(header({ name: 'PaxHeader' }, data.length, 'x', 'PaxHeader'), data, pad(data.length));
    }
    parts.push(header(e, content.length, e.type ?? '0', e.name), content, pad(content.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function sha256(b: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
}

// A docker-archive holding one image per spec, each a list of layer tars (given as bytes).
export interface ArchiveImage {
  layers: Buffer[]; // uncompressed layer tars, bottom first
  tags?: string[];
  gzip?: boolean; // store the layers gzip-compressed
  config?: Record<string, unknown>;
}

export function dockerArchive(images: ArchiveImage[]): Buffer {
  const files: RawEntry[] = [];
  const seen = new Set<string>();
  const manifest = images.map((img) => {
    const diffIds = img.layers.map(sha256);
    const blobs = img.layers.map((l) => (img.gzip ? zlib.gzipSync(l) : l));
    const layerNames = blobs.map((b) => {
      const name = `${sha256(b).slice(7)}.tar`;
      if (!seen.has(name)) files.push({ name, content: b });
      seen.add(name);
      return name;
    });
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: '2024-01-02T03:04:05Z',
        config: { Cmd: ['sh'] },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: img.layers.map((_, i) => ({ created: '2024-01-02T03:04:05Z', created_by: `layer ${i}` })),
        ...(img.config ?? {}),
      }),
    );
    const cfgName = `${sha256(config).slice(7)}.json`;
    if (!seen.has(cfgName)) files.push({ name: cfgName, content: config });
    seen.add(cfgName);
    return { Config: cfgName, RepoTags: img.tags ?? null, Layers: layerNames };
  });
  files.push({ name: 'manifest.json', content: JSON.stringify(manifest) });
  return rawTar(files);
}

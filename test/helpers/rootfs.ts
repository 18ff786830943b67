// A minimal container root made from the host's busybox-static, and a way to run
// native/build/Release/ufs-init on it the way the runtime does (spec file, pipes, fd 3).
// Everything a test starts here is cleaned up in t.teardown, also when the test fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

const here = path.dirname(fileURLToPath(import.meta.url));
export const UFS_INIT = path.resolve(here, '..', '..', '..', 'native', 'build', 'Release', 'ufs-init');
export const BUSYBOX = '/bin/busybox';

function execOut(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

// Fills dir with a busybox system: /bin/busybox and its applets (as symlinks, where busybox
// would install them), the mount points a container needs (/proc, /dev, /sys) and the /etc
// files the runtime's init layer provides. Users: root, user (1000), nobody (65534).
export async function makeBusyboxRootfs(dir: string): Promise<void> {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'dev', 'sys', 'etc', 'home/user', 'var']) {
    await fs.mkdir(path.join(dir, d), { recursive: true, mode: 0o755 });
  }
  await fs.mkdir(path.join(dir, 'root'), { mode: 0o700 });
  await fs.mkdir(path.join(dir, 'tmp'));
  await fs.chmod(path.join(dir, 'tmp'), 0o1777);
  await fs.chown(path.join(dir, 'home/user'), 1000, 1000);
  await fs.copyFile(BUSYBOX, path.join(dir, 'bin/busybox'));
  await fs.chmod(path.join(dir, 'bin/busybox'), 0o755);
  for (const applet of (await execOut(BUSYBOX, ['--list-full'])).split('\n')) {
    if (!applet.includes('/') || applet === 'bin/busybox') continue;
    await fs.symlink('/bin/busybox', path.join(dir, applet)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
  const files: Record<string, string> = {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
    'etc/group': 'root:x:0:\ntty:x:5:\nwheel:x:10:root\nusers:x:100:\nuser:x:1000:\nnogroup:x:65534:\n',
    'etc/hosts': '127.0.0.1\tlocalhost\n::1\tlocalhost\n',
    'etc/hostname': 'container\n',
    'etc/resolv.conf': '',
  };
  for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(dir, name), content);
}

// A temp dir (mode 755) removed after the test. Refuses to recurse into anything still
// mounted below it: a mount left over is a bug the test should show, not a host to wipe.
export async function tempDir(t: ExecutionContext, prefix = 'ufs-test-init-'): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.chmod(dir, 0o755);
  t.teardown(async () => {
    for (const mp of await mountsUnder(dir)) await execOut('umount', ['-l', mp]).catch(() => undefined);
    if ((await mountsUnder(dir)).length > 0) return;
    await fs.rm(dir, { recursive: true, force: true });
  });
  return dir;
}

export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((mp): mp is string => !!mp && (mp === dir || mp.startsWith(`${dir}/`)))
    .reverse();
}

// A busybox rootfs in a fresh temp dir: { base, rootfs } (rootfs = base/rootfs; base also
// holds spec files and volumes, outside the container).
export async function tempRootfs(t: ExecutionContext): Promise<{ base: string; rootfs: string }> {
  const base = await tempDir(t);
  const rootfs = path.join(base, 'rootfs');
  await fs.mkdir(rootfs, { mode: 0o755 });
  await makeBusyboxRootfs(rootfs);
  return { base, rootfs };
}

// Contract 6's spec.
export interface InitSpec {
  rootfs?: string;
  args: string[];
  env?: string[];
  cwd?: string;
  uid?: number;
  gid?: number;
  groups?: number[];
  hostname?: string;
  network?: 'none' | 'host';
  tty?: boolean;
  mounts?: { source: string; target: string; readonly?: boolean }[];
  pid?: number;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  noNewPrivileges?: boolean;
}

export const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let specCount = 0;
export async function writeSpec(dir: string, spec: InitSpec | string): Promise<string> {
  const file = path.join(dir, `spec-${process.pid}-${specCount++}.json`);
  await fs.writeFile(file, typeof spec === 'string' ? spec : JSON.stringify(spec));
  return file;
}

export interface InitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface InitProcess {
  child: ChildProcess;
  pid: number;
  // pid 1's host pid as ufs-init reports it on fd 3 ('' on EOF without a report).
  reported: Promise<string>;
  done: Promise<InitResult>;
  stdout(): string;
  // Resolves once stdout contains text.
  waitFor(text: string): Promise<void>;
}

export interface StartOptions {
  input?: string; // written to stdin, which is then closed; default: stdin closed at once
  keepStdin?: boolean; // leave stdin open (write with child.stdin)
  extraFds?: number; // pipes beyond fd 3 the caller opens (to show they do not leak)
}

// Spawns `ufs-init mode spec` with pipes on 0-2 and fd 3; kills it (by its pid) after the test.
export function startInit(t: ExecutionContext, mode: 'run' | 'exec', specFile: string, opts: StartOptions = {}): InitProcess {
  const stdio: ('pipe' | 'ignore')[] = ['pipe', 'pipe', 'pipe', 'pipe'];
  for (let i = 0; i < (opts.extraFds ?? 0); i++) stdio.push('pipe');
  const child = spawn(UFS_INIT, [mode, specFile], { stdio });
  const pid = child.pid!;
  let stdout = '';
  let stderr = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of waiters.filter((x) => stdout.includes(x.text))) w.resolve();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin!.on('error', () => undefined); // EPIPE when the command does not read
  if (!opts.keepStdin) child.stdin!.end(opts.input ?? '');
  const fd3 = child.stdio[3] as NodeJS.ReadableStream;
  const reported = new Promise<string>((resolve) => {
    let s = '';
    fd3.setEncoding('utf8');
    fd3.on('data', (d: string) => (s += d));
    fd3.on('end', () => resolve(s));
    fd3.on('error', () => resolve(s));
  });
  const done = new Promise<InitResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  let exited = false;
  child.on('exit', () => (exited = true));
  t.teardown(async () => {
    if (!exited) {
      try {
        process.kill(pid, 'SIGKILL'); // pid 1 dies with it (parent-death signal)
      } catch {
        // already gone
      }
    }
    await done;
  });
  return {
    child,
    pid,
    reported,
    done,
    stdout: () => stdout,
    waitFor: (text) =>
      new Promise<void>((resolve, reject) => {
        if (stdout.includes(text)) return resolve();
        waiters.push({ text, resolve });
        void done.then((r) => reject(new Error(`ufs-init exited (${r.code}) before printing ${JSON.stringify(text)}: ${r.stderr}`)));
      }),
  };
}

// Runs a container to completion: spec defaults to the busybox PATH and cwd /.
export async function runInit(t: ExecutionContext, dir: string, spec: InitSpec | string, opts: StartOptions = {}): Promise<InitResult> {
  const file = await writeSpec(dir, typeof spec === 'string' ? spec : { env: [PATH_ENV], ...spec });
  return startInit(t, 'run', file, opts).done;
}

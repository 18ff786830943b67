// A minimal container root made from the host's busybox-static, for running processes on
// it (the process runner). Everything made here is cleaned up in t.teardown, also on failure.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';

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

export const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

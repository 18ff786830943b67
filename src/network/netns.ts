// Named network namespaces made as `ip netns add` makes them (a bind mount under /run/netns),
// so `ip netns exec ufs-...` works on them and they outlive any process: a crashed
// container's namespace is still there for netavark to tear down. Made and removed with our
// own system calls (native/sys bindNetns, umount2): two starts of `ip` were 20 ms of a
// bridged run.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import { MNT_DETACH, sys } from '../sys/index.js';

export const NETNS_DIR = '/run/netns';

function ip(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, (err, _stdout, stderr) => {
      if (err) reject(new UfsError(`ip ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve();
    });
  });
}

// One namespace per container, named after its id.
export function netnsName(containerId: string): string {
  const safe = containerId.replace(/[^a-zA-Z0-9_.-]/g, '_').slice(0, 40);
  return `ufs-${safe}`;
}

export function netnsPathOf(containerId: string): string {
  return path.join(NETNS_DIR, netnsName(containerId));
}

export function netnsExists(nsPath: string): boolean {
  return fs.existsSync(nsPath);
}

function netnsError(doing: string, nsPath: string, err: unknown): UfsError {
  return new UfsError(`${doing} network namespace ${path.basename(nsPath)}: ${(err as Error).message}`);
}

export async function createNetns(nsPath: string): Promise<void> {
  if (netnsExists(nsPath)) return;
  fs.mkdirSync(path.dirname(nsPath), { recursive: true, mode: 0o755 });
  try {
    fs.closeSync(fs.openSync(nsPath, fs.constants.O_RDONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return; // made meanwhile by another start
    throw netnsError('creating', nsPath, err);
  }
  try {
    sys.bindNetns(nsPath);
  } catch (err) {
    fs.rmSync(nsPath, { force: true });
    throw netnsError('creating', nsPath, err);
  }
}

export async function deleteNetns(nsPath: string): Promise<void> {
  if (!netnsExists(nsPath)) return;
  try {
    sys.umount2(nsPath, MNT_DETACH);
  } catch (err) {
    // Not mounted (a half-made one) is fine to unlink; anything else is an error.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw netnsError('deleting', nsPath, err);
  }
  try {
    fs.unlinkSync(nsPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw netnsError('deleting', nsPath, err);
  }
}

// A stand-in for an interface that vanished with its namespace, so that netavark's teardown
// (which stops at a missing interface) goes on to remove the firewall rules and DNS entry.
export async function addPlaceholderInterface(nsPath: string, iface: string): Promise<void> {
  const peer = `ufsph${process.pid % 100000}`;
  await ip(['-n', path.basename(nsPath), 'link', 'add', iface, 'type', 'veth', 'peer', 'name', peer]);
}

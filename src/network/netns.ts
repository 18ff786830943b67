// Named network namespaces made exactly as `ip netns add` makes them (a bind mount under
// /run/netns), so `ip netns exec ufs-...` works on them and they outlive any process: a
// crashed container's namespace is still there for netavark to tear down.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';

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

export async function createNetns(nsPath: string): Promise<void> {
  if (netnsExists(nsPath)) return;
  await ip(['netns', 'add', path.basename(nsPath)]);
}

export async function deleteNetns(nsPath: string): Promise<void> {
  if (!netnsExists(nsPath)) return;
  await ip(['netns', 'delete', path.basename(nsPath)]);
}

// A stand-in for an interface that vanished with its namespace, so that netavark's teardown
// (which stops at a missing interface) goes on to remove the firewall rules and DNS entry.
export async function addPlaceholderInterface(nsPath: string, iface: string): Promise<void> {
  const peer = `ufsph${process.pid % 100000}`;
  await ip(['-n', path.basename(nsPath), 'link', 'add', iface, 'type', 'veth', 'peer', 'name', peer]);
}

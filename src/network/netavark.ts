// Runs netavark (Podman's network engine): `setup`/`teardown` of one namespace with the JSON
// network options on stdin. It makes the bridge, the veth pair, the addresses and routes,
// the NAT and port-forwarding rules (iptables, which is iptables-nft on Debian 12), and feeds
// aardvark-dns the names of user networks.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import { withFileLock } from '../store/index.js';
import { envList, sys } from '../sys/index.js';
import type { NetavarkOptions, NetavarkStatus } from './types.js';

export const NETAVARK = process.env.UFS_NETAVARK ?? '/usr/lib/podman/netavark';
export const AARDVARK = process.env.UFS_AARDVARK ?? '/usr/lib/podman/aardvark-dns';
const RUN_DIR = '/run/ufs';

// aardvark-dns's state is per store (each store has its own names), in tmpfs like Podman's.
export function netavarkConfigDir(storeRoot: string): string {
  const tag = crypto.createHash('sha256').update(storeRoot).digest('hex').slice(0, 16);
  return path.join(RUN_DIR, 'netavark', tag);
}

// Once a store has no endpoints left, its aardvark-dns state is empty: drop the directory
// (aardvark-dns exits with its last entry; a pid file may stay). Called under the store lock.
export function removeNetavarkConfigDir(storeRoot: string): void {
  const dir = netavarkConfigDir(storeRoot);
  try {
    if (fs.readdirSync(path.join(dir, 'aardvark-dns')).some((f) => f !== 'aardvark.pid')) return;
  } catch {
    // no aardvark-dns state
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

// netavark edits chains it shares with every other netavark user on the host: one at a time
// across all ufs stores on this machine.
const MACHINE_LOCK = path.join(RUN_DIR, 'netavark.lock');

export class NetavarkError extends UfsError {
  constructor(
    readonly command: string,
    readonly detail: string,
  ) {
    super(`netavark ${command}: ${detail}`);
  }
}

async function runNetavark(storeRoot: string, command: 'setup' | 'teardown', nsPath: string, options: NetavarkOptions): Promise<string> {
  const config = netavarkConfigDir(storeRoot);
  fs.mkdirSync(path.join(config, 'aardvark-dns'), { recursive: true, mode: 0o700 });
  fs.mkdirSync(RUN_DIR, { recursive: true, mode: 0o755 });
  if (!fs.existsSync(NETAVARK)) throw new UfsError(`netavark not found at ${NETAVARK} (install the netavark package)`);
  // The machine lock is held by this process for exactly netavark's lifetime (flock(1) on
  // the same file, as older ufs took it, excludes us too); netavark's children never hold it.
  return withFileLock(MACHINE_LOCK, () => spawnNetavark(config, command, nsPath, options));
}

let calls = 0;

// posix_spawn (native/sys spawnWait), not Node's fork-based spawn: netavark runs twice per
// bridged container. Its options go in and its answer comes out through files in its
// config directory (tmpfs), removed once read.
async function spawnNetavark(config: string, command: 'setup' | 'teardown', nsPath: string, options: NetavarkOptions): Promise<string> {
  const base = path.join(config, `.${command}-${process.pid}-${++calls}`);
  const [input, output, errors] = [`${base}.in`, `${base}.out`, `${base}.err`];
  try {
    fs.writeFileSync(input, JSON.stringify(options), { mode: 0o600 });
    const env = envList({ ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' });
    let end: { code: number | null; signal: number | null };
    try {
      const child = sys.spawnWait(NETAVARK, [NETAVARK, '--config', config, '--aardvark-binary', AARDVARK, command, nsPath], env, true, false, [input, output, errors]);
      end = await child.exited;
    } catch (err) {
      throw new NetavarkError(command, (err as Error).message);
    }
    const stdout = readOr(output);
    if (end.code === 0) return stdout;
    let detail = readOr(errors).split('\n').filter((l) => l && !l.includes('syslog')).join('; ');
    try {
      detail = (JSON.parse(stdout) as { error?: string }).error ?? detail;
    } catch {
      // not JSON: keep stderr
    }
    throw new NetavarkError(command, detail.trim() || (end.signal !== null ? `killed by signal ${end.signal}` : `exit status ${end.code}`));
  } finally {
    for (const f of [input, output, errors]) fs.rmSync(f, { force: true });
  }
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export async function netavarkSetup(storeRoot: string, nsPath: string, options: NetavarkOptions): Promise<Record<string, NetavarkStatus>> {
  const out = await runNetavark(storeRoot, 'setup', nsPath, options);
  return JSON.parse(out) as Record<string, NetavarkStatus>;
}

export async function netavarkTeardown(storeRoot: string, nsPath: string, options: NetavarkOptions): Promise<void> {
  await runNetavark(storeRoot, 'teardown', nsPath, options);
}

// The container's /etc/hosts, /etc/hostname and /etc/resolv.conf, made as Docker makes them
// and kept in the container's directory; the runtime binds them over the init layer's empty
// files, so they never reach the writable layer (nor `ufs diff` or a commit).
import fs from 'node:fs';
import type { ContainerPaths } from './container.js';

const DEFAULT_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

const FALLBACK_DNS = ['nameserver 8.8.8.8', 'nameserver 8.8.4.4'];

function readHost(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

// Without the host's network a loopback resolver cannot answer: drop those (Docker does).
function filterResolvConf(text: string): string {
  const lines = text.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1\b|0\.0\.0\.0)/.test(l));
  const out = lines.join('\n').replace(/\n*$/, '\n');
  return /^\s*nameserver\s/m.test(out) ? out : `${out}${FALLBACK_DNS.join('\n')}\n`;
}

export function hostsContent(network: 'none' | 'host'): string {
  if (network === 'host') return readHost('/etc/hosts') ?? `${DEFAULT_HOSTS.join('\n')}\n`;
  return `${DEFAULT_HOSTS.join('\n')}\n`;
}

export function resolvConfContent(network: 'none' | 'host'): string {
  const host = readHost('/etc/resolv.conf') ?? '';
  return network === 'host' && host ? host : filterResolvConf(host);
}

export function writeEtcFiles(paths: ContainerPaths, hostname: string, network: 'none' | 'host'): void {
  fs.writeFileSync(paths.hosts, hostsContent(network), { mode: 0o644 });
  fs.writeFileSync(paths.hostname, `${hostname}\n`, { mode: 0o644 });
  fs.writeFileSync(paths.resolvConf, resolvConfContent(network), { mode: 0o644 });
}

// The spec's binds for them (before the user's volumes, which may override them).
export function etcMounts(paths: ContainerPaths): { source: string; target: string; readonly: boolean }[] {
  return [
    { source: paths.hosts, target: '/etc/hosts', readonly: false },
    { source: paths.hostname, target: '/etc/hostname', readonly: false },
    { source: paths.resolvConf, target: '/etc/resolv.conf', readonly: false },
  ];
}

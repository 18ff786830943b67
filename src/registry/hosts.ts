// Where a registry name is served: Docker Hub's API host, plain HTTP only for loopback
// registries (Docker's default insecure range) and those the user names, a mirror for
// docker.io (dockerd's registry-mirrors), and the key its credentials are filed under.
import net from 'node:net';
import { UfsError } from '../common/errors.js';
import { DEFAULT_DOMAIN } from '../image/reference.js';

export const DOCKER_HUB_API = 'registry-1.docker.io';
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

export interface RegistryOptions {
  insecureRegistries?: string[]; // host[:port] names or CIDRs, beyond loopback
  mirror?: string; // URL of a docker.io mirror
}

// Flags first, then UFS_INSECURE_REGISTRIES (comma-separated) and UFS_REGISTRY_MIRROR.
export function registryOptionsFromEnv(flags: { insecureRegistry?: string[]; registryMirror?: string } = {}): RegistryOptions {
  const env = (process.env.UFS_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const mirror = flags.registryMirror ?? process.env.UFS_REGISTRY_MIRROR;
  return { insecureRegistries: [...(flags.insecureRegistry ?? []), ...env], ...(mirror ? { mirror } : {}) };
}

export function splitHostPort(host: string): { hostname: string; port?: string } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(host) ?? /^([^:]+)(?::(\d+))?$/.exec(host);
  if (!m) return { hostname: host };
  return { hostname: m[1]!, ...(m[2] ? { port: m[2] } : {}) };
}

function isLoopback(hostname: string): boolean {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
  if (net.isIPv4(hostname)) return hostname.startsWith('127.');
  if (net.isIPv6(hostname)) return hostname === '::1';
  return false;
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bitsS] = cidr.split('/');
  const bits = Number(bitsS);
  if (!net.isIPv4(ip) || !base || !net.isIPv4(base) || !(bits >= 0 && bits <= 32)) return false;
  const n = (s: string) => s.split('.').reduce((a, b) => (a << 8) + Number(b), 0) >>> 0;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (n(ip) & mask) === (n(base) & mask);
}

// May this registry be spoken to over plain HTTP (after HTTPS fails, as Docker does)?
export function isInsecure(host: string, opts: RegistryOptions): boolean {
  const { hostname } = splitHostPort(host);
  if (isLoopback(hostname)) return true;
  for (const entry of opts.insecureRegistries ?? []) {
    const e = entry.replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (e === host || e === hostname) return true;
    if (e.includes('/') && inCidr(hostname, e)) return true;
  }
  return false;
}

// The API host for a reference's domain.
export function apiHost(domain: string): string {
  return domain === DEFAULT_DOMAIN ? DOCKER_HUB_API : domain;
}

// Credentials are filed under Docker's key for Hub, else the host as typed.
export function credentialKey(domain: string): string {
  return domain === DEFAULT_DOMAIN || domain === 'index.docker.io' || domain === DOCKER_HUB_API ? DOCKER_HUB_AUTH_KEY : domain;
}

// `ufs login [SERVER]`: a URL or host as Docker accepts them, to the domain it names.
export function domainOfServer(server: string | undefined): string {
  if (!server) return DEFAULT_DOMAIN;
  let s = server.trim().replace(/^https?:\/\//, '');
  s = s.replace(/\/.*$/, '');
  if (!s) throw new UfsError(`invalid registry ${JSON.stringify(server)}`);
  if (s === 'index.docker.io' || s === DOCKER_HUB_API || s === 'docker.io') return DEFAULT_DOMAIN;
  return s.toLowerCase();
}

export function mirrorBase(opts: RegistryOptions): URL | undefined {
  if (!opts.mirror) return undefined;
  try {
    const u = new URL(opts.mirror.includes('://') ? opts.mirror : `https://${opts.mirror}`);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    return u;
  } catch {
    throw new UfsError(`invalid registry mirror ${JSON.stringify(opts.mirror)}: give a URL like https://mirror.example.com`);
  }
}

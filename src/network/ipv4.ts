// IPv4 addresses and CIDR blocks as numbers: enough arithmetic for IPAM and overlap checks.
import { UfsError } from '../common/errors.js';

export interface Cidr {
  base: number; // network address (host bits zero)
  prefix: number;
}

export function parseIp(text: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) throw new UfsError(`invalid IPv4 address: ${JSON.stringify(text)}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw new UfsError(`invalid IPv4 address: ${JSON.stringify(text)}`);
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function isIp(text: string): boolean {
  try {
    parseIp(text);
    return true;
  } catch {
    return false;
  }
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseCidr(text: string): Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m || Number(m[2]) > 32) throw new UfsError(`invalid subnet ${JSON.stringify(text)}: expected IPv4 CIDR such as 10.250.1.0/24`);
  const prefix = Number(m[2]);
  return { base: (parseIp(m[1]!) & mask(prefix)) >>> 0, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.prefix)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

// Usable host addresses: not the network address, not the broadcast address.
export function firstHost(c: Cidr): number {
  return c.base + 1;
}
export function lastHost(c: Cidr): number {
  return c.base + size(c) - 2;
}

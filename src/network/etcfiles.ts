// /etc/hosts and /etc/resolv.conf text for a container, as Docker writes them per network mode.
import fs from 'node:fs';
import { UfsError } from '../common/errors.js';
import { isIp } from './ipv4.js';

const DEFAULT_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];
const FALLBACK_DNS = ['8.8.8.8', '8.8.4.4'];

export type EtcMode = 'none' | 'host' | 'bridge' | 'user';

export interface EtcOptions {
  ip?: string; // the container's address (bridge, user)
  hostname: string;
  extraHosts?: string[]; // "name:ip" (--add-host)
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  embeddedDns?: string; // the resolver that knows the network's names (user networks)
  hostResolvConf?: string; // default: /etc/resolv.conf
  hostHosts?: string; // default: /etc/hosts
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

// --add-host NAME:IP (the IP may be IPv6, so split at the first colon); "host-gateway" is not supported.
export function parseExtraHost(spec: string): { name: string; ip: string } {
  const i = spec.indexOf(':');
  const name = i > 0 ? spec.slice(0, i) : '';
  const ip = i > 0 ? spec.slice(i + 1) : '';
  if (!name || !ip || /\s/.test(name) || !(isIp(ip) || /^[0-9a-fA-F:]+$/.test(ip) && ip.includes(':'))) {
    throw new UfsError(`invalid --add-host ${JSON.stringify(spec)}: expected NAME:IP`);
  }
  return { name, ip };
}

export function etcHosts(mode: EtcMode, opts: EtcOptions): string {
  const extra = (opts.extraHosts ?? []).map((h) => {
    const { name, ip } = parseExtraHost(h);
    return `${ip}\t${name}`;
  });
  if (mode === 'host') {
    const host = readOr(opts.hostHosts ?? '/etc/hosts', `${DEFAULT_HOSTS.join('\n')}\n`).replace(/\n*$/, '\n');
    return host + extra.map((l) => `${l}\n`).join('');
  }
  const lines = [...DEFAULT_HOSTS, ...extra];
  if (opts.ip) lines.push(`${opts.ip}\t${opts.hostname}`);
  return `${lines.join('\n')}\n`;
}

interface Resolv {
  nameservers: string[];
  search: string[];
  options: string[];
}

function parseResolv(text: string): Resolv {
  const r: Resolv = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const [key, ...vals] = raw.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (key === 'nameserver' && vals[0]) r.nameservers.push(vals[0]);
    else if (key === 'search' || key === 'domain') r.search = vals;
    else if (key === 'options') r.options.push(...vals);
  }
  return r;
}

function render(r: Resolv): string {
  const lines = r.nameservers.map((n) => `nameserver ${n}`);
  if (r.search.length) lines.push(`search ${r.search.join(' ')}`);
  if (r.options.length) lines.push(`options ${r.options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

// host: the host's file (or it with --dns/--dns-search applied); bridge and none: the host's
// without loopback resolvers (unreachable from a namespace), 8.8.8.8/8.8.4.4 if none remain;
// user networks: the embedded resolver only, which forwards what it does not know
// (to --dns servers when given), with ndots:0 as Docker's.
export function resolvConf(mode: EtcMode, opts: EtcOptions): string {
  const hostText = readOr(opts.hostResolvConf ?? '/etc/resolv.conf', '');
  const host = parseResolv(hostText);
  for (const d of opts.dns ?? []) if (!isIp(d) && !d.includes(':')) throw new UfsError(`invalid --dns ${JSON.stringify(d)}: expected an IP address`);
  if (mode === 'host' && !opts.dns?.length && !opts.dnsSearch?.length && !opts.dnsOptions?.length && hostText) return hostText;
  const out: Resolv = { nameservers: [], search: opts.dnsSearch ?? host.search, options: opts.dnsOptions ?? host.options };
  if (opts.dnsSearch?.length === 1 && opts.dnsSearch[0] === '.') out.search = [];
  if (mode === 'user' && opts.embeddedDns) {
    out.nameservers = [opts.embeddedDns];
    if (!out.options.some((o) => o.startsWith('ndots:'))) out.options = [...out.options, 'ndots:0'];
  } else if (opts.dns?.length) {
    out.nameservers = [...opts.dns];
  } else if (mode === 'host') {
    out.nameservers = host.nameservers;
  } else {
    out.nameservers = host.nameservers.filter((n) => !/^(127\.|0\.0\.0\.0$|::1$)/.test(n));
    if (!out.nameservers.length) out.nameservers = [...FALLBACK_DNS];
  }
  return render(out);
}

// -p/--publish and -P/--publish-all as Docker reads them, and `ufs port`'s lines.
import { UfsError } from '../common/errors.js';
import { isIp } from './ipv4.js';
import type { PortMapping, Protocol } from './types.js';

function portRange(text: string, spec: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw new UfsError(`invalid port ${JSON.stringify(text)} in -p ${spec}`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || hi < lo) throw new UfsError(`invalid port range ${JSON.stringify(text)} in -p ${spec}`);
  return [lo, hi];
}

// [IP:][HOST:]CONTAINER[/tcp|/udp]; HOST and CONTAINER may be ranges of one length.
// A missing or empty HOST means any free port (hostPort 0 here).
export function parsePublish(spec: string): PortMapping[] {
  let rest = spec.trim();
  let protocol: Protocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') throw new UfsError(`invalid protocol ${JSON.stringify(p)} in -p ${spec}: use tcp or udp`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  const parts = rest.split(':');
  let hostIp = '';
  let hostPart = '';
  let containerPart: string;
  if (parts.length === 1) containerPart = parts[0]!;
  else if (parts.length === 2) [hostPart, containerPart] = parts as [string, string];
  else if (parts.length === 3) [hostIp, hostPart, containerPart] = parts as [string, string, string];
  else throw new UfsError(`invalid -p ${spec}: expected [IP:][HOST:]CONTAINER[/tcp|/udp] (IPv4 only)`);
  if (hostIp !== '' && !isIp(hostIp)) throw new UfsError(`invalid host IP ${JSON.stringify(hostIp)} in -p ${spec} (IPv4 only)`);
  if (hostIp === '0.0.0.0') hostIp = '';
  const [clo, chi] = portRange(containerPart, spec);
  const count = chi - clo + 1;
  let hlo = 0;
  if (hostPart !== '') {
    const [lo, hi] = portRange(hostPart, spec);
    if (hi - lo + 1 !== count && !(lo === hi && count === 1)) throw new UfsError(`invalid -p ${spec}: host and container port ranges differ in length`);
    hlo = lo;
  }
  return Array.from({ length: count }, (_, i) => ({ hostIp, hostPort: hlo === 0 ? 0 : hlo + i, containerPort: clo + i, protocol }));
}

// -P: every port the image EXPOSEs ("80/tcp", "53/udp", "8080"), each on a free host port.
export function publishAll(exposed: Iterable<string>): PortMapping[] {
  const out: PortMapping[] = [];
  for (const e of exposed) {
    const [port, proto = 'tcp'] = e.split('/');
    for (const m of parsePublish(`${port}/${proto}`)) out.push(m);
  }
  return out;
}

// Adds -P's mappings for container ports that -p did not already publish (Docker's merge).
export function mergePublished(explicit: PortMapping[], all: PortMapping[]): PortMapping[] {
  const have = new Set(explicit.map((m) => `${m.containerPort}/${m.protocol}`));
  return [...explicit, ...all.filter((m) => !have.has(`${m.containerPort}/${m.protocol}`))];
}

// `docker port` lines: "80/tcp -> 0.0.0.0:32768".
export function formatPort(m: PortMapping): string {
  return `${m.containerPort}/${m.protocol} -> ${m.hostIp || '0.0.0.0'}:${m.hostPort}`;
}

// `ufs port C 80[/tcp]`: the mappings of one container port.
export function selectPorts(ports: PortMapping[], which: string): PortMapping[] {
  const [p, proto = 'tcp'] = which.split('/');
  const port = Number(p);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || (proto !== 'tcp' && proto !== 'udp')) throw new UfsError(`invalid port ${JSON.stringify(which)}`);
  return ports.filter((m) => m.containerPort === port && m.protocol === proto);
}

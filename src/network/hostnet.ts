// What the host already uses: the IPv4 blocks of its routes and addresses (so a new network
// never shadows one), read with `ip -j`, and whether a host port can still be bound.
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { type Cidr, parseCidr } from './ipv4.js';

interface IpRoute {
  dst?: string;
}
interface IpAddr {
  ifname?: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

export function hostBlocks(): { cidr: Cidr; what: string }[] {
  const out: { cidr: Cidr; what: string }[] = [];
  try {
    const routes = JSON.parse(execFileSync('ip', ['-j', '-4', 'route', 'show'], { encoding: 'utf8' }) || '[]') as IpRoute[];
    for (const r of routes) {
      if (!r.dst || r.dst === 'default') continue;
      out.push({ cidr: parseCidr(r.dst.includes('/') ? r.dst : `${r.dst}/32`), what: `route ${r.dst}` });
    }
    const addrs = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show'], { encoding: 'utf8' }) || '[]') as IpAddr[];
    for (const a of addrs) {
      for (const i of a.addr_info ?? []) {
        if (i.family === 'inet' && i.local && i.prefixlen !== undefined) out.push({ cidr: parseCidr(`${i.local}/${i.prefixlen}`), what: `${a.ifname} ${i.local}/${i.prefixlen}` });
      }
    }
  } catch {
    // no `ip -j` output: only the store's own networks are checked
  }
  return out;
}

// True when nothing on the host holds `port` on `ip` (all addresses when ip is '').
export function portFree(ip: string, port: number, protocol: 'tcp' | 'udp'): Promise<boolean> {
  return new Promise((resolve) => {
    const host = ip || '0.0.0.0';
    if (protocol === 'udp') {
      const sock = dgram.createSocket('udp4');
      sock.once('error', () => resolve(false));
      sock.bind({ address: host, port, exclusive: true }, () => sock.close(() => resolve(true)));
      return;
    }
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

// A port the kernel hands out as free right now (its ephemeral range, as Docker's -p CONTAINER).
export function freePort(ip: string, protocol: 'tcp' | 'udp'): Promise<number> {
  return new Promise((resolve, reject) => {
    const host = ip || '0.0.0.0';
    if (protocol === 'udp') {
      const sock = dgram.createSocket('udp4');
      sock.once('error', reject);
      sock.bind({ address: host, port: 0, exclusive: true }, () => {
        const { port } = sock.address();
        sock.close(() => resolve(port));
      });
      return;
    }
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

// Holds a published host port the way Docker's docker-proxy and podman's conmon do: a bound
// (and, for TCP, listening) socket of the container's own process, so nothing else on the
// host can take the port while the container runs. Traffic itself is forwarded by the
// firewall rules, which act before any socket sees it; a connection that still arrives is
// closed. The socket never keeps the process alive.
export interface PortHold {
  close(): void;
}

export function holdPort(ip: string, port: number, protocol: 'tcp' | 'udp'): Promise<PortHold> {
  return new Promise((resolve, reject) => {
    const host = ip || '0.0.0.0';
    if (protocol === 'udp') {
      const sock = dgram.createSocket('udp4');
      sock.once('error', reject);
      sock.bind({ address: host, port, exclusive: true }, () => {
        sock.unref();
        resolve({ close: () => sock.close() });
      });
      return;
    }
    const srv = net.createServer((c) => c.destroy());
    srv.once('error', reject);
    srv.listen({ host, port, exclusive: true }, () => {
      srv.unref();
      resolve({ close: () => srv.close() });
    });
  });
}

// `--network` as Docker reads it, and one call for the runtime that sets up any mode:
// none/host need only /etc files, bridge and user networks an attached namespace, and
// container:NAME the other container's namespace and files (which the runtime looks up).
import { UfsError } from '../common/errors.js';
import type { Store } from '../store/index.js';
import { attach } from './attach.js';
import { etcHosts, resolvConf, type EtcOptions } from './etcfiles.js';
import type { AttachOptions, PortMapping } from './types.js';

export type NetworkMode =
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'container'; ref: string }
  | { kind: 'network'; name: string }; // 'bridge' or a user network

export function parseNetworkMode(value: string | undefined): NetworkMode {
  const v = value ?? 'bridge';
  if (v === '' || v === 'default') return { kind: 'network', name: 'bridge' };
  if (v === 'none' || v === 'host') return { kind: v };
  if (v.startsWith('container:')) {
    const ref = v.slice('container:'.length);
    if (!ref) throw new UfsError('invalid --network container: needs a container name or id', 125);
    return { kind: 'container', ref };
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(v)) throw new UfsError(`invalid --network ${JSON.stringify(v)}`, 125);
  return { kind: 'network', name: v };
}

export interface NetworkRequest extends Omit<AttachOptions, 'network'> {
  mode: NetworkMode;
}

export interface NetworkSetup {
  spec: { mode: 'none' | 'host' } | { mode: 'netns'; path: string }; // for the OCI spec
  etcHosts: string;
  resolvConf: string;
  ips: string[];
  ports: PortMapping[];
  warnings: string[]; // Docker's notes (the CLI prints them)
  attached: boolean; // detach(store, id) undoes it
}

// The other container, as the runtime found it (it must be running).
export interface JoinTarget {
  netnsPath: string; // its namespace: an attached one, or /proc/<pid>/ns/net
  etcHosts: string;
  resolvConf: string;
}

export async function setupNetwork(store: Store, containerId: string, req: NetworkRequest, join?: JoinTarget): Promise<NetworkSetup> {
  const { mode } = req;
  const etc: EtcOptions = {
    hostname: req.hostname,
    ...(req.extraHosts ? { extraHosts: req.extraHosts } : {}),
    ...(req.dns ? { dns: req.dns } : {}),
    ...(req.dnsSearch ? { dnsSearch: req.dnsSearch } : {}),
    ...(req.dnsOptions ? { dnsOptions: req.dnsOptions } : {}),
  };
  const base = { ips: [], ports: [], warnings: [] as string[], attached: false };
  if (mode.kind !== 'network') {
    if (req.aliases?.length) throw new UfsError('network-scoped alias is supported only for containers in user defined networks', 125);
    if (req.ip !== undefined) throw new UfsError('user specified IP address is supported on user defined networks only', 125);
    if (req.mac !== undefined && mode.kind !== 'none') throw new UfsError(`conflicting options: mac-address and the ${mode.kind} network mode`, 125);
  }
  switch (mode.kind) {
    case 'none':
      return { ...base, spec: { mode: 'none' }, etcHosts: etcHosts('none', etc), resolvConf: resolvConf('none', etc) };
    case 'host': {
      const warnings = req.ports?.length ? ['Published ports are discarded when using host network mode'] : [];
      return { ...base, warnings, spec: { mode: 'host' }, etcHosts: etcHosts('host', etc), resolvConf: resolvConf('host', etc) };
    }
    case 'container': {
      if (req.ports?.length) throw new UfsError('conflicting options: port publishing and the container type network mode', 125);
      if (req.dns?.length || req.dnsSearch?.length || req.dnsOptions?.length) throw new UfsError('conflicting options: dns and the network mode', 125);
      if (req.extraHosts?.length) throw new UfsError('conflicting options: custom host-to-IP mapping and the network mode', 125);
      if (!join) throw new UfsError(`cannot join the network of container ${mode.ref}: it is not running`, 125);
      return { ...base, spec: { mode: 'netns', path: join.netnsPath }, etcHosts: join.etcHosts, resolvConf: join.resolvConf };
    }
    case 'network': {
      const a = await attach(store, containerId, { ...req, network: mode.name });
      return { ...base, attached: true, spec: { mode: 'netns', path: a.netnsPath }, etcHosts: a.etcHosts, resolvConf: a.resolvConf, ips: a.ips, ports: a.ports };
    }
  }
}

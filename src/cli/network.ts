// ufs network create/ls/inspect/rm/prune (issue 12): Docker's names, flags and columns.
import crypto from 'node:crypto';
import type { Command } from 'commander';
import { openStore } from './store.js';
import { UfsError } from '../common/errors.js';
import { table } from '../common/format.js';
import type { NetworkRecord } from '../network/index.js';

// The network and runtime libraries load when a network verb runs (a preAction hook), never
// for --help or another family's verbs.
let N: typeof import('../network/index.js');
let R: typeof import('../runtime/index.js');
async function loadLibraries(): Promise<void> {
  N = await import('../network/index.js');
  R = await import('../runtime/index.js');
}
import { Store } from '../store/index.js';

function out(s: string): void {
  process.stdout.write(s);
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

// Go-template subset: {{.Field}}, {{.A.B}}, {{json .Field}}, {{json .}}; "json" alone is {{json .}}.
function renderTemplate(tpl: string, obj: unknown): string {
  if (tpl.trim() === 'json') tpl = '{{json .}}';
  return tpl
    .replace(/\\t/g, '\t')
    .replace(/\\n/g, '\n')
    .replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_m, json: string | undefined, field: string) => {
      let v: unknown = obj;
      for (const k of field.split('.').filter(Boolean)) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
      if (json) return JSON.stringify(v ?? null);
      if (v === undefined || v === null) return '<no value>';
      if (Array.isArray(v)) return `[${v.join(' ')}]`;
      if (typeof v === 'object') return `map[${Object.entries(v).map(([k, x]) => `${k}:${typeof x === 'object' ? JSON.stringify(x) : String(x)}`).join(' ')}]`;
      return String(v);
    });
}

function parseLabels(list: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    const key = i < 0 ? l : l.slice(0, i);
    if (!key) throw new UfsError(`invalid --label ${JSON.stringify(l)}: expected KEY[=VALUE]`);
    labels[key] = i < 0 ? '' : l.slice(i + 1);
  }
  return labels;
}

// host and none are modes, listed as Docker lists them; their ids are fixed per store.
interface Listed {
  id: string;
  name: string;
  driver: string;
  scope: 'local';
  internal: boolean;
  labels: Record<string, string>;
  created: string;
  rec?: NetworkRecord;
}

function pseudo(store: Store, name: string): Listed {
  const id = crypto.createHash('sha256').update(`${store.root}\0${name}`).digest('hex');
  return { id, name, driver: name === 'host' ? 'host' : 'null', scope: 'local', internal: false, labels: {}, created: '' };
}

function listed(rec: NetworkRecord): Listed {
  return { id: rec.id, name: rec.name, driver: rec.driver, scope: 'local', internal: rec.internal, labels: rec.labels, created: rec.created, rec };
}

async function allNetworks(store: Store): Promise<Listed[]> {
  await N.ensureDefaultNetwork(store);
  const recs = N.listNetworks(store);
  const def = recs.filter((r) => r.name === N.DEFAULT_NETWORK).map(listed);
  return [...def, ...N.PSEUDO_NETWORKS.map((n) => pseudo(store, n)), ...recs.filter((r) => r.name !== N.DEFAULT_NETWORK).map(listed)];
}

function lookup(store: Store, all: Listed[], ref: string): Listed {
  const byName = all.find((n) => n.name === ref);
  if (byName) return byName;
  const byId = all.filter((n) => n.id.startsWith(ref));
  if (byId.length === 1 && /^[a-f0-9]+$/.test(ref)) return byId[0]!;
  if (byId.length > 1) throw new UfsError(`network ${ref} is ambiguous (${byId.length} networks have that id prefix)`);
  return listed(N.getNetwork(store, ref));
}

// `docker network inspect`'s shape.
function inspectView(store: Store, n: Listed): Record<string, unknown> {
  const containers: Record<string, unknown> = {};
  for (const e of N.listEndpoints(store).filter((x) => x.networkId === n.id)) {
    containers[e.containerId] = {
      Name: e.options.container_name,
      EndpointID: crypto.createHash('sha256').update(`${e.containerId}\0${e.networkId}`).digest('hex'),
      MacAddress: e.mac ?? '',
      IPv4Address: n.rec ? `${e.ip}/${n.rec.subnet.split('/')[1]}` : e.ip,
      IPv6Address: '',
      Aliases: e.aliases,
      Ports: e.ports,
    };
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: n.scope,
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: n.rec ? [{ Subnet: n.rec.subnet, Gateway: n.rec.gateway }] : [] },
    Internal: n.internal,
    Attachable: false,
    Ingress: false,
    ConfigOnly: false,
    Containers: containers,
    Options: n.rec ? { 'com.docker.network.bridge.name': n.rec.bridge, 'ufs.network.dns': String(n.rec.dns) } : {},
    Labels: n.labels,
  };
}

export function registerNetworkCommands(program: Command): void {
  program
    .command('port')
    .hook('preAction', loadLibraries)
    .description("list a container's published ports, or the host address of one of them")
    .argument('<container>')
    .argument('[port]', 'PORT[/PROTO]')
    .action(async (ref: string, port: string | undefined, _opts: unknown, cmd: Command) => {
      const store = await openStore(cmd);
      const rec = await R.findContainer(store, ref);
      const all = R.publishedPorts(store, rec.Id);
      if (port === undefined) return out(all.map((m) => `${N.formatPort(m)}\n`).join(''));
      const hits = N.selectPorts(all, port);
      if (!hits.length) throw new UfsError(`no public port '${port.includes('/') ? port : `${port}/tcp`}' published for ${ref}`);
      out(hits.map((m) => `${m.hostIp || '0.0.0.0'}:${m.hostPort}\n`).join(''));
    });

  const network = program.command('network').description('manage networks').hook('preAction', loadLibraries);

  network
    .command('create')
    .description('create a bridge network (NAT out, names resolve between its containers)')
    .argument('<name>')
    .option('-d, --driver <driver>', 'network driver (bridge only)', 'bridge')
    .option('--subnet <cidr>', 'IPv4 subnet, e.g. 10.250.1.0/24 (default: a free /24 from 10.91.0.0/16)')
    .option('--gateway <ip>', 'gateway address (default: the subnet\'s first address)')
    .option('--internal', 'no route out of the network')
    .option('--label <key=value>', 'set metadata (repeatable)', collect, [])
    .action(async (name: string, opts: { driver: string; subnet?: string; gateway?: string; internal?: boolean; label: string[] }, cmd: Command) => {
      if (opts.driver !== 'bridge') throw new UfsError(`unsupported network driver ${JSON.stringify(opts.driver)}: only bridge`);
      if (opts.gateway !== undefined && opts.subnet === undefined) throw new UfsError('--gateway needs --subnet');
      const store = await openStore(cmd);
      const rec = await N.createNetwork(store, {
        name,
        ...(opts.subnet !== undefined ? { subnet: opts.subnet } : {}),
        ...(opts.gateway !== undefined ? { gateway: opts.gateway } : {}),
        internal: !!opts.internal,
        labels: parseLabels(opts.label),
      });
      out(`${rec.id}\n`);
    });

  network
    .command('ls')
    .alias('list')
    .description('list networks')
    .option('-q, --quiet', 'only network ids')
    .option('--no-trunc', 'full network ids')
    .option('--format <template>', "Go-template subset, e.g. '{{.Name}}', or json")
    .option('-f, --filter <filter>', 'name=, id=, driver=, label=K[=V] (repeatable)', collect, [])
    .action(async (opts: { quiet?: boolean; trunc: boolean; format?: string; filter: string[] }, cmd: Command) => {
      const store = await openStore(cmd);
      let nets = await allNetworks(store);
      for (const f of opts.filter) {
        const i = f.indexOf('=');
        const key = f.slice(0, i);
        const val = f.slice(i + 1);
        if (i < 0 || !['name', 'id', 'driver', 'label'].includes(key)) throw new UfsError(`invalid filter ${JSON.stringify(f)}: use name=, id=, driver= or label=`);
        nets = nets.filter((n) => {
          if (key === 'name') return n.name.includes(val);
          if (key === 'id') return n.id.startsWith(val);
          if (key === 'driver') return n.driver === val;
          const j = val.indexOf('=');
          return j < 0 ? val in n.labels : n.labels[val.slice(0, j)] === val.slice(j + 1);
        });
      }
      const id = (n: Listed): string => (opts.trunc ? n.id.slice(0, 12) : n.id);
      if (opts.quiet) return out(nets.map((n) => `${id(n)}\n`).join(''));
      if (opts.format !== undefined) {
        const rows = nets.map((n) => ({ ID: id(n), Name: n.name, Driver: n.driver, Scope: n.scope, IPv6: 'false', Internal: String(n.internal), Labels: Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(','), CreatedAt: n.created }));
        return out(rows.map((r) => `${renderTemplate(opts.format!, r)}\n`).join(''));
      }
      out(table([['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], ...nets.map((n) => [id(n), n.name, n.driver, n.scope])]));
    });

  network
    .command('inspect')
    .description('show networks in detail (JSON)')
    .argument('<network...>')
    .option('-f, --format <template>', "Go-template subset, e.g. '{{json .IPAM}}'")
    .action(async (refs: string[], opts: { format?: string }, cmd: Command) => {
      const store = await openStore(cmd);
      const all = await allNetworks(store);
      const views = refs.map((r) => inspectView(store, lookup(store, all, r)));
      if (opts.format !== undefined) return out(views.map((v) => `${renderTemplate(opts.format!, v)}\n`).join(''));
      out(`${JSON.stringify(views, null, 4)}\n`);
    });

  network
    .command('rm')
    .alias('remove')
    .description('remove networks (none may have containers attached)')
    .argument('<network...>')
    .action(async (refs: string[], _opts: unknown, cmd: Command) => {
      const store = await openStore(cmd);
      const errors: string[] = [];
      for (const ref of refs) {
        try {
          await N.removeNetwork(store, ref);
          out(`${ref}\n`);
        } catch (err) {
          if (!(err instanceof UfsError)) throw err;
          errors.push(err.message);
        }
      }
      if (errors.length) throw new UfsError(errors.join('\nufs: '));
    });

  network
    .command('connect')
    .description('connect a running container to one more network (as eth1, eth2, ...)')
    .argument('<network>')
    .argument('<container>')
    .option('--alias <name>', 'another name of the container on this network (repeatable)', collect, [])
    .option('--ip <address>', 'IPv4 address on this network')
    .action(async (net: string, ref: string, opts: { alias: string[]; ip?: string }, cmd: Command) => {
      const store = await openStore(cmd);
      const rec = await R.findContainer(store, ref);
      if (rec.State.Status !== 'running') throw new UfsError(`container ${ref} is not running`);
      if (N.endpoints(store, rec.Id).length === 0) throw new UfsError(`container ${ref} has no network of ufs's (its mode is ${rec.HostConfig.NetworkMode}): only bridged containers can be connected`);
      await N.attach(store, rec.Id, { network: net, hostname: rec.Config.Hostname, name: rec.Name, aliases: opts.alias, ...(opts.ip ? { ip: opts.ip } : {}) });
    });

  network
    .command('disconnect')
    .description('disconnect a container from a network (not its last one)')
    .argument('<network>')
    .argument('<container>')
    .option('-f, --force', 'accepted for Docker compatibility')
    .action(async (net: string, ref: string, _opts: unknown, cmd: Command) => {
      const store = await openStore(cmd);
      const rec = await R.findContainer(store, ref);
      const target = N.getNetwork(store, net);
      const eps = N.endpoints(store, rec.Id);
      if (!eps.some((e) => e.networkId === target.id)) throw new UfsError(`container ${ref} is not connected to network ${target.name}`);
      if (eps.length === 1) throw new UfsError(`cannot disconnect container ${ref} from its only network ${target.name}: stop or remove the container instead`);
      await N.detach(store, rec.Id, target.name);
    });

  network
    .command('prune')
    .description('remove all user networks no container is attached to')
    .option('-f, --force', 'do not ask for confirmation (ufs never asks)')
    .option('--filter <filter>', 'label=K[=V] (repeatable)', collect, [])
    .action(async (opts: { filter: string[] }, cmd: Command) => {
      const labels = opts.filter.map((f) => {
        const m = /^label=([^=]+)(?:=(.*))?$/.exec(f);
        if (!m) throw new UfsError(`invalid filter ${JSON.stringify(f)}: use label=KEY[=VALUE]`);
        return m[2] === undefined ? { key: m[1]! } : { key: m[1]!, value: m[2] };
      });
      const store = await openStore(cmd);
      await N.reapOrphans(store); // a killed build's attachment keeps no network busy
      const gone = await N.pruneNetworks(store, labels);
      if (gone.length) out(`Deleted Networks:\n${gone.map((n) => `${n.name}\n`).join('')}`);
    });
}

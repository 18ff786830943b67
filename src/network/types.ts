// What the network module stores and what it hands the runtime (INTERFACES.md §3).

export type Protocol = 'tcp' | 'udp';

// One published port. hostPort 0 in a request means "any free port"; a result always has it.
export interface PortMapping {
  hostIp: string; // '' = every host address (0.0.0.0)
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
}

// A network, as stored in <root>/networks/<name>.json.
export interface NetworkRecord {
  name: string;
  id: string; // 64 hex
  driver: 'bridge';
  bridge: string; // the host interface netavark creates (ufs0 for the default network)
  subnet: string; // IPv4 CIDR
  gateway: string;
  internal: boolean;
  dns: boolean; // names resolve through aardvark-dns (user networks; not the default bridge, as Docker)
  labels: Record<string, string>;
  created: string;
}

export interface AttachOptions {
  network: string; // 'bridge' or a user network's name or id
  aliases?: string[];
  ip?: string;
  mac?: string;
  ports?: PortMapping[];
  hostname: string;
  name?: string; // the container's name: resolvable on user networks
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  extraHosts?: string[]; // "name:ip" (--add-host)
  ownerPid?: number; // a process (not a container) that holds the attachment: reconcile leaves it while it lives
}

export interface AttachResult {
  netnsPath: string;
  ips: string[];
  gateway?: string;
  mac: string;
  etcHosts: string;
  resolvConf: string;
  ports: PortMapping[]; // host ports actually bound
}

// One container's attachment to one network: <root>/networks/endpoints/<containerId>/<network id>.json.
// Written under the store lock before netavark runs, so its address is never handed out twice.
export interface Endpoint {
  containerId: string;
  network: string; // name at attach time
  networkId: string;
  netnsPath: string;
  interface: string; // eth0, eth1, ...
  ip: string;
  mac?: string;
  aliases: string[];
  ports: PortMapping[];
  options: NetavarkOptions; // exactly what setup was given: teardown gets the same
  ownerPid?: number;
  created: string;
}

// netavark's JSON (netavark 1.4 `setup`/`teardown` read it on stdin).
export interface NetavarkNetwork {
  name: string;
  id: string;
  driver: string;
  network_interface: string;
  created?: string;
  subnets: { subnet: string; gateway?: string }[];
  ipv6_enabled: boolean;
  internal: boolean;
  dns_enabled: boolean;
  ipam_options: Record<string, string>;
  options?: Record<string, string>;
}

export interface NetavarkOptions {
  container_id: string;
  container_name: string;
  networks: Record<string, { static_ips: string[]; aliases: string[]; interface_name: string; static_mac?: string }>;
  network_info: Record<string, NetavarkNetwork>;
  // Left out when there are none, as podman does: netavark then makes no port-forwarding chain.
  port_mappings?: { host_ip: string; container_port: number; host_port: number; range: number; protocol: string }[];
  dns_servers?: string[];
}

export interface NetavarkStatus {
  dns_search_domains?: string[];
  dns_server_ips?: string[];
  interfaces?: Record<string, { mac_address: string; subnets?: { ipnet: string; gateway?: string }[] }>;
}

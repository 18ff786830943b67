// Container networks on netavark (bridge, NAT, published ports) with aardvark-dns for names.
export * from './types.js';
export { attach, detach, endpoints, reapOrphans, reconcile, resolveNetwork, withTemporaryNetwork } from './attach.js';
export { createNetwork, DEFAULT_NETWORK, pruneNetworks, ensureDefaultNetwork, findNetwork, getNetwork, listEndpoints, listNetworks, PSEUDO_NETWORKS, removeNetwork } from './records.js';
export type { CreateNetworkOptions } from './records.js';
export { etcHosts, parseExtraHost, resolvConf, type EtcMode, type EtcOptions } from './etcfiles.js';
export { formatPort, mergePublished, parsePublish, publishAll, selectPorts } from './ports.js';
export { netnsPathOf } from './netns.js';
export { holdPort, type PortHold } from './hostnet.js';
export { parseNetworkMode, setupNetwork, type JoinTarget, type NetworkMode, type NetworkRequest, type NetworkSetup } from './modes.js';

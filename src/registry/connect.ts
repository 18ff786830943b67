// A client for the registry a reference lives on: Docker Hub through its API host (and the
// mirror first, if one is set, falling back to Hub when the mirror fails), others as named.
import { DEFAULT_DOMAIN } from '../image/reference.js';
import { type ClientOptions, RegistryClient } from './client.js';
import { apiHost, mirrorBase } from './hosts.js';

export function connect(domain: string, opts: ClientOptions): Promise<RegistryClient> {
  return RegistryClient.connect(domain, apiHost(domain), opts);
}

// Runs `fn` against the mirror (docker.io only, reads only), then against the registry if
// the mirror fails in any way.
export async function withMirror<T>(domain: string, opts: ClientOptions, fn: (c: RegistryClient) => Promise<T>): Promise<T> {
  const mirror = domain === DEFAULT_DOMAIN ? mirrorBase(opts) : undefined;
  if (mirror) {
    try {
      const c = await RegistryClient.connect(domain, mirror.host, { ...opts, credentials: null }, mirror);
      return await fn(c);
    } catch {
      // fall back to the registry itself, as dockerd does
    }
  }
  return fn(await connect(domain, opts));
}

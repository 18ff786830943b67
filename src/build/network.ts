// The network of a build's RUN steps (`ufs build --network`, `RUN --network`), as Docker's
// build: the default bridge unless told otherwise, none, host, or a user network. A bridged
// build attaches one namespace per network the first time a RUN step needs it and keeps it
// for the build's later RUN steps (BuildKit keeps a pool of namespaces the same way); the
// build's cleanup detaches it, also on failure or Ctrl-C. A build killed outright leaves an
// attachment whose owner is dead, which the next bridged build (or `network prune`) frees.
import crypto from 'node:crypto';
import { UfsError } from '../common/errors.js';
import type { NetworkSpec } from '../runtime/ocispec.js';
import type { Store } from '../store/index.js';

export type BuildNetwork = { kind: 'none' } | { kind: 'host' } | { kind: 'network'; name: string };

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

// --network of the build: default (the bridge), bridge, none, host or a user network.
export function parseBuildNetwork(value: string | undefined): BuildNetwork {
  const v = value ?? 'default';
  if (v === 'none' || v === 'host') return { kind: v };
  if (v === 'default' || v === 'bridge' || v === '') return { kind: 'network', name: 'bridge' };
  if (v.startsWith('container:')) throw new UfsError(`--network ${v}: a build cannot join a container's network`);
  if (!NAME_RE.test(v)) throw new UfsError(`invalid --network ${JSON.stringify(v)}: expected bridge, none, host or a network name`);
  return { kind: 'network', name: v };
}

// RUN --network=default|none|host (Dockerfile frontend): default is the build's own.
export function stepNetwork(flag: string | undefined, build: BuildNetwork): BuildNetwork | undefined {
  if (flag === undefined || flag === 'default') return build;
  if (flag === 'none' || flag === 'host') return { kind: flag };
  return undefined;
}

export function networkKey(n: BuildNetwork): string {
  return n.kind === 'network' ? `network:${n.name}` : n.kind;
}

export class BuildNetworks {
  private attached = new Map<string, Promise<string>>(); // network name -> namespace path
  private releases: (() => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly addCleanup: (fn: () => Promise<void>) => void,
  ) {}

  async spec(n: BuildNetwork): Promise<NetworkSpec> {
    if (n.kind !== 'network') return { mode: n.kind };
    let ns = this.attached.get(n.name);
    if (!ns) {
      ns = this.attach(n.name);
      this.attached.set(n.name, ns);
    }
    return { mode: 'netns', path: await ns };
  }

  // No RUN step needs a network any more: detach them now, beside the build's remaining
  // steps (the build's cleanup still waits for it).
  release(): void {
    this.attached.clear(); // a later RUN (an ONBUILD one) attaches anew
    for (const release of this.releases.splice(0)) release();
  }

  private async attach(name: string): Promise<string> {
    // The network module loads only when a RUN step runs on a network (never on a cached build).
    const N = await import('../network/index.js');
    await N.reapOrphans(this.store).catch(() => {});
    const id = `tmp-${crypto.randomBytes(12).toString('hex')}`;
    const attached = N.attach(this.store, id, { network: name, hostname: id.slice(-12), ownerPid: process.pid });
    // The build may end (a failed mount beside it, Ctrl-C) while the attach is under way:
    // its cleanup waits for the attach to finish, then undoes it.
    let detached: Promise<void> | undefined;
    const detachOnce = () => (detached ??= attached.catch(() => {}).then(() => N.detach(this.store, id)));
    this.releases.push(() => void detachOnce().catch(() => {}));
    this.addCleanup(() => detachOnce());
    return (await attached).netnsPath;
  }
}

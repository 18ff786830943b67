// `ufs pull`: resolve the reference on its registry (the host's platform out of an index
// unless asked), and if the store has that very manifest already, only (re)point the tag;
// else fetch the config and hand the image to the ingest path `load` uses too, which fetches
// only the layers the store lacks, verifies every digest and installs under the lock.
import { UfsError } from '../common/errors.js';
import { ingest, type LayerEvent } from '../image/ingest.js';
import { DEFAULT_TAG, parseReference, repoName } from '../image/reference.js';
import { setTag } from '../image/records.js';
import { hostPlatform, parsePlatform, type Platform } from '../image/source/platform.js';
import { RegistrySource } from '../image/source/registry.js';
import type { OciImageConfig } from '../image/types.js';
import type { Store } from '../store/index.js';
import type { ClientOptions } from './client.js';
import { withMirror } from './connect.js';
import { fetchManifest, fetchSmallBlob, isIndex, listTags, resolveImageManifest } from './remote.js';

export interface PullOptions extends ClientOptions {
  platform?: string;
  allTags?: boolean;
  onLayer?: (e: LayerEvent) => void;
  onStart?: (what: { tag?: string; repo: string; full: string }) => void; // "latest: Pulling from library/busybox"
}

export interface PullResult {
  id: string;
  full: string; // repo:tag or repo@digest as pulled
  digest: string; // the repo digest (what the tag named on the registry)
  upToDate: boolean;
}

function readConfig(store: Store, id: string): OciImageConfig | undefined {
  try {
    const c = store.readJsonBlob<OciImageConfig>(id);
    return Array.isArray(c?.rootfs?.diff_ids) ? c : undefined;
  } catch {
    return undefined;
  }
}

function platformMatches(config: OciImageConfig, want: Platform): boolean {
  return config.os === want.os && config.architecture === want.architecture && (!want.variant || !config.variant || config.variant === want.variant);
}

export async function pullImage(store: Store, input: string, opts: PullOptions = {}): Promise<PullResult[]> {
  const ref = parseReference(input);
  const repo = repoName(ref);
  const want = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  if (opts.allTags) {
    if (ref.tag || ref.digest) throw new UfsError('tag can not be used with --all-tags/-a');
    return withMirror(ref.domain, opts, async (client) => {
      const tags = await listTags(client, ref.path);
      if (tags.length === 0) throw new UfsError(`${input}: the repository has no tags`);
      const out: PullResult[] = [];
      for (const t of tags.sort()) out.push(...(await pullImage(store, `${repo}:${t}`, { ...opts, allTags: false })));
      return out;
    });
  }
  const tag = ref.digest ? undefined : (ref.tag ?? DEFAULT_TAG);
  const full = tag ? `${repo}:${tag}` : `${repo}@${ref.digest}`;
  const display = tag ? `${input.replace(/:[^:/]*$/, '')}:${tag}` : input;
  return withMirror(ref.domain, opts, async (client) => {
    const top = await fetchManifest(client, ref.path, ref.digest ?? tag!, display);
    const repoDigest = `${repo}@${top.digest}`;
    opts.onStart?.({ ...(tag ? { tag } : {}), repo: ref.path, full });

    // Unchanged: the store has what this manifest (or, from an index, this platform) names
    // for this repository already; nothing more is fetched.
    const db = store.readImageDb();
    const known = db.digests[repoDigest];
    const knownConfig = known && db.images[known.id] ? readConfig(store, known.id) : undefined;
    if (known && knownConfig && ((!isIndex(top.mediaType) && !opts.platform) || platformMatches(knownConfig, want))) {
      const config = knownConfig;
      if (config.rootfs.diff_ids.every((d) => store.hasLayer(d))) {
        let moved = false;
        // the tag already names it (the usual case): nothing to write, no lock to take
        if (tag && db.tags[full]?.id !== known.id) {
          await store.withLock(async () => {
            store.updateImageDb((d) => {
              if (!d.images[known.id]) throw new UfsError(`${display}: the image was removed meanwhile; pull again`);
              if (d.tags[full]?.id !== known.id) {
                setTag(d, full, known.id, known.manifest);
                moved = true;
              }
            });
          });
        }
        return [{ id: known.id, full, digest: top.digest, upToDate: !moved }];
      }
    }
    const resolved = await resolveImageManifest(client, ref.path, top.digest, display, want, top);

    const configBytes = await fetchSmallBlob(client, ref.path, resolved.manifest.config, display);
    let config: OciImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8')) as OciImageConfig;
    } catch {
      throw new UfsError(`${display}: the image config is not valid JSON`);
    }
    if (opts.platform && !isIndex(resolved.top.mediaType) && !platformMatches(config, want)) {
      throw new UfsError(`image with reference ${display} was found but does not match the specified platform: wanted ${opts.platform}, actual: ${config.os}/${config.architecture}${config.variant ? `/${config.variant}` : ''}`);
    }
    const source = new RegistrySource(store, client, ref.path, {
      manifestBytes: resolved.image.bytes,
      manifest: resolved.manifest,
      configBytes,
      config,
      tags: tag ? [full] : [],
      repoDigests: [repoDigest],
    }, opts.signal);
    const [done] = await ingest(store, source, { ...(opts.onLayer ? { onLayer: opts.onLayer } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    return [{ id: done!.id, full, digest: resolved.top.digest, upToDate: false }];
  });
}

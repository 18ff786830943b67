// The data behind `ufs images`, `ufs history` and `ufs inspect`, shaped as Docker shows it.
import type { ImageDb, Store } from '../store/index.js';
import { familiarName, splitStoredRef } from './reference.js';
import { imageRepoDigests, imageTags, readImageConfig } from './records.js';
import type { ContainerConfig, HistoryEntry, OciImageConfig } from './types.js';

export function imageSize(store: Store, config: OciImageConfig): number {
  let size = 0;
  for (const d of config.rootfs.diff_ids) size += store.layerMeta(d)?.size ?? 0;
  return size;
}

export interface ImageRow {
  repository: string; // familiar, or <none>
  tag: string; // or <none>
  digest: string; // manifest digest of a repo digest, or <none>
  id: string;
  created: string; // ISO
  size: number;
}

// One row per tag (and one <none> row for an untagged image), newest first.
export function listImages(store: Store): ImageRow[] {
  const db = store.readImageDb();
  const rows: ImageRow[] = [];
  for (const id of Object.keys(db.images)) {
    let config: OciImageConfig;
    try {
      config = readImageConfig(store, id);
    } catch {
      continue; // a record whose config is gone: nothing to show
    }
    const size = imageSize(store, config);
    const created = config.created ?? '';
    const digests = imageRepoDigests(db, id);
    // The repo digest of a tag: the one pulled with the tag's manifest, else any of the repo.
    const digestOf = (repo: string, manifest?: string) => {
      const mine = digests.filter((x) => x.startsWith(`${repo}@`));
      const d = mine.find((x) => db.digests[x]!.manifest === manifest) ?? mine[0];
      return d ? d.slice(d.indexOf('@') + 1) : '<none>';
    };
    const tags = imageTags(db, id);
    for (const t of tags) {
      const { repo, tag } = splitStoredRef(t);
      rows.push({ repository: familiarName(repo), tag: tag ?? '<none>', digest: digestOf(repo, db.tags[t]!.manifest), id, created, size });
    }
    // repositories known only by digest (pulled by digest) show with tag <none>
    for (const d of digests) {
      const { repo, digest } = splitStoredRef(d);
      if (tags.some((t) => t.startsWith(`${repo}:`))) continue;
      rows.push({ repository: familiarName(repo), tag: '<none>', digest: digest!, id, created, size });
    }
    if (tags.length === 0 && digests.length === 0) rows.push({ repository: '<none>', tag: '<none>', digest: '<none>', id, created, size });
  }
  return rows.sort((a, b) => (a.created === b.created ? a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag) : a.created < b.created ? 1 : -1));
}

export interface HistoryRow {
  image: string; // id or <missing>
  created: string;
  createdBy: string;
  size: number;
  comment: string;
  emptyLayer: boolean;
}

// Newest first, one row per history entry (one per layer if the config has no history).
export function imageHistory(store: Store, id: string): HistoryRow[] {
  const db = store.readImageDb();
  const config = readImageConfig(store, id);
  const diffIds = config.rootfs.diff_ids;
  const history: HistoryEntry[] = config.history && config.history.length ? config.history : diffIds.map(() => ({ created: config.created ?? '' }));
  const rows: HistoryRow[] = [];
  let layer = 0;
  for (const h of history) {
    const empty = !!h.empty_layer;
    const size = empty ? 0 : (store.layerMeta(diffIds[layer] ?? '')?.size ?? 0);
    if (!empty) layer++;
    rows.push({ image: '<missing>', created: h.created ?? '', createdBy: h.created_by ?? '', size, comment: h.comment ?? '', emptyLayer: empty });
  }
  // The top row is the image itself; with local parents (commit/build), their top rows too.
  let cur: string | undefined = id;
  const seen = new Set<string>();
  while (cur && !seen.has(cur) && db.images[cur]) {
    seen.add(cur);
    let n: number;
    try {
      n = readImageConfig(store, cur).history?.length ?? 0;
    } catch {
      break;
    }
    if (n > 0 && n <= rows.length) rows[n - 1]!.image = cur;
    cur = db.images[cur]!.parent;
  }
  return rows.reverse();
}

// Docker's image inspect shape.
export function inspectImage(store: Store, db: ImageDb, id: string): Record<string, unknown> {
  const config = readImageConfig(store, id);
  const rec = db.images[id];
  const c: ContainerConfig = config.config ?? {};
  const dockerConfig: Record<string, unknown> = {
    Hostname: '',
    Domainname: '',
    User: c.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}),
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: c.Env ?? null,
    Cmd: c.Cmd ?? null,
    ...(c.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
    Image: '',
    Volumes: c.Volumes ?? null,
    WorkingDir: c.WorkingDir ?? '',
    Entrypoint: c.Entrypoint ?? null,
    OnBuild: c.OnBuild ?? null,
    Labels: c.Labels ?? null,
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c.Shell ? { Shell: c.Shell } : {}),
  };
  return {
    Id: id,
    RepoTags: imageTags(db, id).map(familiarName).sort(),
    RepoDigests: imageRepoDigests(db, id).map(familiarName),
    Parent: rec?.parent ?? '',
    Comment: config.history?.at(-1)?.comment ?? '',
    Created: config.created ?? '',
    DockerVersion: typeof config['docker_version'] === 'string' ? config['docker_version'] : '',
    Author: config.author ?? '',
    Config: dockerConfig,
    Architecture: config.architecture,
    ...(config.variant ? { Variant: config.variant } : {}),
    Os: config.os,
    Size: imageSize(store, config),
    RootFS: { Type: 'layers', Layers: [...config.rootfs.diff_ids] },
    Metadata: { LastTagTime: rec?.lastTagTime ?? '0001-01-01T00:00:00Z' },
    ...(rec ? { Descriptor: manifestDescriptor(store, rec.manifest) } : {}),
  };
}

function manifestDescriptor(store: Store, digest: string): { mediaType: string; digest: string; size: number } {
  const bytes = store.readBlob(digest);
  let mediaType = 'application/vnd.oci.image.manifest.v1+json';
  try {
    mediaType = (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? mediaType;
  } catch {
    // keep the default
  }
  return { mediaType, digest, size: bytes.length };
}

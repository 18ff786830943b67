// `docker save` archives (also skopeo docker-archive:): manifest.json lists each image's
// config file and layer tars; the manifest is made here (OCI, layers as they are stored).
import { UfsError } from '../../common/errors.js';
import { detectCompression, fileHead, mediaTypeFor } from '../layer.js';
import { normalizeTagged } from '../reference.js';
import { type ImageManifest, MT, type OciImageConfig } from '../types.js';
import { checkAllBlobs, checkConfig, digestFromName, SpoolSource } from './spooled.js';
import { archiveName, type Spool, type SpoolFile } from './spool.js';
import type { SourceImage } from './types.js';

function layerMediaType(f: SpoolFile): string {
  const head = f.data ? f.data.subarray(0, 8) : fileHead(f.path!);
  return mediaTypeFor(detectCompression(head, `layer ${f.name}`));
}

export function dockerArchiveSource(sp: Spool): SpoolSource {
  type Entry = { Config?: unknown; RepoTags?: unknown; Layers?: unknown };
  const list = sp.json<Entry[]>(sp.get('manifest.json', 'file'), 'manifest.json');
  if (!Array.isArray(list) || list.length === 0) throw new UfsError('bad archive: manifest.json lists no images');
  const src = new SpoolSource(sp);
  src.found = list.map((e, n): SourceImage => {
    if (typeof e.Config !== 'string' || !Array.isArray(e.Layers)) throw new UfsError(`bad archive: manifest.json entry ${n} has no Config/Layers`);
    const cfgFile = sp.get(e.Config, 'config');
    const named = digestFromName(archiveName(e.Config));
    if (named && named !== cfgFile.digest) throw new UfsError(`bad archive: config ${e.Config} has digest ${cfgFile.digest}`);
    const config = sp.json<OciImageConfig>(cfgFile, `config ${e.Config}`);
    checkConfig(config, `config ${e.Config}`);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== e.Layers.length) {
      throw new UfsError(`bad archive: ${e.Config} has ${diffIds.length} diff_ids but manifest.json lists ${e.Layers.length} layers`);
    }
    const layers = (e.Layers as unknown[]).map((l, i) => {
      if (typeof l !== 'string') throw new UfsError('bad archive: manifest.json has a non-string layer');
      const file = sp.get(l, 'layer');
      const named = digestFromName(archiveName(l));
      if (named && named !== file.digest && named !== diffIds[i]) throw new UfsError(`bad archive: blob ${l} has digest ${file.digest}`);
      src.blobs.set(file.digest, file);
      return { mediaType: layerMediaType(file), digest: file.digest, size: file.size };
    });
    const configBytes = sp.bytes(cfgFile);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: cfgFile.digest, size: configBytes.length },
      layers,
    };
    const tags = Array.isArray(e.RepoTags) ? e.RepoTags.map((t) => normalizeTagged(String(t))) : [];
    return { configBytes, config, manifest, manifestBytes: Buffer.from(JSON.stringify(manifest)), tags, repoDigests: [] };
  });
  checkAllBlobs(sp);
  return src;
}

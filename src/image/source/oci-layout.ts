// OCI image layouts as a tar (skopeo oci-archive:, umoci, Docker 25+ `docker save`): index.json
// names manifests (or nested indexes: the host's platform is taken), blobs/sha256/<hex> holds
// everything, and every blob there must hash to its name, referenced or not.
import { UfsError } from '../../common/errors.js';
import { digestHex } from '../../store/index.js';
import { normalizeTagged } from '../reference.js';
import { type Descriptor, type ImageIndex, type ImageManifest, MT, type OciImageConfig } from '../types.js';
import { choosePlatform, hostPlatform } from './platform.js';
import { checkAllBlobs, checkConfig, SpoolSource } from './spooled.js';
import type { Spool, SpoolFile } from './spool.js';
import type { SourceImage } from './types.js';

function blob(sp: Spool, d: Descriptor, what: string): SpoolFile {
  if (typeof d?.digest !== 'string') throw new UfsError(`bad archive: ${what} has no digest`);
  const hex = (() => {
    try {
      return digestHex(d.digest);
    } catch {
      throw new UfsError(`bad archive: ${what}: unsupported digest ${JSON.stringify(d.digest)}`);
    }
  })();
  const f = sp.get(`blobs/sha256/${hex}`, `${what} blob`);
  if (f.digest !== d.digest) throw new UfsError(`bad archive: blob ${d.digest} has digest ${f.digest}`);
  if (typeof d.size === 'number' && d.size !== f.size) throw new UfsError(`bad archive: blob ${d.digest} has size ${f.size}, descriptor says ${d.size}`);
  return f;
}

function nameFromAnnotations(a: Record<string, string> | undefined): string | undefined {
  const full = a?.['io.containerd.image.name'];
  if (full) return normalizeTagged(full);
  const ref = a?.['org.opencontainers.image.ref.name'];
  // A bare tag ("latest") names no repository: the image stays untagged, as Docker does; so
  // does a ref.name that is no valid reference (the annotation is free-form).
  if (!ref || !(ref.includes(':') || ref.includes('/'))) return undefined;
  try {
    return normalizeTagged(ref);
  } catch {
    return undefined;
  }
}

export function ociLayoutSource(sp: Spool): SpoolSource {
  const layout = sp.json<{ imageLayoutVersion?: string }>(sp.get('oci-layout', 'file'), 'oci-layout');
  if (!layout.imageLayoutVersion) throw new UfsError('bad archive: oci-layout has no imageLayoutVersion');
  const index = sp.json<ImageIndex>(sp.get('index.json', 'file'), 'index.json');
  if (!Array.isArray(index.manifests)) throw new UfsError('bad archive: index.json has no manifests');
  const src = new SpoolSource(sp);
  const byId = new Map<string, SourceImage>();
  const visit = (d: Descriptor, name: string | undefined, depth: number): void => {
    if (depth > 4) throw new UfsError('bad archive: indexes nested too deeply');
    if (d.mediaType === MT.ociIndex || d.mediaType === MT.dockerManifestList) {
      const inner = sp.json<ImageIndex>(blob(sp, d, 'index'), `index ${d.digest}`);
      const list = (inner.manifests ?? []).map((m) => (m.platform ? m : { ...m, platform: { ...hostPlatform() } }));
      visit(choosePlatform(list, hostPlatform(), `index ${d.digest}`), name, depth + 1);
      return;
    }
    if (d.mediaType && d.mediaType !== MT.ociManifest && d.mediaType !== MT.dockerManifest) {
      throw new UfsError(`bad archive: unsupported manifest type ${d.mediaType}`);
    }
    const mf = blob(sp, d, 'manifest');
    const manifest = sp.json<ImageManifest>(mf, `manifest ${d.digest}`);
    if (!manifest.config || !Array.isArray(manifest.layers)) throw new UfsError(`bad archive: manifest ${d.digest} has no config/layers`);
    const cfgFile = blob(sp, manifest.config, 'config');
    const config = sp.json<OciImageConfig>(cfgFile, `config ${cfgFile.digest}`);
    checkConfig(config, `config ${cfgFile.digest}`);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw new UfsError(`bad archive: config ${cfgFile.digest} has ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`);
    }
    let found = byId.get(cfgFile.digest);
    if (!found) {
      for (const l of manifest.layers) src.blobs.set(l.digest, blob(sp, l, 'layer'));
      found = { configBytes: sp.bytes(cfgFile), config, manifest, manifestBytes: sp.bytes(mf), tags: [], repoDigests: [] };
      byId.set(cfgFile.digest, found);
      src.found.push(found);
    }
    if (name && !found.tags.includes(name)) found.tags.push(name);
  };
  for (const d of index.manifests) visit(d, nameFromAnnotations(d.annotations), 0);
  if (src.found.length === 0) throw new UfsError('bad archive: index.json lists no images');
  checkAllBlobs(sp);
  return src;
}

// A repository on a registry as an image source: the image (manifest picked for the platform,
// config verified) is resolved before, by src/registry/pull.ts; layers are downloaded several
// at once into the store's tmp/, hashed while they stream.
import type { Store } from '../../store/index.js';
import type { RegistryClient } from '../../registry/client.js';
import { downloadBlob } from '../../registry/remote.js';
import type { Descriptor } from '../types.js';
import type { BlobProgress, FetchedBlob, ImageSource, SourceImage } from './types.js';

export class RegistrySource implements ImageSource {
  readonly parallel = 3;

  constructor(
    private readonly store: Store,
    private readonly client: RegistryClient,
    private readonly repo: string, // path on the registry (library/busybox)
    private readonly image: SourceImage,
    private readonly signal?: AbortSignal,
  ) {}

  async images(): Promise<SourceImage[]> {
    return [this.image];
  }
  fetchBlob(desc: Descriptor, progress: BlobProgress): Promise<FetchedBlob> {
    return downloadBlob(this.client, this.repo, desc, this.store.tmpPath('pull'), progress, this.signal);
  }
  close(): void {}
}

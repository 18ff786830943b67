// One shape for every place images come from (go-containerregistry's idea): a source names
// the images it holds (manifest, config, tags) and hands out blobs by digest. The ingest path
// (../ingest.ts) verifies everything a source gives it and installs it; adapters only read.
import type { Descriptor, ImageManifest, OciImageConfig } from '../types.js';

export interface SourceImage {
  manifestBytes: Buffer; // as the source has it (made here for a docker-archive)
  manifest: ImageManifest;
  configBytes: Buffer;
  config: OciImageConfig;
  tags: string[]; // full name:tag to point at the image
  repoDigests: string[]; // full repo@sha256:... (pulled from a registry)
}

// A blob fetched into a file under the store's tmp/: the ingest moves it into blobs/ or
// deletes it. `digest` and `size` are what was actually read (hashed while streaming); no
// digest when the caller asked its follower to hash (readerHashes) and it could.
export interface FetchedBlob {
  path: string;
  digest?: string;
  size: number;
  durable?: Promise<void>; // the file's fsync, running while the layer is unpacked
}

export interface BlobProgress {
  onStart?: (total: number) => void; // the transfer starts (after waiting for a slot)
  onBytes?: (n: number) => void;
  // The blob's file holds `bytes` bytes now (0 again when the transfer starts over): a
  // source that says so has its layer unpacked while it downloads.
  onWritten?: (file: string, bytes: number) => void;
  // The blob's file exists (empty) and will get its bytes through onWritten: its unpacking
  // can start now (a worker thread takes a while to start).
  onFile?: (file: string) => void;
  // The one following the file (onFile) hashes every byte it reads: the source need not,
  // unless it rewrites bytes already written (a transfer started over), where it must.
  readerHashes?: boolean;
}

export interface ImageSource {
  // What the source holds, resolved (a registry fetches its manifests here).
  images(): Promise<SourceImage[]>;
  // The blob for a layer descriptor, in a temp file the caller owns from now on.
  fetchBlob(desc: Descriptor, progress: BlobProgress): Promise<FetchedBlob>;
  // Fetching is slow (network): the ingest runs several at once. Archives are already local.
  readonly parallel: number;
  close(): void;
}

// Worker thread entry for layer.ts's readLayerBlobInWorker: one layer blob decompressed,
// hashed and unpacked off the main thread; progress in batches, errors as their message.
import { parentPort, workerData } from 'node:worker_threads';
import { UfsError } from '../common/errors.js';
import { readLayerBlob } from './layer-read.js';

const { blobFile, tmpDir, what, follow, hashBlob } = workerData as { blobFile: string; tmpDir?: string; what: string; follow?: SharedArrayBuffer; hashBlob: boolean };
let pending = 0;
try {
  const result = await readLayerBlob(blobFile, tmpDir, what, (n) => {
    pending += n;
    if (pending >= 1 << 20) {
      parentPort!.postMessage({ type: 'bytes', n: pending });
      pending = 0;
    }
  }, follow, hashBlob);
  if (pending) parentPort!.postMessage({ type: 'bytes', n: pending });
  parentPort!.postMessage({ type: 'done', result });
} catch (err) {
  parentPort!.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err), ufs: err instanceof UfsError });
}

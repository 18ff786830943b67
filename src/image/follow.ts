// A file read while another thread (or this one) is still writing it: a layer blob is
// unpacked while it downloads. The writer publishes how many bytes the file holds, in
// memory shared with the reader's worker thread; the reader reads no further than that and
// waits (Atomics.waitAsync) for more, until the writer says the file is complete or failed.
import fs from 'node:fs';

const WRITTEN = 0; // BigInt64 slots
const STATE = 1; // 0 growing, 1 complete, 2 failed
const SEQ_BYTE = 16; // an Int32 that changes on every update, to wait on

export class GrowingFile {
  readonly shared = new SharedArrayBuffer(24);
  private readonly values = new BigInt64Array(this.shared, 0, 2);
  private readonly seq = new Int32Array(this.shared, SEQ_BYTE, 1);

  private publish(): void {
    Atomics.add(this.seq, 0, 1);
    Atomics.notify(this.seq, 0);
  }
  // The file now holds n bytes (0 again when the writer starts over).
  written(n: number): void {
    Atomics.store(this.values, WRITTEN, BigInt(n));
    this.publish();
  }
  complete(size: number): void {
    Atomics.store(this.values, WRITTEN, BigInt(size));
    Atomics.store(this.values, STATE, 1n);
    this.publish();
  }
  fail(): void {
    Atomics.store(this.values, STATE, 2n);
    this.publish();
  }
}

export class GrowingFileFailed extends Error {}

// Atomics.waitAsync (Node 16+), not in this TypeScript lib's types yet.
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number): { async: boolean; value: Promise<string> | string };
}).waitAsync;

// The bytes of `file` as they are written (see GrowingFile), in fresh buffers.
export async function* followFile(file: string, shared: SharedArrayBuffer, chunk = 1 << 20): AsyncGenerator<Buffer> {
  const values = new BigInt64Array(shared, 0, 2);
  const seq = new Int32Array(shared, SEQ_BYTE, 1);
  const fh = await fs.promises.open(file, 'r');
  let pos = 0;
  try {
    for (;;) {
      const seen = Atomics.load(seq, 0);
      const state = Atomics.load(values, STATE);
      if (state === 2n) throw new GrowingFileFailed(`${file}: the download failed`);
      const written = Number(Atomics.load(values, WRITTEN));
      if (pos < written) {
        const buf = Buffer.allocUnsafe(Math.min(chunk, written - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead > 0) {
          pos += bytesRead;
          yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
          continue;
        }
        // the writer started over and truncated the file: wait for it to get here again
      } else if (state === 1n) return;
      const w = waitAsync(seq, 0, seen);
      if (w.async) {
        // a pending waitAsync does not keep the event loop (a worker's) alive: a timer does
        const alive = setInterval(() => {}, 1 << 30);
        try {
          await w.value;
        } finally {
          clearInterval(alive);
        }
      }
    }
  } finally {
    await fh.close();
  }
}

// A file read while another thread (or this one) is still writing it: a layer blob is
// unpacked while it downloads. The writer publishes how many bytes the file holds, in
// memory shared with the reader's worker thread; the reader reads no further than that and
// waits for more, until the writer says the file is complete or failed.
import fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';

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

// Reads a blob file into the caller's buffer, a chunk at a time (0 at its end), with plain
// reads: from the page cache they take microseconds, less than a trip through the thread pool.
export interface ChunkReader {
  read(buf: Buffer): Promise<number>;
  close(): void;
}

// A complete file.
export class FileChunkReader implements ChunkReader {
  private readonly fd: number;
  private pos = 0;
  constructor(file: string) {
    this.fd = fs.openSync(file, 'r');
  }
  async read(buf: Buffer): Promise<number> {
    const n = fs.readSync(this.fd, buf, 0, buf.length, this.pos);
    this.pos += n;
    return n;
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

// A file as it is written (see GrowingFile). A worker thread blocks in Atomics.wait until
// there is more (it has nothing else to do); the main thread, which runs the download, waits
// with Atomics.waitAsync.
export class FollowChunkReader implements ChunkReader {
  private readonly fd: number;
  private pos = 0;
  private readonly values: BigInt64Array;
  private readonly seq: Int32Array;
  constructor(
    private readonly file: string,
    shared: SharedArrayBuffer,
  ) {
    this.values = new BigInt64Array(shared, 0, 2);
    this.seq = new Int32Array(shared, SEQ_BYTE, 1);
    this.fd = fs.openSync(file, 'r');
  }
  async read(buf: Buffer): Promise<number> {
    for (;;) {
      const seen = Atomics.load(this.seq, 0);
      const state = Atomics.load(this.values, STATE);
      if (state === 2n) throw new GrowingFileFailed(`${this.file}: the download failed`);
      const written = Number(Atomics.load(this.values, WRITTEN));
      if (this.pos < written) {
        const n = fs.readSync(this.fd, buf, 0, Math.min(buf.length, written - this.pos), this.pos);
        if (n > 0) {
          this.pos += n;
          return n;
        }
        // the writer started over and truncated the file: wait for it to get here again
      } else if (state === 1n) return 0;
      if (!isMainThread) {
        Atomics.wait(this.seq, 0, seen, 1000);
        continue;
      }
      const w = waitAsync(this.seq, 0, seen);
      if (w.async) {
        // a pending waitAsync does not keep the event loop alive: a timer does
        const alive = setInterval(() => {}, 1 << 30);
        try {
          await w.value;
        } finally {
          clearInterval(alive);
        }
      }
    }
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

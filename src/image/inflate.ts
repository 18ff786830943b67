// Gunzip as a synchronous step per input chunk, into one output buffer used over and over:
// each chunk the generator yields is valid until the next one is asked for. A zlib stream
// instead hands every piece of work to the thread pool (a thread wake-up there and back, slow
// on a loaded machine) and allocates a fresh output buffer each time (page faults, which are
// costly in a VM). The zlib binding's writeSync is what Node's own gunzipSync drives (through
// _processChunk, which closes the stream after one call); where this Node has no such
// binding, the zlib stream is used as before.
import { pipeline } from 'node:stream';
import zlib from 'node:zlib';

interface ZlibHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
  onerror: (message: string, errno: number) => void;
  close(): void;
}

interface ZlibInternals {
  _handle?: ZlibHandle;
  _writeState?: Uint32Array; // [avail_out, avail_in] after a write
}

// Exported for the test that checks this Node still has what inflateSync needs.
export function hasSyncInflate(): boolean {
  const g = zlib.createGunzip() as unknown as ZlibInternals;
  const ok = typeof g._handle?.writeSync === 'function' && g._writeState instanceof Uint32Array && g._writeState.length === 2;
  (g as unknown as zlib.Gunzip).close();
  return ok;
}

let syncInflate: boolean | undefined;

function zlibError(message: string, errno: number): Error {
  const code = Object.entries((zlib as unknown as { codes: Record<string, number> }).codes ?? {}).find(([, v]) => v === errno)?.[0] ?? 'Z_DATA_ERROR';
  return Object.assign(new Error(message), { errno, code });
}

// The gunzipped bytes of `input` (gzip members one after another, as zlib's own Gunzip
// reads them). Errors carry zlib's code (Z_DATA_ERROR, Z_BUF_ERROR for a cut-off stream).
export async function* gunzipChunks(input: AsyncIterable<Buffer>, outSize = 1 << 20): AsyncGenerator<Buffer> {
  syncInflate ??= hasSyncInflate();
  if (!syncInflate) {
    const unz = zlib.createGunzip({ chunkSize: 256 * 1024 });
    const src = (async function* () {
      yield* input;
    })();
    pipeline(src, unz, () => {});
    yield* unz as AsyncIterable<Buffer>;
    return;
  }
  const stream = zlib.createGunzip({ chunkSize: 16 * 1024 });
  const z = stream as unknown as Required<ZlibInternals>;
  const handle = z._handle;
  const state = z._writeState;
  let failure: Error | undefined;
  handle.onerror = (message, errno) => {
    failure ??= zlibError(message, errno);
  };
  const out = Buffer.allocUnsafeSlow(outSize);
  // Feeds one input chunk (or, with Z_FINISH, none) and yields all the output it makes.
  function* step(chunk: Buffer, flush: number): Generator<Buffer> {
    let inOff = 0;
    let inLen = chunk.length;
    for (;;) {
      handle.writeSync(flush, chunk, inOff, inLen, out, 0, outSize);
      if (failure) throw failure;
      const availOut = state[0]!;
      const availIn = state[1]!;
      const have = outSize - availOut;
      inOff += inLen - availIn;
      inLen = availIn;
      if (have > 0) yield out.subarray(0, have);
      if (availOut !== 0) return; // all input taken (or the stream ended before it)
    }
  }
  try {
    for await (const chunk of input) yield* step(chunk, zlib.constants.Z_NO_FLUSH);
    yield* step(Buffer.alloc(0), zlib.constants.Z_FINISH);
  } finally {
    stream.close();
  }
}

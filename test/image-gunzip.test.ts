// The layer reader's synchronous gunzip (src/image/inflate.ts) and the tar reader fed with
// reused buffers: what a pull unpacks goes through both. Output is zlib's own, byte for byte,
// whatever the input's chunking; cut-off and corrupt streams fail with zlib's codes; a tar
// whose headers and pax records span chunks of a reused buffer reads as from fresh ones, its
// bodies read at once (wholeBody) or in pieces alike.
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import test from 'ava';
import { gunzipChunks, hasSyncInflate } from '../src/image/inflate.js';
import { readTar } from '../src/image/tar/reader.js';
import { encodeHeader } from '../src/image/tar/writer.js';

// `data` in chunks of `size`, all in one buffer overwritten for each chunk (as the layer
// reader does), poisoned once the consumer asks for the next.
async function* reusedChunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  const buf = Buffer.alloc(size);
  for (let off = 0; off < data.length; off += size) {
    const n = data.copy(buf, 0, off, Math.min(off + size, data.length));
    yield buf.subarray(0, n);
    buf.fill(0xa5);
  }
}

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

const plain = Buffer.concat([crypto.randomBytes(300_000), Buffer.alloc(700_000, 'layer '), crypto.randomBytes(5000)]);

test('this Node has the zlib binding the fast path drives', (t) => {
  t.true(hasSyncInflate());
});

test('gunzip of any chunking, into a small reused output buffer, is zlib output byte for byte', async (t) => {
  const gz = zlib.gzipSync(plain, { level: 6 });
  for (const [inSize, outSize] of [
    [1, 4096],
    [7, 1000],
    [65_536, 1 << 20],
    [gz.length, 333],
  ] as const) {
    t.true((await collect(gunzipChunks(reusedChunks(gz, inSize), outSize))).equals(plain), `chunks of ${inSize}, output of ${outSize}`);
  }
});

test('gzip members one after another read as one stream, as zlib.gunzipSync reads them', async (t) => {
  const a = crypto.randomBytes(10_000);
  const b = Buffer.alloc(50_000, 'second member ');
  const gz = Buffer.concat([zlib.gzipSync(a), zlib.gzipSync(b)]);
  const got = await collect(gunzipChunks(reusedChunks(gz, 3000), 8192));
  t.true(got.equals(zlib.gunzipSync(gz)));
  t.true(got.equals(Buffer.concat([a, b])));
});

test('a cut-off gzip stream fails with Z_BUF_ERROR and a corrupt one with Z_DATA_ERROR', async (t) => {
  const gz = zlib.gzipSync(plain);
  const cut = await t.throwsAsync(collect(gunzipChunks(reusedChunks(gz.subarray(0, gz.length - 5000), 4096))));
  t.is((cut as Error & { code?: string }).code, 'Z_BUF_ERROR');
  const bad = Buffer.from(gz);
  for (let i = 100; i < 200; i++) bad[i] = 0xff;
  const corrupt = await t.throwsAsync(collect(gunzipChunks(reusedChunks(bad, 4096))));
  t.is((corrupt as Error & { code?: string }).code, 'Z_DATA_ERROR');
});

test('tar headers, pax records and bodies that span reused chunks read as from fresh buffers', async (t) => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`; // a pax path record
  const body = crypto.randomBytes(3000);
  const entries = [
    encodeHeader({ name: 'a', type: 'file', size: 5, mode: 0o644, uid: 0, gid: 0, mtimeSec: 1 }),
    Buffer.concat([Buffer.from('hello'), Buffer.alloc(507)]),
    encodeHeader({ name: long, type: 'file', size: body.length, mode: 0o600, uid: 0, gid: 0, mtimeSec: 2, xattrs: [['user.k', crypto.randomBytes(700)]] }),
    Buffer.concat([body, Buffer.alloc((512 - (body.length % 512)) % 512)]),
    encodeHeader({ name: 'l', type: 'symlink', linkname: long, mode: 0o777, uid: 0, gid: 0, mtimeSec: 3 }),
    Buffer.alloc(1024),
  ];
  const tar = Buffer.concat(entries);
  // whole: take a body at once where the reader has it at hand (as the unpacker does)
  const read = async (input: AsyncIterable<Buffer>, whole = false) => {
    const out: string[] = [];
    for await (const e of readTar(input)) {
      const at = whole ? e.wholeBody?.() : undefined;
      const data = at ? Buffer.from(at) : await collect(e.body());
      out.push(`${e.header.type} ${e.header.name} ${e.header.linkname} ${e.header.mode.toString(8)} ${[...e.header.xattrs].map(([k, v]) => `${k}=${v.toString('hex')}`).join()} ${crypto.createHash('sha256').update(data).digest('hex')}`);
    }
    return out;
  };
  const fresh = await read((async function* () {
    yield tar;
  })());
  t.is(fresh.length, 3);
  t.true(fresh[1]!.includes(long));
  for (const size of [1, 100, 511, 513, 1000, 4096]) {
    t.deepEqual(await read(reusedChunks(tar, size)), fresh, `chunks of ${size}`);
    t.deepEqual(await read(reusedChunks(tar, size), true), fresh, `chunks of ${size}, bodies at once where at hand`);
  }
});

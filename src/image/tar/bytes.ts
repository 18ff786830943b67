// Names in tars and layer directories are bytes, never decoded (DESIGN.md "The store"). In
// memory they are byte strings: one char per byte (latin1), so '/', '.' and the rest of ASCII
// work with string operations, every byte value round-trips, and a UTF-8 name's bytes are its
// UTF-8 encoding. They meet the file system as Buffers and people as UTF-8 text.

// The bytes of a byte string.
export function nameBytes(name: string): Buffer {
  return Buffer.from(name, 'latin1');
}

// A byte string of raw bytes.
export function byteName(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

// A byte string from text (a name we make up, or one a user typed).
export function textName(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

// A byte string as text for messages: UTF-8 where it is, \xNN for bytes that are not.
export function showName(name: string): string {
  const b = nameBytes(name);
  const text = b.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(b)) return text;
  let out = '';
  for (let i = 0; i < b.length; ) {
    const n = utf8SeqLength(b, i);
    if (n > 0) {
      out += b.subarray(i, i + n).toString('utf8');
      i += n;
    } else {
      out += `\\x${b[i]!.toString(16).padStart(2, '0')}`;
      i++;
    }
  }
  return out;
}

// Length of the valid UTF-8 sequence at b[i], or 0.
function utf8SeqLength(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n === 0 || i + n > b.length) return 0;
  const seq = b.subarray(i, i + n);
  return Buffer.from(seq.toString('utf8'), 'utf8').equals(seq) ? n : 0;
}

// Is this byte string plain ASCII?
export function isAscii(name: string): boolean {
  return !/[^\x00-\x7f]/.test(name);
}

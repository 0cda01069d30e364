// A record's entry data carries who proposed it: [1][session u32][seq varint][payload].
// The node that made an append recognises its own record when it applies it,
// whichever node was leader and however the proposal travelled.

const RECORD = 1;

export interface RecordTag {
  session: number;
  seq: number;
}

function varintLength(n: number): number {
  let len = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 128)) len++;
  return len;
}

function writeHeader(out: Uint8Array, at: number, session: number, seq: number): number {
  out[at] = RECORD;
  out[at + 1] = session & 0xff;
  out[at + 2] = (session >>> 8) & 0xff;
  out[at + 3] = (session >>> 16) & 0xff;
  out[at + 4] = (session >>> 24) & 0xff;
  let i = at + 5;
  let s = seq;
  while (s >= 0x80) {
    out[i++] = (s % 128) | 0x80;
    s = Math.floor(s / 128);
  }
  out[i++] = s;
  return i;
}

/**
 * Encodes a batch into views of ONE buffer: a typed array with a backing store of its
 * own per record costs more (allocation and GC) than the rest of an append.
 */
export function encodeRecords(session: number, seqs: readonly number[], payloads: readonly Uint8Array[]): Uint8Array[] {
  let total = 0;
  for (let i = 0; i < payloads.length; i++) total += 5 + varintLength(seqs[i]!) + payloads[i]!.byteLength;
  const buf = new Uint8Array(total);
  const out = new Array<Uint8Array>(payloads.length);
  let at = 0;
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]!;
    const body = writeHeader(buf, at, session, seqs[i]!);
    buf.set(p, body);
    out[i] = buf.subarray(at, body + p.byteLength);
    at = body + p.byteLength;
  }
  return out;
}

/** The tag and payload of a record entry, or null for entries that carry no record (a new leader's empty entry). */
export function decodeRecord(data: Uint8Array): { tag: RecordTag; payload: Uint8Array } | null {
  if (data.byteLength < 6 || data[0] !== RECORD) return null;
  const session = (data[1]! | (data[2]! << 8) | (data[3]! << 16) | (data[4]! << 24)) >>> 0;
  let seq = 0;
  let mul = 1;
  let i = 5;
  for (;;) {
    if (i >= data.byteLength) return null;
    const b = data[i++]!;
    seq += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 128;
  }
  return { tag: { session, seq }, payload: data.subarray(i) };
}

// A record's entry data carries who proposed it: [1][session u32][seq varint][payload].
// The node that made an append recognises its own record when it applies it,
// whichever node was leader and however the proposal travelled.

const RECORD = 1;

export interface RecordTag {
  session: number;
  seq: number;
}

export function encodeRecord(session: number, seq: number, payload: Uint8Array): Uint8Array {
  let n = 0;
  for (let s = seq; s >= 0x80; s = Math.floor(s / 128)) n++;
  const out = new Uint8Array(6 + n + payload.byteLength);
  out[0] = RECORD;
  out[1] = session & 0xff;
  out[2] = (session >>> 8) & 0xff;
  out[3] = (session >>> 16) & 0xff;
  out[4] = (session >>> 24) & 0xff;
  let i = 5;
  let s = seq;
  while (s >= 0x80) {
    out[i++] = (s % 128) | 0x80;
    s = Math.floor(s / 128);
  }
  out[i++] = s;
  out.set(payload, i);
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

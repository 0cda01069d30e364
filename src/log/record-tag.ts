// A record's entry data carries who proposed it:
//
//   [version 2][origin: node id varint, session 8 bytes][seq varint][payload]
//
// The node that made an append recognises its own record by the origin when it
// applies it, whichever node was leader and however the proposal travelled. The
// origin names the node and a 64-bit random session drawn at every open, so two
// live sessions never share an origin: different nodes differ by id, and one
// node's sessions collide with probability 2^-64 per pair of opens.
import { LogCorruptError } from './errors.js';

/** The format version of the tag; a node refuses entries written in another. */
export const RECORD_VERSION = 2;
const SESSION_BYTES = 8;

export interface RecordTag {
  /** The appending node's origin prefix (version, node id, session): compare with `sameOrigin`. */
  origin: Uint8Array;
  seq: number;
}

function varintLength(n: number): number {
  let len = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 128)) len++;
  return len;
}

function writeVarint(out: Uint8Array, at: number, n: number): number {
  let i = at;
  let s = n;
  while (s >= 0x80) {
    out[i++] = (s % 128) | 0x80;
    s = Math.floor(s / 128);
  }
  out[i++] = s;
  return i;
}

/** The fixed prefix of every record a session appends. `session` is 8 random bytes. */
export function recordOrigin(nodeId: number, session: Uint8Array): Uint8Array {
  if (session.byteLength !== SESSION_BYTES) throw new RangeError(`a session is ${SESSION_BYTES} bytes`);
  const out = new Uint8Array(1 + varintLength(nodeId) + SESSION_BYTES);
  out[0] = RECORD_VERSION;
  const at = writeVarint(out, 1, nodeId);
  out.set(session, at);
  return out;
}

export function sameOrigin(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Encodes a batch into views of ONE buffer: a typed array with a backing store of its
 * own per record costs more (allocation and GC) than the rest of an append.
 */
export function encodeRecords(origin: Uint8Array, seqs: readonly number[], payloads: readonly Uint8Array[]): Uint8Array[] {
  let total = 0;
  for (let i = 0; i < payloads.length; i++) total += origin.byteLength + varintLength(seqs[i]!) + payloads[i]!.byteLength;
  const buf = new Uint8Array(total);
  const out = new Array<Uint8Array>(payloads.length);
  let at = 0;
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i]!;
    buf.set(origin, at);
    const body = writeVarint(buf, at + origin.byteLength, seqs[i]!);
    buf.set(p, body);
    out[i] = buf.subarray(at, body + p.byteLength);
    at = body + p.byteLength;
  }
  return out;
}

/** Where the parts of a record lie in an entry's data, as readRecord finds them. */
export interface RecordLayout {
  /** End of the origin prefix (version, node id, session). */
  originEnd: number;
  seq: number;
  /** Start of the application's payload. */
  payloadAt: number;
}

/**
 * Reads a varint at `at` into `out.seq` and returns where it ends, or -1 if it is cut
 * short or beyond 2^53. Writes into the caller's object: the apply loop reads a tag
 * per record and must not allocate for it.
 */
function readVarintInto(data: Uint8Array, at: number, out: RecordLayout): number {
  let value = 0;
  let mul = 1;
  for (let i = at; i < data.byteLength && i < at + 8; i++) {
    const b = data[i]!;
    value += (b & 0x7f) * mul;
    if (b < 0x80) {
      if (!Number.isSafeInteger(value)) return -1;
      out.seq = value;
      return i + 1;
    }
    mul *= 128;
  }
  return -1;
}

/**
 * Fills `out` with the layout of a normal entry's data and returns true, or returns
 * false for an entry that carries no record (a new leader's empty entry). Anything
 * else that does not decode is damage that got past every checksum, or a writer of
 * another format: it must stop the node, never be skipped, so it throws LogCorruptError.
 */
export function readRecord(data: Uint8Array, index: number, out: RecordLayout): boolean {
  if (data.byteLength === 0) return false;
  if (data[0] !== RECORD_VERSION) throw new LogCorruptError(index, `unknown record version ${data[0]}`);
  const nodeEnd = readVarintInto(data, 1, out); // the node id passes through out.seq
  if (nodeEnd < 0 || out.seq < 1) throw new LogCorruptError(index, 'bad node id in the record tag');
  const originEnd = nodeEnd + SESSION_BYTES;
  const payloadAt = readVarintInto(data, originEnd, out);
  if (payloadAt < 0) throw new LogCorruptError(index, 'record tag cut short');
  out.originEnd = originEnd;
  out.payloadAt = payloadAt;
  return true;
}

/** True when the record laid out in `data` was appended by the session whose prefix is `origin`. */
export function hasOrigin(data: Uint8Array, layout: RecordLayout, origin: Uint8Array): boolean {
  if (layout.originEnd !== origin.byteLength) return false;
  for (let i = 0; i < origin.byteLength; i++) if (data[i] !== origin[i]) return false;
  return true;
}

/** The tag and payload of a normal entry's data, or null for an entry that carries no record; see readRecord. */
export function decodeRecord(data: Uint8Array, index: number): { tag: RecordTag; payload: Uint8Array } | null {
  const l: RecordLayout = { originEnd: 0, seq: 0, payloadAt: 0 };
  if (!readRecord(data, index, l)) return null;
  return { tag: { origin: data.subarray(0, l.originEnd), seq: l.seq }, payload: data.subarray(l.payloadAt) };
}

// The records a node appends in one event-loop turn travel as few Raft entries as
// their size allows, each entry's data one batch:
//
//   [version 3][origin: node id varint, session 8 bytes][first seq varint][count varint]
//   then count times: [length varint][payload]
//
// One entry for a turn's records, not one each, is what lets the log keep up with
// small records: everything Raft and the WAL do per entry (the entry object, its
// place in Ready, its frame and checksum on disk, its cache slot) is paid once per
// batch. A record's position is its entry's index and its offset in the batch.
//
// The origin names the appending node and a 64-bit random session drawn at every
// open, so the node that made a batch recognises its own records when it applies
// them, whichever node was leader and however the proposal travelled. Two live
// sessions never share an origin: different nodes differ by id, and one node's
// sessions collide with probability 2^-64 per pair of opens. The records of a batch
// are one session's consecutive seqs: the first one and the count name them all.
// Entries of the format before batches (version 2, one record each) are still read.
//
// Lengths here are read with `.length`, never `.byteLength`: both are the same on a
// Uint8Array, but Node 20's optimizer inlines only the first, and the second costs
// a call into the engine (about 10x as long) on every read of every record.
import { LogCorruptError } from './errors.js';

/** The format version of a batch; a node refuses entries written in another. */
export const RECORD_VERSION = 3;
/**
 * The format before batches, one record per entry, still read:
 * [2][origin][seq varint][payload].
 */
const SINGLE_RECORD_VERSION = 2;
const SESSION_BYTES = 8;

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

const NO_BYTES = new Uint8Array(0);

/**
 * A view whose bytes are gone: its buffer was transferred (detached) or shrunk below it.
 * Its length reads 0, and copying from it throws.
 */
export function unreadable(data: Uint8Array): boolean {
  if (data.length !== 0) return false;
  try {
    NO_BYTES.set(data);
    return false;
  } catch {
    return true;
  }
}

/** The fixed prefix of every batch a session appends. `session` is 8 random bytes. */
export function recordOrigin(nodeId: number, session: Uint8Array): Uint8Array {
  if (session.length !== SESSION_BYTES) throw new RangeError(`a session is ${SESSION_BYTES} bytes`);
  const out = new Uint8Array(1 + varintLength(nodeId) + SESSION_BYTES);
  out[0] = RECORD_VERSION;
  const at = writeVarint(out, 1, nodeId);
  out.set(session, at);
  return out;
}

/**
 * Packs queued records into batches of at most `maxEntryBytes` of records each (a
 * larger record goes alone), one batch per run of consecutive seqs. Returns each
 * batch's data; `ends` (empty: a fresh array is cheaper than truncating one) receives,
 * per batch, the position in `seqs` one past its last record.
 */
export function encodeBatches(
  origin: Uint8Array,
  seqs: readonly number[],
  payloads: readonly Uint8Array[],
  maxEntryBytes: number,
  ends: number[],
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < payloads.length;) {
    // A length under 128 takes one byte: the usual case, written without a loop.
    let bytes = 0;
    let j = i;
    do {
      const n = payloads[j]!.length;
      const size = (n < 0x80 ? 1 : varintLength(n)) + n;
      if (j > i && (bytes + size > maxEntryBytes || seqs[j] !== seqs[j - 1]! + 1)) break;
      bytes += size;
      j++;
    } while (j < payloads.length);
    const buf = uninitialized(origin.length + varintLength(seqs[i]!) + varintLength(j - i) + bytes);
    buf.set(origin, 0);
    let at = writeVarint(buf, writeVarint(buf, origin.length, seqs[i]!), j - i);
    for (let k = i; k < j; k++) {
      const p = payloads[k]!;
      const n = p.length;
      if (n < 0x80) buf[at++] = n;
      else at = writeVarint(buf, at, n);
      buf.set(p, at);
      at += n;
    }
    // Every byte is written, front to back: anything less would put process memory in the log.
    if (at !== buf.length) throw new Error(`internal error: a batch of ${buf.length} bytes was encoded into ${at}`);
    out.push(buf);
    ends.push(j);
    i = j;
  }
  return out;
}

/**
 * A plain Uint8Array over memory that is not zeroed first: a turn's batch is written
 * whole right away, and zeroing it before (with the page faults of fresh memory) was
 * the single largest cost of proposing 256 small records. Not a Buffer, whose slice()
 * shares memory where a Uint8Array's copies.
 */
function uninitialized(n: number): Uint8Array {
  return new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n);
}

/**
 * Reads batches without allocating beyond a view per entry and the payload views it
 * hands out: the apply loop reads one per entry. `open` checks a whole batch before any
 * of its records is used, so damage in the middle of one never lets its first records
 * through.
 */
export class BatchReader {
  /** End of the origin prefix (version, node id, session) in the open batch. */
  originEnd = 0;
  /** The node id of the open batch's origin. */
  nodeId = 0;
  firstSeq = 0;
  count = 0;
  #data: Uint8Array = new Uint8Array(0);
  #at = 0;
  #varint = 0;
  /** The open entry is of the single-record format: its payload runs to the end. */
  #single = false;

  /**
   * Opens a normal entry's data and returns true, or returns false for an entry that
   * carries no record (a new leader's empty entry). Anything else that does not decode
   * is damage that got past every checksum, or a writer of another format: it must
   * stop the node, never be skipped, so it throws LogCorruptError.
   */
  open(data: Uint8Array, index: number): boolean {
    // Records are views of a plain Uint8Array on every node, whatever the entry's bytes came
    // as (a proposal's own array on the leader, a Buffer from the network or a read elsewhere):
    // the same type everywhere, whose slice() copies, and whose subarray() costs about two
    // thirds of a Buffer's.
    this.#data = new Uint8Array(data.buffer, data.byteOffset, data.length);
    this.count = 0;
    const size = data.length;
    if (size === 0) return false;
    const version = data[0];
    if (version !== RECORD_VERSION && version !== SINGLE_RECORD_VERSION) throw new LogCorruptError(index, `unknown record version ${version}`);
    const nodeEnd = this.#readVarint(1);
    if (nodeEnd < 0 || this.#varint < 1) throw new LogCorruptError(index, 'bad node id in the batch');
    this.nodeId = this.#varint;
    this.originEnd = nodeEnd + SESSION_BYTES;
    const seqEnd = this.#readVarint(this.originEnd);
    this.firstSeq = this.#varint;
    this.#single = version === SINGLE_RECORD_VERSION;
    if (this.#single) {
      if (seqEnd < 0) throw new LogCorruptError(index, 'record tag cut short');
      this.count = 1;
      this.#at = seqEnd;
      return true;
    }
    const countEnd = seqEnd < 0 ? -1 : this.#readVarint(seqEnd);
    this.count = this.#varint;
    if (countEnd < 0) throw new LogCorruptError(index, 'batch header cut short');
    if (this.firstSeq < 1 || this.count < 1 || !Number.isSafeInteger(this.firstSeq + this.count))
      throw new LogCorruptError(index, `bad seqs in the batch: ${this.count} from ${this.firstSeq}`);
    let at = countEnd;
    for (let k = 0; k < this.count; k++) {
      const end = at < size ? this.#readVarint(at) : -1;
      if (end < 0 || end + this.#varint > size) throw new LogCorruptError(index, `record ${k} of ${this.count} cut short`);
      at = end + this.#varint;
    }
    if (at !== size) throw new LogCorruptError(index, `${size - at} bytes after the last record`);
    this.#at = countEnd;
    return true;
  }

  /** The open batch's next payload, as a view of the entry's data; call it `count` times. */
  next(): Uint8Array {
    if (this.#single) return this.#data.subarray(this.#at);
    const end = this.#readVarint(this.#at);
    this.#at = end + this.#varint;
    return this.#data.subarray(end, this.#at);
  }

  /** True when the open batch was appended by the session whose prefix is `origin` (never one of the single-record format). */
  hasOrigin(origin: Uint8Array): boolean {
    if (this.originEnd !== origin.length) return false;
    for (let i = 0; i < origin.length; i++) if (this.#data[i] !== origin[i]) return false;
    return true;
  }

  /** The open batch's origin prefix, as a view. */
  origin(): Uint8Array {
    return this.#data.subarray(0, this.originEnd);
  }

  /** Reads a varint at `at` into `#varint`; returns where it ends, or -1 if cut short or beyond 2^53. */
  #readVarint(at: number): number {
    const data = this.#data;
    let value = 0;
    let mul = 1;
    const stop = Math.min(data.length, at + 8);
    for (let i = at; i < stop; i++) {
      const b = data[i]!;
      value += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (!Number.isSafeInteger(value)) return -1;
        this.#varint = value;
        return i + 1;
      }
      mul *= 128;
    }
    return -1;
  }
}

/** A batch decoded at once, for readers off the hot path (tests, tools). */
export interface DecodedBatch {
  origin: Uint8Array;
  firstSeq: number;
  payloads: Uint8Array[];
}

/** The origin, seqs and payloads of a normal entry's data, or null for an entry that carries no record; see BatchReader.open. */
export function decodeBatch(data: Uint8Array, index: number): DecodedBatch | null {
  const r = new BatchReader();
  if (!r.open(data, index)) return null;
  const payloads = new Array<Uint8Array>(r.count);
  for (let k = 0; k < r.count; k++) payloads[k] = r.next();
  return { origin: r.origin(), firstSeq: r.firstSeq, payloads };
}

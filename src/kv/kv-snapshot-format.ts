// The KV's snapshot bytes, format RLKV1: "RLKV1\n", then per entry u32 LE key length,
// the key (latin1, one byte per character), u32 LE value length, the value. The entries
// are in no particular order and a key may appear more than once; the last one wins.
// An older format (one msgpack list of [key, value] pairs, no magic) is still read.
import { constants } from 'node:buffer';
import { unpack } from 'msgpackr';
import { CodedError } from '../errors.js';
import { storeValue, type StoredValue } from './stored-value.js';

/**
 * Snapshot bytes that are not a KV snapshot. They reach the decoder only after the
 * snapshot file's own checks (size, CRC32C), so this means the writer wrote them wrong,
 * or another state machine's snapshot was restored into a KV: nothing is replaced.
 */
export class KvSnapshotCorruptError extends CodedError<'KV_SNAPSHOT_CORRUPT'> {
  constructor(message: string) {
    super('KV_SNAPSHOT_CORRUPT', `KV snapshot: ${message}`);
  }
}

export const SNAPSHOT_MAGIC = Buffer.from('RLKV1\n');

/** The size of the chunks a snapshot is written in (the last one, and one cut short by a large entry, are smaller). */
export const CHUNK_BYTES = 256 * 1024;

/** Strings shorter than this are copied byte by byte: cheaper than a call into the string encoder. */
const SHORT_CHARS = 64;

/**
 * Encodes entries into chunks with no allocation per entry: lengths, keys and values are
 * written into one chunk buffer, handed out whole once full (as a subarray), and a fresh
 * buffer takes its place, since the reader may keep what it was given. An entry larger than
 * a chunk is cut across chunks; a value of a chunk or more is handed out as it is (values
 * are never changed in place, so a view of one is safe to keep).
 */
export class ChunkWriter {
  private buf: Buffer;
  private pos = 0;
  private readonly out: Buffer[] = [];

  constructor(private readonly chunkBytes = CHUNK_BYTES) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** Chunks that are complete and wait to be taken. */
  get ready(): boolean {
    return this.out.length > 0;
  }

  take(): Buffer | undefined {
    return this.out.shift();
  }

  /** Everything written so far becomes a chunk (the end of the stream). */
  flush(): void {
    if (this.pos === 0) return;
    this.out.push(this.buf.subarray(0, this.pos));
    // Only the unwritten rest of the old buffer is free: it must not be written again.
    this.buf = Buffer.allocUnsafe(this.chunkBytes);
    this.pos = 0;
  }

  raw(b: Buffer): void {
    this.bytes(b);
  }

  entry(k: string, v: StoredValue): void {
    const kl = k.length;
    if (8 + kl + v.length <= this.buf.length - this.pos) {
      const buf = this.buf;
      let p = buf.writeUInt32LE(kl, this.pos);
      p = this.latin1(k, p);
      p = buf.writeUInt32LE(v.length, p);
      if (typeof v === 'string') {
        this.pos = this.latin1(v, p);
      } else {
        buf.set(v, p);
        this.pos = p + v.length;
      }
      return;
    }
    this.u32(kl);
    this.chars(k);
    this.u32(v.length);
    if (typeof v === 'string') this.chars(v);
    else this.bytes(v);
  }

  /** Writes `s` (one byte per character) at `p`, where there is room; returns the end. */
  private latin1(s: string, p: number): number {
    const n = s.length;
    if (n >= SHORT_CHARS) return p + this.buf.write(s, p, n, 'latin1');
    const buf = this.buf;
    for (let i = 0; i < n; i++) buf[p + i] = s.charCodeAt(i);
    return p + n;
  }

  private u32(n: number): void {
    if (this.buf.length - this.pos < 4) this.flush();
    this.pos = this.buf.writeUInt32LE(n, this.pos);
  }

  /** A string of one byte per character. */
  private chars(s: string): void {
    if (s.length > this.buf.length - this.pos) {
      this.flush();
      if (s.length > this.buf.length) {
        this.out.push(Buffer.from(s, 'latin1'));
        return;
      }
    }
    this.pos = this.latin1(s, this.pos);
  }

  private bytes(b: Buffer): void {
    if (b.length > this.buf.length - this.pos) {
      this.flush();
      if (b.length >= this.buf.length) {
        this.out.push(b);
        return;
      }
    }
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

/** Reads a snapshot in either format into a new map; a key seen twice keeps its last value. */
export async function decodeKvSnapshot(data: AsyncIterable<Uint8Array>, keyOf: (b: Uint8Array) => string): Promise<Map<string, StoredValue>> {
  const map = new Map<string, StoredValue>();
  const r = new ChunkReader(data[Symbol.asyncIterator]());
  // All there is, if shorter: the earlier format's snapshot of an empty map is one byte.
  const magic = await r.take(SNAPSHOT_MAGIC.length, true);
  if (magic === undefined) return map; // an empty snapshot: an empty map
  if (!magic.equals(SNAPSHOT_MAGIC)) {
    // The earlier format: one msgpack list of [key, value], read whole.
    const rest = await r.rest();
    let pairs: unknown;
    try {
      pairs = unpack(Buffer.concat([magic, rest]));
    } catch (err) {
      throw new KvSnapshotCorruptError(`neither format: ${(err as Error).message}`);
    }
    if (!Array.isArray(pairs)) throw new KvSnapshotCorruptError('neither format: not a list of pairs');
    for (const pair of pairs as unknown[]) {
      if (!Array.isArray(pair) || pair.length !== 2 || !(pair[0] instanceof Uint8Array) || !(pair[1] instanceof Uint8Array))
        throw new KvSnapshotCorruptError('neither format: a pair that is not [key, value]');
      map.set(keyOf(pair[0]), storeValue(pair[1]));
    }
    return map;
  }
  for (;;) {
    const kl = await r.take(4);
    if (kl === undefined) break;
    // A key is kept as a string, which cannot be this long: refused before its bytes are gathered.
    const keyBytes = kl.readUInt32LE(0);
    if (keyBytes > constants.MAX_STRING_LENGTH) throw new KvSnapshotCorruptError(`a key of ${keyBytes} bytes, longer than a string can be`);
    const k = await r.take(keyBytes);
    const vl = await r.take(4);
    const v = vl === undefined ? undefined : await r.take(vl.readUInt32LE(0));
    if (k === undefined || v === undefined) throw new KvSnapshotCorruptError('it ends inside an entry');
    map.set(keyOf(k), storeValue(v)); // a copy: the chunk it came from is not kept alive
  }
  return map;
}

const EMPTY = Buffer.alloc(0);

/** Exact-size reads over chunks of any size; a read spanning chunks joins only the bytes it needs. */
class ChunkReader {
  private parts: Buffer[] = [];
  private have = 0;
  private done = false;

  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  /** `n` bytes, or undefined at a clean end (no byte of them arrived); with `orFewer`, the fewer that came before the end. */
  async take(n: number, orFewer = false): Promise<Buffer | undefined> {
    if (n === 0) return EMPTY; // an empty key or value, possibly at the very end of a chunk
    while (this.have < n && !this.done) {
      const r = await this.it.next();
      if (r.done === true) this.done = true;
      else if (r.value.byteLength > 0) {
        this.parts.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
        this.have += r.value.byteLength;
      }
    }
    if (this.have < n) {
      if (this.have === 0) return undefined;
      if (!orFewer) throw new KvSnapshotCorruptError('it ends inside an entry');
      n = this.have;
    }
    const first = this.parts[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.parts, this.have);
      out = joined.subarray(0, n);
      this.parts = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.have -= n;
    return out;
  }

  async rest(): Promise<Buffer> {
    for (let r = await this.it.next(); r.done !== true; r = await this.it.next()) this.parts.push(Buffer.from(r.value));
    return Buffer.concat(this.parts);
  }
}

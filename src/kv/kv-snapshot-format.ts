// The KV's snapshot bytes, format RLKV1: "RLKV1\n", then per entry u32 LE key length,
// the key (latin1, one byte per character), u32 LE value length, the value. The entries
// are in no particular order and a key may appear more than once; the last one wins.
// An older format (one msgpack list of [key, value] pairs, no magic) is still read, and
// streamed as this one is: both are read a field at a time as the chunks arrive.
import { constants } from 'node:buffer';
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

/**
 * A KV snapshot of a format this version does not read: its magic is "RLKV" and a version
 * other than 1, as a later release's would be. Not damage: the node needs the release that
 * wrote it (or a later one), not a backup. Nothing is replaced.
 */
export class KvSnapshotVersionError extends CodedError<'KV_SNAPSHOT_VERSION'> {
  constructor(magic: Buffer) {
    super(
      'KV_SNAPSHOT_VERSION',
      `KV snapshot: written in format ${JSON.stringify(magic.toString('latin1'))} by another version of raftlog; this version reads RLKV1`,
    );
  }
}

export const SNAPSHOT_MAGIC = Buffer.from('RLKV1\n');
/** "RLKV" and a digit: this format's magic, or another version's. The earlier format (a msgpack list) never starts so. */
const isKvMagic = (b: Buffer): boolean => b.toString('latin1', 0, 4) === 'RLKV' && b[4]! >= 0x30 && b[4]! <= 0x39;

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
    if (isKvMagic(magic)) throw new KvSnapshotVersionError(magic);
    r.unread(magic);
    await decodeEarlierFormat(r, map, keyOf);
    return map;
  }
  for (;;) {
    let kl = r.uintNow(4, true);
    if (kl < 0) {
      const b = await r.take(4);
      if (b === undefined) break; // a clean end: between two entries
      kl = b.readUInt32LE(0);
    }
    // A key is kept as a string, which cannot be this long: refused before its bytes are gathered.
    const kn = keyLength(kl);
    const k = r.now(kn) ?? (await need(r, kn));
    let vn = r.uintNow(4, true);
    if (vn < 0) vn = (await need(r, 4)).readUInt32LE(0);
    const v = r.now(vn) ?? (await need(r, vn));
    map.set(keyOf(k), storeValue(v)); // a copy: the chunk it came from is not kept alive
  }
  return map;
}

function keyLength(n: number): number {
  if (n > constants.MAX_STRING_LENGTH) throw new KvSnapshotCorruptError(`a key of ${n} bytes, longer than a string can be`);
  return n;
}

/**
 * The earlier format, exactly as its encoder (msgpackr's pack of [...map]) wrote it: a msgpack
 * array (fixarray, array 16 or array 32) of pairs, each a fixarray of two bin 8/16/32, the key
 * and the value. Read a pair at a time as the chunks arrive, not unpacked whole: no nesting to
 * recurse into, no other msgpack type (an extension builds objects), and no length or count
 * that makes it hold more than the bytes that came; then nothing may follow the last pair.
 */
async function decodeEarlierFormat(r: ChunkReader, map: Map<string, StoredValue>, keyOf: (b: Uint8Array) => string): Promise<void> {
  const t = r.uintNow(1, false); // the magic had at least one byte, and was put back
  const countBytes = t === 0xdc ? 2 : t === 0xdd ? 4 : 0;
  if (countBytes === 0 && (t < 0x90 || t > 0x9f))
    throw new KvSnapshotCorruptError(`neither format: it starts with 0x${t.toString(16).padStart(2, '0')}, not a list of pairs`);
  const count = countBytes === 0 ? t & 0x0f : await uint(r, countBytes);
  const field: Buffer[] = [EMPTY, EMPTY];
  for (let i = 0; i < count; i++) {
    let head = r.uintNow(1, false);
    if (head < 0) head = await uint(r, 1);
    if (head !== 0x92) throw new KvSnapshotCorruptError(`neither format: pair ${i} is not [key, value]`);
    for (let f = 0; f < 2; f++) {
      let bin = r.uintNow(1, false);
      if (bin < 0) bin = await uint(r, 1);
      const lengthBytes = bin === 0xc4 ? 1 : bin === 0xc5 ? 2 : bin === 0xc6 ? 4 : 0;
      if (lengthBytes === 0) throw new KvSnapshotCorruptError(`neither format: pair ${i} is not [key, value] of bytes`);
      let n = r.uintNow(lengthBytes, false);
      if (n < 0) n = await uint(r, lengthBytes);
      // A key is kept as a string, which cannot be this long: refused before its bytes are gathered.
      if (f === 0) n = keyLength(n);
      field[f] = r.now(n) ?? (await need(r, n));
    }
    map.set(keyOf(field[0]!), storeValue(field[1]!));
  }
  if ((r.now(1) ?? (await r.take(1))) !== undefined) throw new KvSnapshotCorruptError(`neither format: bytes after the ${count} pairs of its list`);
}

/** `n` bytes, which must come: the snapshot ends inside an entry otherwise. */
async function need(r: ChunkReader, n: number): Promise<Buffer> {
  const b = await r.take(n);
  if (b === undefined) throw new KvSnapshotCorruptError('it ends inside an entry');
  return b;
}

/** A big-endian unsigned integer of `n` bytes, which must come. */
async function uint(r: ChunkReader, n: number): Promise<number> {
  return (await need(r, n)).readUIntBE(0, n);
}

const EMPTY = Buffer.alloc(0);

/**
 * Exact-size reads over chunks of any size; a read spanning chunks joins only the bytes it needs.
 * It holds no more than the bytes that arrived: a length read from the stream is only a count
 * of bytes to wait for.
 */
class ChunkReader {
  private parts: Buffer[] = [];
  private off = 0; // bytes of parts[0] already taken
  private have = 0; // bytes not yet taken, over all parts
  private done = false;

  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  /** `n` bytes, or undefined at a clean end (no byte of them arrived); with `orFewer`, the fewer that came before the end. */
  async take(n: number, orFewer = false): Promise<Buffer | undefined> {
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
    return this.now(n);
  }

  /**
   * `n` bytes if they have arrived, else undefined (and nothing is taken). No await: one costs
   * a turn of the microtask queue even for bytes already there, several per entry.
   */
  now(n: number): Buffer | undefined {
    if (n === 0) return EMPTY; // an empty key or value, possibly at the very end of a chunk
    if (this.have < n) return undefined;
    const first = this.parts[0]!;
    let out: Buffer;
    if (first.length - this.off >= n) {
      out = first.subarray(this.off, this.off + n);
      this.advance(n);
    } else {
      const joined = Buffer.concat([first.subarray(this.off), ...this.parts.slice(1)], this.have);
      out = joined.subarray(0, n);
      this.parts = joined.length > n ? [joined] : [];
      this.off = joined.length > n ? n : 0;
    }
    this.have -= n;
    return out;
  }

  /** An unsigned integer of `n` (1 to 4) bytes if they have arrived, else -1 (and nothing is taken). */
  uintNow(n: number, littleEndian: boolean): number {
    if (this.have < n) return -1;
    const first = this.parts[0]!;
    if (first.length - this.off < n) {
      const b = this.now(n)!;
      return littleEndian ? b.readUIntLE(0, n) : b.readUIntBE(0, n);
    }
    const v = littleEndian ? first.readUIntLE(this.off, n) : first.readUIntBE(this.off, n);
    this.advance(n);
    this.have -= n;
    return v;
  }

  /** Puts bytes just taken back in front, to be taken again. */
  unread(b: Buffer): void {
    if (b.length === 0) return;
    if (this.off > 0) this.parts[0] = this.parts[0]!.subarray(this.off);
    this.off = 0;
    this.parts.unshift(b);
    this.have += b.length;
  }

  /** Past `n` bytes of the first part, which has them. */
  private advance(n: number): void {
    this.off += n;
    if (this.off === this.parts[0]!.length) {
      this.parts.shift();
      this.off = 0;
    }
  }
}

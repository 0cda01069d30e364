import { constants } from 'node:buffer';
import { pack, unpack } from 'msgpackr';
import { SnapshotCorruptError, SnapshotDataVersionError } from '../storage/errors.js';

/**
 * What a raft snapshot of the log carries besides the application's bytes: the
 * members' addresses, so that a node restored from a snapshot can reach peers
 * that joined before it.
 *
 * Layout (format 3): "RLSM", u32 LE 0xffffffff, u32 LE format version (3), u32
 * LE length of a msgpack list of [id, address] pairs, that list, then the
 * application's bytes to the end. The members come first so the application's
 * bytes can stream through without being gathered. A later release writes
 * another version there: it is refused with SNAPSHOT_DATA_VERSION, not called
 * corrupt, which would send the operator to a backup.
 * Format 2 ("RLSM", the members' length, at most MAX_MEMBERS_BYTES so never
 * 0xffffffff, the members, the application's bytes) and format 1 (a msgpack
 * [1, members, app]), as earlier 0.2.0 builds wrote them, are still read.
 *
 * These bytes passed the snapshot file's checksum, which a file that was never a
 * raftlog snapshot can carry as well as a good one: whatever they hold is refused
 * with SNAPSHOT_CORRUPT (a later format with SNAPSHOT_DATA_VERSION), and nothing is allocated for them beyond the bounds below.
 */
export interface SnapshotData {
  members: Array<[number, string]>;
  app: AsyncIterable<Uint8Array>;
}

const MAGIC = Buffer.from('RLSM');
/** Where format 2 held the members' length: marks a header that names its format version. */
const VERSIONED = 0xffffffff;
const VERSION = 3;
const MAX_MEMBERS_BYTES = 1024 * 1024;
/**
 * Format 1 is one msgpack value, gathered whole before it is parsed, so its size is
 * bounded here: without a bound, a file whose data starts like format 1 (one byte,
 * 0x93) is gathered until the process runs out of memory. The bound is the most a
 * raftlog node could have written: its application bytes are one msgpack bin32 (at
 * most 2^32 - 1 bytes), its members at most what format 2 allows, and the whole one
 * Buffer of this Node (2^32 bytes on Node 20).
 */
const MAX_FORMAT1_BYTES = Math.min(2 ** 32 + MAX_MEMBERS_BYTES, constants.MAX_LENGTH);

export async function* encodeSnapshotData(members: Array<[number, string]>, app: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const list = pack(members);
  const head = Buffer.alloc(16);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(VERSIONED, 4);
  head.writeUInt32LE(VERSION, 8);
  head.writeUInt32LE(list.length, 12);
  yield Buffer.concat([head, list]);
  yield* app;
}

type Bad = (why: string) => SnapshotCorruptError;

function checkMembers(v: unknown, bad: Bad): Array<[number, string]> {
  if (!Array.isArray(v) || !v.every((p) => Array.isArray(p) && p.length === 2 && Number.isSafeInteger(p[0]) && p[0] > 0 && typeof p[1] === 'string')) {
    throw bad('members are not [id, address] pairs');
  }
  return v as Array<[number, string]>;
}

/**
 * Reads the members; `app` then yields the rest, and must be read to its end (the source
 * checks its checksum there). Malformed data rejects with SNAPSHOT_CORRUPT naming
 * `source` (which snapshot it is).
 */
export function decodeSnapshotData(data: AsyncIterable<Uint8Array>, source: string): Promise<SnapshotData> {
  return decode(data, source, true);
}

/**
 * Refuses, as decodeSnapshotData would, data whose header or members are malformed, and
 * releases `data`. A format 1 value is read whole to be decoded, so it is left to that.
 */
export async function checkSnapshotData(data: AsyncIterable<Uint8Array>, source: string): Promise<void> {
  const d = await decode(data, source, false);
  await d.app[Symbol.asyncIterator]().return?.(undefined);
}

async function decode(data: AsyncIterable<Uint8Array>, source: string, format1: boolean): Promise<SnapshotData> {
  const it = data[Symbol.asyncIterator]();
  const bad: Bad = (why) => new SnapshotCorruptError(source, `its data is not in the raftlog snapshot format: ${why}`);
  try {
    return await decodeFrom(it, bad, format1, source);
  } catch (err) {
    await it.return?.();
    throw err;
  }
}

async function decodeFrom(it: AsyncIterator<Uint8Array>, bad: Bad, format1: boolean, source: string): Promise<SnapshotData> {
  let buf: Buffer = Buffer.alloc(0);
  let done = false;
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length < n && !done) {
      const r = await it.next();
      if (r.done === true) done = true;
      else buf = buf.length === 0 ? Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength) : Buffer.concat([buf, r.value]);
    }
    return buf.length >= n;
  };
  const rest = async function* (): AsyncGenerator<Uint8Array> {
    try {
      if (buf.length > 0) yield buf;
      for (let r = await it.next(); r.done !== true; r = await it.next()) yield r.value;
    } finally {
      await it.return?.(); // a reader that stops early releases the source (its file)
    }
  };
  if (!(await fill(1))) return { members: [], app: releasing(rest(), it) }; // the empty snapshot of a node that never took one
  if (buf[0] === 0x93) {
    if (!format1) return { members: [], app: releasing(rest(), it) };
    // Format 1: one msgpack value, so it is read whole (it was written whole).
    const parts: Uint8Array[] = [buf];
    let total = buf.length;
    for (let r = await it.next(); r.done !== true; r = await it.next()) {
      total += r.value.byteLength;
      if (total > MAX_FORMAT1_BYTES) throw bad(`a format 1 value of more than ${MAX_FORMAT1_BYTES} bytes`);
      parts.push(r.value);
    }
    let v: unknown;
    try {
      v = unpack(Buffer.concat(parts, total));
    } catch {
      throw bad('not msgpack');
    }
    if (!Array.isArray(v) || v[0] !== 1 || !(v[2] instanceof Uint8Array)) throw bad('bad format 1 value');
    const app = v[2];
    return {
      members: checkMembers(v[1], bad),
      app: (async function* () {
        yield app;
      })(),
    };
  }
  if (!(await fill(8)) || !buf.subarray(0, 4).equals(MAGIC)) throw bad('bad header');
  let head = 8;
  let len = buf.readUInt32LE(4);
  if (len === VERSIONED) {
    if (!(await fill(12))) throw bad('truncated header');
    const version = buf.readUInt32LE(8);
    if (version > VERSION) throw new SnapshotDataVersionError(source, version);
    if (version !== VERSION) throw bad(`format ${version} under a versioned header, which no release writes`);
    if (!(await fill(16))) throw bad('truncated header');
    head = 16;
    len = buf.readUInt32LE(12);
  }
  if (len > MAX_MEMBERS_BYTES) throw bad(`member list of ${len} bytes`);
  if (!(await fill(head + len))) throw bad('truncated member list');
  let members: unknown;
  try {
    members = unpack(buf.subarray(head, head + len));
  } catch {
    throw bad('member list is not msgpack');
  }
  buf = buf.subarray(head + len);
  return { members: checkMembers(members, bad), app: releasing(rest(), it) };
}

/**
 * `gen`, whose return() releases `source` too: a generator never started runs no finally, so a
 * reader that stops before its first chunk (a restore() that does not read) left the file open.
 */
function releasing(gen: AsyncGenerator<Uint8Array>, source: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  const stop = gen.return.bind(gen);
  gen.return = async (value) => {
    try {
      return await stop(value);
    } finally {
      await source.return?.();
    }
  };
  return gen;
}

// The record framing, written from JS so that one append costs one buffer and
// one native call no matter how many entries it holds. The native side stamps
// and checksums the records as the job is submitted, and fills in each job's
// closing marker on its writer thread. The format is described in
// docs/wal-format.md. Layout (see native/record.h):
//
//   0 u32 crc32c of [4, 16 + length) | 4 u32 length | 8 u8 kind | 9 u8 entry type or flags
//   10 u48 the segment's stamp (filled in natively, from the segment header's)
//   payload, then zero padding to a multiple of 8.

export const HEADER_BYTES = 16;
export const ENTRY_PREFIX = 16; // index u64, term u64
/** Where an entry record's data starts. */
export const ENTRY_DATA_AT = HEADER_BYTES + ENTRY_PREFIX;
export const SNAPSHOT_PREFIX = 16; // index u64, term u64
export const SEGMENT_RECORD_BYTES = 40; // header + magic, seq, first index
export const HARD_STATE_RECORD_BYTES = 40; // header + term, vote, commit
export const MARKER_RECORD_BYTES = 32; // header + start offset, records, crc (filled in by the writer)
/** Largest payload the native reader accepts. */
export const MAX_PAYLOAD = 2 ** 30;

export const enum Kind {
  Segment = 1,
  Entry = 2,
  HardState = 3,
  Snapshot = 4,
  Marker = 5,
}

const TWO32 = 4294967296;

export function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

export function entryRecordBytes(dataLength: number): number {
  return align8(HEADER_BYTES + ENTRY_PREFIX + dataLength);
}

export function snapshotRecordBytes(metaLength: number): number {
  return align8(HEADER_BYTES + SNAPSHOT_PREFIX + metaLength);
}

export function putU64(dv: DataView, at: number, v: number): void {
  const lo = v >>> 0;
  dv.setUint32(at, lo, true);
  dv.setUint32(at + 4, (v - lo) / TWO32, true);
}

export function getU64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * TWO32;
}

/** Bytes 0-3 (checksum) and 10-15 (stamp) are left to the native side, which writes them at submit. */
function header(u8: Uint8Array, dv: DataView, at: number, length: number, kind: Kind, type: number): void {
  dv.setUint32(at + 4, length, true);
  u8[at + 8] = kind;
  u8[at + 9] = type;
}

/**
 * Zeroes the last 8 bytes of a record of `size` bytes at `at`, before its fields and
 * payload are written over them: what is left is its padding. The buffers records are
 * packed into are reused unzeroed: zeroing a slice first wrote every byte twice.
 */
function zeroPadding(dv: DataView, at: number, size: number): void {
  dv.setFloat64(at + size - 8, 0);
}

/** Writes an entry record at `at`; returns its size. Every byte of it is written: the native side fills in its checksum and stamp. */
export function writeEntry(u8: Uint8Array, dv: DataView, at: number, index: number, term: number, type: number, data: Uint8Array): number {
  const size = entryRecordBytes(data.length);
  zeroPadding(dv, at, size);
  header(u8, dv, at, ENTRY_PREFIX + data.length, Kind.Entry, type);
  putU64(dv, at + 16, index);
  putU64(dv, at + 24, term);
  u8.set(data, at + ENTRY_DATA_AT);
  return size;
}

export function writeHardState(u8: Uint8Array, dv: DataView, at: number, term: number, vote: number, commit: number): number {
  header(u8, dv, at, 24, Kind.HardState, 0);
  putU64(dv, at + 16, term);
  putU64(dv, at + 24, vote);
  putU64(dv, at + 32, commit);
  return HARD_STATE_RECORD_BYTES;
}

/** Snapshot flag: the marker replaced the whole log (a snapshot received from a leader). */
export const SNAPSHOT_DISCARD_LOG = 1;

export function writeSnapshot(u8: Uint8Array, dv: DataView, at: number, index: number, term: number, meta: Uint8Array, flags = 0): number {
  const size = snapshotRecordBytes(meta.length);
  zeroPadding(dv, at, size);
  header(u8, dv, at, SNAPSHOT_PREFIX + meta.length, Kind.Snapshot, flags);
  putU64(dv, at + 16, index);
  putU64(dv, at + 24, term);
  u8.set(meta, at + 32);
  return size;
}

/**
 * A new segment's stamp, which every record of it carries (48 bits, never 0).
 * Random, so that no record of a file's earlier life as another segment, nor
 * bytes crafted inside a payload, can pass for one of this segment's.
 */
export function newStamp(): number {
  const r = crypto.getRandomValues(new Uint16Array(3));
  return r[0]! + r[1]! * 0x10000 + r[2]! * TWO32 || 1;
}

/** The header of segment `seq`: the writer reads `stamp` from it and stamps every record after it. */
export function writeSegmentHeader(u8: Uint8Array, dv: DataView, at: number, seq: number, firstIndex: number, stamp: number): number {
  header(u8, dv, at, 24, Kind.Segment, 0);
  dv.setUint16(at + 10, stamp % 0x10000, true);
  dv.setUint32(at + 12, Math.floor(stamp / 0x10000), true);
  dv.setUint32(at + 16, 0x74666172, true); // "raftwal3", little-endian
  dv.setUint32(at + 20, 0x336c6177, true);
  putU64(dv, at + 24, seq);
  putU64(dv, at + 32, firstIndex);
  return SEGMENT_RECORD_BYTES;
}

/** The slot of a job's closing marker: the writer thread fills in what it closes. */
export function writeMarker(u8: Uint8Array, dv: DataView, at: number): number {
  header(u8, dv, at, MARKER_RECORD_BYTES - HEADER_BYTES, Kind.Marker, 0);
  return MARKER_RECORD_BYTES;
}

/**
 * <seq>-<first index>-<stamp>.wal, as 16, 16 and 12 hex digits, so that names
 * sort in log order and the stamp is known where the header is damaged.
 */
export function segmentName(seq: number, firstIndex: number, stamp: number): string {
  return `${seq.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}-${stamp.toString(16).padStart(12, '0')}.wal`;
}

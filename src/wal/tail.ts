// TAIL: which segment was last known durable, and how far. A segment's markers
// protect its bytes damaged in place, but not the last segment deleted, emptied
// or cut short: what is left reads as an older, whole log. TAIL is written once
// per segment, after the first group written to it was synced, so that a crash can
// never leave that segment missing or shorter than TAIL says; open checks the
// claim before anything in the directory is changed.
import { lstat, open, readdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from './crc32c.js';
import { WalCorruptError } from './errors.js';
import { readSealed, seal, writeSealed } from './sealed-file.js';
import { getU64, putU64, SEGMENT_RECORD_BYTES, segmentName, writeSegmentHeader } from './record.js';

export const TAIL_NAME = 'TAIL';
export const TAIL_TMP_NAME = 'TAIL.tmp';

/** "RLTAIL01": the file's magic and its format version. */
const MAGIC = [0x52, 0x4c, 0x54, 0x41, 0x49, 0x4c, 0x30, 0x31];
/** magic, seq u64, first index u64, stamp u64, end u64, then CRC32C u32 of the bytes before it. */
export const TAIL_BYTES = 44;

export interface Tail {
  seq: number;
  firstIndex: number;
  stamp: number;
  /** The end of a group synced in the segment: its bytes below this offset are durable. */
  end: number;
}

/** What the scan must not cut off as a torn write: segment `name` below `end`. */
export interface TailFloor {
  name: string;
  end: number;
}

export function tailSegmentName(t: Tail): string {
  return segmentName(t.seq, t.firstIndex, t.stamp);
}

export function encodeTail(t: Tail): Uint8Array {
  const u8 = new Uint8Array(TAIL_BYTES);
  const dv = new DataView(u8.buffer);
  putU64(dv, 8, t.seq);
  putU64(dv, 16, t.firstIndex);
  putU64(dv, 24, t.stamp);
  putU64(dv, 32, t.end);
  return seal(MAGIC, u8);
}

function damaged(path: string, why: string): WalCorruptError {
  return new WalCorruptError(`${path} is damaged (${why}): it cannot say which segment was last durable`, path, -1);
}

/** The TAIL of `dir`, or null if it has none (made by an earlier build, or never written past its first segment's start). */
export async function readTail(dir: string): Promise<Tail | null> {
  const path = join(dir, TAIL_NAME);
  const u8 = await readSealed(path, TAIL_BYTES, MAGIC, (why) => damaged(path, why));
  if (u8 === null) return null;
  const dv = new DataView(u8.buffer);
  return { seq: getU64(dv, 8), firstIndex: getU64(dv, 16), stamp: getU64(dv, 24), end: getU64(dv, 32) };
}

const SEGMENT_NAME = /^([0-9a-f]{16})-[0-9a-f]{16}(?:-[0-9a-f]{12})?\.wal$/;

/** Whether the 40 bytes at a segment's start are its intact header, as TAIL names it: the very bytes its writer wrote. */
function intactHeader(h: Uint8Array, t: Tail): boolean {
  const want = new Uint8Array(SEGMENT_RECORD_BYTES);
  const dv = new DataView(want.buffer);
  writeSegmentHeader(want, dv, 0, t.seq, t.firstIndex, t.stamp);
  dv.setUint32(0, crc32c(want.subarray(4)), true);
  return want.every((b, k) => h[k] === b);
}

export interface TailCheck {
  tail: Tail | null;
  /** What the scan must not cut off as a torn write; null with no TAIL, or its segment released. */
  keep: TailFloor | null;
}

/**
 * Checks TAIL's claim against the directory, changing nothing: the segment it names must be there
 * (unless a later one is, and it was released), at least as long as TAIL's end, with an intact
 * header. Throws WAL_CORRUPT naming what is missing or cut, or TAIL if it is damaged.
 */
export async function checkTail(dir: string): Promise<TailCheck> {
  const tail = await readTail(dir);
  return { tail, keep: tail === null ? null : await checkClaim(dir, tail) };
}

async function checkClaim(dir: string, tail: Tail): Promise<TailFloor | null> {
  const name = tailSegmentName(tail);
  const path = join(dir, name);
  let lastSeq = -1;
  let holder: string | undefined;
  for (const f of await readdir(dir)) {
    const m = SEGMENT_NAME.exec(f);
    if (m === null) continue;
    const seq = parseInt(m[1]!, 16);
    lastSeq = Math.max(lastSeq, seq);
    if (seq === tail.seq) holder = f;
  }
  const lost = (why: string): WalCorruptError =>
    new WalCorruptError(
      `segment ${path} is ${why}, but ${join(dir, TAIL_NAME)} records entries synced in it up to offset ${tail.end}: acknowledged records were lost`,
      path,
      -1,
    );
  if (lastSeq < tail.seq) throw lost(lastSeq < 0 ? 'missing (the directory holds no segment)' : 'missing');
  if (holder === undefined) return null; // released with the segments before a later one
  if (holder !== name) throw lost(`missing (${holder} holds its sequence number)`);
  const st = await lstat(path);
  // Not a regular file: the scan refuses it, naming what it is.
  if (!st.isFile()) return null;
  if (st.size < tail.end) throw lost(`${st.size} bytes long`);
  const h = new Uint8Array(SEGMENT_RECORD_BYTES);
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const { bytesRead } = await fh.read(h, 0, SEGMENT_RECORD_BYTES, 0);
    if (bytesRead < SEGMENT_RECORD_BYTES || !intactHeader(h, tail)) throw lost('without an intact header');
  } finally {
    await fh.close();
  }
  return { name, end: tail.end };
}

/** Replaces TAIL atomically and durably: a crash leaves the old one or the new one (and perhaps TAIL.tmp, removed at open). */
export async function writeTail(dir: string, t: Tail): Promise<void> {
  await writeSealed(dir, TAIL_NAME, encodeTail(t));
}

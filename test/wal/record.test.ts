// The record writers pack into reused buffers that still hold older records: every
// byte of a record must come from the writer (or, for the checksum and stamp, from
// the native side at submit), never from the buffer's past.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../../src/wal/index.js';
import {
  HEADER_BYTES,
  align8,
  entryRecordBytes,
  snapshotRecordBytes,
  writeEntry,
  writeHardState,
  writeSegmentHeader,
  writeSnapshot,
} from '../../src/wal/record.js';
import { cleanTempDirs, payload, tempDir } from './helpers.js';

/** Packs with `write` into a buffer of `fill` bytes; returns the record with the native side's bytes (0-3, 10-15) cleared. */
function packed(size: number, fill: number, write: (u8: Uint8Array, dv: DataView, at: number) => number): Uint8Array {
  const u8 = new Uint8Array(size + 16).fill(fill);
  const dv = new DataView(u8.buffer);
  expect(write(u8, dv, 8)).toBe(size);
  const r = u8.slice(8, 8 + size);
  r.fill(0, 0, 4);
  r.fill(0, 10, HEADER_BYTES);
  return r;
}

describe('record writers', () => {
  const data = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, k) => (k * 7 + 1) & 255);

  it('write every byte of an entry, its zero padding included, whatever the buffer held', () => {
    for (let n = 0; n <= 17; n++) {
      const size = entryRecordBytes(n);
      const write = (u8: Uint8Array, dv: DataView, at: number): number => writeEntry(u8, dv, at, 12345678901, 42, 3, data(n));
      const fromDirty = packed(size, 0xff, write);
      expect(fromDirty, `entry of ${n} bytes`).toEqual(packed(size, 0, write));
      expect(
        [...fromDirty.subarray(32 + n)].every((b) => b === 0),
        `padding of an entry of ${n} bytes`,
      ).toBe(true);
    }
  });

  it('write every byte of a snapshot marker, a hard state and a segment header', () => {
    for (let n = 0; n <= 9; n++) {
      const write = (u8: Uint8Array, dv: DataView, at: number): number => writeSnapshot(u8, dv, at, 99, 7, data(n), 1);
      expect(packed(snapshotRecordBytes(n), 0xff, write), `snapshot with ${n} bytes of meta`).toEqual(packed(snapshotRecordBytes(n), 0, write));
    }
    const hs = (u8: Uint8Array, dv: DataView, at: number): number => writeHardState(u8, dv, at, 5, 2, 1000);
    expect(packed(40, 0xff, hs)).toEqual(packed(40, 0, hs));
    const seg = (u8: Uint8Array, dv: DataView, at: number): number => writeSegmentHeader(u8, dv, at, 3, 100, 0xabcdef);
    expect(packed(40, 0xff, seg)).toEqual(packed(40, 0, seg));
  });
});

describe('records on disk', () => {
  afterEach(cleanTempDirs);

  it('carry zero padding after many appends through reused buffers', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { sync: 'always' });
    // Odd lengths, so that almost every record is padded, and 4 MiB in all: the buffers
    // the records are packed into are reused many times over.
    let index = 1;
    for (let round = 0; round < 40; round++) {
      const es = [];
      for (let k = 0; k < 400; k++, index++) es.push({ index, term: 1, type: 0, data: payload(index, 1, 0, 1 + ((index * 37) % 500)) });
      await wal.append(es);
    }
    await wal.close();
    let records = 0;
    let padded = 0;
    const dirty: string[] = [];
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.wal'))) {
      const file = readFileSync(join(dir, name));
      for (let at = 0; at + HEADER_BYTES <= file.length;) {
        const length = file.readUInt32LE(at + 4);
        if (length === 0 && file[at + 8] === 0) break; // the zeroed end of the segment
        const end = at + HEADER_BYTES + length;
        const size = align8(HEADER_BYTES + length);
        if (size > HEADER_BYTES + length) padded++;
        if (!file.subarray(end, at + size).every((b) => b === 0)) dirty.push(`${name} at ${at}`);
        records++;
        at += size;
      }
    }
    expect(records).toBeGreaterThan(16_000);
    expect(padded).toBeGreaterThan(10_000);
    expect(dirty).toEqual([]);
  });
});

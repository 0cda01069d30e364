import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addon } from '../../src/wal/addon.js';
import { Wal, WalCompactedError, WalCorruptError, type WalOptions } from '../../src/wal/index.js';
import { cleanTempDirs, payload, plain, range, tempDir } from './helpers.js';

const crc32c = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };

afterEach(cleanTempDirs);

const SMALL = { segmentBytes: 8192 };

/** The segment files of `dir`, in log order. */
function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.wal'))
    .sort();
}

/** Resolves once the WAL in `dir` holds its next segment prepared, so that no file is renamed until a rotation. */
async function prepared(dir: string): Promise<void> {
  for (let waited = 0; !existsSync(join(dir, 'next.prealloc')); waited += 5) {
    expect(waited).toBeLessThan(10_000);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Appends ten entries at a time after `last` until `rotations` more segments exist; the new last index. */
async function appendUntilRotated(wal: Wal, dir: string, last: number, rotations: number): Promise<number> {
  const target = segmentFiles(dir).length + rotations;
  while (segmentFiles(dir).length < target) {
    await wal.append(range(last + 1, last + 11));
    last += 10;
  }
  return last;
}

/** Reopens the closed WAL in `dir` and expects entries from..last to read back whole. */
async function expectReadsBack(dir: string, from: number, last: number): Promise<void> {
  const again = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
  expect(plain(again.entriesSync(from, last + 1))).toEqual(plain(range(from, last + 1)));
  await again.close();
}

/** A closed WAL in `dir` holding entries 1..n-1. */
async function closedLog(dir: string, n: number): Promise<void> {
  const wal = await Wal.open(dir, SMALL);
  await wal.append(range(1, n));
  await wal.close();
}

/** Where the records of the last segment of `dir` end, and its file. */
function lastSegment(dir: string): { file: string; end: number } {
  const s = addon().scan(dir).segments.at(-1)!;
  return { file: join(dir, s.name), end: s.end };
}

/** A whole entry record (index, term 1) carrying `stamp`, with a valid checksum. */
function entryRecord(index: number, stamp: number): Buffer {
  const data = payload(index, 1, 7);
  const rec = Buffer.alloc(Math.ceil((32 + data.length) / 8) * 8);
  rec.writeUInt32LE(16 + data.length, 4);
  rec[8] = 2;
  rec.writeUIntLE(stamp, 10, 6);
  rec.writeBigUInt64LE(BigInt(index), 16);
  rec.writeBigUInt64LE(1n, 24);
  rec.set(data, 32);
  rec.writeUInt32LE(crc32c.buf(rec.subarray(4, 32 + data.length)) >>> 0, 0);
  return rec;
}

/** The files of `dir` by inode; one renamed meanwhile by the WAL's background thread is left out. */
function inodes(dir: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const f of readdirSync(dir)) {
    const st = statSync(join(dir, f), { throwIfNoEntry: false });
    if (st !== undefined) out.set(st.ino, f);
  }
  return out;
}

/**
 * Fills a few segments, compacts the oldest away, then appends one entry at a time until
 * the released segment's file is a segment again: the new segment holds a few records
 * at its start, and the old ones, written past them, must be gone.
 */
async function recycleOnce(dir: string, options: WalOptions): Promise<{ wal: Wal; reused: boolean; last: number }> {
  const wal = await Wal.open(dir, options);
  await wal.append(range(1, 301));
  const oldest = segmentFiles(dir)[0]!;
  const ino = statSync(join(dir, oldest)).ino;
  await wal.saveSnapshot({ index: 200, term: 1 });
  await wal.releaseTo(200);
  expect(existsSync(join(dir, oldest))).toBe(false);
  let last = 300;
  let reused = false;
  while (!reused && last < 600) {
    last++;
    await wal.append(range(last, last + 1));
    reused = inodes(dir).get(ino)?.endsWith('.wal') === true;
  }
  return { wal, reused, last };
}

describe('recycled segments', () => {
  it('reuse a released segment as it is, as a later one: replay reads only what was written to it since', async () => {
    const dir = tempDir();
    const { wal, reused, last } = await recycleOnce(dir, SMALL);
    expect(reused).toBe(true);
    // Every released segment is kept, up to four.
    const { segmentsRecycled, segmentsRemoved } = wal.stats();
    expect(segmentsRemoved).toBeGreaterThan(1);
    expect(segmentsRecycled).toBe(Math.min(segmentsRemoved, 4));
    await wal.close();
    // Not cleared: past the zero header that ends the records lie the earlier life's.
    const { file, end } = lastSegment(dir);
    const tail = readFileSync(file).subarray(end);
    expect(tail.subarray(0, 16).every((b) => b === 0)).toBe(true);
    expect(tail.some((b) => b !== 0)).toBe(true);
    const again = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect([again.firstIndex, again.lastIndex]).toEqual([201, last]);
    expect(plain(again.entriesSync(201, last + 1))).toEqual(plain(range(201, last + 1)));
    expect(again.repair).toBeNull();
    // And the log goes on from there.
    await again.append(range(last + 1, last + 101));
    await again.close();
    const third = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect(plain(third.entriesSync(201, last + 101))).toEqual(plain(range(201, last + 101)));
    await third.close();
  });

  it('end where a record of another stamp begins, even a whole one: a torn write, repaired, never read', async () => {
    // What a crash leaves if the zero header after the last group never reached the disk and an
    // earlier life's record happens to start right there (or bytes crafted to look like one).
    const dir = tempDir();
    const { wal, last } = await recycleOnce(dir, SMALL);
    await wal.close();
    const { file, end } = lastSegment(dir);
    const fd = openSync(file, 'r+');
    writeSync(fd, entryRecord(last + 1, 0x123456789a), 0, undefined, end);
    closeSync(fd);
    const again = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect(again.lastIndex).toBe(last);
    expect(again.repair).toMatchObject({ file, offset: end });
    expect(plain(again.entriesSync(201, last + 1))).toEqual(plain(range(201, last + 1)));
    await again.close();
  });

  it('tell a zeroed header inside the records from their end: a marker of the same segment follows', async () => {
    const dir = tempDir();
    const { wal, last } = await recycleOnce(dir, SMALL);
    const { file } = lastSegment(dir);
    // Fill the recycled segment and start another, so that it is synced and whole.
    let next = last + 1;
    while (lastSegment(dir).file === file) {
      await wal.append(range(next, next + 5));
      next += 5;
    }
    await wal.close();
    // A record past the first 2 KiB of it (eight numbers per record: kind, segment, offset, ...).
    const scan = addon().scan(dir);
    const seg = scan.segments.findIndex((s) => join(dir, s.name) === file);
    let offset = -1;
    for (let k = 0; k < scan.records.length && offset < 0; k += 8)
      if (scan.records[k + 1] === seg && scan.records[k + 2]! > 2048) offset = scan.records[k + 2]!;
    expect(offset).toBeGreaterThan(0);
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(16), 0, 16, offset);
    closeSync(fd);
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({
      code: 'WAL_CORRUPT',
      file,
      offset,
      message: expect.stringMatching(/zero header followed by a marker of this segment/),
    });
  });

  it("are not kept with preallocate: 'none', which asks for no disk space ahead of need", async () => {
    const dir = tempDir();
    // (The file system may hand the deleted segment's inode to a new file: only the counter tells.)
    const { wal } = await recycleOnce(dir, { ...SMALL, preallocate: 'none' });
    expect(wal.stats().segmentsRecycled).toBe(0);
    expect(existsSync(join(dir, 'recycled.prealloc'))).toBe(false);
    await wal.close();
  });

  it('are kept up to four, and become the next segments without a file created or removed', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 601));
    expect(segmentFiles(dir).length).toBeGreaterThan(6);
    // The last rotation asked for a prepared segment: once it is there, no kept one is
    // taken while the release runs (on a loaded machine it could be, and a fifth kept).
    await prepared(dir);
    await wal.saveSnapshot({ index: 500, term: 1 });
    await wal.releaseTo(500);
    const kept = ['recycled.prealloc', 'recycled.1.prealloc', 'recycled.2.prealloc', 'recycled.3.prealloc'];
    const { segmentsRemoved } = wal.stats();
    expect(segmentsRemoved).toBeGreaterThan(4);
    expect(wal.stats().segmentsRecycled).toBe(4);
    // The fifth and later were removed; the prepared segment may already have taken the last kept.
    const held = readdirSync(dir).filter((f) => f.includes('recycled'));
    expect(held.every((f) => kept.includes(f))).toBe(true);
    expect(held.length).toBeGreaterThanOrEqual(3);
    // The next rotations take them: no file is created until all four are used.
    // (Released files are left out: they are being removed meanwhile.)
    const inodes = new Set(
      readdirSync(dir)
        .filter((f) => !f.endsWith('.released'))
        .map((f) => statSync(join(dir, f)).ino),
    );
    const last = await appendUntilRotated(wal, dir, 600, 3);
    for (const f of segmentFiles(dir).slice(-3)) expect(inodes.has(statSync(join(dir, f)).ino)).toBe(true);
    await wal.close();
    await expectReadsBack(dir, 501, last);
  });

  it('kept by an earlier run are taken over on open, a gap closed, and become the next segments, never read', async () => {
    const dir = tempDir();
    await closedLog(dir, 11);
    // A segment's worth of nonzero bytes in slots 0 and 3 (a crash can leave a gap): not part of the log.
    writeFileSync(join(dir, 'recycled.prealloc'), Buffer.alloc(8192, 1));
    writeFileSync(join(dir, 'recycled.3.prealloc'), Buffer.alloc(8192, 1));
    const inodes = new Set(['recycled.prealloc', 'recycled.3.prealloc'].map((f) => statSync(join(dir, f)).ino));
    const wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect(plain(wal.entriesSync(1, 11))).toEqual(plain(range(1, 11)));
    // The two rotations that follow take them: their inodes, no new file.
    const last = await appendUntilRotated(wal, dir, 10, 2);
    for (const f of segmentFiles(dir).slice(-2)) expect(inodes.has(statSync(join(dir, f)).ino)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith('recycled'))).toEqual([]);
    await wal.close();
    await expectReadsBack(dir, 1, last);
  });

  it('kept by an earlier run are removed on open beyond what the options keep: 256 MiB of them, or none without preallocation', async () => {
    const dir = tempDir();
    await closedLog(dir, 11);
    const slots = ['recycled.prealloc', 'recycled.1.prealloc', 'recycled.2.prealloc', 'recycled.3.prealloc'];
    for (const f of slots) writeFileSync(join(dir, f), Buffer.alloc(8192, 1));
    const inodes = new Set(slots.map((f) => statSync(join(dir, f)).ino));
    // 128 MiB segments: two are kept (one prepared as the next segment), two removed.
    const big = await Wal.open(dir, { segmentBytes: 128 * 1024 * 1024, cacheBytes: 0 });
    expect(plain(big.entriesSync(1, 11))).toEqual(plain(range(1, 11)));
    await prepared(dir);
    const held = readdirSync(dir).filter((f) => inodes.has(statSync(join(dir, f)).ino));
    expect(held).toHaveLength(2);
    expect(held).toContain('recycled.prealloc');
    await big.close();
    const none = await Wal.open(dir, { ...SMALL, preallocate: 'none', cacheBytes: 0 });
    expect(readdirSync(dir).filter((f) => f.startsWith('recycled'))).toEqual([]);
    expect(plain(none.entriesSync(1, 11))).toEqual(plain(range(1, 11)));
    await none.close();
  });

  it('are not taken over where the file has another name too: a segment linked under a recycled name stays whole', async () => {
    const dir = tempDir();
    await closedLog(dir, 301);
    const victim = join(dir, segmentFiles(dir)[0]!);
    const before = readFileSync(victim);
    linkSync(victim, join(dir, 'recycled.prealloc'));
    const wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    // Enough rotations to take every kept segment, had the link been kept.
    const last = await appendUntilRotated(wal, dir, 300, 3);
    expect(existsSync(join(dir, 'recycled.prealloc'))).toBe(false);
    expect(readFileSync(victim).equals(before)).toBe(true);
    await wal.close();
    await expectReadsBack(dir, 1, last);
  });

  it('refuse to open a directory where something other than a file holds a recycled name', async () => {
    const dir = tempDir();
    await closedLog(dir, 11);
    mkdirSync(join(dir, 'recycled.2.prealloc'));
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', message: expect.stringMatching(/recycled\.2\.prealloc/) });
    // Refused cleanly: the lock is free again.
    rmdirSync(join(dir, 'recycled.2.prealloc'));
    const wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect(plain(wal.entriesSync(1, 11))).toEqual(plain(range(1, 11)));
    await wal.close();
  });

  it('leave a read in flight over a range compacted meanwhile reporting the compaction, even when its bytes changed under it', async () => {
    // What a recycled segment can do to a read in flight: its bytes change under it. Here the
    // file is damaged after open (replay checked it), so the read fails its CRC check.
    const dir = tempDir();
    await closedLog(dir, 301);
    const wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    const fd = openSync(join(dir, segmentFiles(dir)[0]!), 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xee), 0, 4096, 1024);
    closeSync(fd);
    // While the range is not compacted, the damage is reported as such.
    await expect(wal.entries(1, 50)).rejects.toThrow(WalCorruptError);
    const reading = wal.entries(1, 50);
    const snap = wal.saveSnapshot({ index: 200, term: 1 });
    await expect(reading).rejects.toThrow(WalCompactedError);
    await snap;
    await wal.close();
  });
});

describe('released segments', () => {
  it('are renamed out of the log at once, and the files are gone once the log closes', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { ...SMALL, preallocate: 'none' });
    await wal.append(range(1, 301));
    const before = readdirSync(dir).filter((f) => f.endsWith('.wal'));
    await wal.saveSnapshot({ index: 200, term: 1 });
    await wal.releaseTo(200);
    const after = readdirSync(dir).filter((f) => f.endsWith('.wal'));
    const released = before.filter((f) => !after.includes(f));
    expect(released.length).toBeGreaterThan(1);
    expect(wal.stats().segmentsRemoved).toBe(released.length);
    await wal.close();
    expect(readdirSync(dir).filter((f) => f.endsWith('.released'))).toEqual([]);
  });

  it('left behind by a crash are removed on open, never read', async () => {
    const dir = tempDir();
    await closedLog(dir, 301);
    // As a crash between the rename and the removal leaves it: a whole segment's bytes under the name.
    const name = segmentFiles(dir)[0]!;
    const leftover = join(dir, `${name}.released`);
    writeFileSync(leftover, readFileSync(join(dir, name)));
    const wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect(existsSync(leftover)).toBe(false);
    expect([wal.firstIndex, wal.lastIndex]).toEqual([1, 300]);
    expect(plain(wal.entriesSync(1, 301))).toEqual(plain(range(1, 301)));
    await wal.close();
  });

  it('are left alone by a read-only scan, and a file that only ends like one is refused', async () => {
    const dir = tempDir();
    await closedLog(dir, 11);
    const leftover = join(dir, `${segmentFiles(dir)[0]!}.released`);
    writeFileSync(leftover, Buffer.alloc(4096, 1));
    expect(addon().scan(dir).segments.length).toBeGreaterThan(0);
    expect(existsSync(leftover)).toBe(true);
    const stray = join(dir, 'notes.wal.released');
    writeFileSync(stray, 'x');
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: stray, message: expect.stringMatching(/unexpected file/) });
  });
});

import { closeSync, existsSync, openSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal, WalCompactedError, WalCorruptError, type WalOptions } from '../../src/wal/index.js';
import { cleanTempDirs, plain, range, tempDir } from './helpers.js';

afterEach(cleanTempDirs);

const SMALL = { segmentBytes: 8192 };

/** The oldest segment file of `dir`. */
function oldestSegment(dir: string): string {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.wal'))
    .sort()[0]!;
}

/** A closed WAL in `dir` holding entries 1..n-1. */
async function closedLog(dir: string, n: number): Promise<void> {
  const wal = await Wal.open(dir, SMALL);
  await wal.append(range(1, n));
  await wal.close();
}

/** The files of `dir` by inode. */
function inodes(dir: string): Map<number, string> {
  return new Map(readdirSync(dir).map((f) => [statSync(join(dir, f)).ino, f]));
}

/**
 * Fills a few segments, compacts the oldest away, then appends one entry at a time until
 * the released segment's file is a segment again: the new segment holds a few records
 * at its start, and the old ones, written past them, must be gone.
 */
async function recycleOnce(dir: string, options: WalOptions): Promise<{ wal: Wal; reused: boolean; last: number }> {
  const wal = await Wal.open(dir, options);
  await wal.append(range(1, 301));
  const oldest = oldestSegment(dir);
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
  it('reuse a released segment, zeroed, as a later one: replay reads only what was written to it since', async () => {
    const dir = tempDir();
    const { wal, reused, last } = await recycleOnce(dir, SMALL);
    expect(reused).toBe(true);
    expect(wal.stats().segmentsRecycled).toBe(1);
    await wal.close();
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

  it("are not kept with preallocate: 'none', which asks for no disk space ahead of need", async () => {
    const dir = tempDir();
    // (The file system may hand the deleted segment's inode to a new file: only the counter tells.)
    const { wal } = await recycleOnce(dir, { ...SMALL, preallocate: 'none' });
    expect(wal.stats().segmentsRecycled).toBe(0);
    expect(existsSync(join(dir, 'recycled.prealloc'))).toBe(false);
    await wal.close();
  });

  it('left unused by an earlier run are removed on open, never read', async () => {
    const dir = tempDir();
    await closedLog(dir, 11);
    // A segment's worth of nonzero bytes under the recycled name: not part of the log.
    writeFileSync(join(dir, 'recycled.prealloc'), Buffer.alloc(8192, 1));
    const wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect(existsSync(join(dir, 'recycled.prealloc'))).toBe(false);
    expect(plain(wal.entriesSync(1, 11))).toEqual(plain(range(1, 11)));
    await wal.close();
  });

  it('leave a read in flight over a range compacted meanwhile reporting the compaction, even when its bytes changed under it', async () => {
    // What a recycled segment can do to a read in flight: its bytes change under it. Here the
    // file is damaged after open (replay checked it), so the read fails its CRC check.
    const dir = tempDir();
    await closedLog(dir, 301);
    const wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    const fd = openSync(join(dir, oldestSegment(dir)), 'r+');
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

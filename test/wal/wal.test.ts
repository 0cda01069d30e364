import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Wal,
  WalClosedError,
  WalCompactedError,
  WalGapError,
  WalInvalidArgumentError,
  WalLockedError,
  WalLockMissingError,
  WalUnavailableError,
  type WalEntry,
  type WalLogger,
} from '../../src/wal/index.js';
import { ENTRY_OVERHEAD } from '../../src/wal/cache.js';
import { BLOCK_BYTES, SLAB_BYTES } from '../../src/wal/slab-pool.js';
import { seeded, testSeed } from '../seeded.js';
import { cleanTempDirs, directIo, entry, openWatchingReads, plain, range, tempDir } from './helpers.js';

const SMALL = { segmentBytes: 8192 };
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.wal'))
    .sort();
}

afterEach(cleanTempDirs);

describe('Wal round trip', () => {
  it('starts empty', async () => {
    const wal = await Wal.open(tempDir());
    expect([wal.firstIndex, wal.lastIndex]).toEqual([1, 0]);
    expect(wal.hardState).toEqual({ term: 0, vote: 0, commit: 0 });
    expect(wal.snapshot).toBeNull();
    expect(wal.term(0)).toBe(0);
    expect(wal.repair).toBeNull();
    await wal.close();
  });

  it('reads back what it wrote, before and after reopen', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir);
    const es = range(1, 101, 3);
    await wal.append(es.slice(0, 60), { term: 3, vote: 2, commit: 10 });
    await wal.append(es.slice(60));
    expect(plain(wal.entriesSync(1, 101))).toEqual(plain(es));
    await wal.close();
    wal = await Wal.open(dir);
    expect([wal.firstIndex, wal.lastIndex]).toEqual([1, 100]);
    expect(wal.hardState).toEqual({ term: 3, vote: 2, commit: 10 });
    expect(plain(await wal.entries(1, 101))).toEqual(plain(es));
    expect(wal.term(100)).toBe(3);
    expect(wal.stats().cachedEntries).toBe(0); // after reopen every read above came from the files
    await wal.close();
  });

  it("answers an entry's data length from its index, also after reopen, and refuses what it does not hold", async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir);
    const es = [entry(1, 1, 0, 0), entry(2, 1, 0, 5), entry(3, 1, 0, 3000), entry(4, 1, 0, 77)];
    await wal.append(es);
    await wal.saveSnapshot({ index: 1, term: 1 });
    const lengths = (w: Wal): number[] => [2, 3, 4].map((i) => w.dataLength(i));
    expect(lengths(wal)).toEqual([5, 3000, 77]);
    await wal.close();
    wal = await Wal.open(dir);
    expect(lengths(wal)).toEqual([5, 3000, 77]);
    expect(() => wal.dataLength(1)).toThrow(WalCompactedError);
    expect(() => wal.dataLength(5)).toThrow(WalUnavailableError);
    expect(() => wal.dataLength(2.5)).toThrow(WalInvalidArgumentError);
    await wal.close();
  });

  it('refuses an empty path and an unknown option, creating nothing', async () => {
    await expect(Wal.open('')).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT' });
    const dir = join(tempDir(), 'never');
    await expect(Wal.open(dir, { segmentbytes: 8192 } as never)).rejects.toMatchObject({
      code: 'WAL_INVALID_ARGUMENT',
      message: expect.stringMatching(/unknown option 'segmentbytes'/),
    });
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses options that are not an object and a preallocate that is not one of its values, creating nothing', async () => {
    const dir = join(tempDir(), 'never');
    // Each failed with a raw TypeError: Object.keys(null), and the addon's 'A number was expected'
    // for the names Object.prototype has.
    const bad: Array<[unknown, RegExp]> = [
      [null, /options must be an object/],
      [{ preallocate: 'constructor' }, /preallocate must be/],
      [{ preallocate: '__proto__' }, /preallocate must be/],
    ];
    for (const [options, why] of bad) {
      await expect(Wal.open(dir, options as never)).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: expect.stringMatching(why) });
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses an entry whose buffer was transferred with a rejection, and takes the next append', async () => {
    const wal = await Wal.open(tempDir());
    const data = new Uint8Array(8);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    // append() threw a raw TypeError at once, from packing the entry.
    const refused = wal.append([entry(1), { index: 2, term: 1, type: 0, data }]);
    await expect(refused).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT', message: expect.stringMatching(/entries\[1\].data's buffer is detached/) });
    expect(wal.lastIndex).toBe(0);
    await wal.append([entry(1)]);
    expect(plain(wal.entriesSync(1, 2))).toEqual(plain([entry(1)]));
    await wal.close();
  });

  it('makes a hard-state-only append durable', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir);
    await wal.append([], { term: 7, vote: 3, commit: 0 });
    expect(wal.stats().fsyncs).toBeGreaterThanOrEqual(1);
    await wal.close();
    wal = await Wal.open(dir);
    expect(wal.hardState).toEqual({ term: 7, vote: 3, commit: 0 });
    expect(wal.lastIndex).toBe(0);
    await wal.close();
  });

  it('rotates across many segments and reads across their boundaries', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    const es = range(1, 2001, 1, 5);
    for (let i = 0; i < es.length; i += 37) await wal.append(es.slice(i, i + 37));
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThan(20);
    // Names carry sequence, first index and a stamp.
    expect(files[0]).toMatch(/^0000000000000001-0000000000000001-[0-9a-f]{12}\.wal$/);
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect(wal.lastIndex).toBe(2000);
    expect(plain(wal.entriesSync(1, 2001))).toEqual(plain(es));
    expect(plain(wal.entriesSync(777, 1333))).toEqual(plain(es.slice(776, 1332)));
    await wal.close();
  });

  it('gives a record larger than a segment a segment of its own', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    const big = entry(2, 1, 0, 20000);
    await wal.append([entry(1), big, entry(3)]);
    await wal.close();
    wal = await Wal.open(dir, SMALL);
    expect(plain(wal.entriesSync(1, 4))).toEqual(plain([entry(1), big, entry(3)]));
    await wal.close();
  });

  it('writes a group from the slabs it was packed in, copying only the blocks where its writes start and end', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { cacheBytes: 0 });
    // 64 appends of 64 records of 1 KiB, all in one turn: a job of about 4 MiB.
    const want = range(1, 64 * 64 + 1, 1, 0, 1024);
    await Promise.all(Array.from({ length: 64 }, (_, k) => wal.append(want.slice(64 * k, 64 * (k + 1)))));
    const staging = wal.stats().stagingBytes;
    await wal.close();
    // Past the page cache, a few blocks; through it, none.
    expect(staging).toBeLessThanOrEqual(directIo() ? 64 << 10 : 0);
    const again = await Wal.open(dir, { cacheBytes: 0 });
    expect(plain(again.entriesSync(1, want.length + 1, Infinity))).toEqual(plain(want));
    await again.close();
  });

  it('writes a group out of phase with its slab (past a rotation) through its staging buffer in pieces, keeping no buffer as large', async () => {
    const dir = tempDir();
    const big = (i: number): WalEntry => ({ index: i, term: 1, type: 0, data: new Uint8Array((1 << 20) + 8 * i).fill(i) });
    // 16 MiB segments: the append fills the first, and its last 9 MiB start the next at its
    // offset 0, wherever they lie in the slab.
    const wal = await Wal.open(dir, { cacheBytes: 0, segmentBytes: 16 << 20 });
    await wal.append([entry(1), ...Array.from({ length: 24 }, (_, i) => big(i + 2))]);
    const staging = wal.stats().stagingBytes;
    await wal.append([entry(26)]);
    await wal.close();
    // 8 MiB at a most when writing past the page cache; none through it.
    expect(staging).toBeLessThanOrEqual(directIo() ? 8 << 20 : 0);
    const again = await Wal.open(dir, { cacheBytes: 0, segmentBytes: 16 << 20 });
    const want = [entry(1), ...Array.from({ length: 24 }, (_, i) => big(i + 2)), entry(26)];
    const got = again.entriesSync(1, 27, Infinity);
    expect(got.map((e) => [e.index, e.term, e.data.length])).toEqual(want.map((e) => [e.index, e.term, e.data.length]));
    expect(got.every((e, k) => Buffer.from(e.data).equals(Buffer.from(want[k]!.data)))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith('.wal'))).toHaveLength(2);
    await again.close();
  });

  it('honours the byte limit but always returns at least one entry', async () => {
    const wal = await Wal.open(tempDir(), { ...SMALL, cacheBytes: 0 });
    await wal.append(range(1, 11, 1, 0, 100));
    expect(wal.entriesSync(1, 11, 350).map((e) => e.index)).toEqual([1, 2, 3]);
    expect(wal.entriesSync(1, 11, 300).map((e) => e.index)).toEqual([1, 2, 3]);
    expect(wal.entriesSync(1, 11, 299).map((e) => e.index)).toEqual([1, 2]);
    expect(wal.entriesSync(4, 11, 0).map((e) => e.index)).toEqual([4]);
    expect(wal.entriesSync(5, 5)).toEqual([]);
    await wal.close();
  });

  it('copies out what it holds in memory without a copy of its own, and stops where memory ends', async () => {
    // 100 durable entries of 100 B in one slab, and a budget of that slab and 20 entries' places.
    const wal = await Wal.open(tempDir(), { ...SMALL, cacheBytes: SLAB_BYTES + BLOCK_BYTES + 20 * ENTRY_OVERHEAD });
    await wal.append(range(1, 101, 1, 0, 100));
    const from = wal.cachedFrom;
    expect(from).toBe(81);
    const copied: WalEntry[] = [];
    expect(wal.copyCached(from, 101, (e) => copied.push({ ...e, data: e.data.slice() }))).toBe(101);
    expect(copied).toHaveLength(20);
    expect(plain(copied)).toEqual(plain(wal.entriesSync(from, 101)));
    // Below memory it copies nothing and says so; the range is checked as entries() checks it.
    expect(wal.copyCached(from - 1, 101, () => expect.fail('an entry not held in memory was passed'))).toBe(from - 1);
    expect(() => wal.copyCached(from, 102, () => undefined)).toThrow(WalUnavailableError);
    await wal.close();
  });

  it('serves what it holds in memory from the slabs it packed it into, reusing a slab only once it holds nothing there', async () => {
    // A budget of two or three 1 MiB slabs; 30 MB through them, so that each is reused
    // many times over. Overwrites drop held entries from the middle of a slab.
    const rand = seeded(testSeed('wal cache reads'));
    const wal = await Wal.open(tempDir(), { sync: 'none', cacheBytes: 3 * 1024 * 1024 });
    const model = new Map<number, WalEntry>();
    let term = 1;
    let wrong = 0;
    const check = (e: WalEntry): void => {
      const want = model.get(e.index)!;
      if (e.term !== want.term || Buffer.compare(e.data, want.data) !== 0) wrong++;
    };
    const inFlight: Promise<void>[] = [];
    for (let round = 0; round < 3000; round++) {
      let from = wal.lastIndex + 1;
      if (rand() < 0.1 && from - 20 >= wal.cachedFrom) {
        from -= 1 + Math.floor(rand() * 20);
        term++;
      }
      const batch = range(from, from + 1 + Math.floor(rand() * 20), term, round, 100 + Math.floor(rand() * 2000));
      for (let i = from; i <= wal.lastIndex; i++) model.delete(i);
      for (const e of batch) model.set(e.index, e);
      inFlight.push(wal.append(batch));
      if (inFlight.length >= 8 || rand() < 0.3) await Promise.all(inFlight.splice(0));
      // A sample of what is held each round, and all of it now and then.
      const lo = wal.cachedFrom;
      const n = wal.lastIndex + 1 - lo;
      if (round % 200 === 199) for (const e of wal.entriesSync(lo, lo + n)) check(e);
      else for (let k = 0; k < 32; k++) check(wal.entriesSync(lo + Math.floor(rand() * n), lo + n, 0)[0]!);
    }
    await Promise.all(inFlight);
    expect(wrong).toBe(0);
    await wal.close();
  });

  it('counts against cacheBytes the memory its entries hold, not their data: one-byte entries, each with a hard state', async () => {
    // Each entry lies in a slab beside its 40-byte record and the hard state after it:
    // at 80 bytes of slab an entry, at most 39,321 of them fit in 3 MiB. Counted by
    // their data, all 60,000 were held.
    const budget = 3 * 1024 * 1024;
    const wal = await Wal.open(tempDir(), { sync: 'none', cacheBytes: budget });
    const data = new Uint8Array([7]);
    for (let i = 1; i <= 60_000; i += 8) {
      const appends = [];
      for (let k = i; k < i + 8; k++) appends.push(wal.append([{ index: k, term: 1, type: 0, data }], { term: 1, vote: 0, commit: k - 1 }));
      await Promise.all(appends);
    }
    const { cachedBytes, cachedEntries } = wal.stats();
    expect(cachedBytes).toBeLessThanOrEqual(budget);
    expect(cachedEntries).toBeLessThan(budget / 80);
    expect(cachedEntries).toBeGreaterThan(5000);
    expect(wal.cachedFrom).toBe(60_001 - cachedEntries);
    for (const e of wal.entriesSync(wal.cachedFrom, 60_001)) expect(e.data[0]).toBe(7);
    await wal.close();
  });

  it('counts a slab whole while it holds an entry there: one entry left of each large write does not hold them all', async () => {
    // Each round writes 310 KiB (a slab of its own, 512 KiB), then overwrites all of it
    // but its first entry, as a follower does under a new leader. Counted by their data,
    // the entries left held all 200 slabs (100 MiB) within a budget of 16 MiB.
    const wal = await Wal.open(tempDir(), { sync: 'none' });
    const tiny = new Uint8Array([7]);
    const kib = new Uint8Array(1024).fill(1);
    let next = 1;
    for (let round = 0; round < 200; round++) {
      const batch: WalEntry[] = [{ index: next, term: round + 1, type: 0, data: tiny }];
      for (let k = 1; k <= 300; k++) batch.push({ index: next + k, term: round + 1, type: 0, data: kib });
      await wal.append(batch);
      await wal.append([{ index: next + 1, term: round + 2, type: 0, data: tiny }]);
      next += 2;
    }
    const { cachedBytes, slabBytes } = wal.stats();
    expect(cachedBytes).toBeLessThanOrEqual(16 * 1024 * 1024);
    // The cache's 16 MiB, the 16 MiB of free slabs an idle WAL keeps, the slab being packed.
    expect(slabBytes).toBeLessThanOrEqual(34 * 1024 * 1024);
    for (const e of wal.entriesSync(1, next)) expect([...e.data]).toEqual([7]);
    await wal.close();
  });
});

describe('Wal overwrite', () => {
  it('replaces an existing suffix, also after reopen', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 301, 1));
    await wal.append(range(150, 181, 2, 9));
    expect(wal.lastIndex).toBe(180);
    expect(wal.term(149)).toBe(1);
    expect(wal.term(150)).toBe(2);
    const want = [...range(1, 150, 1), ...range(150, 181, 2, 9)];
    expect(plain(wal.entriesSync(1, 181))).toEqual(plain(want));
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect(wal.lastIndex).toBe(180);
    expect(plain(wal.entriesSync(1, 181))).toEqual(plain(want));
    await wal.close();
  });

  it('pipelines appends: an in-flight suffix overwritten by a later in-flight call lands correctly', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    const order: number[] = [];
    const calls = [
      wal.append(range(1, 101, 1)).then(() => order.push(1)),
      wal.append(range(101, 201, 1)).then(() => order.push(2)),
      wal.append(range(90, 121, 2, 4)).then(() => order.push(3)),
      wal.append(range(121, 131, 2, 4), { term: 2, vote: 1, commit: 50 }).then(() => order.push(4)),
    ];
    // Visible at once, before durable.
    expect(wal.lastIndex).toBe(130);
    expect(wal.term(95)).toBe(2);
    await Promise.all(calls);
    expect(order).toEqual([1, 2, 3, 4]);
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect(wal.lastIndex).toBe(130);
    expect(plain(wal.entriesSync(1, 131))).toEqual(plain([...range(1, 90, 1), ...range(90, 131, 2, 4)]));
    expect(wal.hardState).toEqual({ term: 2, vote: 1, commit: 50 });
    await wal.close();
  });
});

describe('Wal async reads', () => {
  it('reads old entries off the thread pool and stays consistent with an overwrite made meanwhile', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir); // one segment: the first pread covers the whole range
    await wal.append(range(1, 1001, 1));
    await wal.close();
    wal = await Wal.open(dir, { cacheBytes: 0 });
    const reading = wal.entries(1, 801);
    const overwrite = wal.append(range(500, 801, 2, 3)); // lands while the read is in flight
    const got = await reading;
    await overwrite;
    expect(plain(got)).toEqual(plain([...range(1, 500, 1), ...range(500, 801, 2, 3)]));
    await wal.close();
  });

  /** 300 entries over several segments (a read each), reopened with no cache and its reads watched. */
  async function watched(onRead: (n: number) => void): Promise<Wal> {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 301, 1));
    await wal.close();
    return openWatchingReads(dir, { ...SMALL, cacheBytes: 0 }, onRead);
  }

  it('returns a slice of one log when an append replaces entries an earlier round of the read collected', async () => {
    let overwrite: Promise<void> | undefined;
    const wal: Wal = await watched((n) => {
      if (n === 2) overwrite = wal.append(range(5, 301, 2, 7)); // the first round's entries 5.. are replaced
    });
    const got = await wal.entries(1, 301);
    await overwrite;
    expect(plain(got)).toEqual(plain([...range(1, 5, 1), ...range(5, 301, 2, 7)]));
    await wal.close();
  });

  it('fails a read whose collected entries a snapshot from the leader discarded while it was in flight', async () => {
    let snap: Promise<void> | undefined;
    const wal: Wal = await watched((n) => {
      if (n === 2) snap = wal.saveSnapshot({ index: 3, term: 2 }, { discardLog: true });
    });
    await expect(wal.entries(1, 301)).rejects.toThrow(WalCompactedError);
    await snap;
    expect([wal.firstIndex, wal.lastIndex]).toEqual([4, 3]);
    await wal.close();
  });

  it('fails a read whose range was compacted while it was in flight', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 1001, 1));
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    const reading = wal.entries(1, 1001);
    const snap = wal.saveSnapshot({ index: 900, term: 1 });
    await expect(reading).rejects.toThrow(WalCompactedError);
    await snap;
    await wal.close();
  });
});

describe('Wal snapshots and release', () => {
  it('keeps entries above a local snapshot and releases whole segments below it', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 1001, 1));
    const before = segmentFiles(dir).length;
    const meta = new Uint8Array([1, 2, 3]);
    await wal.saveSnapshot({ index: 600, term: 1, meta });
    expect([wal.firstIndex, wal.lastIndex, wal.term(600)]).toEqual([601, 1000, 1]);
    expect(() => wal.term(599)).toThrow(WalCompactedError);
    expect(() => wal.entriesSync(600, 700)).toThrow(WalCompactedError);
    await wal.releaseTo(600);
    const after = segmentFiles(dir);
    expect(after.length).toBeLessThan(before);
    expect(wal.stats().segmentsRemoved).toBe(before - after.length);
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect([wal.firstIndex, wal.lastIndex, wal.term(600)]).toEqual([601, 1000, 1]);
    expect(Array.from(wal.snapshot!.meta)).toEqual([1, 2, 3]);
    expect(plain(wal.entriesSync(601, 1001))).toEqual(plain(range(601, 1001, 1)));
    // The carried hard state and snapshot survive the release of older segments.
    await wal.append(range(1001, 1501, 1), { term: 1, vote: 1, commit: 1200 });
    await wal.saveSnapshot({ index: 1400, term: 1 });
    await wal.releaseTo(1400);
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect([wal.firstIndex, wal.lastIndex, wal.term(1400)]).toEqual([1401, 1500, 1]);
    expect(wal.hardState).toEqual({ term: 1, vote: 1, commit: 1200 });
    expect(plain(wal.entriesSync(1401, 1501))).toEqual(plain(range(1401, 1501, 1)));
    await wal.close();
  });

  it('keeps the entries after a snapshot taken exactly at the first index of the oldest surviving segment', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 400; i += 20) await wal.append(range(i, i + 20, 1));
    const files = segmentFiles(dir);
    const first = parseInt(files[2]!.slice(17, 33), 16); // the third segment starts at this index
    await wal.saveSnapshot({ index: first - 1, term: 1 });
    await wal.releaseTo(first - 1);
    expect(segmentFiles(dir)[0]).toBe(files[2]);
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect([wal.firstIndex, wal.lastIndex, wal.term(first - 1)]).toEqual([first, 400, 1]);
    expect(plain(wal.entriesSync(first, 401))).toEqual(plain(range(first, 401, 1)));
    await wal.close();
  });

  it('keeps the segment holding the entry just after the snapshot', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 400; i += 20) await wal.append(range(i, i + 20, 1));
    const files = segmentFiles(dir);
    const first = parseInt(files[2]!.slice(17, 33), 16); // the third segment starts here: the second ends at first - 1
    await wal.saveSnapshot({ index: first - 2, term: 1 });
    await wal.releaseTo(first - 2);
    expect(segmentFiles(dir)[0]).toBe(files[1]);
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect([wal.firstIndex, wal.lastIndex]).toEqual([first - 1, 400]);
    expect(plain(wal.entriesSync(first - 1, 401))).toEqual(plain(range(first - 1, 401, 1)));
    await wal.close();
  });

  it('replays an overwrite of entries whose segment was released later', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 200; i += 20) await wal.append(range(i, i + 20, 1));
    const files = segmentFiles(dir);
    const first = parseInt(files.at(-1)!.slice(17, 33), 16); // the current segment starts here
    await wal.append(range(first - 3, first + 40, 2, 1)); // rewrites entries that live in the previous segment
    await wal.saveSnapshot({ index: first + 5, term: 2 });
    await wal.releaseTo(first + 5);
    expect(segmentFiles(dir)[0]).toBe(files.at(-1));
    await wal.close();
    wal = await Wal.open(dir, { ...SMALL, cacheBytes: 0 });
    expect([wal.firstIndex, wal.lastIndex, wal.term(first + 5)]).toEqual([first + 6, first + 39, 2]);
    expect(plain(wal.entriesSync(first + 6, first + 40))).toEqual(plain(range(first + 6, first + 40, 2, 1)));
    await wal.close();
  });

  it('resets the log for a snapshot ahead of it, across reopen', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 51, 1));
    await wal.saveSnapshot({ index: 500, term: 4 });
    expect([wal.firstIndex, wal.lastIndex, wal.term(500)]).toEqual([501, 500, 4]);
    await expect(wal.append([entry(400, 4)])).rejects.toThrow(WalGapError);
    await expect(wal.append([entry(502, 4)])).rejects.toThrow(WalGapError);
    await wal.append(range(501, 511, 4));
    await wal.close();
    wal = await Wal.open(dir, SMALL);
    expect([wal.firstIndex, wal.lastIndex, wal.term(500)]).toEqual([501, 510, 4]);
    expect(plain(wal.entriesSync(501, 511))).toEqual(plain(range(501, 511, 4)));
    await wal.close();
  });

  it('discards the log for a received snapshot (discardLog), across reopen', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 101, 1));
    await wal.saveSnapshot({ index: 80, term: 1 }, { discardLog: true });
    expect([wal.firstIndex, wal.lastIndex]).toEqual([81, 80]);
    await wal.append(range(81, 91, 2));
    await wal.close();
    wal = await Wal.open(dir, SMALL);
    expect([wal.firstIndex, wal.lastIndex, wal.term(80)]).toEqual([81, 90, 1]);
    expect(plain(wal.entriesSync(81, 91))).toEqual(plain(range(81, 91, 2)));
    await wal.close();
  });

  it('discards the log for a snapshot whose term disagrees with the entry at its index', async () => {
    const wal = await Wal.open(tempDir());
    await wal.append(range(1, 101, 1));
    await wal.saveSnapshot({ index: 50, term: 2 });
    expect([wal.firstIndex, wal.lastIndex, wal.term(50)]).toEqual([51, 50, 2]);
    await wal.close();
  });

  it('refuses to release above the snapshot or save an older snapshot', async () => {
    const wal = await Wal.open(tempDir());
    await wal.append(range(1, 101, 1));
    await expect(wal.releaseTo(10)).rejects.toThrow(WalInvalidArgumentError);
    await wal.saveSnapshot({ index: 50, term: 1 });
    await expect(wal.releaseTo(51)).rejects.toThrow(WalInvalidArgumentError);
    await expect(wal.saveSnapshot({ index: 40, term: 1 })).rejects.toThrow(WalInvalidArgumentError);
    expect(wal.firstIndex).toBe(51);
    await wal.close();
  });
});

describe('Wal preallocation modes', () => {
  for (const preallocate of ['zeros', 'fallocate', 'none'] as const)
    it(`rotates and replays with preallocate '${preallocate}'`, async () => {
      const dir = tempDir();
      let wal = await Wal.open(dir, { ...SMALL, preallocate });
      for (let i = 1; i <= 600; i += 50) await wal.append(range(i, i + 50, 1));
      expect(wal.stats().segmentsCreated).toBeGreaterThan(5);
      await wal.close();
      wal = await Wal.open(dir, { ...SMALL, preallocate, cacheBytes: 0 });
      expect(wal.repair).toBeNull();
      expect(plain(wal.entriesSync(1, 601))).toEqual(plain(range(1, 601, 1)));
      await wal.close();
    });
});

describe('Wal group commit', () => {
  it('completes 1,000 concurrent appends with far fewer fsyncs', async () => {
    const wal = await Wal.open(tempDir());
    const calls: Promise<void>[] = [];
    for (let i = 1; i <= 1000; i++) calls.push(wal.append([entry(i)]));
    await Promise.all(calls);
    const s = wal.stats();
    expect(s.appends).toBe(1000);
    expect(s.records).toBe(1000);
    expect(s.fsyncs).toBeLessThan(100);
    expect(s.groups).toBeLessThan(100);
    expect(wal.lastIndex).toBe(1000);
    await wal.close();
  });
});

describe('Wal group commit across ticks', () => {
  it('joins appends made in separate event-loop turns while an fsync runs', async () => {
    const wal = await Wal.open(tempDir());
    const calls: Promise<void>[] = [];
    await new Promise<void>((resolve) => {
      let i = 1;
      const next = (): void => {
        calls.push(wal.append([entry(i)]));
        if (++i <= 300) setImmediate(next);
        else resolve();
      };
      next();
    });
    await Promise.all(calls);
    const s = wal.stats();
    expect(s.appends).toBe(300);
    expect(s.fsyncs).toBeLessThan(150);
    await wal.close();
  });
});

describe('Wal errors', () => {
  it('refuses a job whose chunk ends inside a record, reading and writing nothing past it', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'wal', 'plan-child.ts'), join(tempDir(), 'wal')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) => child.on('exit', (c, s) => done([c, s])));
    expect({ code, signal }, err).toEqual({ code: 0, signal: null });
    const { outcomes } = JSON.parse(out) as { outcomes: string[] };
    expect(outcomes).toHaveLength(2);
    for (const o of outcomes) expect(o).toMatch(/^refused WAL_IO: internal error: .*runs past the end of its chunk/);
  });

  it('locks the directory against a second open', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir);
    const err = await Wal.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalLockedError);
    expect((err as WalLockedError).code).toBe('WAL_LOCKED');
    await wal.close();
    const again = await Wal.open(dir);
    await again.close();
  });

  it('locks the directory against another process', async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'wal', 'lock-child.ts'), dir], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('open') && resolve());
        child.on('exit', (code) => reject(new Error(`lock child exited with ${code}`)));
      });
      await expect(Wal.open(dir)).rejects.toMatchObject({ code: 'WAL_LOCKED' });
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const wal = await Wal.open(dir); // the lock died with the process
    await wal.close();
  });

  function recordingLogger(): { logger: WalLogger; warnings: { obj: Record<string, unknown>; msg: string }[] } {
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    return { logger: { warn: (obj, msg) => warnings.push({ obj, msg }) }, warnings };
  }

  it('refuses a second writer after LOCK was deleted, and the holder keeps its data and puts LOCK back', async () => {
    const dir = tempDir();
    const { logger, warnings } = recordingLogger();
    let a = await Wal.open(dir, { segmentBytes: 4096, logger });
    await a.append(range(1, 11, 1));
    unlinkSync(join(dir, 'LOCK'));
    const err = await Wal.open(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalLockMissingError);
    expect((err as WalLockMissingError).code).toBe('WAL_LOCK_MISSING');
    // More than a segment's worth: the rotation re-creates LOCK, which fences again.
    await a.append(range(11, 80, 1));
    expect(a.stats().segmentsCreated).toBeGreaterThan(1);
    expect(readdirSync(dir)).toContain('LOCK');
    // With a code, as every warning is, for a log pipeline that filters on it.
    expect(warnings.some((w) => w.obj.code === 'WAL_WORKED_AROUND' && String(w.obj.err).includes('lock file'))).toBe(true);
    await expect(Wal.open(dir)).rejects.toMatchObject({ code: 'WAL_LOCKED' });
    await a.close();
    a = await Wal.open(dir);
    expect(plain(a.entriesSync(1, 80))).toEqual(plain(range(1, 80, 1)));
    await a.close();
  });

  it('re-creates a deleted LOCK at close, so that the directory opens again', async () => {
    const dir = tempDir();
    let a = await Wal.open(dir);
    await a.append(range(1, 6, 1));
    unlinkSync(join(dir, 'LOCK'));
    await a.close();
    a = await Wal.open(dir);
    expect(plain(a.entriesSync(1, 6))).toEqual(plain(range(1, 6, 1)));
    await a.close();
  });

  it('stops writing when LOCK names another file, and keeps what it acknowledged', async () => {
    const dir = tempDir();
    let a = await Wal.open(dir, { segmentBytes: 4096 });
    await a.append(range(1, 11, 1));
    unlinkSync(join(dir, 'LOCK'));
    writeFileSync(join(dir, 'LOCK'), ''); // as another opener would have
    await expect(a.append(range(11, 80, 1))).rejects.toMatchObject({ code: 'WAL_IO', message: expect.stringMatching(/LOCK/) });
    await a.close();
    a = await Wal.open(dir);
    expect(a.lastIndex).toBeGreaterThanOrEqual(10);
    expect(plain(a.entriesSync(1, 11))).toEqual(plain(range(1, 11, 1)));
    await a.close();
  });

  it('close() rejects with WAL_IO when LOCK names another file, as a write that finds it does', async () => {
    const dir = tempDir();
    let a = await Wal.open(dir);
    await a.append(range(1, 6, 1));
    unlinkSync(join(dir, 'LOCK'));
    writeFileSync(join(dir, 'LOCK'), ''); // as another opener would have
    await expect(a.close()).rejects.toMatchObject({ code: 'WAL_IO', message: expect.stringMatching(/LOCK/) });
    // Closed all the same: the lock and the fds are released, and the directory opens again.
    a = await Wal.open(dir);
    expect(plain(a.entriesSync(1, 6))).toEqual(plain(range(1, 6, 1)));
    await a.close();
  });

  for (const preallocate of ['zeros', 'none'] as const) {
    it(`close() writes nothing into the segments when LOCK names another file: it checks the lock before it seals (preallocate '${preallocate}')`, async () => {
      const dir = tempDir();
      let a = await Wal.open(dir, { preallocate });
      await a.append(range(1, 6, 1));
      unlinkSync(join(dir, 'LOCK'));
      writeFileSync(join(dir, 'LOCK'), ''); // the directory was taken over: another opener made its own LOCK
      const before = new Map(segmentFiles(dir).map((f) => [f, readFileSync(join(dir, f))]));
      await expect(a.close()).rejects.toMatchObject({ code: 'WAL_IO', message: expect.stringMatching(/LOCK/) });
      expect(segmentFiles(dir)).toEqual([...before.keys()]);
      for (const [f, bytes] of before) expect(readFileSync(join(dir, f)).equals(bytes), f).toBe(true);
      // The fds and the lock are released all the same.
      a = await Wal.open(dir);
      expect(plain(a.entriesSync(1, 6))).toEqual(plain(range(1, 6, 1)));
      await a.close();
    });
  }

  it('creates a missing directory and its parents, leaving nothing half made', async () => {
    const base = tempDir();
    const dir = join(base, 'a', 'b', 'wal');
    let wal = await Wal.open(dir);
    await wal.append(range(1, 4, 1));
    await wal.close();
    expect(readdirSync(join(base, 'a', 'b'))).toEqual(['wal']);
    wal = await Wal.open(dir);
    expect(wal.lastIndex).toBe(3);
    await wal.close();
  });

  it('opens every fd close-on-exec: a spawned program inherits none of them', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { segmentBytes: 4096, cacheBytes: 0 });
    await wal.append(range(1, 200, 1));
    const old = wal.entries(1, 5); // readAsync: a duplicated fd on the thread pool
    wal.entriesSync(1, 5); // a cached read fd
    const held = spawnSync('sh', ['-c', 'for f in /proc/self/fd/*; do readlink "$f"; done'], { encoding: 'utf8' }).stdout;
    const mine = readdirSync('/proc/self/fd').map((f) => {
      try {
        return readlinkSync(join('/proc/self/fd', f));
      } catch {
        return '';
      }
    });
    expect(mine.filter((p) => p.startsWith(dir)).length).toBeGreaterThanOrEqual(3); // LOCK, directory, segment, ...
    expect(held.split('\n').filter((p) => p.startsWith(dir))).toEqual([]);
    await old;
    await wal.close();
  });

  it('rejects a WAL path that is a file', async () => {
    const file = join(tempDir(), 'file');
    writeFileSync(file, 'x');
    await expect(Wal.open(file)).rejects.toMatchObject({ code: 'WAL_IO' });
  });

  it('rejects bad input with a clear error and writes nothing', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir);
    await wal.append(range(1, 11, 1));
    const bad: [unknown, new (...a: never[]) => Error][] = [
      [[entry(12)], WalGapError],
      [[entry(11), entry(13)], WalGapError],
      [[{ ...entry(11), data: 'text' }], WalInvalidArgumentError],
      [[{ ...entry(11), data: [1, 2] }], WalInvalidArgumentError],
      [[{ ...entry(11), index: -1 }], WalInvalidArgumentError],
      [[{ ...entry(11), index: 11.5 }], WalInvalidArgumentError],
      [[{ ...entry(11), term: 1.5 }], WalInvalidArgumentError],
      [[{ ...entry(11), type: 256 }], WalInvalidArgumentError],
      [[entry(11), null], WalInvalidArgumentError],
      ['not an array', WalInvalidArgumentError],
    ];
    for (const [arg, cls] of bad) {
      const err = await wal.append(arg as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(arg)).toBeInstanceOf(cls);
      expect(typeof (err as { code: unknown }).code).toBe('string');
    }
    await expect(wal.append([], { term: -1, vote: 0, commit: 0 })).rejects.toThrow(WalInvalidArgumentError);
    expect(() => wal.term(11)).toThrow(WalUnavailableError);
    expect(() => wal.entriesSync(1, 12)).toThrow(WalUnavailableError);
    expect(() => wal.entriesSync(0, 5)).toThrow(WalCompactedError);
    expect(() => wal.entriesSync(1.5, 5)).toThrow(WalInvalidArgumentError);
    expect(wal.lastIndex).toBe(10);
    const bytes = wal.stats().bytes;
    await wal.close();
    expect(bytes).toBeGreaterThan(0);
    wal = await Wal.open(dir);
    expect(wal.lastIndex).toBe(10);
    expect(plain(wal.entriesSync(1, 11))).toEqual(plain(range(1, 11, 1)));
    await wal.close();
  });

  it('fails every call after close', async () => {
    const wal = await Wal.open(tempDir());
    await wal.close();
    await expect(wal.append([entry(1)])).rejects.toThrow(WalClosedError);
    await expect(wal.saveSnapshot({ index: 1, term: 1 })).rejects.toThrow(WalClosedError);
    expect(() => wal.term(0)).toThrow(WalClosedError);
    await wal.close(); // idempotent
  });

  /** Every read of the log a Wal offers, by name: each must throw WAL_CLOSED once close() was called. */
  const READS: [string, (wal: Wal) => unknown][] = [
    ['hardState', (w) => w.hardState],
    ['snapshot', (w) => w.snapshot],
    ['firstIndex', (w) => w.firstIndex],
    ['lastIndex', (w) => w.lastIndex],
    ['cachedFrom', (w) => w.cachedFrom],
    ['term', (w) => w.term(5)],
    ['dataLength', (w) => w.dataLength(5)],
    ['entriesSync from disk', (w) => w.entriesSync(3, 5)],
    ['entriesSync from memory', (w) => w.entriesSync(199, 200)],
    ['copyCached', (w) => w.copyCached(199, 200, () => undefined)],
    ['stats', (w) => w.stats()],
  ];

  it('throws WAL_CLOSED from every read once close() was called, closing or closed, and keeps `closed`, `dir` and `repair` readable', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { segmentBytes: 4096, cacheBytes: 4096 });
    await wal.append(range(1, 200, 1), { term: 1, vote: 1, commit: 3 });
    await wal.saveSnapshot({ index: 2, term: 1 });
    expect(wal.cachedFrom).toBeGreaterThan(3); // entry 3 is read from disk, 199 from memory
    for (const [name, read] of READS) expect(() => read(wal), name).not.toThrow();
    expect(wal.closed).toBe(false);
    const closing = wal.close();
    expect(wal.closed).toBe(true);
    const check = (when: string): void => {
      for (const [name, read] of READS) {
        let thrown: unknown;
        try {
          read(wal);
        } catch (err) {
          thrown = err;
        }
        expect(thrown, `${name} ${when}`).toBeInstanceOf(WalClosedError);
        expect((thrown as WalClosedError).code).toBe('WAL_CLOSED');
      }
    };
    check('while closing');
    await expect(wal.entries(3, 5)).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    await closing;
    check('once closed');
    await expect(wal.entries(3, 5)).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    await expect(wal.releaseTo(2)).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    expect(wal.closed).toBe(true);
    expect(wal.dir).toBe(dir);
    expect(wal.repair).toBeNull();
  });

  it('closes once when beforeInlineWrite calls close(): the close it starts hands the turn over, which calls the hook again', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir);
    await wal.append(range(1, 3, 1));
    let closing: Promise<void> | null = null;
    let hooked = 0;
    wal.beforeInlineWrite = () => {
      hooked++;
      closing ??= wal.close(); // a node that shuts down on its turn; `closing` is set only once close() returns
    };
    const appended = wal.append(range(3, 4, 1)); // packed before the close: handed over by it
    await appended;
    expect(closing).not.toBeNull();
    await closing;
    expect(hooked).toBeGreaterThanOrEqual(2); // the turn's flush, the close's flush of the same turn inside it (and the seal's)
    expect(wal.closed).toBe(true);
    wal = await Wal.open(dir);
    expect(plain(wal.entriesSync(1, 4))).toEqual(plain(range(1, 4, 1)));
    await wal.close();
  });

  it('fails a read in flight when close() is called before it completes', async () => {
    const dir = tempDir();
    let inFlight: Promise<unknown> | null = null;
    let wal: Wal | null = null;
    wal = await openWatchingReads(dir, { segmentBytes: 4096, cacheBytes: 0 }, () => {
      inFlight ??= wal!.close();
    });
    await wal.append(range(1, 100, 1));
    await expect(wal.entries(1, 50)).rejects.toMatchObject({ code: 'WAL_CLOSED' });
    await inFlight;
  });
});

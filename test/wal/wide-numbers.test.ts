// Indexes and terms are 64-bit on disk and exact up to 2^53 in JavaScript: values past 2^32 must survive a
// read from disk and a reopen. (Raft's own limit is MAX_TERM / MAX_INDEX, 2^53 - 2^32; a long-lived cluster
// that compacts often can pass 2^32 entries, and a test cluster can be started there.)
import { afterEach, describe, expect, it } from 'vitest';
import { Wal } from '../../src/wal/index.js';
import { cleanTempDirs, entry, tempDir } from './helpers.js';

afterEach(cleanTempDirs);

const BASE = 2 ** 40 + 5; // both 32-bit halves non-zero
const TERM = 2 ** 33 + 3;

describe('indexes and terms past 2^32', () => {
  it('are read back from disk (no cache) and after a reopen', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, { cacheBytes: 0 });
    await wal.saveSnapshot({ index: BASE, term: TERM });
    const written = [1, 2, 3].map((k) => entry(BASE + k, TERM + k));
    await wal.append(written, { term: TERM + 3, vote: 1, commit: BASE + 2 });
    const shape = (es: { index: number; term: number }[]) => es.map((e) => [e.index, e.term]);
    expect(shape(await wal.entries(BASE + 1, BASE + 4, Infinity))).toEqual(shape(written));
    await wal.close();

    wal = await Wal.open(dir, { cacheBytes: 0 });
    expect([wal.firstIndex, wal.lastIndex, wal.term(BASE + 3)]).toEqual([BASE + 1, BASE + 3, TERM + 3]);
    expect(wal.hardState).toEqual({ term: TERM + 3, vote: 1, commit: BASE + 2 });
    expect(shape(await wal.entries(BASE + 1, BASE + 4, Infinity))).toEqual(shape(written));
    await wal.close();
  });
});

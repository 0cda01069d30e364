import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/types.js';
import { CatchUpWindow } from '../../src/storage/catch-up-window.js';

const entry = (index: number, len: number): Entry => ({
  index,
  term: 1 + Math.floor(index / 10),
  type: index % 2,
  data: new Uint8Array(len).map((_, i) => (index * 31 + i) & 0xff),
});

/** The buffer the window keeps the bytes in. */
const arena = (w: CatchUpWindow): Uint8Array => (w as unknown as { bytes: Uint8Array }).bytes;

describe('CatchUpWindow', () => {
  it('answers terms, lengths and entries (copies) for the entries it holds', () => {
    const w = new CatchUpWindow();
    expect(w.size).toBe(0);
    const es = Array.from({ length: 300 }, (_, k) => entry(1000 + k, (k * 37) % 900));
    for (const e of es) w.push(e);
    w.prevTerm = 99;
    expect([w.first, w.size, w.prevTerm]).toEqual([1000, 300, 99]);
    expect([w.has(999), w.has(1000), w.has(1299), w.has(1300)]).toEqual([false, true, true, false]);
    for (const e of es) {
      expect([w.term(e.index), w.dataLength(e.index)]).toEqual([e.term, e.data.length]);
      const got = w.entry(e.index);
      expect({ ...got, data: Array.from(got.data) }).toEqual({ ...e, data: Array.from(e.data) });
    }
    // A copy: changing it changes nothing held.
    w.entry(1100).data.fill(0);
    expect(Array.from(w.entry(1100).data)).toEqual(Array.from(es[100]!.data));
  });

  it('refuses an entry that does not follow the last one', () => {
    const w = new CatchUpWindow();
    w.push(entry(5, 10));
    expect(() => w.push(entry(7, 10))).toThrow(/internal error/);
  });

  it('reuses its memory when it is refilled for the next snapshot', () => {
    const w = new CatchUpWindow();
    for (let i = 1; i <= 500; i++) w.push(entry(i, 1000));
    const bytes = arena(w);
    for (let round = 1; round <= 5; round++) {
      w.clear();
      expect(w.size).toBe(0);
      const base = round * 10_000;
      for (let i = 0; i < 500; i++) w.push(entry(base + i, 1000 - (i % 3)));
      expect(arena(w)).toBe(bytes);
      expect(Array.from(w.entry(base + 499).data)).toEqual(Array.from(entry(base + 499, 1000 - (499 % 3)).data));
    }
  });
});

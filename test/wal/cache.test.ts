import { describe, expect, it } from 'vitest';
import { EntryCache, PACK_BELOW } from '../../src/wal/cache.js';
import type { WalEntry } from '../../src/wal/types.js';
import { seeded, testSeed } from '../seeded.js';

/** Data that differs from entry to entry, so that a read of the wrong bytes shows. */
const entry = (index: number, len: number): WalEntry => {
  const data = new Uint8Array(len).fill(index & 0xff);
  if (len > 1) data[len - 1] = (index >> 8) & 0xff;
  return { index, term: 1 + (index % 7) * 2 ** 40, type: index % 3, data };
};

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** The length and the bytes at both ends: enough to tell these entries apart, and cheap. */
const sameEnds = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a[0] === b[0] && a[a.length - 1] === b[b.length - 1];

/** The distinct buffers the cache's ring still references. */
const held = (cache: EntryCache): Set<Uint8Array> =>
  new Set((cache as unknown as { datas: (Uint8Array | undefined)[] }).datas.filter((d): d is Uint8Array => d !== undefined));

describe('EntryCache', () => {
  it('matches a plain array model under random pushes, truncations, drops, trims and clears, across ring growth', () => {
    const rand = seeded(testSeed('entry cache model'));
    const int = (n: number): number => Math.floor(rand() * n);
    const cache = new EntryCache();
    let model: WalEntry[] = [];
    let lo = 1; // the model's first index (lastIndex + 1 when empty)
    let mismatches = 0;
    for (let step = 0; step < 2000; step++) {
      const op = int(100);
      const last = lo + model.length - 1;
      if (op < 60) {
        // Bursts big enough to grow the ring past its first size several times.
        const n = 1 + int(op < 5 ? 3000 : 100);
        for (let i = 0; i < n; i++) {
          // Mostly small entries (packed), now and then one kept as given.
          const e = entry(last + 1 + i, int(50) === 0 ? PACK_BELOW + int(3 * PACK_BELOW) : int(300));
          cache.push(e);
          model.push(e);
        }
      } else if (op < 70 && model.length > 0) {
        const keep = lo - 1 + int(model.length + 1);
        cache.truncateAfter(keep);
        model = model.slice(0, keep - lo + 1);
      } else if (op < 85 && model.length > 0) {
        const budget = int(20_000);
        const bound = lo + int(model.length);
        cache.trim(budget, bound);
        let bytes = model.reduce((s, e) => s + e.data.length, 0);
        while (bytes > budget && model.length > 0 && lo <= bound) {
          bytes -= model.shift()!.data.length;
          lo++;
        }
      } else if (op < 95 && model.length > 0) {
        const at = lo + int(model.length);
        cache.dropBefore(at);
        model = model.slice(at - lo);
        lo = at;
      } else if (op < 97) {
        lo = last + 1;
        cache.clear(lo);
        model = [];
      }
      const expectLo = model.length > 0 ? model[0]!.index : lo;
      if (model.length > 0) lo = model[0]!.index;
      const bytes = model.reduce((s, e) => s + e.data.length, 0);
      if (cache.size !== model.length || cache.bytes !== bytes || (model.length > 0 && cache.lo !== expectLo)) mismatches++;
      // Every entry's ends each step, and a few entries' every byte.
      for (const e of model) {
        const got = cache.get(e.index);
        if (got.index !== e.index || got.term !== e.term || got.type !== e.type || !sameEnds(got.data, e.data)) mismatches++;
      }
      for (let k = 0; k < 4 && model.length > 0; k++) {
        const e = model[int(model.length)]!;
        if (!sameBytes(cache.get(e.index).data, e.data)) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
  });

  it('lets go of the entries it drops, so the garbage collector can free them', () => {
    const cache = new EntryCache();
    for (let i = 1; i <= 5000; i++) cache.push(entry(i, i % 100 === 50 ? PACK_BELOW : 300));
    cache.trim(3000, 5000);
    cache.truncateAfter(4995);
    expect(cache.size).toBe(5);
    expect(cache.lo).toBe(4991);
    // The five kept entries are small and were packed together (1.5 MB of entries before them):
    // the ring references their slab alone.
    expect(held(cache).size).toBe(1);
    for (let i = 4991; i <= 4995; i++) expect(sameBytes(cache.get(i).data, entry(i, 300).data)).toBe(true);
  });

  it('keeps no object per small entry, and a large entry as given (no copy)', () => {
    const cache = new EntryCache();
    const large = entry(1, PACK_BELOW);
    cache.push(large);
    for (let i = 2; i <= 10_001; i++) cache.push(entry(i, 100));
    // 10,000 entries of 100 B in slabs of 64 KiB, and the large entry's own data.
    expect(held(cache).size).toBeLessThanOrEqual(1 + Math.ceil((10_000 * 100) / (64 * 1024)) + 1);
    expect(cache.get(1).data).toBe(large.data);
    const small = cache.get(5000).data;
    expect(small.constructor).toBe(Uint8Array);
    expect(sameBytes(small, entry(5000, 100).data)).toBe(true);
  });

  it('never writes over a view it handed out: its bytes stay as read after drops, truncations and more pushes', () => {
    const cache = new EntryCache();
    for (let i = 1; i <= 100; i++) cache.push(entry(i, 200));
    // Entry 100 is read before the truncation drops it, and other bytes take its index.
    const views = [10, 50, 100].map((i) => ({ want: entry(i, 200).data, data: cache.get(i).data }));
    cache.truncateAfter(60);
    cache.dropBefore(55);
    for (let i = 61; i <= 2000; i++) cache.push(entry(i + 7, 200));
    // The last entry before a clear lies in the slab being packed.
    views.push({ want: entry(2007, 200).data, data: cache.get(2000).data });
    cache.clear(3000);
    for (let i = 3000; i <= 4000; i++) cache.push(entry(i, 200));
    for (const v of views) expect(sameBytes(v.data, v.want)).toBe(true);
  });
});

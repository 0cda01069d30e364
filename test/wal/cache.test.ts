import { describe, expect, it } from 'vitest';
import { EntryCache } from '../../src/wal/cache.js';
import type { WalEntry } from '../../src/wal/types.js';
import { seeded, testSeed } from '../seeded.js';

const entry = (index: number, len: number): WalEntry => ({ index, term: 1 + (index % 7) * 2 ** 40, type: index % 3, data: new Uint8Array(len) });

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
          const e = entry(last + 1 + i, int(300));
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
      for (const e of model) {
        const got = cache.get(e.index);
        if (got.index !== e.index || got.term !== e.term || got.type !== e.type || got.data !== e.data) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
  });

  it('lets go of the entries it drops, so the garbage collector can free them', () => {
    const cache = new EntryCache();
    for (let i = 1; i <= 5000; i++) cache.push(entry(i, 10));
    cache.trim(100, 5000);
    cache.truncateAfter(4995);
    expect(cache.size).toBe(5);
    expect(cache.lo).toBe(4991);
    // Only the five kept entries are still referenced by the ring.
    const held = (cache as unknown as { datas: (Uint8Array | undefined)[] }).datas.filter((d) => d !== undefined);
    expect(held.length).toBe(5);
    expect(held.every((d, k) => d === cache.get(4991 + k).data)).toBe(true);
  });
});

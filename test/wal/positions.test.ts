import { describe, expect, it } from 'vitest';
import { Positions } from '../../src/wal/positions.js';
import { seeded, testSeed } from '../seeded.js';

describe('Positions', () => {
  it('matches a plain array model under random pushes, truncations, resets and drops across chunks', () => {
    const seed = testSeed('positions test');
    const next = seeded(seed);
    const rand = (n: number): number => Math.floor(next() * n);
    const p = new Positions();
    let base = 0;
    let model: number[][] = [[0, 0, 0, 0]]; // [term, seq, offset, length] from base
    for (let step = 0; step < 3000; step++) {
      const op = rand(100);
      if (op < 80) {
        const n = 1 + rand(200);
        for (let i = 0; i < n; i++) {
          const row = [rand(1000), rand(100), rand(1 << 30), rand(5000)];
          p.push(row[0]!, row[1]!, row[2]!, row[3]!);
          model.push(row);
        }
      } else if (op < 90 && model.length > 1) {
        const keep = base + rand(model.length);
        p.truncateAfter(keep);
        model = model.slice(0, keep - base + 1);
      } else if (op < 98 && model.length > 1) {
        const at = base + rand(model.length);
        p.dropBefore(at);
        model = model.slice(at - base);
        base = at;
      } else {
        base = base + model.length + rand(100);
        const term = rand(1000);
        p.reset(base, term);
        model = [[term, 0, 0, 0]];
      }
      expect(p.base).toBe(base);
      expect(p.last).toBe(base + model.length - 1);
      const probe = base + rand(model.length);
      const row = model[probe - base]!;
      expect(p.term(probe)).toBe(row[0]);
      if (probe > base) expect([p.seq(probe), p.offset(probe), p.length(probe)]).toEqual(row.slice(1));
    }
    for (let i = base + 1; i <= p.last; i++) expect(p.term(i)).toBe(model[i - base]![0]);
  });

  it('keeps a run per term and per segment, not a column entry per entry', () => {
    const p = new Positions();
    // 100,000 entries in two terms across three segments, the last two starting mid-term.
    for (let i = 1; i <= 100_000; i++) p.push(i <= 60_000 ? 1 : 2, i <= 30_000 ? 1 : i <= 90_000 ? 2 : 3, (i % 30_000) * 48, 20);
    expect(p.runs).toBe(1 + 2 + 3); // the sentinel's term (0), terms 1 and 2; segments 1, 2 and 3
    expect([p.term(60_000), p.term(60_001), p.seq(30_000), p.seq(30_001), p.seq(90_001), p.offset(45_000)]).toEqual([1, 2, 1, 2, 3, 15_000 * 48]);
    p.dropBefore(70_000);
    expect(p.runs).toBe(1 + 2);
    expect([p.term(70_000), p.seq(70_000), p.seq(100_000)]).toEqual([2, 2, 3]);
  });
});

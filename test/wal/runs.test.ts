import { describe, expect, it } from 'vitest';
import { Runs } from '../../src/wal/runs.js';
import { seeded, testSeed } from '../seeded.js';

describe('Runs', () => {
  it('keeps one run per change of value, found from any index after the first', () => {
    const r = new Runs();
    r.reset(10, 1);
    for (let i = 11; i <= 1000; i++) r.push(i, i <= 500 ? 1 : i <= 700 ? 2 : 3);
    expect(r.size).toBe(3);
    expect([r.at(10), r.at(500), r.at(501), r.at(700), r.at(701), r.at(1000)]).toEqual([1, 1, 2, 2, 3, 3]);
    r.truncateAfter(600);
    r.push(601, 2);
    expect(r.size).toBe(2);
    r.push(602, 5);
    expect([r.at(601), r.at(602)]).toEqual([2, 5]);
    r.dropBefore(550);
    expect(r.size).toBe(2);
    expect([r.at(550), r.at(601), r.at(602)]).toEqual([2, 2, 5]);
    r.clear();
    expect(r.size).toBe(0);
    r.push(5, 9);
    expect([r.size, r.at(5)]).toEqual([1, 9]);
  });

  it('sets the first value alone, splitting the run it starts', () => {
    const r = new Runs();
    r.reset(10, 0);
    r.setFirst(10, 4, false);
    expect([r.size, r.at(10)]).toEqual([1, 4]);
    r.reset(10, 0);
    for (let i = 11; i <= 20; i++) r.push(i, 0);
    r.setFirst(10, 4, true);
    expect([r.size, r.at(10), r.at(11), r.at(20)]).toEqual([2, 4, 0, 0]);
    r.reset(10, 0);
    r.push(11, 7);
    r.setFirst(10, 4, true);
    expect([r.size, r.at(10), r.at(11)]).toEqual([2, 4, 7]);
  });

  it('matches a plain array model under random pushes, truncations, drops and resets', () => {
    const seed = testSeed('runs test');
    const next = seeded(seed);
    const rand = (n: number): number => Math.floor(next() * n);
    const r = new Runs();
    let base = 0;
    let model: number[] = [0];
    r.reset(0, 0);
    for (let step = 0; step < 3000; step++) {
      const op = rand(100);
      if (op < 70) {
        let v = model.at(-1)!;
        for (let n = 1 + rand(50); n > 0; n--) {
          if (rand(8) === 0) v = rand(4);
          r.push(base + model.length, v);
          model.push(v);
        }
      } else if (op < 82) {
        const keep = base + rand(model.length);
        r.truncateAfter(keep);
        model = model.slice(0, keep - base + 1);
      } else if (op < 94) {
        const at = base + rand(model.length);
        r.dropBefore(at);
        model = model.slice(at - base);
        base = at;
      } else if (op < 97) {
        const v = rand(4);
        r.setFirst(base, v, model.length > 1);
        model[0] = v;
      } else {
        base += model.length + rand(10);
        model = [rand(4)];
        r.reset(base, model[0]);
      }
      const wrong = model.findIndex((v, i) => r.at(base + i) !== v);
      expect(wrong === -1 ? null : { step, index: base + wrong, got: r.at(base + wrong), want: model[wrong] }).toBeNull();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { seeded, testSeed } from '../seeded.js';
import { checkRegisters, linearizable, type RegisterOp } from './checker.js';

const w = (value: string, invoke: number, complete: number | null, key = 'k'): RegisterOp => ({ key, kind: 'write', value, invoke, complete });
const r = (value: string | null, invoke: number, complete: number | null, key = 'k'): RegisterOp => ({ key, kind: 'read', value, invoke, complete });

describe('the register linearizability checker', () => {
  it('accepts linearizable histories', () => {
    expect(linearizable([], null)).toBe(true);
    expect(linearizable([r(null, 0, 1)], null)).toBe(true);
    expect(linearizable([w('a', 0, 1), r('a', 2, 3)], null)).toBe(true);
    // A read concurrent with a write may see either value.
    expect(linearizable([w('a', 0, 1), w('b', 2, 6), r('a', 3, 4)], null)).toBe(true);
    expect(linearizable([w('a', 0, 1), w('b', 2, 6), r('b', 3, 4)], null)).toBe(true);
    // Two concurrent writes, read after both: either order.
    expect(linearizable([w('a', 0, 5), w('b', 1, 4), r('a', 6, 7)], null)).toBe(true);
    expect(linearizable([w('a', 0, 5), w('b', 1, 4), r('b', 6, 7)], null)).toBe(true);
    // A write of unknown outcome may have taken effect, late...
    expect(linearizable([w('a', 0, 1), w('b', 2, null), r('a', 3, 4), r('b', 10, 11)], null)).toBe(true);
    // ...or never.
    expect(linearizable([w('a', 0, 1), w('b', 2, null), r('a', 10, 11)], null)).toBe(true);
    // Needs backtracking: the first candidate order (a before b) fails later.
    expect(linearizable([w('a', 0, 10), w('b', 0, 10), r('a', 1, 2), r('b', 3, 4), r('b', 11, 12)], null)).toBe(true);
  });

  it('rejects histories with no linearization', () => {
    // A stale read: the write finished before the read began.
    expect(linearizable([w('a', 0, 1), w('b', 2, 3), r('a', 4, 5)], null)).toBe(false);
    // A value never written.
    expect(linearizable([w('a', 0, 1), r('z', 2, 3)], null)).toBe(false);
    // The initial value after a completed write.
    expect(linearizable([w('a', 0, 1), r(null, 2, 3)], null)).toBe(false);
    // A read sees a write that began after the read returned.
    expect(linearizable([r('a', 0, 1), w('a', 2, 3)], null)).toBe(false);
    // Non-monotonic reads during one write: new value, then (strictly later) old value.
    expect(linearizable([w('a', 0, 1), w('b', 2, 20), r('b', 3, 4), r('a', 5, 6)], null)).toBe(false);
    // An unknown write cannot explain a value seen before it was called.
    expect(linearizable([r('b', 0, 1), w('b', 2, null)], null)).toBe(false);
    // Two concurrent writes, then two later reads disagreeing about which came last.
    expect(linearizable([w('a', 0, 5), w('b', 1, 4), r('a', 6, 7), r('b', 8, 9)], null)).toBe(false);
  });

  it('settles writes of unknown outcome by the reads of their values, so that many of them stay cheap', () => {
    // 60 writes that timed out, none of whose values anyone read, among reads that all see 'a'.
    // Left open to the end, the search tried every subset of them before each read: it gave up.
    const lost = Array.from({ length: 60 }, (_, i) => w(`u${i}`, 2 + i, null));
    const reads = Array.from({ length: 40 }, (_, i) => r('a', 100 + 2 * i, 101 + 2 * i));
    expect(linearizable([w('a', 0, 1), ...lost, ...reads], null, 100_000)).toBe(true);
    // An unknown write whose value was read took effect before that read returned...
    expect(linearizable([w('a', 0, 1), w('b', 2, null), r('b', 10, 11), r('b', 12, 13)], null)).toBe(true);
    // ...so the old value cannot come back after it (nothing wrote it again)...
    expect(linearizable([w('a', 0, 1), w('b', 2, null), r('b', 3, 4), r('a', 5, 6)], null)).toBe(false);
    expect(linearizable([...lost, w('a', 0, 1), w('b', 2, null), r('b', 3, 4), r('a', 5, 6)], null, 100_000)).toBe(false);
    // ...though a read of the old value concurrent with that first read may still see it.
    expect(linearizable([w('a', 0, 1), w('b', 2, null), r('b', 3, 6), r('a', 4, 5)], null)).toBe(true);
    // A value written twice is not settled: either write may explain a read.
    expect(linearizable([w('b', 0, 1), w('a', 2, 3), w('b', 4, null), r('b', 10, 11)], null)).toBe(true);
  });

  it('decides a long history of overlapping operations, and finds the one stale read in it', () => {
    // 6 clients for 20,000 operations: each writes a fresh value or reads, overlapping the others;
    // every 50th write times out. Reads see the last write that completed before they began, or one
    // still running then.
    const seed = testSeed('checker long history');
    const rnd = seeded(seed);
    const ops: RegisterOp[] = [];
    let t = 0;
    let last: string | null = null;
    for (let i = 0; i < 20_000; i++) {
      t += 1 + Math.floor(rnd() * 3);
      if (rnd() < 0.5) {
        const v = `v${i}`;
        // Known to complete before the next operation starts, or of unknown outcome (never read).
        if (i % 50 === 0) ops.push(w(`lost${i}`, t, null));
        else (ops.push(w(v, t, t + 1)), (last = v));
      } else ops.push(r(last, t, t + 1 + Math.floor(rnd() * 4)));
    }
    expect(linearizable(ops, null), `seed ${seed}`).toBe(true);
    // A read that returns the value before the last completed write, long after it.
    const i = ops.findLastIndex((o) => o.kind === 'write' && o.complete !== null);
    const stale = ops.slice(0, i).findLast((o) => o.kind === 'write' && o.complete !== null)!;
    const end = ops[ops.length - 1]!.complete! + 10;
    expect(linearizable([...ops, r(stale.value, end, end + 1)], null), `seed ${seed}`).toBe(false);
  });

  it('checks keys independently and names the one that fails', () => {
    const ok = [w('1', 0, 1, 'x'), r('1', 2, 3, 'x')];
    const bad = [w('1', 0, 1, 'y'), w('2', 2, 3, 'y'), r('1', 4, 5, 'y')];
    expect(checkRegisters([...ok, ...bad])).toMatchObject({ ok: false, key: 'y', keys: 2 });
    expect(checkRegisters(ok)).toMatchObject({ ok: true, keys: 1, ops: 2 });
    // Reads of unknown outcome say nothing.
    expect(checkRegisters([...ok, r('nonsense', 4, null, 'x')]).ok).toBe(true);
  });

  it('rejects each way a replicated store can break linearizability', () => {
    // An acknowledged write lost: later reads see the value before it.
    expect(linearizable([w('a', 0, 1), w('b', 2, 3), r('b', 4, 5), r('a', 6, 7), r('a', 8, 9)], null)).toBe(false);
    // A write applied twice (a retry of an acknowledged write): its value comes back after a later write.
    expect(linearizable([w('a', 0, 1), w('b', 2, 3), r('b', 4, 5), w('c', 6, 7), r('c', 8, 9), r('a', 10, 11)], null)).toBe(false);
    // Two clients see two concurrent writes land in different orders.
    const clientA = [r('a', 1, 2), r('b', 3, 4)];
    const clientB = [r('b', 5, 6), r('a', 7, 8)];
    expect(linearizable([w('a', 0, 20), w('b', 0, 20), ...clientA, ...clientB], null)).toBe(false);
    // The same reads, each client's pair concurrent with the other's: one order explains both.
    expect(linearizable([w('a', 0, 20), w('b', 0, 20), r('a', 1, 2), r('b', 3, 6), r('b', 1, 4), r('a', 1, 2)], null)).toBe(true);
  });

  it('refuses a history in which an operation completes before it is invoked', () => {
    expect(() => checkRegisters([w('a', 5, 4)])).toThrow(RangeError);
    expect(() => checkRegisters([r(null, 5, 4)])).toThrow(RangeError);
    expect(() => checkRegisters([w('a', 5, 5), r('a', 6, 6)])).not.toThrow();
  });

  it('lets a write of unknown outcome take effect late or never, and a refused one not at all', () => {
    // A write that timed out lands after an acknowledged write that began later...
    const late = [w('a', 0, 1), w('u', 2, null), w('b', 3, 4), r('b', 5, 6), r('u', 7, 8)];
    expect(checkRegisters(late).ok).toBe(true);
    // ...but only once: what it overwrote cannot come back.
    expect(checkRegisters([...late, r('b', 9, 10)]).ok).toBe(false);
    // It may be seen by a read that began before it was called, if that read ended after.
    expect(checkRegisters([w('a', 0, 1), r('u', 2, 10), w('u', 3, null)]).ok).toBe(true);
    // It never took effect: nobody saw it.
    expect(checkRegisters([w('a', 0, 1), w('u', 2, null), r('a', 5, 6), r('a', 100, 101)]).ok).toBe(true);
    // A refused write is left out of the history (it certainly did not happen): a read of its
    // value then reads a value never written.
    expect(checkRegisters([w('a', 0, 1), r('refused', 5, 6)]).ok).toBe(false);
    // Many writes of unknown outcome, one of which took effect: the read names which.
    const unknown = Array.from({ length: 30 }, (_, i) => w(`u${i}`, 2 + i, null));
    expect(checkRegisters([w('a', 0, 1), ...unknown, r('u17', 50, 51), r('u17', 52, 53)]).ok).toBe(true);
    expect(checkRegisters([w('a', 0, 1), ...unknown, r('u17', 50, 51), r('u3', 52, 53)]).ok).toBe(true);
    expect(checkRegisters([w('a', 0, 1), ...unknown, r('u17', 50, 51), r('u3', 52, 53), r('u17', 54, 55)]).ok).toBe(false);
  });

  it('accepts overlapping operations that can be ordered, ties at one instant included', () => {
    // Three overlapping writes, and reads during them that see each in turn.
    expect(linearizable([w('a', 0, 10), w('b', 1, 11), w('c', 2, 12), r('a', 3, 4), r('b', 5, 6), r('c', 7, 8), r('c', 13, 14)], null)).toBe(true);
    // A read that begins at the instant a write returns may still see the value before it.
    expect(linearizable([w('a', 0, 1), w('b', 2, 5), r('a', 5, 6)], null)).toBe(true);
    // One that begins strictly after may not.
    expect(linearizable([w('a', 0, 1), w('b', 2, 5), r('a', 5.001, 6)], null)).toBe(false);
  });

  it('agrees with a brute-force search on random small histories', () => {
    const seed = testSeed('checker brute force');
    const rnd = seeded(seed);
    let accepted = 0;
    let rejected = 0;
    for (let h = 0; h < 600; h++) {
      const n = 2 + Math.floor(rnd() * 5);
      const ops: RegisterOp[] = [];
      for (let i = 0; i < n; i++) {
        const invoke = Math.floor(rnd() * 10);
        const complete = rnd() < 0.1 ? null : invoke + Math.floor(rnd() * 6);
        const value = rnd() < 0.5 ? `v${i}` : (['v0', 'v1', 'v2', null] as const)[Math.floor(rnd() * 4)]!;
        if (rnd() < 0.5) ops.push(w(`v${i}`, invoke, complete));
        else ops.push(r(value, invoke, complete));
      }
      const kept = ops.filter((o) => !(o.kind === 'read' && o.complete === null));
      const expected = bruteForce(kept);
      expect(linearizable(kept, null), `history ${h} of seed ${seed}: ${JSON.stringify(kept)}`).toBe(expected);
      if (expected) accepted++;
      else rejected++;
    }
    // Both answers were exercised.
    expect(accepted).toBeGreaterThan(50);
    expect(rejected).toBeGreaterThan(50);
  });
});

/** Every order of every subset that keeps all completed operations, by definition. */
function bruteForce(ops: RegisterOp[]): boolean {
  const n = ops.length;
  const end = (o: RegisterOp): number => o.complete ?? Number.POSITIVE_INFINITY;
  const used = new Array<boolean>(n).fill(false);
  const order: number[] = [];
  const search = (): boolean => {
    // Done when every completed operation is placed; unknown ones may be left out.
    if (ops.every((o, i) => used[i] || o.complete === null)) {
      let state: string | null = null;
      for (const i of order) {
        const o = ops[i]!;
        if (o.kind === 'write') state = o.value;
        else if (o.value !== state) return false;
      }
      return true;
    }
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      // i may come next only if no unplaced operation finished before i began.
      if (ops.some((o, j) => !used[j] && j !== i && end(o) < ops[i]!.invoke)) continue;
      used[i] = true;
      order.push(i);
      if (search()) return true;
      order.pop();
      used[i] = false;
    }
    return false;
  };
  return search();
}

import { describe, expect, it } from 'vitest';
import { Proposals, type AppendResult } from '../../src/log/proposals.js';
import { seeded, testSeed } from '../seeded.js';

const origin = Uint8Array.of(2, 1, 0, 0, 0, 0, 0, 0, 0, 9);

/** An append as a test sees it: how it settled, once it has. */
interface Outcome {
  seq: number;
  value?: AppendResult<string>;
  code?: string;
}

function track(proposals: Proposals<string>, bytes = 10): Outcome {
  const o: Outcome = { seq: 0 };
  o.seq = proposals.add(
    (r) => (o.value = r),
    (e) => (o.code = (e as { code?: string }).code ?? 'NO_CODE'),
    bytes,
  );
  return o;
}

describe('Proposals', () => {
  it('settles every append exactly once, in any order, across ring growth, with size and bytes kept', () => {
    const random = seeded(testSeed('proposals test'));
    const rand = (n: number): number => Math.floor(random() * n);
    const settled: Array<{ err: Error | null; started: number }> = [];
    const p = new Proposals<string>(origin, (err, started) => settled.push({ err, started }));
    const live = new Map<number, Outcome>();
    const order: number[] = []; // the live seqs, oldest first
    let sizeWrongAt: string | undefined;
    const done: Outcome[] = [];
    let index = 0;
    for (let step = 0; step < 20_000; step++) {
      const op = rand(100);
      if (op < 55 || live.size === 0) {
        const o = track(p, 1 + rand(50));
        live.set(o.seq, o);
        order.push(o.seq);
        if (rand(2) === 0) p.markProposed(o.seq, o.seq);
      } else {
        // Settle one: the oldest most of the time (as commits do), any other now and then,
        // so that an old append holds the ring's head while thousands pass it.
        const k = rand(10) < 7 ? 0 : rand(order.length);
        const seq = order[k]!;
        order.splice(k, 1);
        const o = live.get(seq)!;
        live.delete(seq);
        done.push(o);
        if (rand(4) === 0) p.expire(seq, 'timed out');
        else p.applied(seq, ++index, 1, 0, `r${seq}`);
      }
      // A plain comparison per step (an expect per step costs more than the model itself).
      if (p.size !== live.size && sizeWrongAt === undefined) sizeWrongAt = `step ${step}: size ${p.size}, model ${live.size}`;
    }
    expect(sizeWrongAt).toBeUndefined();
    expect(p.bytes).toBeGreaterThan(0);
    // Each append's fate, described; the ones that are wrong are collected and shown together.
    const wrong: string[] = [];
    for (const o of done) {
      const ok =
        !p.isPending(o.seq) &&
        (o.value !== undefined
          ? o.code === undefined && o.value.result === `r${o.seq}`
          : o.code === 'APPEND_NOT_COMMITTED' || o.code === 'APPEND_OUTCOME_UNKNOWN');
      if (!ok) wrong.push(`settled ${o.seq}: pending ${p.isPending(o.seq)}, value ${JSON.stringify(o.value)}, code ${o.code}`);
    }
    for (const o of live.values()) {
      if (!p.isPending(o.seq) || o.value !== undefined || o.code !== undefined) wrong.push(`live ${o.seq}: pending ${p.isPending(o.seq)}, code ${o.code}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(settled).toHaveLength(done.length);
    p.failAll(new Error('closed'));
    expect(p.size).toBe(0);
    expect(p.bytes).toBe(0);
    for (const o of live.values()) expect(o.code).toBe('NO_CODE');
  });

  it('fails the appends of a batch whose place as leader was committed with another entry, or in another term', () => {
    const p = new Proposals<string>(origin);
    const [a1, a2, b, c] = [track(p), track(p), track(p), track(p)];
    p.markProposed(a1.seq, a2.seq, 5, 2);
    p.markProposed(b.seq, b.seq, 6, 2);
    p.markProposed(c.seq, c.seq, 7, 2);
    p.entryApplied(5, 2, a1.seq); // its own batch at its place
    p.applied(a1.seq, 5, 2, 0, 'ok');
    p.applied(a2.seq, 5, 2, 1, 'ok too');
    p.entryApplied(6, 3, -1); // someone else's batch at b's place
    p.entryApplied(7, 3, c.seq); // c's own batch, but at its place in a later term
    expect(a1.value).toEqual({ index: 5, term: 2, offset: 0, result: 'ok' });
    expect(a2.value).toEqual({ index: 5, term: 2, offset: 1, result: 'ok too' });
    expect(b.code).toBe('APPEND_NOT_COMMITTED');
    expect(c.code).toBe('APPEND_NOT_COMMITTED');
    expect(p.size).toBe(0);
  });

  it('fails every append of a batch whose place holds a batch that starts at another seq', () => {
    const p = new Proposals<string>(origin);
    const [a, b, c] = [track(p), track(p), track(p)];
    p.markProposed(a.seq, c.seq, 4, 1);
    p.entryApplied(4, 1, b.seq);
    expect([a.code, b.code, c.code]).toEqual(['APPEND_NOT_COMMITTED', 'APPEND_NOT_COMMITTED', 'APPEND_NOT_COMMITTED']);
  });

  it('leaves pending an append whose place the applied stream passed over, until its record or its timeout', () => {
    const p = new Proposals<string>(origin);
    const [a, b] = [track(p), track(p)];
    p.markProposed(a.seq, a.seq, 3, 1);
    p.markProposed(b.seq, b.seq, 4, 1);
    p.entryApplied(9, 1, -1); // a snapshot covered 3 and 4: committed or not, unknown
    expect(p.size).toBe(2);
    p.entryApplied(10, 2, a.seq);
    p.applied(a.seq, 10, 2, 0, 'found'); // a's record, re-proposed elsewhere, came through after all
    expect(a.value).toEqual({ index: 10, term: 2, offset: 0, result: 'found' });
    p.expire(b.seq, 'timed out');
    expect(b.code).toBe('APPEND_OUTCOME_UNKNOWN');
  });

  it('on a lost leader fails the proposed appends as unknown and keeps the ones raft has not taken', () => {
    const p = new Proposals<string>(origin);
    const [a, b] = [track(p), track(p)];
    p.markProposed(a.seq, a.seq, 1, 1);
    p.leaderLost('gone');
    expect(a.code).toBe('APPEND_OUTCOME_UNKNOWN');
    expect(b.code).toBeUndefined();
    expect(p.isPending(b.seq)).toBe(true);
    p.expire(b.seq, 'timed out');
    expect(b.code).toBe('APPEND_NOT_COMMITTED');
  });
});

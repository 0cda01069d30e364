import { describe, expect, it } from 'vitest';
import { LogChecker } from './log-checker.js';

/** A healthy history: nodes 1 and 2 apply a1..a3 at 1..3 (with a gap at 2 for a leader's empty entry). */
function healthy(): LogChecker {
  const c = new LogChecker();
  c.lifetime(1);
  c.lifetime(2);
  c.apply(1, 1, 1, 'a1');
  c.apply(1, 3, 2, 'a3');
  c.ack('a3', 3, 2);
  c.apply(2, 1, 1, 'a1');
  c.apply(2, 3, 2, 'a3');
  return c;
}

describe('LogChecker', () => {
  it('accepts a healthy history, restarts and snapshot restores included', () => {
    const c = healthy();
    c.lifetime(2); // node 2 restarts from a snapshot at 3, then applies 4
    c.restore(2, 3, [
      [1, 'a1'],
      [3, 'a3'],
    ]);
    c.apply(2, 4, 2, 'a4');
    c.apply(1, 4, 2, 'a4');
    c.ack('a4', 4, 2);
    c.rejectedNotCommitted('never');
    const h = [
      [1, 'a1'],
      [3, 'a3'],
      [4, 'a4'],
    ] as [number, string][];
    c.finish(
      new Map([
        [1, h],
        [2, h],
      ]),
      4,
    );
    expect(c.violations).toEqual([]);
  });

  it('catches two nodes applying different records at one index', () => {
    const c = healthy();
    c.apply(1, 4, 2, 'x');
    c.apply(2, 4, 2, 'y');
    expect(c.violations.join()).toMatch(/divergence at index 4/);
  });

  it('catches an index applied twice in one lifetime, and a record committed at two indexes', () => {
    const c = healthy();
    c.apply(1, 3, 2, 'a3');
    expect(c.violations.join()).toMatch(/node 1 applied index 3 after 3 in one lifetime/);
    const d = healthy();
    d.apply(1, 5, 2, 'a1');
    expect(d.violations.join()).toMatch(/record a1 is committed twice: at 1 and at 5/);
  });

  it('catches an acknowledged append at the wrong place, and one lost by the end', () => {
    const c = healthy();
    c.ack('a1', 3, 2);
    expect(c.violations.join()).toMatch(/append a1 resolved at 3\/2 but a3\/2 is committed there/);
    const d = healthy();
    d.ack('ghost', 9, 2);
    expect(d.violations.join()).toMatch(/no node has applied index 9/);
    const e = healthy();
    const lost = [[1, 'a1']] as [number, string][];
    e.finish(new Map([[1, lost]]), 3);
    expect(e.violations.join()).toMatch(/node 1's history differs/);
    expect(e.violations.join()).toMatch(/acknowledged append a3 at 3 is missing/);
  });

  it('catches a record that was rejected as not committed but committed anyway, whichever comes first', () => {
    const c = healthy();
    c.rejectedNotCommitted('a1');
    expect(c.violations.join()).toMatch(/a1 rejected as not committed, but it is committed at 1/);
    const d = healthy();
    d.rejectedNotCommitted('late');
    d.apply(1, 4, 2, 'late');
    expect(d.violations.join()).toMatch(/late was rejected as not committed but node 1 applied it/);
  });

  it('catches a snapshot that goes back or holds records beyond its index, and a term mismatch', () => {
    const c = healthy();
    c.restore(1, 1, [[1, 'a1']]);
    expect(c.violations.join()).toMatch(/restored a snapshot at 1 after applying 3/);
    const d = healthy();
    d.lifetime(1);
    d.restore(1, 1, [
      [1, 'a1'],
      [3, 'a3'],
    ]);
    expect(d.violations.join()).toMatch(/holding a record at 3/);
    const e = healthy();
    e.apply(1, 4, 2, 'a4');
    e.apply(2, 4, 3, 'a4');
    expect(e.violations.join()).toMatch(/index 4 applied with term 3 on node 2, 2 on node 1/);
  });

  it('catches a stale barrier: it resolved before the node applied an append acknowledged earlier', () => {
    const c = healthy();
    c.barrier(2, 3);
    expect(c.violations).toEqual([]);
    c.barrier(2, 4);
    expect(c.violations.join()).toMatch(/barrier on node 2 resolved with 3 applied.*at 4 \(stale read\)/);
  });
});

import { describe, expect, it } from 'vitest';
import { LogChecker, position as at } from './log-checker.js';

/**
 * A healthy history: nodes 1 and 2 apply a1 at 1.0, then a3 and b3 as one batch at
 * 3.0 and 3.1 (index 2 is a leader's empty entry).
 */
function healthy(): LogChecker {
  const c = new LogChecker();
  c.lifetime(1);
  c.lifetime(2);
  c.apply(1, at(1, 0), 1, 'a1');
  c.apply(1, at(3, 0), 2, 'a3');
  c.apply(1, at(3, 1), 2, 'b3');
  c.ack('a3', at(3, 0), 2);
  c.ack('b3', at(3, 1), 2);
  c.apply(2, at(1, 0), 1, 'a1');
  c.apply(2, at(3, 0), 2, 'a3');
  c.apply(2, at(3, 1), 2, 'b3');
  return c;
}

const history = (...records: Array<[number, number, string]>): Array<[number, string]> => records.map(([i, o, p]) => [at(i, o), p]);

describe('LogChecker', () => {
  it('accepts a healthy history, restarts, snapshot restores and streams included', () => {
    const c = healthy();
    c.lifetime(2); // node 2 restarts from a snapshot at 3, then applies 4
    c.restore(2, 3, history([1, 0, 'a1'], [3, 0, 'a3'], [3, 1, 'b3']));
    c.apply(2, at(4, 0), 2, 'a4');
    c.apply(1, at(4, 0), 2, 'a4');
    c.ack('a4', at(4, 0), 2);
    c.rejectedNotCommitted('never');
    c.streamed(1, at(1, 0), at(1, 0) - 1, 'a1');
    c.streamed(1, at(3, 0), at(1, 0), 'a3'); // over the empty entry at 2
    c.streamed(1, at(3, 1), at(3, 0), 'b3');
    c.streamed(1, at(4, 0), at(3, 1), 'a4');
    const h = history([1, 0, 'a1'], [3, 0, 'a3'], [3, 1, 'b3'], [4, 0, 'a4']);
    c.finish(
      new Map([
        [1, h],
        [2, h],
      ]),
      4,
    );
    expect(c.violations).toEqual([]);
  });

  it('catches two nodes applying different records at one position', () => {
    const c = healthy();
    c.apply(1, at(4, 1), 2, 'x');
    c.apply(2, at(4, 1), 2, 'y');
    expect(c.violations.join()).toMatch(/divergence at 4\.1/);
  });

  it('catches a position applied twice in one lifetime, and a record committed at two positions', () => {
    const c = healthy();
    c.apply(1, at(3, 1), 2, 'b3');
    expect(c.violations.join()).toMatch(/node 1 applied 3\.1 after 3\.1 in one lifetime/);
    const b = healthy();
    b.apply(1, at(3, 0), 2, 'a3'); // back inside an entry
    expect(b.violations.join()).toMatch(/node 1 applied 3\.0 after 3\.1/);
    const d = healthy();
    d.apply(1, at(5, 0), 2, 'a1');
    expect(d.violations.join()).toMatch(/record a1 is committed twice: at 1\.0 and at 5\.0/);
  });

  it('catches an acknowledged append at the wrong place, and one lost by the end', () => {
    const c = healthy();
    c.ack('a1', at(3, 0), 2);
    expect(c.violations.join()).toMatch(/append a1 resolved at 3\.0\/2 but a3\/2 is committed there/);
    const o = healthy();
    o.ack('a3', at(3, 1), 2); // the right entry, the wrong offset
    expect(o.violations.join()).toMatch(/append a3 resolved at 3\.1\/2 but b3\/2/);
    const d = healthy();
    d.ack('ghost', at(9, 0), 2);
    expect(d.violations.join()).toMatch(/resolved at 9\.0\/2 but no node has applied there/);
    const e = healthy();
    e.finish(new Map([[1, history([1, 0, 'a1'], [3, 0, 'a3'])]]), 3); // b3 lost
    expect(e.violations.join()).toMatch(/node 1's history differs/);
    expect(e.violations.join()).toMatch(/acknowledged append b3 at 3\.1 is missing/);
  });

  it('catches a stream that skips a record, within an entry or a whole one', () => {
    const c = healthy();
    c.streamed(1, at(3, 1), at(3, 0) - 1, 'b3');
    expect(c.violations.join()).toMatch(/skipped a3 at 3\.0/);
    const d = healthy();
    d.streamed(1, at(3, 0), at(1, 0) - 1, 'a3');
    expect(d.violations.join()).toMatch(/skipped a1 at 1\.0/);
  });

  it('catches a record that was rejected as not committed but committed anyway, whichever comes first', () => {
    const c = healthy();
    c.rejectedNotCommitted('a1');
    expect(c.violations.join()).toMatch(/a1 rejected as not committed, but it is committed at 1\.0/);
    const d = healthy();
    d.rejectedNotCommitted('late');
    d.apply(1, at(4, 0), 2, 'late');
    expect(d.violations.join()).toMatch(/late was rejected as not committed but node 1 applied it/);
  });

  it('catches a snapshot that goes back or holds records beyond its index, and a term mismatch', () => {
    const c = healthy();
    c.restore(1, 1, history([1, 0, 'a1']));
    expect(c.violations.join()).toMatch(/restored a snapshot at 1 after applying 3\.1/);
    const d = healthy();
    d.lifetime(1);
    d.restore(1, 1, history([1, 0, 'a1'], [3, 0, 'a3']));
    expect(d.violations.join()).toMatch(/holding a record at 3\.0/);
    const e = healthy();
    e.apply(1, at(4, 0), 2, 'a4');
    e.apply(2, at(4, 0), 3, 'a4');
    expect(e.violations.join()).toMatch(/4\.0 applied with term 3 on node 2, 2 on node 1/);
  });

  it('catches a stale barrier: it resolved before the node applied an append acknowledged earlier', () => {
    const c = healthy();
    c.barrier(2, at(3, 1));
    expect(c.violations).toEqual([]);
    c.barrier(2, at(4, 0));
    expect(c.violations.join()).toMatch(/barrier on node 2 resolved with 3\.1 applied.*at 4\.0 \(stale read\)/);
  });
});

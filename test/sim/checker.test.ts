// The checkers must be able to fail: each case feeds a deliberately broken
// history and expects the matching invariant to be reported, and one healthy
// history must pass untouched.
import { describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '../../src/raft/types.js';
import { InvariantChecker, InvariantViolation, entryKey, mixHash } from './checker.js';

const enc = new TextEncoder();
function ent(index: number, term: number, data = `e${index}t${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: enc.encode(data) };
}

const everyoneHasIt = (): boolean => true;

/** Three nodes that all start empty. */
function fresh(): InvariantChecker {
  const c = new InvariantChecker();
  for (const id of [1, 2, 3]) c.nodeStarted(id, { term: 0, commit: 0, snapIndex: 0, snapTerm: 0, entries: [] });
  return c;
}

/** Node 1 leads term 1 and commits entries 1..2, replicated to all. */
function withCommitted(): InvariantChecker {
  const c = fresh();
  const log = [ent(1, 1), ent(2, 1)];
  for (const id of [1, 2, 3]) c.logAppended(id, log);
  c.roleObserved(1, 1, true);
  c.commitObserved(1, 2, [1, 2, 3], everyoneHasIt);
  return c;
}

function violation(f: () => void): InvariantViolation {
  try {
    f();
  } catch (err) {
    if (err instanceof InvariantViolation) return err;
    throw err;
  }
  throw new Error('the checker accepted a broken history');
}

describe('InvariantChecker', () => {
  it('accepts a healthy history', () => {
    const c = withCommitted();
    let hash = 0;
    for (const e of [ent(1, 1), ent(2, 1)]) {
      hash = mixHash(hash, entryKey(e));
      for (const id of [1, 2, 3]) {
        if (id !== 1) c.commitObserved(id, e.index, [1, 2, 3], everyoneHasIt);
      }
    }
    hash = 0;
    for (const e of [ent(1, 1), ent(2, 1)]) {
      hash = mixHash(hash, entryKey(e));
      for (const id of [1, 2, 3]) c.applied(id, e, hash);
    }
    c.roleObserved(1, 2, false);
    c.logAppended(2, [ent(3, 2)]);
    c.roleObserved(2, 2, true);
    c.durableHardStateObserved(1, { term: 1, vote: 1, commit: 2 });
    c.durableHardStateObserved(1, { term: 2, vote: 2, commit: 2 });
    expect(c.commitIndex).toBe(2);
    expect(c.appliedIndex(3)).toBe(2);
  });

  it('reports two leaders in one term', () => {
    const c = fresh();
    c.roleObserved(1, 3, true);
    c.roleObserved(2, 3, false);
    const v = violation(() => c.roleObserved(2, 3, true));
    expect(v.invariant).toBe('election-safety');
    expect(v.message).toContain('term 3');
  });

  it('reports a diverging applied sequence', () => {
    const c = withCommitted();
    c.commitObserved(2, 2, [1, 2, 3], everyoneHasIt);
    const h1 = mixHash(0, entryKey(ent(1, 1)));
    c.applied(1, ent(1, 1), h1);
    const other = ent(1, 1, 'something else');
    const v = violation(() => c.applied(2, other, mixHash(0, entryKey(other))));
    expect(v.invariant).toBe('applied-prefix');
  });

  it('reports an applied gap and applying beyond commit', () => {
    const c = withCommitted();
    expect(violation(() => c.applied(1, ent(2, 1), 0)).invariant).toBe('applied-prefix');
    const c2 = withCommitted();
    // node 3 never heard of the commit
    expect(violation(() => c2.applied(3, ent(1, 1), mixHash(0, entryKey(ent(1, 1))))).message).toContain('beyond its commit');
  });

  it('reports a restored snapshot whose state differs from the common sequence', () => {
    const c = withCommitted();
    c.applied(1, ent(1, 1), mixHash(0, entryKey(ent(1, 1))));
    expect(violation(() => c.stateRestored(2, 1, 12345)).invariant).toBe('applied-prefix');
  });

  it('reports two logs that disagree at the same index and term', () => {
    const c = fresh();
    c.logAppended(1, [ent(1, 1, 'a')]);
    const v = violation(() => c.logAppended(2, [ent(1, 1, 'b')]));
    expect(v.invariant).toBe('log-matching');
  });

  it('reports logs that agree at an entry but not before it', () => {
    const c = fresh();
    c.logAppended(1, [ent(1, 1), ent(2, 3)]);
    c.logAppended(2, [ent(1, 2)]);
    const v = violation(() => c.logAppended(2, [ent(2, 3)]));
    expect(v.invariant).toBe('log-matching');
    expect(v.message).toContain('after term 2');
  });

  it('reports a committed entry being truncated', () => {
    const c = withCommitted();
    const v = violation(() => c.logAppended(3, [ent(2, 5)]));
    expect(v.invariant).toBe('log-matching');
    expect(v.message).toContain('truncated committed entry 2');
  });

  it('lets a leader of a term before the commit overwrite a copy outside the majority that committed it', () => {
    const c = fresh();
    for (const id of [1, 2, 3]) c.logAppended(id, [ent(1, 1), ent(2, 1)]);
    for (const id of [1, 2]) c.logAppended(id, [ent(3, 3)]);
    c.roleObserved(2, 3, true);
    c.commitObserved(2, 3, [1, 2, 3], everyoneHasIt);
    // Node 3 hears from the cut-off leader of term 2 only now.
    c.logAppended(3, [ent(2, 2)]);
    // The leader of the committing term never may.
    expect(violation(() => c.logAppended(1, [ent(2, 3, 'x')])).message).toContain('truncated committed entry 2');
  });

  it('reports a later leader that lacks a committed entry', () => {
    const c = fresh();
    for (const id of [1, 2]) c.logAppended(id, [ent(1, 1), ent(2, 1)]);
    c.logAppended(3, [ent(1, 1)]);
    c.roleObserved(1, 1, true);
    c.commitObserved(1, 2, [1, 2, 3], everyoneHasIt);
    const v = violation(() => c.roleObserved(3, 2, true));
    expect(v.invariant).toBe('leader-completeness');
    expect(v.message).toContain('lacks entry 2');
  });

  it('reports a commit that only a minority had persisted', () => {
    const c = fresh();
    for (const id of [1, 2, 3]) c.logAppended(id, [ent(1, 1)]);
    c.roleObserved(1, 1, true);
    const onlyLeader = (node: number): boolean => node === 1;
    const v = violation(() => c.commitObserved(1, 1, [1, 2, 3], onlyLeader));
    expect(v.invariant).toBe('commit-durable-on-majority');
  });

  it('reports a follower that commits what no leader committed', () => {
    const c = fresh();
    for (const id of [1, 2, 3]) c.logAppended(id, [ent(1, 1)]);
    c.roleObserved(1, 1, true);
    c.roleObserved(2, 1, false);
    const v = violation(() => c.commitObserved(2, 1, [1, 2, 3], everyoneHasIt));
    expect(v.invariant).toBe('commit-durable-on-majority');
    expect(v.message).toContain('not leading');
  });

  it('reports commit going backwards, in memory and on disk', () => {
    const c = withCommitted();
    expect(violation(() => c.commitObserved(1, 1, [1, 2, 3], everyoneHasIt)).invariant).toBe('commit-monotonic');
    c.durableHardStateObserved(2, { term: 1, vote: 1, commit: 2 });
    expect(violation(() => c.durableHardStateObserved(2, { term: 1, vote: 1, commit: 1 })).invariant).toBe('commit-monotonic');
    expect(violation(() => c.nodeStarted(2, { term: 1, commit: 1, snapIndex: 0, snapTerm: 0, entries: [] })).invariant).toBe('commit-monotonic');
  });

  it('reports a second vote in the same term', () => {
    const c = fresh();
    c.durableHardStateObserved(3, { term: 4, vote: 1, commit: 0 });
    expect(violation(() => c.durableHardStateObserved(3, { term: 4, vote: 2, commit: 0 })).invariant).toBe('one-vote-per-term');
  });

  it('reports a commit beyond the log', () => {
    const c = fresh();
    c.logAppended(1, [ent(1, 1)]);
    c.roleObserved(1, 1, true);
    expect(violation(() => c.commitObserved(1, 2, [1, 2, 3], everyoneHasIt)).invariant).toBe('commit-in-log');
  });

  it('reports a member still sent, past the allowance, a snapshot that does not name it', () => {
    const c = fresh();
    const old = { index: 40, term: 2, conf: { voters: [1, 2, 3], learners: [] } };
    const withFour = { voters: [1, 2, 3], learners: [4] };
    c.snapshotSent(1, withFour, 4, old, 1000, 100);
    c.snapshotSent(1, withFour, 4, old, 1100, 100);
    const v = violation(() => c.snapshotSent(1, withFour, 4, old, 1101, 100));
    expect(v.invariant).toBe('snapshot-for-new-member');
    expect(v.message).toContain('snapshot 40');
  });

  it('starts the allowance again for a member removed and added back', () => {
    const c = fresh();
    const old = { index: 40, term: 2, conf: { voters: [1, 2, 3], learners: [] } };
    const withFour = { voters: [1, 2, 3], learners: [4] };
    c.snapshotSent(1, withFour, 4, old, 1000, 100);
    c.confApplied(1, { voters: [1, 2, 3], learners: [] });
    // Added back at t=1500: a snapshot taken before then may be sent for another allowance.
    c.snapshotSent(1, withFour, 4, old, 1550, 100);
    c.snapshotSent(1, withFour, 4, old, 1650, 100);
    expect(violation(() => c.snapshotSent(1, withFour, 4, old, 1651, 100)).invariant).toBe('snapshot-for-new-member');
  });

  it('accepts a snapshot taken in a joint configuration that names the member only as an outgoing voter', () => {
    const c = fresh();
    // Node 1 is being demoted: the snapshot at 128 was taken while joint, and the sender has since left.
    const joint = { index: 128, term: 8, conf: { voters: [2, 3], votersOutgoing: [1, 2, 3], learners: [], learnersNext: [1] } };
    const after = { voters: [2, 3], learners: [1] };
    for (const now of [4723, 4912, 8000]) expect(() => c.snapshotSent(2, after, 1, joint, now, 100)).not.toThrow();
  });
});

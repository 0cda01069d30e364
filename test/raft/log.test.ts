// The log as the core sees it: storage plus the unstable tail.
import { describe, expect, it } from 'vitest';
import { RaftLog } from '../../src/raft/log.js';
import { Unstable } from '../../src/raft/log-unstable.js';
import { MemoryStorage } from '../../src/raft/index.js';
import { ents } from './network.js';

function logWith(stored: number[], unstable: number[] = []): RaftLog {
  const s = MemoryStorage.withConf([1]);
  s.append(ents(1, stored));
  const l = new RaftLog(s, 1 << 20);
  if (unstable.length > 0) l.append(ents(stored.length + 1, unstable));
  return l;
}

describe('RaftLog', () => {
  // Log terms [1, 1, 2, 2, 2, 5, 5] (indexes 1..7).
  const findByTerm: { index: number; term: number; want: [number, number] }[] = [
    { index: 7, term: 5, want: [7, 5] },
    { index: 7, term: 4, want: [5, 2] },
    { index: 7, term: 2, want: [5, 2] },
    { index: 4, term: 2, want: [4, 2] },
    { index: 7, term: 1, want: [2, 1] },
    { index: 7, term: 0, want: [0, 0] },
    { index: 20, term: 9, want: [7, 5] },
  ];
  for (const c of findByTerm) {
    it(`findConflictByTerm(${c.index}, ${c.term}) -> ${JSON.stringify(c.want)}`, () => {
      const l = logWith([1, 1, 2], [2, 2, 5, 5]);
      const r = l.findConflictByTerm(c.index, c.term);
      expect([r.index, r.term]).toEqual(c.want);
    });
  }

  const conflicts: { name: string; first: number; terms: number[]; want: number }[] = [
    { name: 'all present', first: 1, terms: [1, 1, 2], want: 0 },
    { name: 'new entries after the end', first: 3, terms: [2, 3], want: 4 },
    { name: 'term mismatch inside', first: 2, terms: [1, 3], want: 3 },
    { name: 'empty', first: 1, terms: [], want: 0 },
  ];
  for (const c of conflicts) {
    it(`findConflict: ${c.name}`, () => expect(logWith([1, 1, 2]).findConflict(ents(c.first, c.terms))).toBe(c.want));
  }

  it('isUpToDate compares last term, then last index', () => {
    const l = logWith([1, 2, 2]);
    expect([l.isUpToDate(3, 2), l.isUpToDate(2, 2), l.isUpToDate(1, 3), l.isUpToDate(9, 1)]).toEqual([true, false, true, false]);
  });

  it('slices across storage and the unstable tail, limited by size', () => {
    const l = logWith([1, 1, 1], [2, 2]);
    expect(l.slice(2, 6, 1 << 20).map((e) => e.index)).toEqual([2, 3, 4, 5]);
    // Each test entry is ~26 bytes: 2 entries fit in 60.
    expect(l.slice(2, 6, 60).map((e) => e.index)).toEqual([2, 3]);
    expect(l.slice(3, 6, 60).map((e) => e.index)).toEqual([3, 4]);
    expect(l.slice(2, 6, 1).map((e) => e.index)).toEqual([2]);
    expect(() => l.slice(0, 2, 100)).toThrow(expect.objectContaining({ code: 'RAFT_COMPACTED' }));
    expect(() => l.slice(5, 7, 100)).toThrow(expect.objectContaining({ code: 'RAFT_UNAVAILABLE' }));
  });

  it('refuses to overwrite committed entries', () => {
    const l = logWith([1, 1, 1]);
    l.commitTo(2);
    expect(() => l.append(ents(2, [3]))).toThrow(expect.objectContaining({ code: 'RAFT_CORRUPT_STATE' }));
    expect(() => l.commitTo(9)).toThrow(expect.objectContaining({ code: 'RAFT_CORRUPT_STATE' }));
    expect(l.committed).toBe(2);
  });

  it('Figure 8: maybeCommit only commits an index of the given term', () => {
    const l = logWith([1, 2, 3]);
    expect(l.maybeCommit(2, 3)).toBe(false);
    expect(l.committed).toBe(0);
    expect(l.maybeCommit(3, 3)).toBe(true);
    expect(l.committed).toBe(3);
  });
});

describe('Unstable', () => {
  it('hands entries out once, and stableTo drops only a matching prefix', () => {
    const u = new Unstable(5);
    u.truncateAndAppend(ents(5, [1, 1, 1]));
    expect(u.nextEntries().map((e) => e.index)).toEqual([5, 6, 7]);
    u.acceptInProgress();
    expect(u.nextEntries()).toEqual([]);
    u.truncateAndAppend(ents(8, [1]));
    expect(u.nextEntries().map((e) => e.index)).toEqual([8]);
    u.stableTo(6, 2); // wrong term: ignored
    expect(u.offset).toBe(5);
    u.stableTo(6, 1);
    expect([u.offset, u.entries.length, u.offsetInProgress]).toEqual([7, 2, 8]);
  });

  it('an overwrite inside the in-flight range pulls offsetInProgress back', () => {
    const u = new Unstable(1);
    u.truncateAndAppend(ents(1, [1, 1, 1, 1]));
    u.acceptInProgress();
    u.truncateAndAppend(ents(3, [2]));
    expect(u.offsetInProgress).toBe(3);
    expect(u.nextEntries().map((e) => [e.index, e.term])).toEqual([[3, 2]]);
    u.stableTo(4, 1); // the old in-flight write: index 4 is gone
    expect(u.offset).toBe(1);
  });

  it('an overwrite below the offset replaces everything held', () => {
    const u = new Unstable(5);
    u.truncateAndAppend(ents(5, [1, 1]));
    u.truncateAndAppend(ents(3, [2, 2]));
    expect([u.offset, u.offsetInProgress, u.entries.map((e) => e.index)]).toEqual([3, 3, [3, 4]]);
  });
});

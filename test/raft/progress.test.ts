// The building blocks of the leader's flow control and commit arithmetic.
import { describe, expect, it } from 'vitest';
import { Inflights } from '../../src/raft/inflights.js';
import { Progress } from '../../src/raft/progress.js';
import { majorityIndex, voteResult, VoteResult } from '../../src/raft/quorum.js';
import { ProgressStateType } from '../../src/raft/types.js';

const { ProgressStateProbe, ProgressStateReplicate, ProgressStateSnapshot } = ProgressStateType;

describe('majorityIndex (the commit index from voters match indexes)', () => {
  const cases: { matches: number[]; want: number }[] = [
    { matches: [], want: 0 },
    { matches: [5], want: 5 },
    { matches: [1, 2], want: 1 },
    { matches: [2, 1], want: 1 },
    { matches: [1, 2, 3], want: 2 },
    { matches: [3, 1, 2], want: 2 },
    { matches: [5, 5, 1, 1], want: 1 },
    { matches: [5, 5, 5, 1], want: 5 },
    { matches: [9, 1, 8, 2, 7], want: 7 },
    { matches: [0, 0, 0, 10, 10], want: 0 },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.matches)} -> ${c.want}`, () => {
      const scratch = c.matches.slice();
      expect(majorityIndex(scratch, scratch.length)).toBe(c.want);
    });
  }
});

describe('voteResult', () => {
  const cases: { voters: number[]; votes: [number, boolean][]; want: VoteResult }[] = [
    { voters: [1], votes: [], want: VoteResult.VotePending },
    { voters: [1], votes: [[1, true]], want: VoteResult.VoteWon },
    { voters: [1, 2, 3], votes: [[1, true]], want: VoteResult.VotePending },
    {
      voters: [1, 2, 3],
      votes: [
        [1, true],
        [2, true],
      ],
      want: VoteResult.VoteWon,
    },
    {
      voters: [1, 2, 3],
      votes: [
        [1, true],
        [2, false],
      ],
      want: VoteResult.VotePending,
    },
    {
      voters: [1, 2, 3],
      votes: [
        [1, true],
        [2, false],
        [3, false],
      ],
      want: VoteResult.VoteLost,
    },
    {
      voters: [1, 2, 3, 4],
      votes: [
        [1, true],
        [2, true],
      ],
      want: VoteResult.VotePending,
    },
    {
      voters: [1, 2, 3, 4],
      votes: [
        [1, true],
        [2, false],
        [3, false],
      ],
      want: VoteResult.VoteLost,
    },
    // A vote from outside the voters (a learner) never counts.
    {
      voters: [1, 2, 3],
      votes: [
        [1, true],
        [4, true],
      ],
      want: VoteResult.VotePending,
    },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.voters)} ${JSON.stringify(c.votes)} -> ${VoteResult[c.want]}`, () => {
      expect(voteResult(c.voters, new Map(c.votes))).toBe(c.want);
    });
  }
});

describe('Inflights', () => {
  it('is bounded by count, frees in order, and wraps around the ring', () => {
    const w = new Inflights(4, 0);
    for (let i = 1; i <= 4; i++) w.add(i * 10, 100);
    expect(w.full()).toBe(true);
    expect(() => w.add(50, 1)).toThrow(RangeError);
    w.freeLE(25);
    expect([w.size, w.bytes, w.full()]).toEqual([2, 200, false]);
    w.add(50, 100);
    w.add(60, 100);
    expect(w.full()).toBe(true);
    w.freeLE(55);
    expect([w.size, w.bytes]).toEqual([1, 100]);
    w.freeLE(1000);
    expect([w.size, w.bytes, w.full()]).toEqual([0, 0, false]);
  });

  it('is bounded by bytes', () => {
    const w = new Inflights(100, 1000);
    w.add(1, 600);
    expect(w.full()).toBe(false);
    w.add(2, 400);
    expect(w.full()).toBe(true);
    w.freeLE(1);
    expect(w.full()).toBe(false);
  });

  it('ignores a free below the window', () => {
    const w = new Inflights(4, 0);
    w.add(10, 1);
    w.freeLE(5);
    expect(w.size).toBe(1);
  });
});

describe('Progress', () => {
  it('maybeUpdate moves match and next forward only', () => {
    const p = new Progress(5, 8, 0, false);
    p.match = 3;
    expect(p.maybeUpdate(2)).toBe(false);
    expect(p.maybeUpdate(3)).toBe(false);
    expect(p.maybeUpdate(7)).toBe(true);
    expect([p.match, p.next]).toEqual([7, 8]);
  });

  // (state, match, next, rejected, hint) -> (accepted, next)
  const decr: { state: ProgressStateType; match: number; next: number; rejected: number; hint: number; ok: boolean; wantNext: number }[] = [
    { state: ProgressStateReplicate, match: 5, next: 10, rejected: 5, hint: 5, ok: false, wantNext: 10 }, // stale: at or below match
    { state: ProgressStateReplicate, match: 5, next: 10, rejected: 9, hint: 9, ok: true, wantNext: 6 }, // back to match + 1
    { state: ProgressStateProbe, match: 0, next: 10, rejected: 5, hint: 5, ok: false, wantNext: 10 }, // not the outstanding probe
    { state: ProgressStateProbe, match: 0, next: 10, rejected: 9, hint: 9, ok: true, wantNext: 9 },
    { state: ProgressStateProbe, match: 0, next: 10, rejected: 9, hint: 3, ok: true, wantNext: 4 }, // skip to the hint
    { state: ProgressStateProbe, match: 6, next: 10, rejected: 9, hint: 2, ok: true, wantNext: 7 }, // never below match + 1
    { state: ProgressStateProbe, match: 6, next: 7, rejected: 6, hint: 2, ok: false, wantNext: 7 }, // refused at match: nothing new to probe
  ];
  for (const d of decr) {
    it(`maybeDecrTo in ${ProgressStateType[d.state]} match ${d.match} next ${d.next} rejected ${d.rejected} hint ${d.hint}`, () => {
      const p = new Progress(d.next, 8, 0, false);
      p.match = d.match;
      if (d.state === ProgressStateReplicate) {
        p.becomeReplicate();
        p.next = d.next;
      }
      expect(p.maybeDecrTo(d.rejected, d.hint)).toBe(d.ok);
      expect(p.next).toBe(d.wantNext);
    });
  }

  it('probe sends one message then pauses; replicate streams until the window is full', () => {
    const p = new Progress(1, 2, 0, false);
    expect(p.isPaused()).toBe(false);
    p.sentEntries(3, 30);
    expect(p.isPaused()).toBe(true);
    p.maybeUpdate(3);
    p.becomeReplicate();
    expect(p.next).toBe(4);
    p.sentEntries(2, 20);
    expect(p.isPaused()).toBe(false);
    p.sentEntries(2, 20);
    expect([p.next, p.isPaused(), p.inflights.size]).toEqual([8, true, 2]);
  });

  it('snapshot state pauses everything and resumes probing after the snapshot', () => {
    const p = new Progress(1, 8, 0, false);
    p.becomeSnapshot(100);
    expect([p.state, p.isPaused(), p.pendingSnapshot]).toEqual([ProgressStateSnapshot, true, 100]);
    p.becomeProbe();
    expect([p.state, p.next, p.isPaused()]).toEqual([ProgressStateProbe, 101, false]);
  });
});

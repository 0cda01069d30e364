import { describe, expect, it } from 'vitest';
import { VoteResult, hasQuorum, majorityIndex, voteResult } from '../../src/raft/quorum.js';
import { readContextKey } from '../../src/raft/index.js';

describe('quorum arithmetic', () => {
  it('hasQuorum counts only voters, and needs a strict majority', () => {
    expect(hasQuorum([1, 2, 3], new Set([1, 2]))).toBe(true);
    expect(hasQuorum([1, 2, 3], new Set([1, 4, 5]))).toBe(false);
    expect(hasQuorum([1, 2, 3, 4], new Set([1, 2]))).toBe(false);
    expect(hasQuorum([1, 2, 3, 4], new Set([1, 2, 3]))).toBe(true);
    expect(hasQuorum([1], new Set([1]))).toBe(true);
  });

  it('majorityIndex and voteResult agree with the same majority', () => {
    expect(majorityIndex([5, 1, 3], 3)).toBe(3);
    expect(majorityIndex([5, 1, 3, 4], 4)).toBe(3);
    expect(
      voteResult(
        [1, 2, 3],
        new Map([
          [1, true],
          [2, true],
        ]),
      ),
    ).toBe(VoteResult.VoteWon);
    expect(
      voteResult(
        [1, 2, 3],
        new Map([
          [1, true],
          [2, false],
        ]),
      ),
    ).toBe(VoteResult.VotePending);
    expect(
      voteResult(
        [1, 2, 3],
        new Map([
          [2, false],
          [3, false],
        ]),
      ),
    ).toBe(VoteResult.VoteLost);
  });
});

describe('readContextKey', () => {
  it('gives distinct byte strings distinct keys, and equal ones the same key', () => {
    const a = readContextKey(new Uint8Array([0, 255, 1]));
    expect(readContextKey(new Uint8Array([0, 255, 1]))).toBe(a);
    expect(readContextKey(new Uint8Array([0, 255]))).not.toBe(a);
    expect(readContextKey(new Uint8Array([0, 254, 1]))).not.toBe(a);
    expect(readContextKey(new Uint8Array([0xc3, 0xbf]))).not.toBe(readContextKey(new Uint8Array([0xff])));
  });
});

// Membership changes as etcd's confchange package defines them: a change
// applies directly when at most one voter changes, otherwise through a joint
// configuration (incoming and outgoing voters, learnersNext, autoLeave) that a
// later empty change leaves. Table tests of the pure changer and its encoding.
import { describe, expect, it } from 'vitest';
import { ConfChangeType, type ConfChange, type ConfChangeV2, type ConfState } from '../../src/raft/types.js';
import {
  InvalidConfChangeError,
  MAX_CHANGES,
  applyConfChangeV2,
  decodeConfChangeEntry,
  encodeConfChange,
  encodeConfChangeV2,
  leaveJoint,
} from '../../src/raft/index.js';
import { jointVoteResult, VoteResult } from '../../src/raft/quorum.js';

const add = (nodeId: number): ConfChange => ({ type: ConfChangeType.AddNode, nodeId });
const learner = (nodeId: number): ConfChange => ({ type: ConfChangeType.AddLearnerNode, nodeId });
const remove = (nodeId: number): ConfChange => ({ type: ConfChangeType.RemoveNode, nodeId });
const auto = (...changes: ConfChange[]): ConfChangeV2 => ({ transition: 'auto', changes });
const explicit = (...changes: ConfChange[]): ConfChangeV2 => ({ transition: 'explicit', changes });
const LEAVE: ConfChangeV2 = { transition: 'auto', changes: [] };

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

describe('changer: changes that apply', () => {
  const cases: Array<[string, ConfState, ConfChangeV2, ConfState]> = [
    ['one voter added applies directly', { voters: [1], learners: [] }, auto(add(2)), { voters: [1, 2], learners: [] }],
    ['a voter and a learner added: one voter changes, so directly', { voters: [1], learners: [] }, auto(add(2), learner(3)), { voters: [1, 2], learners: [3] }],
    ['a learner promoted', { voters: [1, 2], learners: [3] }, auto(add(3)), { voters: [1, 2, 3], learners: [] }],
    [
      'a voter demoted outside a joint state becomes a learner at once',
      { voters: [1, 2, 3], learners: [] },
      auto(learner(3)),
      { voters: [1, 2], learners: [3] },
    ],
    ['re-adding a learner is a no-op', { voters: [1], learners: [2] }, auto(learner(2)), { voters: [1], learners: [2] }],
    [
      'two voters added: joint, left by the leader',
      { voters: [1], learners: [] },
      auto(add(2), add(3)),
      { voters: [1, 2, 3], learners: [], votersOutgoing: [1], autoLeave: true },
    ],
    [
      'add 2 / remove 2 at once',
      { voters: [1, 2, 3], learners: [] },
      auto(add(4), add(5), remove(2), remove(3)),
      { voters: [1, 4, 5], learners: [], votersOutgoing: [1, 2, 3], autoLeave: true },
    ],
    [
      'replace the leader (remove 1, add 4)',
      { voters: [1, 2, 3], learners: [] },
      auto(remove(1), add(4)),
      { voters: [2, 3, 4], learners: [], votersOutgoing: [1, 2, 3], autoLeave: true },
    ],
    [
      'explicit: joint even for one change, no autoLeave',
      { voters: [1, 2, 3], learners: [] },
      explicit(add(4)),
      { voters: [1, 2, 3, 4], learners: [], votersOutgoing: [1, 2, 3] },
    ],
    [
      'a voter demoted inside a joint change waits in learnersNext',
      { voters: [1, 2, 3], learners: [] },
      explicit(learner(3), add(4)),
      { voters: [1, 2, 4], learners: [], votersOutgoing: [1, 2, 3], learnersNext: [3] },
    ],
    [
      'a learner promoted while another voter leaves',
      { voters: [1, 2, 3], learners: [4] },
      auto(add(4), remove(1)),
      { voters: [2, 3, 4], learners: [], votersOutgoing: [1, 2, 3], autoLeave: true },
    ],
    [
      'a new learner in a joint change is a learner at once',
      { voters: [1, 2], learners: [] },
      explicit(learner(5), add(3)),
      { voters: [1, 2, 3], learners: [5], votersOutgoing: [1, 2] },
    ],
    [
      'learners only, explicit: joint with equal halves',
      { voters: [1, 2], learners: [] },
      explicit(learner(3)),
      { voters: [1, 2], learners: [3], votersOutgoing: [1, 2] },
    ],
    ['a voterless node learns its first voter from the log', { voters: [], learners: [] }, auto(add(1)), { voters: [1], learners: [] }],
  ];
  for (const [name, from, cc, want] of cases) {
    it(name, () => {
      const input = deepFreeze(structuredClone(from));
      expect(applyConfChangeV2(input, deepFreeze(structuredClone(cc)))).toEqual(want);
    });
  }
});

describe('changer: leaving the joint state', () => {
  it('drops the outgoing half and turns learnersNext into learners', () => {
    const joint = applyConfChangeV2({ voters: [1, 2, 3], learners: [7] }, explicit(learner(3), add(4)));
    expect(applyConfChangeV2(joint, LEAVE)).toEqual({ voters: [1, 2, 4], learners: [3, 7] });
    expect(leaveJoint(joint)).toEqual({ voters: [1, 2, 4], learners: [3, 7] });
  });

  it('a removed voter disappears altogether', () => {
    const joint = applyConfChangeV2({ voters: [1, 2, 3], learners: [] }, auto(remove(1), add(4)));
    expect(applyConfChangeV2(joint, LEAVE)).toEqual({ voters: [2, 3, 4], learners: [] });
  });
});

describe('changer: what etcd refuses is refused, and nothing changes', () => {
  const joint: ConfState = { voters: [1, 2, 4], learners: [], votersOutgoing: [1, 2, 3], learnersNext: [3] };
  const cases: Array<[string, ConfState, ConfChangeV2, RegExp]> = [
    ['removing every voter directly', { voters: [1], learners: [] }, auto(remove(1)), /no voters/],
    ['removing every voter through a joint change', { voters: [1, 2], learners: [] }, auto(remove(1), remove(2)), /no voters/],
    ['demoting every voter', { voters: [1, 2], learners: [] }, explicit(learner(1), learner(2)), /no voters/],
    ['entering a joint state while joint', joint, auto(add(5), add(6)), /joint/],
    ['a simple change while joint', joint, auto(add(5)), /joint/],
    ['leaving when not joint', { voters: [1, 2, 3], learners: [] }, LEAVE, /not joint/],
    ['one node named twice', { voters: [1, 2, 3], learners: [] }, auto(add(4), remove(4)), /twice/],
    ['a voterless configuration made joint', { voters: [], learners: [] }, explicit(add(1)), /without voters/],
    ['node id 0', { voters: [1], learners: [] }, auto(add(0)), /positive integer/],
    ['an unsafe node id', { voters: [1], learners: [] }, auto(add(2 ** 53)), /positive integer/],
    ['an unknown change type', { voters: [1], learners: [] }, auto({ type: 9 as ConfChangeType, nodeId: 2 }), /unknown type/],
    ['an unknown transition', { voters: [1], learners: [] }, { transition: 'implicit' as 'auto', changes: [add(2)] }, /unknown transition/],
  ];
  for (const [name, from, cc, why] of cases) {
    it(name, () => {
      const input = deepFreeze(structuredClone(from));
      let err: unknown;
      try {
        applyConfChangeV2(input, cc);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidConfChangeError);
      expect((err as InvalidConfChangeError).code).toBe('RAFT_INVALID_CONF_CHANGE');
      expect((err as Error).message).toMatch(why);
      expect(input).toEqual(from);
    });
  }
});

describe('joint quorums', () => {
  const votes = (granted: number[], rejected: number[] = []): Map<number, boolean> =>
    new Map([...granted.map((id): [number, boolean] => [id, true]), ...rejected.map((id): [number, boolean] => [id, false])]);
  const cases: Array<[string, number[], number[], Map<number, boolean>, VoteResult]> = [
    ['not joint: the incoming majority decides', [1, 2, 3], [], votes([1, 2]), VoteResult.VoteWon],
    ['won in both halves', [1, 4, 5], [1, 2, 3], votes([1, 2, 4]), VoteResult.VoteWon],
    ['won in the outgoing half only: pending', [1, 4, 5], [1, 2, 3], votes([1, 2, 3]), VoteResult.VotePending],
    ['won in the incoming half only: pending', [1, 4, 5], [1, 2, 3], votes([1, 4, 5]), VoteResult.VotePending],
    ['lost in the outgoing half: lost', [1, 4, 5], [1, 2, 3], votes([1, 4, 5], [2, 3]), VoteResult.VoteLost],
    ['lost in the incoming half: lost', [1, 4, 5], [1, 2, 3], votes([1, 2, 3], [4, 5]), VoteResult.VoteLost],
    ['nothing yet: pending', [1, 4, 5], [1, 2, 3], votes([]), VoteResult.VotePending],
  ];
  for (const [name, incoming, outgoing, v, want] of cases) it(name, () => expect(jointVoteResult(incoming, outgoing, v)).toBe(want));
});

describe('ConfChangeV2 entries', () => {
  const ctx = new TextEncoder().encode('10.0.0.4:7000');
  const round: Array<[string, ConfChangeV2]> = [
    ['leave joint', LEAVE],
    ['explicit with contexts', explicit({ type: ConfChangeType.AddNode, nodeId: 4, context: ctx }, remove(2), learner(9))],
    ['auto', auto(add(4), add(5), remove(2), remove(3))],
  ];
  for (const [name, cc] of round) it(`round-trips ${name}`, () => expect(decodeConfChangeEntry(encodeConfChangeV2(cc))).toEqual(cc));

  it('reads a single-change entry (format 1) as an auto change of one', () => {
    expect(decodeConfChangeEntry(encodeConfChange({ type: ConfChangeType.AddNode, nodeId: 4, context: ctx }))).toEqual({
      transition: 'auto',
      changes: [{ type: ConfChangeType.AddNode, nodeId: 4, context: ctx }],
    });
  });

  const good = encodeConfChangeV2(explicit({ type: ConfChangeType.AddNode, nodeId: 4, context: ctx }, remove(2)));
  const patched = (at: number, value: number): Uint8Array => {
    const b = good.slice();
    b[at] = value;
    return b;
  };
  const tooMany = new Uint8Array(4);
  new DataView(tooMany.buffer).setUint16(2, MAX_CHANGES + 1, true);
  const bad: Array<[string, Uint8Array]> = [
    ['empty data', new Uint8Array(0)],
    ['an unknown format', patched(0, 7)],
    ['a truncated header', good.slice(0, 3)],
    ['an unknown transition', patched(1, 5)],
    ['a change cut short', good.slice(0, good.length - 3)],
    ['trailing bytes', Uint8Array.from([...good, 0])],
    ['a context length past the end', patched(4 + 9 + 3, 0x7f)],
    ['more changes than the limit', tooMany],
    ['an unknown change type', patched(4, 9)],
  ];
  for (const [name, data] of bad) it(`refuses ${name}`, () => expect(() => decodeConfChangeEntry(data)).toThrow(InvalidConfChangeError));

  it('refuses to encode a node named twice', () => expect(() => encodeConfChangeV2(auto(add(4), add(4)))).toThrow(/twice/));
});

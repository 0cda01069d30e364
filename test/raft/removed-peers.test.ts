// A node that applied a removal keeps the removed id from leading it again in the term it saw the removal
// (a removed leader that never learned of it must not take it over), but hears that id at a later term: the id
// was added back (the scenario testdata/readded-leader-catches-up.txt tells the whole story). A node that does
// not campaign (removed, or a learner) hears any unknown leader of a later term; every node answers an unknown
// leader of an earlier term with its own term, as Raft answers any stale leader.
import { describe, expect, it } from 'vitest';
import { Network, drain, msg, newNode } from './network.js';
import { ConfChangeType, EntryType, MessageType, StateType } from '../../src/raft/types.js';
import { MemoryStorage, encodeConfChange } from '../../src/raft/index.js';
import { REMOVALS_REMEMBERED, type Raft } from '../../src/raft/raft.js';

/** Nodes 1..3 with PreVote; 1 leads term 1 and removes 3; node 2 then loses its leader without a new term. */
function removedThenLeaderless(): Network {
  const net = new Network([1, 2, 3], { preVote: true });
  net.campaign(1);
  net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 });
  net.stabilize();
  expect(net.node(2).status().conf.voters).toEqual([1, 2]);
  net.isolate(2);
  net.tick(2, 20); // a pre-candidate knows no leader and keeps its term
  const s = net.node(2).status();
  expect([s.term, s.lead, s.state]).toEqual([1, 0, StateType.StatePreCandidate]);
  return net;
}

describe('leader traffic from a removed id', () => {
  for (const type of [MessageType.MsgHeartbeat, MessageType.MsgApp]) {
    it(`${MessageType[type]} at the term of the removal is refused and changes nothing`, () => {
      const net = removedThenLeaderless();
      const before = net.node(2).status();
      expect(() => net.node(2).step(msg({ type, from: 3, to: 2, term: 1, index: 2, logTerm: 1, commit: 2 }))).toThrow(
        expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
      );
      expect(net.node(2).status()).toEqual(before);
    });

    it(`${MessageType[type]} at a later term is heard: the id was added back`, () => {
      const net = removedThenLeaderless();
      net.node(2).step(msg({ type, from: 3, to: 2, term: 2, index: 2, logTerm: 1, commit: 2 }));
      const s = net.node(2).status();
      expect([s.term, s.lead, s.state]).toEqual([2, 3, StateType.StateFollower]);
    });
  }

  it('a vote request from a removed id is refused at any term', () => {
    const net = removedThenLeaderless();
    expect(() => net.node(2).step(msg({ type: MessageType.MsgVote, from: 3, to: 2, term: 5, index: 9, logTerm: 4 }))).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
    expect(net.node(2).status().term).toBe(1);
  });

  it('a node outside its own configuration hears a leader of a later term, though it still knows its old leader', () => {
    // Node 3 applies its own removal: it never campaigns again, so it would never forget leader 1. When the
    // cluster adds it back under a new leader, that leader's traffic is its only way to learn of its return.
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 });
    net.stabilize();
    expect(net.node(3).status().conf.voters).toEqual([1, 2]);
    expect(net.node(3).status().lead).toBe(1);
    // An unknown id at the same term (a second leader of term 1 cannot exist) is still refused.
    expect(() => net.node(3).step(msg({ type: MessageType.MsgHeartbeat, from: 4, to: 3, term: 1 }))).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
    net.node(3).step(msg({ type: MessageType.MsgHeartbeat, from: 4, to: 3, term: 3 }));
    const s = net.node(3).status();
    expect([s.term, s.lead]).toEqual([3, 4]);
  });

  it('a learner hears a leader of a later term that it does not know, though it still knows its old leader', () => {
    // A learner never campaigns either, so it never forgets leader 1; a leader elected since it last applied
    // (added after the learner's configuration) is its only way forward.
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.node(1).proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 3 });
    net.stabilize();
    expect(net.node(3).status().conf.learners).toEqual([3]);
    expect(net.node(3).status().lead).toBe(1);
    net.node(3).step(msg({ type: MessageType.MsgHeartbeat, from: 4, to: 3, term: 3 }));
    const s = net.node(3).status();
    expect([s.term, s.lead]).toEqual([3, 4]);
  });

  it("leader traffic of an earlier term from an unknown id is answered with this node's term and changes nothing", () => {
    // Node 2's term ran ahead while it was cut off; the leader it cannot win against was added after node 2's
    // configuration. With CheckQuorum its vote requests go unanswered while the voters hear their leader, so
    // telling that leader the later term is what ends the standoff (it steps down; an election follows).
    const net = new Network([1, 2, 3], { checkQuorum: true });
    net.campaign(1);
    net.isolate(2);
    net.tick(2, 30);
    const before = net.node(2).status();
    expect(before.state).toBe(StateType.StateCandidate);
    expect(before.term).toBeGreaterThan(1);
    for (const type of [MessageType.MsgHeartbeat, MessageType.MsgApp]) {
      net.queue = [];
      net.node(2).step(msg({ type, from: 4, to: 2, term: 1, index: 1, logTerm: 1, commit: 1 }));
      net.handleReady(2);
      const answer = net.queue.filter((m) => m.to === 4);
      expect(answer.map((m) => [MessageType[m.type], m.term])).toEqual([['MsgAppResp', before.term]]);
      expect(net.node(2).status()).toEqual(before);
    }
  });

  it('a member that knows its leader still refuses an unknown id at a later term', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    expect(() => net.node(2).step(msg({ type: MessageType.MsgApp, from: 4, to: 2, term: 5, index: 1, logTerm: 1 }))).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
    expect(net.node(2).status().term).toBe(1);
  });
});

describe('removed ids kept in mind', () => {
  it('a cluster whose members are replaced by new ids keeps only the latest removals; the latest is still refused a vote', () => {
    const net = new Network([1, 2, 3], { preVote: true });
    net.campaign(1);
    const removals = REMOVALS_REMEMBERED + 50;
    for (let id = 4; id < 4 + removals; id++) {
      net.node(1).proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: id });
      net.stabilize();
      net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: id });
      net.stabilize();
    }
    expect(net.node(2).status().conf.learners).toEqual([]);
    const removed = (net.node(2) as unknown as { raft: Raft }).raft.removedPeers;
    expect(removed.size).toBe(REMOVALS_REMEMBERED);
    expect(removed.has(4)).toBe(false);
    net.isolate(2);
    net.tick(2, 20); // leaderless, as a node a removed id's vote request could reach
    expect(net.node(2).status().lead).toBe(0);
    expect(() => net.node(2).step(msg({ type: MessageType.MsgVote, from: 3 + removals, to: 2, term: 9, index: 9, logTerm: 4 }))).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
  });
});

describe('a snapshot replaces the changes a log held', () => {
  it('an id only an overwritten AddNode named is a stranger again once a snapshot without it is installed', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(1, s);
    const add4 = { index: 1, term: 1, type: EntryType.ConfChange, data: encodeConfChange({ type: ConfChangeType.AddNode, nodeId: 4 }) };
    n.step(msg({ type: MessageType.MsgApp, from: 2, to: 1, term: 1, index: 0, logTerm: 0, commit: 0, entries: [add4] }));
    drain(n, s);
    // The leader's snapshot: the change was overwritten (or undone) before index 5, and 4 is no member.
    const snapshot = {
      meta: { index: 5, term: 1, conf: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } },
      data: new Uint8Array(0),
    };
    n.step(msg({ type: MessageType.MsgSnap, from: 2, to: 1, term: 1, snapshot }));
    drain(n, s);
    expect(n.status().commit).toBe(5);
    expect(() => n.step(msg({ type: MessageType.MsgHeartbeat, from: 4, to: 1, term: 1, commit: 0 }))).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
    expect(n.status().lead).toBe(2);
  });
});

describe('a new leader overwrites the changes a log held', () => {
  it('an id only an overwritten AddNode named is a stranger again, and one an entry still held names is not', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(1, s);
    const change = (index: number, type: ConfChangeType, nodeId: number) => ({
      index,
      term: 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type, nodeId }),
    });
    // Leader 2 of term 1 logs learner 5, then voters 4 and 5, at indexes 1 to 3; none commits.
    const held = [change(1, ConfChangeType.AddLearnerNode, 5), change(2, ConfChangeType.AddNode, 4), change(3, ConfChangeType.AddNode, 5)];
    n.step(msg({ type: MessageType.MsgApp, from: 2, to: 1, term: 1, index: 0, logTerm: 0, commit: 0, entries: held }));
    drain(n, s);
    // Leader 3 of term 2 keeps index 1 and overwrites indexes 2 and 3.
    const other = { index: 2, term: 2, type: EntryType.Normal, data: new Uint8Array(0) };
    n.step(msg({ type: MessageType.MsgApp, from: 3, to: 1, term: 2, index: 1, logTerm: 1, commit: 0, entries: [other] }));
    drain(n, s);
    expect(n.status().lead).toBe(3);
    expect(() => n.step(msg({ type: MessageType.MsgHeartbeat, from: 4, to: 1, term: 2, commit: 0 }))).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
    expect(n.status().lead).toBe(3);
    // Index 1 still names 5 (an earlier change for it survives the cut): it is heard.
    n.step(msg({ type: MessageType.MsgPreVote, from: 5, to: 1, term: 3, index: 2, logTerm: 2 }));
    expect([n.status().term, n.status().lead]).toEqual([2, 3]);
  });
});

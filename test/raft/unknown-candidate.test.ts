// A node whose log predates a member's addition does not know that member, yet a
// candidate joint with an outgoing half that names this node may need its vote.
// Raft lets any server vote (the vote rules, not the configuration, keep it safe),
// so a node that knows no leader hears a vote request from an id it never saw
// removed; traffic of any other kind from a stranger is still refused.
import { describe, expect, it } from 'vitest';
import { Network, msg } from './network.js';
import { ConfChangeType, MessageType, StateType, type ConfChange } from '../../src/raft/types.js';
import { MemoryStorage } from '../../src/raft/index.js';

const add = (nodeId: number): ConfChange => ({ type: ConfChangeType.AddNode, nodeId });
const remove = (nodeId: number): ConfChange => ({ type: ConfChangeType.RemoveNode, nodeId });

describe('a vote request from an id this node does not know', () => {
  it('elects a joint candidate that needs the vote of a node cut off while it was added', () => {
    const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true });
    net.addPeer(4, MemoryStorage.withConf([1, 2, 3]));
    net.addPeer(5, MemoryStorage.withConf([1, 2, 3]));
    net.campaign(2);
    net.propose(2, 'a');
    // Node 1 misses the change that adds 4 and 5.
    net.isolate(1);
    net.node(2).proposeConfChange({ transition: 'auto', changes: [add(4), add(5)] });
    net.stabilize();
    expect(net.node(4).status().conf.voters).toEqual([1, 2, 3, 4, 5]);
    // Then 2 and 3 leave in one joint change. Nodes 4 and 5 hold the entry that leaves the joint
    // state but never hear that it committed; 2 and 3 apply it and stop (as removed nodes do).
    const leaveJoint = net.peer(2).storage.lastIndex() + 2;
    net.addFilter((m) => (m.to === 4 || m.to === 5) && m.commit >= leaveJoint);
    net.node(2).proposeConfChange({ transition: 'auto', changes: [remove(2), remove(3)] });
    net.stabilize();
    expect(net.node(3).status().conf).toEqual({ voters: [1, 4, 5], learners: [] });
    expect(net.node(4).status().conf.votersOutgoing).toEqual([1, 2, 3, 4, 5]);
    net.heal();
    net.isolate(2);
    net.isolate(3);
    // 4 and 5 are joint: a leader needs a majority of [1 2 3 4 5] as well, so node 1's vote.
    expect(net.node(1).status().conf.voters).toEqual([1, 2, 3]);
    for (let t = 0; t < 60 && net.leaders().filter((id) => id > 3).length === 0; t++) net.tickAll(1);
    const [leader] = net.leaders().filter((id) => id > 3);
    expect(leader).toBeDefined();
    net.tickAll(2);
    for (const id of [1, 4, 5]) expect(net.node(id).status().conf).toEqual({ voters: [1, 4, 5], learners: [] });
    net.propose(leader!, 'b');
    expect(net.peer(1).applied).toEqual(['a', 'b']);
  });

  /** Node 2 of 1..3, its leader gone: a pre-candidate that knows no leader. */
  function leaderless(): Network {
    const net = new Network([1, 2, 3], { preVote: true });
    net.campaign(1);
    net.propose(1, 'a');
    net.isolate(2);
    net.tick(2, 20);
    const s = net.node(2).status();
    expect([s.lead, s.state]).toEqual([0, StateType.StatePreCandidate]);
    net.queue = [];
    return net;
  }

  for (const [type, resp] of [
    [MessageType.MsgPreVote, MessageType.MsgPreVoteResp],
    [MessageType.MsgVote, MessageType.MsgVoteResp],
  ] as const) {
    it(`${MessageType[type]}: granted while it knows no leader, by the usual rules`, () => {
      const net = leaderless();
      const { term } = net.node(2).status();
      const last = net.peer(2).storage.lastIndex();
      net.node(2).step(msg({ type, from: 9, to: 2, term: term + 1, index: last, logTerm: 1 }));
      net.handleReady(2);
      expect(net.queue.filter((m) => m.to === 9).map((m) => [m.type, m.reject])).toEqual([[resp, false]]);
      // A log behind this node's is refused, stranger or not.
      net.queue = [];
      net.node(2).step(msg({ type, from: 8, to: 2, term: term + 2, index: last - 1, logTerm: 1 }));
      net.handleReady(2);
      expect(net.queue.filter((m) => m.to === 8).map((m) => [m.type, m.reject])).toEqual([[resp, true]]);
    });

    it(`${MessageType[type]}: refused while it follows a leader`, () => {
      const net = new Network([1, 2, 3], { preVote: true });
      net.campaign(1);
      const before = net.node(2).status();
      expect(() => net.node(2).step(msg({ type, from: 9, to: 2, term: before.term + 1, index: 9, logTerm: before.term + 1 }))).toThrow(
        expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
      );
      expect(net.node(2).status()).toEqual(before);
    });
  }

  it('any other message from a stranger is refused while leaderless too', () => {
    const net = leaderless();
    const before = net.node(2).status();
    for (const type of [MessageType.MsgTimeoutNow, MessageType.MsgHeartbeatResp])
      expect(() => net.node(2).step(msg({ type, from: 9, to: 2, term: before.term + 1 }))).toThrow(
        expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
      );
    expect(net.node(2).status()).toEqual(before);
  });
});

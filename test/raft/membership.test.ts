// Raft paper §6: cluster membership changes, one server at a time, applied
// when committed; learners replicate but never vote or count.
import { describe, expect, it } from 'vitest';
import { Network, drain, enc, msg, newNode } from './network.js';
import { ConfChangeType, EntryType, MessageType, StateType } from '../../src/raft/types.js';
import { InvalidConfChangeError, MemoryStorage, ProposalDroppedError, decodeConfChange, encodeConfChange } from '../../src/raft/index.js';

function expectDropped(f: () => unknown, reason: string): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ProposalDroppedError);
  expect((err as ProposalDroppedError).reason).toBe(reason);
}

describe('§6 membership changes', () => {
  it('adds a voter: the new node catches up and then counts toward the quorum', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a');
    // The new node starts with the configuration it joins (as a driver's join would tell it); the log does the rest.
    net.addPeer(4, MemoryStorage.withConf([1, 2, 3]));
    net.node(1).proposeConfChange({ type: ConfChangeType.AddNode, nodeId: 4 });
    net.stabilize();
    net.tickAll(2);
    expect(net.node(1).status().conf).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(net.node(4).status().conf).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    expect(net.peer(4).applied).toEqual(['a']);
    // 4 voters: quorum is 3. With 3 and 4 cut off, nothing commits.
    net.isolate(3);
    net.isolate(4);
    const before = net.node(1).status().commit;
    net.propose(1, 'b');
    expect(net.node(1).status().commit).toBe(before);
    net.heal();
    net.tickAll(2);
    expect(net.peer(4).applied).toEqual(['a', 'b']);
  });

  it('removes a voter: afterwards the smaller quorum commits', () => {
    const net = new Network([1, 2, 3, 4]);
    net.campaign(1);
    net.isolate(3);
    net.isolate(4);
    // 2 of 4 is no quorum.
    net.propose(1, 'x');
    expect(net.peer(2).applied).toEqual([]);
    net.heal();
    net.isolate(4);
    net.tickAll(2);
    expect(net.peer(2).applied).toEqual(['x']);
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 4 });
    net.stabilize();
    expect(net.node(1).status().conf.voters).toEqual([1, 2, 3]);
    expect(net.node(3).status().conf.voters).toEqual([1, 2, 3]);
    // 2 of 3 is a quorum now.
    net.isolate(3);
    net.propose(1, 'y');
    expect(net.peer(2).applied).toEqual(['x', 'y']);
  });

  it('applyConfChange of a removal lets a blocked entry commit at once (quorum shrinks)', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a');
    net.isolate(2);
    net.isolate(3);
    net.propose(1, 'b');
    const n = net.node(1);
    const commit = n.status().commit;
    // Applying removal of 2 and 3 directly (as after a committed change) leaves 1 alone as the quorum.
    n.applyConfChange({ type: ConfChangeType.RemoveNode, nodeId: 2 });
    n.applyConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 });
    expect(n.status().commit).toBe(commit + 1);
  });

  it('adds a learner: it receives the log, never votes, never counts', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.addPeer(4, MemoryStorage.withConf([1, 2, 3]));
    net.node(1).proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4 });
    net.stabilize();
    net.propose(1, 'a');
    expect(net.peer(4).applied).toEqual(['a']);
    expect(net.node(1).status().progress![4]!.isLearner).toBe(true);
    expect(net.node(4).status().conf).toEqual({ voters: [1, 2, 3], learners: [4] });
    // A learner's acknowledgement is not part of any quorum.
    net.isolate(2);
    net.isolate(3);
    const commit = net.node(1).status().commit;
    net.propose(1, 'b');
    expect(net.peer(4).storage.lastIndex()).toBe(net.node(1).status().progress![1]!.match);
    expect(net.node(1).status().commit).toBe(commit);
    // A learner never campaigns, however long it waits.
    for (let i = 0; i < 100; i++) net.node(4).tick();
    expect(net.node(4).status().state).toBe(StateType.StateFollower);
    expect(net.node(4).hasReady()).toBe(false);
  });

  it('a learner whose term ran ahead tells the leader of an earlier term, having no campaign to do it', () => {
    // Without CheckQuorum or PreVote, a voter whose term ran ahead ignores the stale leader and campaigns, which
    // brings the cluster to its term. A learner never campaigns: unless it answers, the leader never reaches it.
    const net = new Network([1, 2, 3], { checkQuorum: false, preVote: false });
    net.campaign(1);
    net.addPeer(4, MemoryStorage.withConf([1, 2, 3]));
    net.node(1).proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4 });
    net.stabilize();
    // A vote request of term 5 that reached only the learner (a voter cut off since, say, then removed).
    net.node(4).step(msg({ type: MessageType.MsgVote, from: 2, to: 4, term: 5, index: 0, logTerm: 0 }));
    net.handleReady(4);
    net.queue = net.queue.filter((m) => m.from !== 4);
    expect(net.node(4).status().term).toBe(5);
    net.node(1).propose([enc('a')]);
    net.tickAll(30);
    const leader = net.leaders()[0]!;
    expect(net.node(leader).status().term).toBeGreaterThan(5);
    expect(net.peer(4).applied).toEqual(['a']);
  });

  it("a learner's vote does not count toward winning an election", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.addPeer(4, MemoryStorage.withConf([1, 2, 3]));
    net.node(1).proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4 });
    net.stabilize();
    net.tickAll(2);
    expect(net.node(2).status().conf.learners).toEqual([4]);
    // Node 2 campaigns with only the learner reachable: self + learner is not a majority of 3 voters.
    net.isolate(1);
    net.isolate(3);
    const from = net.log.length;
    net.node(2).campaign();
    net.stabilize();
    expect(net.node(2).status().state).toBe(StateType.StateCandidate);
    // Learners are not even asked...
    expect(net.log.slice(from).filter((m) => m.to === 4).length).toBe(0);
    // ...and a granted vote from one (say it thinks it is a voter) is not counted.
    net.node(2).step({ type: MessageType.MsgVoteResp, from: 4, to: 2, term: 2, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 });
    expect(net.node(2).status().state).toBe(StateType.StateCandidate);
  });

  it('promotes a learner to a voter', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.addPeer(4, MemoryStorage.withConf([1, 2, 3]));
    net.node(1).proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4 });
    net.stabilize();
    net.node(1).proposeConfChange({ type: ConfChangeType.AddNode, nodeId: 4 });
    net.stabilize();
    expect(net.node(4).status().conf).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    net.isolate(1);
    net.campaign(4);
    expect(net.node(4).status().state).toBe(StateType.StateLeader);
  });

  it('one change at a time: a second proposal waits until the first is applied', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const n = net.node(1);
    n.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4 });
    expectDropped(() => n.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 5 }), 'conf-change-pending');
    net.stabilize();
    expect(n.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 5 })).not.toBeNull();
  });

  it('a committed change handed out but not yet applied blocks the next one', () => {
    const s = MemoryStorage.withConf([1]);
    const n = newNode(1, s);
    n.campaign();
    drain(n, s);
    drain(n, s);
    n.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 2 });
    drain(n, s);
    const rd = drain(n, s);
    const cc = rd.committedEntries.find((e) => e.type === EntryType.ConfChange)!;
    expect(cc).toBeDefined();
    // advance() ran (applied moved), but the caller has not applied the change yet.
    expect(n.status().applied).toBe(cc.index);
    expectDropped(() => n.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 3 }), 'conf-change-pending');
    n.applyConfChange(decodeConfChange(cc.data));
    expect(n.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 3 })).not.toBeNull();
  });

  it('a new leader changes membership only after committing an entry of its own term', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(1, s);
    const s2 = MemoryStorage.withConf([1, 2, 3]);
    const n2 = newNode(2, s2);
    n.campaign();
    const rd = drain(n, s);
    n2.step(rd.messages.find((m) => m.to === 2)!);
    const vote = drain(n2, s2).messagesAfterPersist[0]!;
    n.step(vote);
    expect(n.status().state).toBe(StateType.StateLeader);
    drain(n, s);
    // Elected, its empty entry not yet committed: refused.
    expectDropped(() => n.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 }), 'conf-change-pending');
    // Normal proposals are fine meanwhile.
    expect(n.propose(enc('a'))).toEqual({ index: 2, term: 1 });
  });

  it('a removed leader steps down', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const removal = net.peer(1).storage.lastIndex() + 1;
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1 });
    net.stabilize();
    // It hands off first: its empty entry commits in [2 3] (they still hear the leader of the term, though
    // they applied its removal), and 2 and 3 learn that it did. Then it tells 2, the lowest voter holding its
    // whole log, to campaign at once: a new leader without waiting out an election timeout.
    expect(net.node(1).status().state).toBe(StateType.StateFollower);
    expect(() => net.node(1).propose(new Uint8Array([1]))).toThrow(expect.objectContaining({ reason: 'no-leader' }));
    for (const id of [2, 3]) {
      expect(net.node(id).status().conf.voters).toEqual([2, 3]);
      expect(net.node(id).status().commit).toBeGreaterThan(removal);
    }
    expect(net.leaders()).toEqual([2]);
    expect(net.node(2).status().term).toBe(net.node(1).status().term + 1);
    net.propose(2, 'after');
    expect(net.peer(3).applied).toEqual(['after']);
  });

  it("a removed leader's MsgTimeoutNow is heard from the leader a node follows, in that leader's term only", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.addFilter((m) => m.type === MessageType.MsgTimeoutNow);
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1 });
    net.stabilize();
    expect(net.leaders()).toEqual([]);
    const { term } = net.node(3).status();
    const timeoutNow = (t: number) => msg({ type: MessageType.MsgTimeoutNow, from: 1, to: 3, term: t });
    // Not in a later term: node 1 is no longer a member, and 3 does not follow it there.
    expect(() => net.node(3).step(timeoutNow(term + 1))).toThrow(expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }));
    expect(net.node(3).status().term).toBe(term);
    net.heal();
    net.node(3).step(timeoutNow(term));
    net.stabilize();
    expect(net.leaders()).toEqual([3]);
  });

  it('a removed leader gets a whole election timeout to hand off, not what was left of its check-quorum round', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    // Eight of the ten ticks of the leader's round pass (its heartbeats answered) before it applies its removal.
    net.tick(1, 8);
    net.stabilize();
    // The hand-off entry never reaches 2 and 3 (say they were cut off once they had the removal).
    const handoff = net.peer(1).storage.lastIndex() + 2;
    net.addFilter((m) => m.from === 1 && m.type === MessageType.MsgApp && m.entries.some((e) => e.index >= handoff));
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1 });
    net.stabilize();
    expect(() => net.node(1).propose(new Uint8Array([1]))).toThrow(expect.objectContaining({ reason: 'not-member' }));
    // Only the timeout ends the hand-off.
    net.tick(1, 9);
    net.stabilize();
    expect(net.node(1).status().state).toBe(StateType.StateLeader);
    net.tick(1, 1);
    net.stabilize();
    expect(net.node(1).status().state).toBe(StateType.StateFollower);
  });

  it('a removed node cannot campaign and its answers are refused with a code', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 });
    net.stabilize();
    expect(net.node(1).status().conf.voters).toEqual([1, 2]);
    expect(() => net.node(1).step({ type: 4, from: 3, to: 1, term: 1, logTerm: 0, index: 1, entries: [], commit: 0, reject: false, rejectHint: 0 })).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
  });

  it('refuses a change that would leave no voter', () => {
    const net = new Network([1]);
    net.campaign(1);
    net.propose(1, 'a');
    expect(() => net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1 })).toThrow(InvalidConfChangeError);
    expect(() => net.node(1).applyConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1 })).toThrow(
      expect.objectContaining({ code: 'RAFT_INVALID_CONF_CHANGE' }),
    );
    expect(net.node(1).status().conf.voters).toEqual([1]);
  });

  describe('conf change encoding', () => {
    const cases = [
      { type: ConfChangeType.AddNode, nodeId: 7 },
      { type: ConfChangeType.RemoveNode, nodeId: 2 ** 40 },
      { type: ConfChangeType.AddLearnerNode, nodeId: 3, context: enc('10.0.0.3:7000') },
    ];
    for (const cc of cases)
      it(`round-trips ${JSON.stringify({ ...cc, context: cc.context?.length })}`, () => expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc));
    const bad: [string, Uint8Array][] = [
      ['too short', new Uint8Array(3)],
      ['unknown format', new Uint8Array(10).fill(9)],
    ];
    for (const [name, data] of bad) it(`rejects ${name}`, () => expect(() => decodeConfChange(data)).toThrow(InvalidConfChangeError));
    it('rejects a node id of 0', () => expect(() => encodeConfChange({ type: ConfChangeType.AddNode, nodeId: 0 })).toThrow(InvalidConfChangeError));
  });
});

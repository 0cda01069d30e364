// Joint consensus in a running cluster: while joint, commit, elections,
// CheckQuorum and reads need a majority of both halves; the leader leaves an
// 'auto' joint state by itself; a leader outside the new voters steps down
// only once the joint state is left; refused changes append nothing.
import { describe, expect, it } from 'vitest';
import { Network, enc } from './network.js';
import { ConfChangeType, EntryType, MessageType, StateType, type ConfChange, type ConfChangeV2, type ReadState } from '../../src/raft/types.js';
import { InvalidConfChangeError, MemoryStorage, decodeConfChangeEntry } from '../../src/raft/index.js';

const add = (nodeId: number): ConfChange => ({ type: ConfChangeType.AddNode, nodeId });
const learner = (nodeId: number): ConfChange => ({ type: ConfChangeType.AddLearnerNode, nodeId });
const remove = (nodeId: number): ConfChange => ({ type: ConfChangeType.RemoveNode, nodeId });
const LEAVE: ConfChangeV2 = { transition: 'auto', changes: [] };

/** A cluster 1..3 led by 1, with nodes 4 and 5 started (they learn the configuration from the log). */
function cluster(opts = {}): Network {
  const net = new Network([1, 2, 3], opts);
  net.campaign(1);
  net.propose(1, 'a');
  net.addPeer(4, MemoryStorage.withConf([1, 2, 3]));
  net.addPeer(5, MemoryStorage.withConf([1, 2, 3]));
  return net;
}

function confChangesIn(net: Network, id: number): ConfChangeV2[] {
  return net
    .peer(id)
    .appliedEntries.filter((e) => e.type === EntryType.ConfChange)
    .map((e) => decodeConfChangeEntry(e.data));
}

function reads(net: Network, id: number): ReadState[] {
  const out: ReadState[] = [];
  for (let round = 0; round < 100; round++) {
    let moved = false;
    for (const pid of [...net.peers.keys()].sort((a, b) => a - b)) {
      const rd = net.handleReady(pid);
      if (rd === undefined) continue;
      moved = true;
      if (pid === id) out.push(...rd.readStates);
    }
    while (net.deliverOne()) moved = true;
    if (!moved) break;
  }
  return out;
}

describe('joint consensus in a cluster', () => {
  it('a removed leader whose hand-off was cut off campaigns to finish it when the new voters still need its vote', () => {
    // Voters 2 and 3, learner 1; leader 2 swaps itself for 1: joint [1 3]&&[2 3]. Then 1 and 3 never hear that
    // the leave-joint entry committed: they stay joint, and their outgoing half needs 2's vote, which 2 refuses
    // (its log holds its hand-off entry, which they lack).
    const net = new Network([2, 3]);
    net.campaign(2);
    net.addPeer(1, MemoryStorage.withConf([2, 3]));
    net.node(2).proposeConfChange(learner(1));
    net.stabilize();
    net.propose(2, 'a');
    const joint = net.peer(2).storage.lastIndex() + 1;
    const leave = joint + 1;
    net.addFilter((m) => m.from === 2 && (m.commit >= leave || m.entries.some((e) => e.index > leave)));
    net.node(2).proposeConfChange({ transition: 'auto', changes: [add(1), remove(2)] });
    net.stabilize();
    expect(net.node(2).status().conf).toEqual({ voters: [1, 3], learners: [] });
    for (const id of [1, 3]) expect(net.node(id).status().conf).toMatchObject({ voters: [1, 3], votersOutgoing: [2, 3] });
    // The hand-off times out; then the partition heals.
    net.tick(2, 20);
    net.stabilize();
    expect(net.node(2).status().state).toBe(StateType.StateFollower);
    net.heal();
    for (let i = 0; i < 60 && net.leaders().filter((id) => id !== 2).length === 0; i++) {
      net.tickAll(1);
      net.stabilize();
    }
    const leaders = net.leaders();
    expect(leaders.length).toBe(1);
    expect([1, 3]).toContain(leaders[0]);
    for (const id of [1, 3]) expect(net.node(id).status().conf).toEqual({ voters: [1, 3], learners: [] });
    net.propose(leaders[0]!, 'after');
    expect(net.peer(1).applied.at(-1)).toBe('after');
    expect(net.peer(3).applied.at(-1)).toBe('after');
  });

  it('a removed leader restarted after its hand-off was cut off tells the new voters, as it refuses their votes, that the change committed', () => {
    // As above, but 2 restarts once its hand-off has timed out: it no longer knows it led one, and outside its
    // configuration it never campaigns. 1 and 3, still joint, need its vote and it refuses them (its log is longer).
    const net = new Network([2, 3]);
    net.campaign(2);
    net.addPeer(1, MemoryStorage.withConf([2, 3]));
    net.node(2).proposeConfChange(learner(1));
    net.stabilize();
    net.propose(2, 'a');
    const leave = net.peer(2).storage.lastIndex() + 2;
    net.addFilter((m) => m.from === 2 && (m.commit >= leave || m.entries.some((e) => e.index > leave)));
    net.node(2).proposeConfChange({ transition: 'auto', changes: [add(1), remove(2)] });
    net.stabilize();
    net.tick(2, 20);
    net.stabilize();
    expect(net.node(2).status().state).toBe(StateType.StateFollower);
    const before = net.node(2).status();
    expect(before.commit).toBeGreaterThanOrEqual(leave);
    expect(net.peer(2).storage.lastIndex()).toBeGreaterThan(leave);
    net.addPeer(2, net.peer(2).storage, { applied: before.applied });
    net.heal();
    for (let i = 0; i < 100 && net.leaders().length === 0; i++) net.tickAll(1);
    const leaders = net.leaders();
    expect(leaders.length).toBe(1);
    expect([1, 3]).toContain(leaders[0]);
    for (const id of [1, 3]) expect(net.node(id).status().conf).toEqual({ voters: [1, 3], learners: [] });
    // 2 learned the commit index from nobody: it never campaigned, nor was anyone's leader.
    expect(net.node(2).status()).toMatchObject({ state: StateType.StateFollower, commit: before.commit });
    net.propose(leaders[0]!, 'after');
    expect(net.peer(1).applied.at(-1)).toBe('after');
    expect(net.peer(3).applied.at(-1)).toBe('after');
  });

  it('adds two and removes two at once; the leader leaves the joint state itself', () => {
    const net = cluster();
    net.node(1).proposeConfChange({ transition: 'auto', changes: [add(4), add(5), remove(2), remove(3)] });
    net.stabilize();
    for (const id of [1, 4, 5]) expect(net.node(id).status().conf).toEqual({ voters: [1, 4, 5], learners: [] });
    // Two entries: the joint one, then the leader's leave.
    expect(confChangesIn(net, 1).map((c) => c.changes.length)).toEqual([4, 0]);
    expect(net.node(1).status().state).toBe(StateType.StateLeader);
    net.propose(1, 'b');
    expect(net.peer(4).applied).toEqual(['a', 'b']);
    expect(net.peer(5).applied).toEqual(['a', 'b']);
  });

  it('while joint, an entry commits only with a majority of both halves', () => {
    const net = cluster();
    net.node(1).proposeConfChange({ transition: 'explicit', changes: [add(4), add(5), remove(2), remove(3)] });
    net.stabilize();
    net.tickAll(2); // heartbeats bring 4 and 5 up to date
    expect(net.node(1).status().conf).toEqual({ voters: [1, 4, 5], learners: [], votersOutgoing: [1, 2, 3] });
    // The outgoing half {1,2,3} alone is not enough.
    net.isolate(4);
    net.isolate(5);
    const before = net.node(1).status().commit;
    net.propose(1, 'x');
    expect(net.node(1).status().commit).toBe(before);
    net.heal();
    // Nor the incoming half {1,4,5} alone.
    net.isolate(2);
    net.isolate(3);
    net.propose(1, 'y');
    // 'x' now has both halves (2 and 3 took it before, 4 and 5 now); 'y' has only the incoming half.
    expect(net.node(1).status().commit).toBe(before + 1);
    net.heal();
    net.tickAll(2);
    expect(net.node(1).status().commit).toBe(before + 2);
    expect(net.peer(4).applied).toEqual(['a', 'x', 'y']);
  });

  it('explicit: the joint state lasts until the caller leaves it; leaving twice is refused', () => {
    const net = cluster();
    net.node(1).proposeConfChange({ transition: 'explicit', changes: [add(4), add(5)] });
    net.stabilize();
    net.tickAll(3);
    expect(net.node(1).status().conf.votersOutgoing).toEqual([1, 2, 3]);
    net.node(1).proposeConfChange(LEAVE);
    net.stabilize();
    expect(net.node(1).status().conf).toEqual({ voters: [1, 2, 3, 4, 5], learners: [] });
    const last = net.peer(1).storage.lastIndex();
    expect(() => net.node(1).proposeConfChange(LEAVE)).toThrow(InvalidConfChangeError);
    expect(net.peer(1).storage.lastIndex()).toBe(last);
    expect(net.node(1).hasReady()).toBe(false);
  });

  it('refused changes append nothing: joint while joint, removing every voter, a node named twice', () => {
    const net = cluster();
    net.node(1).proposeConfChange({ transition: 'explicit', changes: [add(4), add(5)] });
    net.stabilize();
    const n = net.node(1);
    const last = net.peer(1).storage.lastIndex();
    const refused: Array<ConfChangeV2 | ConfChange> = [
      { transition: 'auto', changes: [add(6), add(7)] },
      { type: ConfChangeType.AddNode, nodeId: 6 },
    ];
    for (const cc of refused) expect(() => n.proposeConfChange(cc)).toThrow(expect.objectContaining({ code: 'RAFT_INVALID_CONF_CHANGE' }));
    n.proposeConfChange(LEAVE);
    net.stabilize();
    const last2 = net.peer(1).storage.lastIndex();
    expect(last2).toBe(last + 1);
    expect(() => n.proposeConfChange({ transition: 'auto', changes: [remove(1), remove(2), remove(3), remove(4), remove(5)] })).toThrow(/no voters/);
    expect(() => n.proposeConfChange({ transition: 'auto', changes: [add(6), remove(6)] })).toThrow(/twice/);
    expect(net.peer(1).storage.lastIndex()).toBe(last2);
    expect(n.status().conf).toEqual({ voters: [1, 2, 3, 4, 5], learners: [] });
  });

  it('replacing the leader: it leads through the joint state, then steps down', () => {
    const net = cluster();
    net.node(1).proposeConfChange({ transition: 'auto', changes: [remove(1), add(4)] });
    net.stabilize();
    // It proposed the leave entry while joint (it is a voter of the outgoing half) and steps down after the hand-off.
    expect(confChangesIn(net, 1).map((c) => c.changes.length)).toEqual([2, 0]);
    net.tick(1, 10);
    net.stabilize();
    expect(net.node(1).status().state).toBe(StateType.StateFollower);
    for (const id of [2, 3, 4]) expect(net.node(id).status().conf).toEqual({ voters: [2, 3, 4], learners: [] });
    net.tickAll(30);
    const leaders = net.leaders();
    expect(leaders.length).toBe(1);
    expect([2, 3, 4]).toContain(leaders[0]);
    net.propose(leaders[0]!, 'b');
    expect(net.peer(4).applied).toEqual(['a', 'b']);
  });

  it('a demoted voter votes in the outgoing half until the joint state is left, then is a learner', () => {
    const net = cluster();
    net.node(1).proposeConfChange({ transition: 'explicit', changes: [learner(3), add(4)] });
    net.stabilize();
    expect(net.node(1).status().conf).toEqual({ voters: [1, 2, 4], learners: [], votersOutgoing: [1, 2, 3], learnersNext: [3] });
    expect(net.node(1).status().progress![3]!.isLearner).toBe(false);
    // 3 still counts: with 2 cut off, the outgoing half {1,2,3} needs it.
    net.isolate(2);
    net.propose(1, 'x');
    expect(net.peer(3).applied).toContain('x');
    expect(net.peer(1).applied).toContain('x');
    net.heal();
    net.node(1).proposeConfChange(LEAVE);
    net.stabilize();
    expect(net.node(3).status().conf).toEqual({ voters: [1, 2, 4], learners: [3] });
    expect(net.node(1).status().progress![3]!.isLearner).toBe(true);
    // A learner never campaigns.
    net.isolate(1);
    net.tick(3, 100);
    net.stabilize();
    expect(net.node(3).status().state).toBe(StateType.StateFollower);
  });

  it('an election while joint needs both halves', () => {
    const net = cluster({ preVote: false });
    net.node(1).proposeConfChange({ transition: 'explicit', changes: [add(4), add(5), remove(2), remove(3)] });
    net.stabilize();
    net.tickAll(2); // heartbeats bring 4 and 5 up to date
    expect(net.node(4).status().conf.votersOutgoing).toEqual([1, 2, 3]);
    net.isolate(1);
    // 2 can win the outgoing half {1,2,3} (with 3), but 4 and 5 never hear it.
    net.cutLink(2, 4);
    net.cutLink(2, 5);
    net.node(2).campaign();
    net.stabilize();
    expect(net.node(2).status().state).toBe(StateType.StateCandidate);
    expect(net.node(2).status().term).toBeGreaterThan(net.node(1).status().term);
    net.heal();
    net.isolate(1);
    // 4 reaches everyone but 1. In 2's term it has 4,5 of {1,4,5} but 2 and 3 voted for 2: lost.
    net.node(4).campaign();
    net.stabilize();
    expect(net.node(4).status().state).toBe(StateType.StateFollower);
    // In the next term it wins 4,5 of {1,4,5} and 2,3 of {1,2,3}.
    net.node(4).campaign();
    net.stabilize();
    expect(net.node(4).status().state).toBe(StateType.StateLeader);
  });

  it('CheckQuorum while joint: a leader that hears only the outgoing half steps down', () => {
    const net = cluster({ checkQuorum: true });
    net.node(1).proposeConfChange({ transition: 'explicit', changes: [add(4), add(5), remove(2), remove(3)] });
    net.stabilize();
    net.tickAll(2); // heartbeats bring 4 and 5 up to date
    net.isolate(4);
    net.isolate(5);
    for (let i = 0; i < 25 && net.node(1).status().state === StateType.StateLeader; i++) net.tickAll(1);
    expect(net.node(1).status().state).not.toBe(StateType.StateLeader);
  });

  it('ReadIndex while joint waits for acknowledgements from both halves', () => {
    const net = cluster();
    net.node(1).proposeConfChange({ transition: 'explicit', changes: [add(4), add(5), remove(2), remove(3)] });
    net.stabilize();
    net.tickAll(2); // heartbeats bring 4 and 5 up to date
    net.isolate(4);
    net.isolate(5);
    net.node(1).readIndex(enc('r1'));
    expect(reads(net, 1)).toEqual([]);
    net.heal();
    net.node(1).readIndex(enc('r2'));
    const got = reads(net, 1).map((r) => new TextDecoder().decode(r.context));
    expect(got).toContain('r2');
  });

  it('a new leader inherits an auto joint configuration and leaves it', () => {
    const joint = { voters: [1, 2, 3], learners: [], votersOutgoing: [1, 2], autoLeave: true };
    const net = new Network([1, 2, 3]);
    for (const id of [1, 2, 3]) {
      const s = MemoryStorage.withConf([1, 2, 3]);
      s.setConfState(joint);
      net.addPeer(id, s);
    }
    net.campaign(1);
    expect(net.node(1).status().state).toBe(StateType.StateLeader);
    for (const id of [1, 2, 3]) expect(net.node(id).status().conf).toEqual({ voters: [1, 2, 3], learners: [] });
  });

  it('a follower restored from a snapshot taken while joint gets the joint configuration', () => {
    const net = cluster();
    net.node(1).proposeConfChange({ transition: 'explicit', changes: [add(4), add(5)] });
    net.stabilize();
    net.isolate(5);
    for (let i = 0; i < 5; i++) net.propose(1, `p${i}`);
    net.snapshotAndCompact(1);
    net.heal();
    net.tickAll(3);
    expect(net.peer(5).restoredFrom).toBeGreaterThan(0);
    expect(net.node(5).status().conf).toEqual({ voters: [1, 2, 3, 4, 5], learners: [], votersOutgoing: [1, 2, 3] });
    net.node(1).proposeConfChange(LEAVE);
    net.stabilize();
    expect(net.node(5).status().conf).toEqual({ voters: [1, 2, 3, 4, 5], learners: [] });
  });

  it('a snapshot message whose configuration breaks the joint invariants is refused and changes nothing', () => {
    const net = cluster();
    const n = net.node(2);
    const before = n.status();
    const bad = { voters: [1, 2], learners: [], votersOutgoing: [1, 2, 3], learnersNext: [9] };
    const m = {
      type: MessageType.MsgSnap,
      to: 2,
      from: 1,
      term: before.term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      snapshot: { meta: { index: 50, term: before.term, conf: bad }, data: new Uint8Array(0) },
    };
    expect(() => n.step(m)).toThrow(expect.objectContaining({ code: 'RAFT_INVALID_MESSAGE' }));
    expect(n.status()).toEqual(before);
  });
});

// Raft paper §8: client interaction. Proposal forwarding and dropping,
// linearizable reads (ReadIndex, safe and lease), leadership transfer.
import { describe, expect, it } from 'vitest';
import { Network, collectReads, uncommittedLeader, drain, enc, dec, msg, newNode } from './network.js';
import { ConfChangeType, EntryType, MessageType, StateType, type ReadState } from '../../src/raft/types.js';
import { InvalidMessageError, MemoryStorage, ProposalDroppedError, ReadIndexDroppedError } from '../../src/raft/index.js';

function reason(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof ProposalDroppedError) return e.reason;
    throw e;
  }
  return undefined;
}

describe('§8 proposals', () => {
  it('a new leader appends an empty entry of its term and commits it', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const first = net.peer(2).appliedEntries[0]!;
    expect(first).toMatchObject({ index: 1, term: 1, type: EntryType.Normal });
    expect(first.data.length).toBe(0);
    expect(net.node(2).status().commit).toBe(1);
  });

  it('many entries in one proposal land contiguously; the leader reports where', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const pos = net.node(1).propose(['a', 'b', 'c'].map(enc));
    expect(pos).toEqual({ index: 2, term: 1 });
    net.stabilize();
    expect(
      net
        .peer(3)
        .appliedEntries.slice(1)
        .map((e) => [e.index, dec(e.data)]),
    ).toEqual([
      [2, 'a'],
      [3, 'b'],
      [4, 'c'],
    ]);
  });

  it('a follower forwards proposals to the leader and returns null', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    expect(net.node(3).propose(enc('via-3'))).toBeNull();
    net.stabilize();
    expect(net.peer(1).applied).toEqual(['via-3']);
  });

  it('a follower forwards a proposal larger than maxSizePerMsg in messages of at most that size, or of one entry', () => {
    const net = new Network([1, 2, 3], { maxSizePerMsg: 100 });
    net.campaign(1);
    const datas = [60, 10, 150, 0, 30, 30].map((n) => new Uint8Array(n).fill(n));
    net.node(3).propose(datas);
    const rd = net.node(3).ready();
    net.node(3).advance(rd);
    const fwds = rd.messages.filter((m) => m.type === MessageType.MsgProp);
    // Each entry counts 24 bytes beyond its data: [60], [10], [150] alone, then [0, 30] and [30].
    expect(fwds.map((m) => m.entries.map((e) => e.data.length))).toEqual([[60], [10], [150], [0, 30], [30]]);
    for (const m of fwds) net.node(1).step(m);
    net.stabilize();
    expect(
      net
        .peer(2)
        .appliedEntries.slice(1)
        .map((e) => e.data.length),
    ).toEqual([60, 10, 150, 0, 30, 30]);
  });

  it('a duplicated forwarded proposal appends two independent entries (entries are never shared-mutated)', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.node(3).propose(enc('dup'));
    const rd = net.node(3).ready();
    net.node(3).advance(rd);
    const fwd = rd.messages.find((m) => m.type === MessageType.MsgProp)!;
    net.node(1).step(fwd);
    net.node(1).step(fwd);
    net.stabilize();
    const dups = net.peer(2).appliedEntries.filter((e) => dec(e.data) === 'dup');
    expect(dups.map((e) => e.index)).toEqual([2, 3]);
    expect(fwd.entries[0]!.index).toBe(0);
  });

  const drops: { name: string; setup: () => { propose: () => unknown }; reason: string }[] = [
    {
      name: 'no leader known',
      setup: () => {
        const n = newNode(1, MemoryStorage.withConf([1, 2, 3]));
        return { propose: () => n.propose(enc('x')) };
      },
      reason: 'no-leader',
    },
    {
      name: 'candidate',
      setup: () => {
        const n = newNode(1, MemoryStorage.withConf([1, 2, 3]));
        n.campaign();
        return { propose: () => n.propose(enc('x')) };
      },
      reason: 'no-leader',
    },
    {
      name: 'forwarding disabled',
      setup: () => {
        const net = new Network([1, 2, 3], { disableProposalForwarding: true });
        net.campaign(1);
        return { propose: () => net.node(2).propose(enc('x')) };
      },
      reason: 'forwarding-disabled',
    },
    {
      name: 'leadership transfer pending',
      setup: () => {
        const net = new Network([1, 2, 3]);
        net.campaign(1);
        net.isolate(2);
        net.node(1).transferLeader(2);
        return { propose: () => net.node(1).propose(enc('x')) };
      },
      reason: 'transfer-pending',
    },
  ];
  for (const d of drops) {
    it(`drops a proposal: ${d.name}`, () => {
      const { propose } = d.setup();
      expect(reason(propose)).toBe(d.reason);
    });
  }

  it('a follower relays no proposal it did not make: a late forward is dropped, as a lost message is', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.node(2).propose(enc('late'));
    const rd = net.node(2).ready();
    net.node(2).advance(rd);
    const fwd = rd.messages.find((m) => m.type === MessageType.MsgProp)!;
    expect(fwd.from).toBe(2);
    net.stabilize();
    // Node 2 becomes leader; its old forward reaches node 1, now a follower, late.
    net.campaign(2);
    expect(reason(() => net.node(1).step(fwd))).toBe('not-originator');
    // Nor does a proposal of node 2's own reach node 2 through the network.
    expect(() => net.node(2).step({ ...fwd, to: 2 })).toThrow(InvalidMessageError);
    net.stabilize();
    expect(net.peer(3).applied).toEqual([]);
  });

  it('a follower relays no read it did not ask: a late forward is dropped, and its asker asks again', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.node(2).readIndex(enc('r'));
    const rd = net.node(2).ready();
    net.node(2).advance(rd);
    const fwd = rd.messages.find((m) => m.type === MessageType.MsgReadIndex)!;
    expect(fwd.from).toBe(2);
    net.stabilize();
    // Node 2 becomes leader; its old forward reaches node 1, now a follower, late.
    net.campaign(2);
    expect(() => net.node(1).step(fwd)).toThrow(ReadIndexDroppedError);
    // Nor does a read of node 2's own reach node 2 through the network.
    expect(() => net.node(2).step({ ...fwd, to: 2 })).toThrow(InvalidMessageError);
    expect(collectReads(net, 2)).toEqual([]);
    net.node(2).readIndex(enc('r'));
    expect(collectReads(net, 2).map((r) => dec(r.context))).toEqual(['r']);
  });

  it('a forwarded proposal that reaches a node without a leader is refused with a code', () => {
    const n = newNode(1, MemoryStorage.withConf([1, 2, 3]));
    expect(() => n.step(msg({ type: MessageType.MsgProp, from: 2, to: 1, entries: [{ index: 0, term: 0, type: EntryType.Normal, data: enc('x') }] }))).toThrow(
      ProposalDroppedError,
    );
    expect(n.hasReady()).toBe(false);
  });
});

describe('§8 ReadIndex', () => {
  it('safe: the read index is served after a heartbeat round confirms leadership', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a');
    net.node(1).readIndex(enc('r1'));
    const rd = net.node(1).ready();
    net.node(1).advance(rd);
    net.node(1).persisted(rd);
    // Not before the heartbeat round.
    expect(rd.readStates).toEqual([]);
    expect(rd.messages.filter((m) => m.type === MessageType.MsgHeartbeat && m.context !== undefined).length).toBe(2);
    net.queue.push(...rd.messages);
    const reads = collectReads(net, 1);
    expect(reads.map((r) => [r.index, dec(r.context)])).toEqual([[2, 'r1']]);
  });

  it('safe: a leader cut off from the quorum serves no reads', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(1);
    net.node(1).readIndex(enc('r'));
    expect(collectReads(net, 1)).toEqual([]);
    net.heal();
    net.node(1).tick();
    // The next heartbeat carries the pending context: once the quorum answers, it is served.
    expect(collectReads(net, 1).map((r) => dec(r.context))).toEqual(['r']);
  });

  it('lease: served at once while a quorum answered heartbeats within the lease', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, readOnlyOption: 'lease' });
    net.campaign(1);
    // One heartbeat round: followers reset their election timers after tick 1.
    net.tickAll(1);
    net.isolate(1);
    net.node(1).tick(); // tick 2
    net.node(1).readIndex(enc('fast'));
    expect(collectReads(net, 1).map((r) => [r.index, dec(r.context)])).toEqual([[1, 'fast']]);
  });

  it('lease: once it may have expired, a read falls back to a heartbeat round', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, readOnlyOption: 'lease' });
    net.campaign(1);
    net.tickAll(1);
    net.isolate(1);
    // The heartbeat went out at tick 1; a follower that ticks just before the leader leaves its lease
    // a moment after the leader's tick 10 = 1 + electionTimeout - 1: from then on no lease.
    for (let i = 0; i < 8; i++) net.node(1).tick();
    net.node(1).readIndex(enc('in-time'));
    expect(collectReads(net, 1).map((r) => dec(r.context))).toEqual(['in-time']);
    net.node(1).tick();
    expect(net.node(1).status().state).toBe(StateType.StateLeader);
    net.node(1).readIndex(enc('late'));
    expect(collectReads(net, 1)).toEqual([]);
    net.heal();
    net.node(1).tick();
    expect(collectReads(net, 1).map((r) => dec(r.context))).toEqual(['late']);
  });

  it('lease: a stale leader cut off by a partition serves no stale read (sim lease seed 73)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, readOnlyOption: 'lease', preVote: true });
    net.campaign(1);
    net.tickAll(1);
    net.isolate(1);
    // Followers 2 and 3 elect a new leader as soon as their lease lets them and commit a write.
    for (let i = 0; i < 30 && !net.leaders().some((id) => id !== 1); i++) {
      net.node(1).tick();
      net.node(2).tick();
      net.node(3).tick();
      net.stabilize();
    }
    const newLeader = net.leaders().find((id) => id !== 1)!;
    expect(newLeader).toBeDefined();
    net.propose(newLeader, 'w');
    const committed = net.node(newLeader).status().commit;
    // Node 1 still believes it leads (its CheckQuorum round has not run out yet): the dangerous moment.
    expect(net.node(1).status().state).toBe(StateType.StateLeader);
    net.node(1).readIndex(enc('stale?'));
    const reads = collectReads(net, 1);
    for (const r of reads) expect(r.index).toBeGreaterThanOrEqual(committed);
    expect(reads).toEqual([]);
  });

  it('lease: no lease reads after MsgTimeoutNow went out in this term', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, readOnlyOption: 'lease' });
    net.campaign(1);
    net.tickAll(1);
    net.addFilter((m) => m.type === MessageType.MsgTimeoutNow);
    net.node(1).transferLeader(2);
    net.stabilize();
    // The transfer times out, but the MsgTimeoutNow may still be on its way.
    for (let i = 0; i < 10; i++) net.node(1).tick();
    expect(net.node(1).status().leadTransferee).toBe(0);
    net.isolate(1);
    net.node(1).readIndex(enc('after-transfer'));
    expect(collectReads(net, 1)).toEqual([]);
  });

  it('forwarded from a follower, answered to the follower', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a', 'b');
    net.node(3).readIndex(enc('from-3'));
    const reads = collectReads(net, 3);
    expect(reads.map((r) => [r.index, dec(r.context)])).toEqual([[3, 'from-3']]);
  });

  it('deferred until the new leader has committed an entry of its term', () => {
    const net = uncommittedLeader();
    expect(net.node(2).status().state).toBe(StateType.StateLeader);
    net.node(2).readIndex(enc('early'));
    expect(collectReads(net, 2)).toEqual([]);
    net.heal();
    net.node(2).tick();
    const reads = collectReads(net, 2);
    expect(reads.map((r) => dec(r.context))).toEqual(['early']);
    expect(reads[0]!.index).toBe(net.node(2).status().commit);
  });

  it('a follower takes the answer to a read only from its leader', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a');
    const term = net.node(3).status().term;
    // Another member of the same term answers before the leader has confirmed anything: a read point it never checked.
    net.node(3).step(msg({ type: MessageType.MsgReadIndexResp, from: 2, to: 3, term, index: 1, context: enc('forged') }));
    expect(collectReads(net, 3)).toEqual([]);
    net.node(3).step(msg({ type: MessageType.MsgReadIndexResp, from: 1, to: 3, term, index: 2, context: enc('real') }));
    expect(collectReads(net, 3).map((r) => [r.index, dec(r.context)])).toEqual([[2, 'real']]);
  });

  it('a follower without a leader refuses a read with a code', () => {
    const n = newNode(1, MemoryStorage.withConf([1, 2, 3]));
    expect(() => n.readIndex(enc('x'))).toThrow(ReadIndexDroppedError);
  });

  it('a single node serves reads once its term has a committed entry', () => {
    const s = MemoryStorage.withConf([1]);
    const n = newNode(1, s);
    n.campaign();
    drain(n, s);
    drain(n, s);
    n.readIndex(enc('solo'));
    expect(drain(n, s).readStates.map((r) => [r.index, dec(r.context)])).toEqual([[1, 'solo']]);
  });
});

describe('§8 / §3.10 leadership transfer', () => {
  it('to an up-to-date follower: MsgTimeoutNow at once, the follower wins', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a');
    net.node(1).transferLeader(2);
    net.stabilize();
    expect(net.leaders()).toEqual([2]);
    expect(net.node(2).status().term).toBe(2);
    expect(net.countDelivered(MessageType.MsgTimeoutNow)).toBe(1);
  });

  it('to a lagging follower: it is caught up first, then takes over', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.heal();
    net.node(1).transferLeader(3);
    expect(net.node(1).status().leadTransferee).toBe(3);
    net.stabilize();
    expect(net.leaders()).toEqual([3]);
    expect(net.peer(3).storage.lastIndex()).toBeGreaterThanOrEqual(6);
    net.propose(3, 'after');
    expect(net.peer(1).applied).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'after']);
  });

  it('the timeout-now campaign passes the leader lease (CheckQuorum)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, preVote: true });
    net.campaign(1);
    net.node(1).transferLeader(3);
    net.stabilize();
    expect(net.leaders()).toEqual([3]);
  });

  it('is abandoned after an election timeout if the target never catches up', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.node(1).transferLeader(3);
    expect(reason(() => net.node(1).propose(enc('x')))).toBe('transfer-pending');
    for (let i = 0; i < 10; i++) {
      net.node(1).tick();
      net.stabilize();
    }
    expect(net.node(1).status().leadTransferee).toBe(0);
    expect(net.node(1).propose(enc('x'))).not.toBeNull();
  });

  it('forwarded from a follower; a transfer to the current leader is a no-op', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    // Regression (sim seed 90): a follower asking to transfer to the leader itself.
    net.node(3).transferLeader(1);
    net.stabilize();
    expect(net.leaders()).toEqual([1]);
    net.node(3).transferLeader(2);
    net.stabilize();
    expect(net.leaders()).toEqual([2]);
  });

  it('a stale forward that names the receiving leader as transferee is accepted as a no-op', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    expect(() => net.node(1).step(msg({ type: MessageType.MsgTransferLeader, from: 1, to: 1 }))).not.toThrow();
    expect(net.leaders()).toEqual([1]);
  });

  it('refuses a transfer on a node that knows no leader', () => {
    const n = newNode(1, MemoryStorage.withConf([1, 2, 3]));
    expect(() => n.transferLeader(2)).toThrow(expect.objectContaining({ code: 'RAFT_NO_LEADER' }));
  });

  it('refuses a learner or unknown node as target', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    expect(() => net.node(1).transferLeader(9)).toThrow(expect.objectContaining({ code: 'RAFT_LEADER_TRANSFER' }));
    net.addPeer(4, MemoryStorage.withConf([1, 2, 3]));
    net.node(1).proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 4 });
    net.stabilize();
    expect(() => net.node(1).transferLeader(4)).toThrow(expect.objectContaining({ code: 'RAFT_LEADER_TRANSFER' }));
    expect(net.node(1).status().leadTransferee).toBe(0);
  });
});

describe('status view', () => {
  it('reports role, term, leader, commit, applied and per-peer progress on the leader', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a', 'b');
    net.isolate(3);
    net.propose(1, 'c');
    const st = net.node(1).status();
    expect(st).toMatchObject({ id: 1, term: 1, vote: 1, lead: 1, state: StateType.StateLeader, commit: 4, applied: 4, leadTransferee: 0 });
    expect(st.conf).toEqual({ voters: [1, 2, 3], learners: [] });
    expect(st.progress![1]).toMatchObject({ match: 4, next: 5 });
    expect(st.progress![2]).toMatchObject({ match: 4, next: 5, state: 1, inflight: 0, isLearner: false });
    // 3 missed 'c': it is still in the window, unacknowledged.
    expect(st.progress![3]).toMatchObject({ match: 3, next: 5, state: 1, inflight: 1 });
    const f = net.node(2).status();
    expect(f).toMatchObject({ id: 2, term: 1, vote: 1, lead: 1, state: StateType.StateFollower, commit: 4, applied: 4 });
    expect(f.progress).toBeUndefined();
  });
});

// Raft paper §5.3: log replication. Log matching with conflict truncation,
// rejection hints, per-follower flow control, batching, and the pipelined
// persist protocol (leader writes in parallel with its MsgApps).
import { describe, expect, it } from 'vitest';
import { Network, allMessages, drain, ents, enc, msg, newNode, storageWithTerms } from './network.js';
import { EntryType, MessageType, ProgressStateType, StateType, type Message } from '../../src/raft/types.js';
import { ENTRY_OVERHEAD, MemoryStorage, ProposalDroppedError, RawNode } from '../../src/raft/index.js';

function termsOf(s: MemoryStorage): number[] {
  const out: number[] = [];
  for (let i = s.firstIndex(); i <= s.lastIndex(); i++) out.push(s.term(i));
  return out;
}

/** A leader of term `term` over `terms`, with followers 2 and 3 known; its first Readys drained. */
function leaderOf(terms: number[], term: number, extra = {}): { n: RawNode; s: MemoryStorage } {
  const s = storageWithTerms([1, 2, 3], terms, term - 1);
  const n = newNode(1, s, extra);
  n.campaign();
  drain(n, s);
  n.step(msg({ type: MessageType.MsgVoteResp, from: 2, to: 1, term }));
  expect(n.status().state).toBe(StateType.StateLeader);
  drain(n, s);
  return { n, s };
}

describe('§5.3 follower log matching (MsgApp handling)', () => {
  // Follower log terms [1, 2, 2] at indexes 1..3, commit 1, in term 2.
  const cases: {
    name: string;
    index: number;
    logTerm: number;
    entries: number[];
    commit: number;
    reject: boolean;
    ack: number;
    log: number[];
    committed: number;
  }[] = [
    { name: 'prev not present', index: 4, logTerm: 2, entries: [2], commit: 3, reject: true, ack: 4, log: [1, 2, 2], committed: 1 },
    { name: 'prev term mismatch', index: 3, logTerm: 3, entries: [3], commit: 3, reject: true, ack: 3, log: [1, 2, 2], committed: 1 },
    { name: 'append at end', index: 3, logTerm: 2, entries: [2, 3], commit: 4, reject: false, ack: 5, log: [1, 2, 2, 2, 3], committed: 4 },
    { name: 'heartbeat-like, commit bounded by last new', index: 2, logTerm: 2, entries: [], commit: 3, reject: false, ack: 2, log: [1, 2, 2], committed: 2 },
    { name: 'duplicate entries are no-ops', index: 1, logTerm: 1, entries: [2, 2], commit: 3, reject: false, ack: 3, log: [1, 2, 2], committed: 3 },
    { name: 'conflict truncates the suffix', index: 1, logTerm: 1, entries: [3], commit: 2, reject: false, ack: 2, log: [1, 3], committed: 2 },
    { name: 'conflict in the middle of entries', index: 1, logTerm: 1, entries: [2, 3, 3], commit: 1, reject: false, ack: 4, log: [1, 2, 3, 3], committed: 1 },
    { name: 'below commit: ack the commit index', index: 0, logTerm: 0, entries: [1], commit: 0, reject: false, ack: 1, log: [1, 2, 2], committed: 1 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = storageWithTerms([1, 2, 3], [1, 2, 2], 3);
      s.setHardState({ term: 3, vote: 0, commit: 1 });
      const n = newNode(2, s);
      n.step(
        msg({ type: MessageType.MsgApp, from: 1, to: 2, term: 3, index: c.index, logTerm: c.logTerm, commit: c.commit, entries: ents(c.index + 1, c.entries) }),
      );
      const rd = drain(n, s);
      const resp = allMessages(rd).find((m) => m.type === MessageType.MsgAppResp)!;
      expect(rd.messages.some((m) => m.type === MessageType.MsgAppResp)).toBe(false);
      expect(resp.reject).toBe(c.reject);
      expect(resp.index).toBe(c.ack);
      expect(termsOf(s)).toEqual(c.log);
      expect(n.status().commit).toBe(c.committed);
    });
  }
});

describe('rejection hints skip back a whole term', () => {
  // etcd's fast log rejection: leader and follower logs diverge over several terms.
  const cases: { name: string; leader: number[]; follower: number[]; maxRejects: number }[] = [
    { name: 'follower has a long tail of an old term', leader: [1, 1, 2, 2, 4, 4, 4, 4], follower: [1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3], maxRejects: 1 },
    { name: 'leader has a long tail the follower lacks', leader: [1, 2, 2, 2, 2, 2, 2, 5, 5, 5, 5], follower: [1, 2, 3, 3, 3, 3], maxRejects: 2 },
    { name: 'many old terms on the follower', leader: [1, 1, 1, 1, 1, 1, 7], follower: [1, 2, 3, 4, 5, 6], maxRejects: 2 },
    { name: 'empty follower', leader: [1, 2, 3, 4, 5, 6, 7, 8], follower: [], maxRejects: 1 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const term = Math.max(...c.leader, ...c.follower) + 1;
      const net = new Network([]);
      net.addPeer(1, storageWithTerms([1, 2], c.leader, term - 1));
      net.addPeer(2, storageWithTerms([1, 2], c.follower, term - 1));
      net.campaign(1);
      expect(net.leaders()).toEqual([1]);
      const rejects = net.log.filter((m) => m.type === MessageType.MsgAppResp && m.reject).length;
      expect(rejects).toBeLessThanOrEqual(c.maxRejects);
      expect(termsOf(net.peer(2).storage)).toEqual(termsOf(net.peer(1).storage));
      expect(net.node(2).status().commit).toBe(c.leader.length + 1);
    });
  }

  it('without the term hint it would take one round trip per index: the hint is used', () => {
    const { n } = leaderOf([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 2);
    // Follower 2 rejects the probe after 10 and says: my log ends at 3, with term 1.
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 2, index: 10, reject: true, rejectHint: 3, rejectHintTerm: 1 }));
    const app = n.ready().messages.find((m) => m.type === MessageType.MsgApp && m.to === 2)!;
    expect(app.index).toBe(3);
  });
});

describe('progress: probe, replicate, flow control', () => {
  it('a probing follower gets one message until it answers, then a stream', () => {
    const { n, s } = leaderOf([], 1, { maxSizePerMsg: 1 });
    // The empty entry went out to 2 and 3 in probe state; more proposals send nothing more to them.
    n.propose(enc('a'));
    n.propose(enc('b'));
    let rd = drain(n, s);
    expect(rd.messages.filter((m) => m.type === MessageType.MsgApp && m.to === 2).length).toBe(0);
    expect(n.status().progress![2]!.state).toBe(ProgressStateType.ProgressStateProbe);
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 1 }));
    expect(n.status().progress![2]!.state).toBe(ProgressStateType.ProgressStateReplicate);
    rd = drain(n, s);
    // Replicate: with maxSizePerMsg tiny, one entry per message, all sent without waiting.
    const apps = rd.messages.filter((m) => m.type === MessageType.MsgApp && m.to === 2);
    expect(apps.map((m) => m.entries.length)).toEqual([1, 1]);
  });

  it('the inflight window bounds the number of unacknowledged messages', () => {
    const { n, s } = leaderOf([], 1, { maxInflightMsgs: 3, maxSizePerMsg: 1 });
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 1 }));
    drain(n, s);
    for (let i = 0; i < 10; i++) n.propose(enc(`x${i}`));
    const rd = drain(n, s);
    expect(rd.messages.filter((m) => m.type === MessageType.MsgApp && m.to === 2 && m.entries.length > 0).length).toBe(3);
    const pr = n.status().progress![2]!;
    expect(pr.inflight).toBe(3);
    expect(pr.paused).toBe(true);
    // An ack for the first two frees two slots.
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 3 }));
    const more = n.ready().messages.filter((m) => m.type === MessageType.MsgApp && m.to === 2 && m.entries.length > 0);
    expect(more.length).toBe(2);
  });

  it('the inflight window bounds the bytes of unacknowledged messages', () => {
    const { n, s } = leaderOf([], 1, { maxInflightBytes: 1000, maxSizePerMsg: 400 });
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 1 }));
    drain(n, s);
    for (let i = 0; i < 20; i++) n.propose(new Uint8Array(176)); // 200 bytes each with overhead
    const rd = drain(n, s);
    const apps = rd.messages.filter((m) => m.type === MessageType.MsgApp && m.to === 2 && m.entries.length > 0);
    const bytes = apps.reduce((a, m) => a + m.entries.length * 200, 0);
    // Sending stops once the window holds >= 1000 bytes: at most one message past the limit.
    expect(bytes).toBeGreaterThanOrEqual(1000);
    expect(bytes).toBeLessThan(1000 + 400);
    expect(n.status().progress![2]!.paused).toBe(true);
    expect(n.status().progress![2]!.inflightBytes).toBe(bytes);
  });

  it('maxSizePerMsg batches entries into MsgApps', () => {
    const { n, s } = leaderOf([], 1, { maxSizePerMsg: 1000 });
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 1 }));
    drain(n, s);
    n.propose(Array.from({ length: 20 }, () => new Uint8Array(76))); // 100 bytes each
    const apps = drain(n, s).messages.filter((m) => m.type === MessageType.MsgApp && m.to === 2);
    expect(apps.map((m) => m.entries.length)).toEqual([10, 10]);
  });

  it('a rejection in replicate state falls back to probe', () => {
    const { n } = leaderOf([], 1);
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 1 }));
    n.propose(enc('a'));
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 1, reject: true, rejectHint: 1, rejectHintTerm: 1 }));
    // index 1 <= match: a stale rejection is ignored.
    expect(n.status().progress![2]!.state).toBe(ProgressStateType.ProgressStateReplicate);
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 2, reject: true, rejectHint: 1, rejectHintTerm: 1 }));
    expect(n.status().progress![2]!.state).toBe(ProgressStateType.ProgressStateProbe);
  });

  it('a paused probe is retried once per heartbeat interval, however many heartbeat answers arrive', () => {
    const { n, s } = leaderOf([], 1, { maxSizePerMsg: 1 });
    n.propose(enc('a'));
    drain(n, s);
    const probes = (): number => drain(n, s).messages.filter((m) => m.type === MessageType.MsgApp && m.to === 2).length;
    // The answers to 50 ReadIndex heartbeats, held by the network and delivered together: none is due a probe.
    for (let i = 0; i < 50; i++) n.step(msg({ type: MessageType.MsgHeartbeatResp, from: 2, to: 1, term: 1, context: enc(`read-${i}`) }));
    expect(probes()).toBe(0);
    // A periodic heartbeat went out: the first answer after it resumes probing, once.
    n.tick(); // heartbeatTick 1
    expect(drain(n, s).messages.filter((m) => m.type === MessageType.MsgHeartbeat && m.to === 2).length).toBe(1);
    for (let i = 0; i < 50; i++) n.step(msg({ type: MessageType.MsgHeartbeatResp, from: 2, to: 1, term: 1 }));
    expect(probes()).toBe(1);
    expect(n.status().progress![2]!.state).toBe(ProgressStateType.ProgressStateProbe);
    // The follower's answer to the probe itself resumes at once, as before.
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 1 }));
    expect(n.status().progress![2]!.state).toBe(ProgressStateType.ProgressStateReplicate);
    expect(probes()).toBe(1);
  });

  it('reportUnreachable moves a replicating follower to probe', () => {
    const { n } = leaderOf([], 1);
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 1 }));
    expect(n.status().progress![2]!.state).toBe(ProgressStateType.ProgressStateReplicate);
    n.reportUnreachable(2);
    expect(n.status().progress![2]!.state).toBe(ProgressStateType.ProgressStateProbe);
  });
});

describe('leader limits', () => {
  it('maxUncommittedEntriesSize drops proposals until entries commit', () => {
    // Ten entries of 100 bytes, each counted with its overhead.
    const net = new Network([1, 2, 3], { maxUncommittedEntriesSize: 10 * (100 + ENTRY_OVERHEAD) });
    net.campaign(1);
    net.isolate(1);
    const n = net.node(1);
    for (let i = 0; i < 10; i++) n.propose(new Uint8Array(100));
    let err: unknown;
    try {
      n.propose(new Uint8Array(100));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProposalDroppedError);
    expect((err as ProposalDroppedError).code).toBe('RAFT_PROPOSAL_DROPPED');
    expect((err as ProposalDroppedError).reason).toBe('uncommitted-size');
    net.heal();
    net.stabilize();
    net.tickAll(2);
    expect(n.status().commit).toBe(11);
    expect(n.propose(new Uint8Array(100))).toEqual({ index: 12, term: 1 });
  });

  it('maxUncommittedEntriesSize counts an overhead per entry: empty proposals, local or forwarded, do not grow the tail without bound', () => {
    const net = new Network([1, 2, 3], { maxUncommittedEntriesSize: 10 * ENTRY_OVERHEAD });
    net.campaign(1);
    net.isolate(1);
    const n = net.node(1);
    const empty = new Uint8Array(0);
    let taken = 0;
    const refused = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        if (e instanceof ProposalDroppedError) return e.reason;
        throw e;
      }
      taken++;
      return undefined;
    };
    while (taken < 100 && refused(() => n.propose(empty)) === undefined);
    expect(taken).toBe(10);
    // A peer's forwarded proposal of many empty entries is refused as a whole.
    const fwd = msg({
      type: MessageType.MsgProp,
      from: 2,
      to: 1,
      entries: Array.from({ length: 1000 }, () => ({ index: 0, term: 0, type: EntryType.Normal, data: empty })),
    });
    expect(refused(() => n.step(fwd))).toBe('uncommitted-size');
    net.heal();
    net.stabilize();
    net.tickAll(2);
    // Entries 2 to 11 committed, and none of the forwarded ones was appended.
    expect(n.status().commit).toBe(11);
    expect(n.propose(empty)).toEqual({ index: 12, term: 1 });
  });

  it('maxCommittedSizePerReady bounds the committed entries of one Ready', () => {
    const s = MemoryStorage.withConf([1]);
    const n = newNode(1, s, { maxCommittedSizePerReady: 500 });
    n.campaign();
    drain(n, s);
    drain(n, s);
    n.propose(Array.from({ length: 20 }, () => new Uint8Array(76)));
    let total = 0;
    let readys = 0;
    while (n.hasReady()) {
      const rd = drain(n, s);
      const size = rd.committedEntries.reduce((a, e) => a + e.data.length + 24, 0);
      expect(size).toBeLessThanOrEqual(500);
      total += rd.committedEntries.filter((e) => e.data.length > 0).length;
      readys++;
    }
    expect(total).toBe(20);
    expect(readys).toBeGreaterThanOrEqual(4);
  });
});

describe('pipelined persistence', () => {
  it("the leader's MsgApps leave before its own write, and it counts itself only once persisted", () => {
    const { n, s } = leaderOf([], 1);
    for (const id of [2, 3]) n.step(msg({ type: MessageType.MsgAppResp, from: id, to: 1, term: 1, index: 1 }));
    drain(n, s);
    expect(n.status().commit).toBe(1);
    n.propose(enc('a'));
    const rd = n.ready();
    n.advance(rd);
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.messages.filter((m) => m.type === MessageType.MsgApp).map((m) => m.to)).toEqual([2, 3]);
    // One follower acks: with the leader's own write pending, 1 of 3 is no quorum.
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 2 }));
    expect(n.status().commit).toBe(1);
    s.append(rd.entries);
    n.persisted(rd);
    expect(n.status().commit).toBe(2);
  });

  it('a quorum of followers can commit while the leader is still writing', () => {
    const { n, s } = leaderOf([], 1);
    for (const id of [2, 3]) n.step(msg({ type: MessageType.MsgAppResp, from: id, to: 1, term: 1, index: 1 }));
    drain(n, s);
    n.propose(enc('a'));
    const rd = n.ready();
    n.advance(rd);
    for (const id of [2, 3]) n.step(msg({ type: MessageType.MsgAppResp, from: id, to: 1, term: 1, index: 2 }));
    expect(n.status().commit).toBe(2);
    // But it is not applied on the leader until its own copy is durable.
    const rd2 = n.ready();
    n.advance(rd2);
    expect(rd2.committedEntries).toEqual([]);
    s.append(rd.entries);
    n.persisted(rd2);
    const rd3 = n.ready();
    expect(rd3.committedEntries.map((e) => e.index)).toEqual([2]);
  });

  it('several Readys in flight: entries are handed out once, and become durable in order', () => {
    const { n, s } = leaderOf([], 1);
    n.propose(enc('a'));
    const rd1 = n.ready();
    n.advance(rd1);
    n.propose(enc('b'));
    n.propose(enc('c'));
    const rd2 = n.ready();
    n.advance(rd2);
    expect(rd1.entries.map((e) => e.index)).toEqual([2]);
    expect(rd2.entries.map((e) => e.index)).toEqual([3, 4]);
    expect(n.hasReady()).toBe(false);
    s.append(rd1.entries);
    s.append(rd2.entries);
    // persisted(rd2) covers rd1 as well.
    n.persisted(rd2);
    expect(n.status().progress![1]!.match).toBe(4);
    expect(() => n.persisted(rd1)).toThrow(expect.objectContaining({ code: 'RAFT_READY_PROTOCOL' }));
  });

  it("a follower's acknowledgement leaves only after its write, and only for what was written", () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(2, s);
    n.step(msg({ type: MessageType.MsgApp, from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: ents(1, [1, 1]) }));
    const rd1 = n.ready();
    n.advance(rd1);
    expect(rd1.messages.filter((m) => m.type === MessageType.MsgAppResp)).toEqual([]);
    expect(rd1.messagesAfterPersist.map((m) => [m.type, m.index])).toEqual([[MessageType.MsgAppResp, 2]]);
    // A retransmission of the same entries while the write runs: nothing is handed out twice.
    n.step(msg({ type: MessageType.MsgApp, from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: ents(1, [1, 1]), commit: 2 }));
    const rd2 = n.ready();
    n.advance(rd2);
    expect(rd2.entries).toEqual([]);
    // Its ack is in the later Ready, which is durable only after rd1.
    expect(rd2.messagesAfterPersist.map((m) => m.index)).toEqual([2]);
    // Committed but not yet durable here: not applied.
    expect(rd2.committedEntries).toEqual([]);
    s.append(rd1.entries);
    n.persisted(rd2);
    expect(n.ready().committedEntries.map((e) => e.index)).toEqual([1, 2]);
  });

  it('an in-flight suffix overwritten by a new leader: the stale persisted report is ignored', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(2, s);
    n.step(msg({ type: MessageType.MsgApp, from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: ents(1, [1, 1, 1]) }));
    const rd1 = n.ready();
    n.advance(rd1);
    // Term 2 leader 3 overwrites index 2..: [1, 2].
    n.step(msg({ type: MessageType.MsgApp, from: 3, to: 2, term: 2, index: 1, logTerm: 1, entries: ents(2, [2]) }));
    const rd2 = n.ready();
    n.advance(rd2);
    expect(rd2.entries.map((e) => [e.index, e.term])).toEqual([[2, 2]]);
    // rd1 becomes durable first: (3, 1) no longer exists in the log, so nothing is marked stable.
    s.append(rd1.entries);
    s.setHardState(rd1.hardState!);
    n.persisted(rd1);
    expect(n.hasReady()).toBe(false);
    s.append(rd2.entries);
    s.setHardState(rd2.hardState!);
    n.persisted(rd2);
    expect(termsOf(s)).toEqual([1, 2]);
    const st = n.status();
    expect(st.term).toBe(2);
    // A fresh node over the same storage sees exactly the durable log.
    const again = newNode(2, s);
    expect(again.status().term).toBe(2);
  });

  it('a leader re-elected in a higher term does not count a stale self-acknowledgement', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const n = net.node(1);
    // Leader 1 proposes, hands out the write, then loses leadership before it is durable.
    n.propose(enc('a'));
    const rd = n.ready();
    n.advance(rd);
    n.step(msg({ type: MessageType.MsgVote, from: 2, to: 1, term: 5, index: 10, logTerm: 5 }));
    expect(n.status().state).toBe(StateType.StateFollower);
    net.peer(1).storage.append(rd.entries);
    n.persisted(rd);
    // No commit happened from that stale acknowledgement.
    expect(n.status().commit).toBe(1);
  });
});

describe('§5.3 replication through a cluster', () => {
  it('entries reach every follower and commit in order', () => {
    const net = new Network([1, 2, 3, 4, 5]);
    net.campaign(1);
    for (let i = 0; i < 20; i++) net.propose(1 + (i % 5), `v${i}`);
    const expected = Array.from({ length: 20 }, (_, i) => `v${i}`);
    for (const id of [1, 2, 3, 4, 5]) expect(net.peer(id).applied).toEqual(expected);
  });

  it('a follower that missed entries catches up through probing', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
    expect(net.peer(3).applied).toEqual([]);
    net.heal();
    net.tickAll(3);
    expect(net.peer(3).applied).toEqual(Array.from({ length: 10 }, (_, i) => `v${i}`));
  });

  it('messages lost on the way are recovered by heartbeats', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    let drop = true;
    net.addFilter((m: Message) => drop && m.type === MessageType.MsgApp && m.to === 2);
    net.propose(1, 'a', 'b');
    drop = false;
    net.tickAll(3);
    expect(net.peer(2).applied).toEqual(['a', 'b']);
  });
});

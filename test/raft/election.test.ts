// Raft paper §5.2: leader election. Plus PreVote and CheckQuorum edge cases.
import { describe, expect, it } from 'vitest';
import { Network, allMessages, drain, msg, newNode, storageWithTerms } from './network.js';
import { ConfChangeType, EntryType, MessageType, StateType } from '../../src/raft/types.js';
import { MemoryStorage, encodeConfChangeV2 } from '../../src/raft/index.js';

const { StateFollower, StateCandidate, StateLeader, StatePreCandidate } = StateType;

describe('§5.2 leader election', () => {
  const cases: { name: string; size: number; down: number[]; preVote: boolean; state: StateType; term: number }[] = [
    { name: '3 nodes all up', size: 3, down: [], preVote: false, state: StateLeader, term: 1 },
    { name: '3 nodes one down', size: 3, down: [3], preVote: false, state: StateLeader, term: 1 },
    { name: '3 nodes two down', size: 3, down: [2, 3], preVote: false, state: StateCandidate, term: 1 },
    { name: '5 nodes two down', size: 5, down: [4, 5], preVote: false, state: StateLeader, term: 1 },
    { name: '5 nodes three down', size: 5, down: [3, 4, 5], preVote: false, state: StateCandidate, term: 1 },
    { name: '3 nodes one down, prevote', size: 3, down: [3], preVote: true, state: StateLeader, term: 1 },
    { name: '3 nodes two down, prevote', size: 3, down: [2, 3], preVote: true, state: StatePreCandidate, term: 0 },
    { name: '5 nodes three down, prevote', size: 5, down: [3, 4, 5], preVote: true, state: StatePreCandidate, term: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const ids = Array.from({ length: c.size }, (_, i) => i + 1);
      const net = new Network(ids, { preVote: c.preVote });
      for (const d of c.down) net.isolate(d);
      net.campaign(1);
      const st = net.node(1).status();
      expect(st.state).toBe(c.state);
      expect(st.term).toBe(c.term);
    });
  }

  it('a follower times out within [electionTick, 2*electionTick) ticks, randomized', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 40; seed++) {
      const net = new Network([1, 2, 3], {}, seed);
      const n = net.node(1);
      let ticks = 0;
      while (n.status().state === StateFollower) {
        n.tick();
        ticks++;
        if (ticks > 100) throw new Error(`seed ${seed}: no election after 100 ticks`);
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      seen.add(ticks);
    }
    // Randomized: different seeds give different timeouts.
    expect(seen.size).toBeGreaterThan(3);
  });

  it('the leader heartbeats every heartbeatTick and followers keep following', () => {
    const net = new Network([1, 2, 3], { heartbeatTick: 2 });
    net.campaign(1);
    net.tickAll(50);
    expect(net.leaders()).toEqual([1]);
    expect(net.node(2).status().term).toBe(1);
    expect(net.countDelivered(MessageType.MsgHeartbeat)).toBe(2 * 25);
  });

  it('a leader that dies is replaced by a new one in a higher term', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(1);
    net.tickAll(30);
    const leaders = net.leaders().filter((id) => id !== 1);
    expect(leaders.length).toBe(1);
    expect(net.node(leaders[0]!).status().term).toBeGreaterThan(1);
  });

  describe('voting rules: one vote per term', () => {
    // (existing vote in term 1, candidate) -> granted?
    const cases: { vote: number; lead: number; from: number; grant: boolean }[] = [
      { vote: 0, lead: 0, from: 2, grant: true },
      { vote: 2, lead: 0, from: 2, grant: true }, // repeated request from the same candidate
      { vote: 3, lead: 0, from: 2, grant: false },
      { vote: 1, lead: 0, from: 2, grant: false }, // voted for itself
    ];
    for (const c of cases) {
      it(`vote=${c.vote} request from ${c.from} -> ${c.grant ? 'grant' : 'reject'}`, () => {
        const s = storageWithTerms([1, 2, 3], [], 1, c.vote);
        const n = newNode(1, s);
        n.step(msg({ type: MessageType.MsgVote, from: c.from, to: 1, term: 1, index: 0, logTerm: 0 }));
        const rd = drain(n, s);
        const resp = allMessages(rd).find((m) => m.type === MessageType.MsgVoteResp)!;
        expect(resp.reject).toBe(!c.grant);
        expect(n.status().vote).toBe(c.grant ? c.from : c.vote);
      });
    }
  });

  describe("voting rules: the candidate's log must be at least as up to date (§5.4.1)", () => {
    // Voter log terms [1, 2] (last index 2, last term 2).
    const cases: { lastIndex: number; lastTerm: number; grant: boolean }[] = [
      { lastIndex: 2, lastTerm: 2, grant: true },
      { lastIndex: 3, lastTerm: 2, grant: true },
      { lastIndex: 1, lastTerm: 3, grant: true },
      { lastIndex: 1, lastTerm: 2, grant: false },
      { lastIndex: 5, lastTerm: 1, grant: false },
      { lastIndex: 0, lastTerm: 0, grant: false },
    ];
    for (const c of cases) {
      it(`candidate (index ${c.lastIndex}, term ${c.lastTerm}) -> ${c.grant ? 'grant' : 'reject'}`, () => {
        const s = storageWithTerms([1, 2, 3], [1, 2], 2);
        const n = newNode(1, s);
        n.step(msg({ type: MessageType.MsgVote, from: 2, to: 1, term: 3, index: c.lastIndex, logTerm: c.lastTerm }));
        const rd = drain(n, s);
        const resp = allMessages(rd).find((m) => m.type === MessageType.MsgVoteResp)!;
        expect(resp.reject).toBe(!c.grant);
        expect(n.status().term).toBe(3);
      });
    }
  });

  it('a vote is sent only after the HardState recording it (messagesAfterPersist, mustSync)', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(1, s);
    n.step(msg({ type: MessageType.MsgVote, from: 2, to: 1, term: 1 }));
    const rd = n.ready();
    expect(rd.messages.filter((m) => m.type === MessageType.MsgVoteResp)).toEqual([]);
    expect(rd.messagesAfterPersist.map((m) => m.type)).toEqual([MessageType.MsgVoteResp]);
    expect(rd.hardState).toEqual({ term: 1, vote: 2, commit: 0 });
    expect(rd.mustSync).toBe(true);
  });

  it('a candidate counts its own vote only once its HardState is persisted', () => {
    const s = MemoryStorage.withConf([1]);
    const n = newNode(1, s);
    n.campaign();
    expect(n.status().state).toBe(StateCandidate);
    const rd = n.ready();
    n.advance(rd);
    expect(n.status().state).toBe(StateCandidate);
    s.setHardState(rd.hardState!);
    n.persisted(rd);
    expect(n.status().state).toBe(StateLeader);
  });

  it('a candidate that hears from a leader of its term becomes its follower', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(1, s);
    n.campaign();
    drain(n, s);
    expect(n.status().state).toBe(StateCandidate);
    n.step(msg({ type: MessageType.MsgApp, from: 2, to: 1, term: 1, index: 0, logTerm: 0 }));
    expect(n.status()).toMatchObject({ state: StateFollower, lead: 2, term: 1 });
  });

  it('a refused vote request of a later term leaves the election timer running; a granted one restarts it', () => {
    // Raft's rule (Figure 2): a follower campaigns when its election timeout passes without hearing the
    // leader or granting a vote. A candidate that cannot win must not hold back the nodes that can.
    const ticksToCampaign = (seed: number, vote: 'none' | 'stale' | 'current'): number => {
      const net = new Network([1, 2, 3], {}, seed);
      net.campaign(1);
      net.propose(1, 'x');
      const n = net.node(2);
      const { term } = n.status();
      const last = net.peer(2).storage.lastIndex();
      for (let i = 0; i < 9; i++) n.tick();
      if (vote !== 'none') {
        const index = vote === 'stale' ? last - 1 : last;
        n.step(msg({ type: MessageType.MsgVote, from: 3, to: 2, term: term + 1, index, logTerm: net.peer(2).storage.term(index) }));
        expect(n.status().term).toBe(term + 1);
        net.handleReady(2);
        expect(net.queue.filter((m) => m.to === 3).map((m) => m.reject)).toEqual([vote === 'stale']);
      }
      let ticks = 9;
      while (n.status().state === StateFollower) {
        n.tick();
        if (++ticks > 100) throw new Error(`seed ${seed}: no election after 100 ticks`);
      }
      return ticks;
    };
    for (let seed = 1; seed <= 12; seed++) {
      const alone = ticksToCampaign(seed, 'none');
      expect(ticksToCampaign(seed, 'stale')).toBe(alone);
      expect(ticksToCampaign(seed, 'current')).toBeGreaterThanOrEqual(9 + 10);
    }
  });

  it("a refused vote names how far the candidate's log is committed; the candidate takes it when its log holds that entry and it brings a membership change", () => {
    // Voter 2 holds terms [1 1 2 2] with 3 committed: its log is longer than the candidates'.
    const s2 = storageWithTerms([1, 2, 3], [1, 1, 2, 2]);
    s2.setHardState({ term: 2, vote: 0, commit: 3 });
    const voter = newNode(2, s2);
    const refusal = (type: MessageType, index: number, logTerm: number): [number, number, boolean] => {
      voter.step(msg({ type, from: 1, to: 2, term: 3, index, logTerm }));
      const r = allMessages(drain(voter, s2)).find((m) => m.to === 1)!;
      return [r.commit, r.logTerm, r.reject];
    };
    expect(refusal(MessageType.MsgPreVote, 3, 2)).toEqual([3, 2, true]);
    // No further than the candidate's log goes.
    expect(refusal(MessageType.MsgPreVote, 2, 1)).toEqual([2, 1, true]);
    expect(refusal(MessageType.MsgVote, 3, 2)).toEqual([3, 2, true]);

    const afterRefusal = (terms: number[], conf = false): { commit: number; state: StateType; term: number } => {
      // With `conf`, entry 3 adds a learner.
      const s = storageWithTerms([1, 2, 3], conf ? terms.slice(0, 2) : terms);
      if (conf) {
        const cc = encodeConfChangeV2({ transition: 'auto', changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: 4 }] });
        s.append([{ index: 3, term: terms[2]!, type: EntryType.ConfChange, data: cc }]);
      }
      s.setHardState({ term: 2, vote: 0, commit: 1 });
      const n = newNode(1, s);
      n.campaign();
      drain(n, s);
      expect(n.status()).toMatchObject({ state: StateCandidate, term: 3 });
      n.step(msg({ type: MessageType.MsgVoteResp, from: 2, to: 1, term: 3, reject: true, commit: 3, logTerm: 2 }));
      const { commit, state, term } = n.status();
      return { commit, state, term };
    };
    // A membership change committed: it stops campaigning, to apply it first.
    expect(afterRefusal([1, 1, 2], true)).toEqual({ commit: 3, state: StateFollower, term: 3 });
    // Its entry 3 is of another term: nothing is known of it.
    expect(afterRefusal([1, 1, 1], true)).toEqual({ commit: 1, state: StateCandidate, term: 3 });
    // No membership change: the entry of its term commits the rest if it wins.
    expect(afterRefusal([1, 1, 2])).toEqual({ commit: 1, state: StateCandidate, term: 3 });
  });

  it('a candidate that is rejected by a majority returns to follower', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(1, s);
    n.campaign();
    drain(n, s);
    n.step(msg({ type: MessageType.MsgVoteResp, from: 2, to: 1, term: 1, reject: true }));
    expect(n.status().state).toBe(StateCandidate);
    n.step(msg({ type: MessageType.MsgVoteResp, from: 3, to: 1, term: 1, reject: true }));
    expect(n.status().state).toBe(StateFollower);
  });
});

describe('PreVote', () => {
  for (const preVote of [false, true]) {
    it(`a partitioned node rejoining ${preVote ? 'does not disturb' : 'disturbs'} the cluster (preVote=${preVote})`, () => {
      const net = new Network([1, 2, 3], { preVote });
      net.campaign(1);
      net.propose(1, 'a');
      net.isolate(3);
      for (let i = 0; i < 50; i++) {
        net.tick(3);
        net.stabilize();
      }
      // Without PreVote the isolated node keeps raising its term; with it, it cannot.
      expect(net.node(3).status().term).toBe(preVote ? 1 : net.node(3).status().term);
      if (!preVote) expect(net.node(3).status().term).toBeGreaterThan(3);
      net.heal();
      for (let i = 0; i < 30; i++) {
        net.tick(3);
        net.stabilize();
        net.tick(1);
        net.stabilize();
      }
      if (preVote) {
        expect(net.leaders()).toEqual([1]);
        expect(net.node(1).status().term).toBe(1);
      } else {
        expect(net.node(1).status().term).toBeGreaterThan(1);
      }
      net.propose(net.leaders()[0]!, 'b');
      for (const id of [1, 2, 3]) expect(net.peer(id).applied).toEqual(['a', 'b']);
    });
  }

  it('a pre-candidate does not raise its term, and a pre-vote does not change the voter', () => {
    const s1 = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(1, s1, { preVote: true });
    n.campaign();
    const rd = drain(n, s1);
    expect(n.status()).toMatchObject({ state: StatePreCandidate, term: 0, vote: 0 });
    const pv = rd.messages.find((m) => m.type === MessageType.MsgPreVote)!;
    expect(pv.term).toBe(1);
    const s2 = MemoryStorage.withConf([1, 2, 3]);
    const voter = newNode(2, s2, { preVote: true });
    voter.step({ ...pv, to: 2 });
    const vrd = drain(voter, s2);
    expect(voter.status()).toMatchObject({ term: 0, vote: 0 });
    const resp = allMessages(vrd).find((m) => m.type === MessageType.MsgPreVoteResp)!;
    expect(resp).toMatchObject({ reject: false, term: 1 });
    n.step({ ...resp, to: 1 });
    expect(n.status()).toMatchObject({ state: StateCandidate, term: 1, vote: 1 });
  });

  it('a pre-vote from a node with a stale log is rejected', () => {
    const s = storageWithTerms([1, 2, 3], [1, 1, 2], 2);
    const n = newNode(2, s, { preVote: true });
    n.step(msg({ type: MessageType.MsgPreVote, from: 1, to: 2, term: 3, index: 3, logTerm: 1 }));
    const resp = allMessages(drain(n, s)).find((m) => m.type === MessageType.MsgPreVoteResp)!;
    expect(resp.reject).toBe(true);
    expect(n.status().term).toBe(2);
  });
});

describe('CheckQuorum', () => {
  it('an isolated leader steps down after an election timeout', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    net.campaign(1);
    net.isolate(1);
    for (let i = 0; i < 9; i++) {
      net.tick(1);
      net.stabilize();
    }
    expect(net.node(1).status().state).toBe(StateLeader);
    // Two full timeouts: the first check still counts the followers heard from since the election.
    for (let i = 0; i < 11; i++) {
      net.tick(1);
      net.stabilize();
    }
    expect(net.node(1).status().state).toBe(StateFollower);
    expect(net.node(1).status().term).toBe(1);
  });

  it('a leader that hears from a quorum stays', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 100; i++) {
      net.tick(1);
      net.stabilize();
    }
    expect(net.node(1).status().state).toBe(StateLeader);
  });

  it('a follower in its leader lease ignores a vote request with a higher term', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    net.campaign(1);
    // Node 3 campaigns on its own (e.g. it was briefly partitioned).
    net.node(3).campaign();
    net.stabilize();
    expect(net.leaders()).toEqual([1]);
    expect(net.node(2).status()).toMatchObject({ term: 1, vote: 1, lead: 1 });
  });

  it('a stale leader learns the new term from a follower and steps down', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, preVote: true });
    net.campaign(1);
    net.isolate(1);
    for (let i = 0; i < 40; i++) {
      net.tick(2);
      net.tick(3);
      net.stabilize();
    }
    const newLeader = net.leaders().find((id) => id !== 1)!;
    expect(newLeader).toBeDefined();
    net.heal();
    // The old leader (still thinking it leads in term 1) heartbeats; it hears the higher term back.
    net.node(1).tick();
    net.stabilize();
    expect(net.node(1).status().state).toBe(StateFollower);
    expect(net.leaders()).toEqual([newLeader]);
  });
});

describe('etcd edge cases around elections', () => {
  it('dueling candidates: one wins, the other follows, the log stays consistent', () => {
    const net = new Network([1, 2, 3]);
    net.cutLink(1, 3);
    net.campaign(1);
    net.campaign(3);
    expect(net.node(1).status().state).toBe(StateLeader);
    // 3 lost: 2 already voted for 1 in term 1.
    expect(net.node(3).status().state).not.toBe(StateLeader);
    net.heal();
    net.tickAll(30);
    expect(net.leaders().length).toBe(1);
    const l = net.leaders()[0]!;
    net.propose(l, 'x');
    for (const id of [1, 2, 3]) expect(net.peer(id).applied).toEqual(['x']);
  });

  it('dueling pre-candidates do not raise terms', () => {
    const net = new Network([1, 2, 3], { preVote: true });
    net.cutLink(1, 3);
    net.campaign(1);
    net.campaign(3);
    expect(net.node(1).status()).toMatchObject({ state: StateLeader, term: 1 });
    expect(net.node(3).status()).toMatchObject({ state: StateFollower, term: 1 });
  });

  it('messages of an older term are ignored', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.campaign(2);
    net.campaign(1);
    expect(net.node(1).status().term).toBe(3);
    const before = net.node(1).status();
    // A MsgApp from the term-2 leader arrives late.
    net.node(1).step(msg({ type: MessageType.MsgApp, from: 2, to: 1, term: 2, index: 2, logTerm: 2, entries: [] }));
    expect(net.node(1).status()).toEqual(before);
  });

  it('a stuck candidate with a high term is freed under CheckQuorum (the leader learns its term)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    net.campaign(1);
    net.isolate(1);
    net.isolate(3);
    // 3 alone campaigns repeatedly and gets far ahead in terms.
    for (let i = 0; i < 5; i++) net.campaign(3);
    const high = net.node(3).status().term;
    expect(high).toBeGreaterThan(3);
    net.heal();
    // The leader's heartbeat reaches 3, which answers with its higher term: the leader steps down.
    net.node(1).tick();
    net.stabilize();
    expect(net.node(1).status().term).toBe(high);
    net.tickAll(30);
    expect(net.leaders().length).toBe(1);
  });

  it('campaign() on a leader does nothing', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.campaign(1);
    expect(net.node(1).status()).toMatchObject({ state: StateLeader, term: 1 });
  });

  it('a restarted node keeps its term and vote', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(2, s);
    n.step(msg({ type: MessageType.MsgVote, from: 3, to: 2, term: 4 }));
    drain(n, s);
    const again = newNode(2, s);
    expect(again.status()).toMatchObject({ term: 4, vote: 3 });
    // It will not vote for another candidate in term 4.
    again.step(msg({ type: MessageType.MsgVote, from: 1, to: 2, term: 4 }));
    const resp = allMessages(drain(again, s)).find((m) => m.type === MessageType.MsgVoteResp)!;
    expect(resp.reject).toBe(true);
  });
});

describe('a vote request of an earlier term', () => {
  it("is refused with this node's term, so a candidate that nobody else asks for votes learns it", () => {
    // Node 3's log stops before the change that made node 1 a voter: it sees 1 as a learner and asks only node 2
    // (removed since, gone) for votes. Node 1, the one node that can win (its log is longer), asks node 3. Each
    // campaign raises each term by one; unless node 3 answers node 1's stale requests, node 1 never catches
    // up with node 3's term, and neither ever leads.
    const net = new Network([], { checkQuorum: true });
    net.addPeer(1, storageWithTerms([1, 3], [1, 1, 2], 2));
    const s3 = storageWithTerms([2, 3], [1, 1], 6);
    s3.setConfState({ voters: [2, 3], learners: [1] });
    net.addPeer(3, s3);
    net.tickAll(300);
    expect(net.leaders()).toEqual([1]);
  });
});

// Raft paper §5.4: safety. The election restriction, the Figure 8 commit
// rule, leader completeness, and a seeded randomized run of the invariants.
import { describe, expect, it } from 'vitest';
import { Network, drain, msg, newNode, seeded, storageWithTerms } from './network.js';
import { announceSeed, testSeeds } from '../seeded.js';
import { MessageType, StateType } from '../../src/raft/types.js';

describe('§5.4.1 election restriction', () => {
  // Voters 2 and 3 have the given logs; candidate 1 has its own. Does 1 win?
  const cases: { name: string; candidate: number[]; others: number[][]; wins: boolean }[] = [
    {
      name: 'equal logs',
      candidate: [1, 1],
      others: [
        [1, 1],
        [1, 1],
      ],
      wins: true,
    },
    { name: 'longer log, same term', candidate: [1, 1, 1], others: [[1, 1], [1]], wins: true },
    {
      name: 'shorter log, same last term',
      candidate: [1],
      others: [
        [1, 1],
        [1, 1],
      ],
      wins: false,
    },
    {
      name: 'shorter log, higher last term',
      candidate: [1, 3],
      others: [
        [1, 2, 2, 2],
        [1, 2, 2],
      ],
      wins: true,
    },
    { name: 'one voter has a newer term', candidate: [1, 1, 1], others: [[1, 2], [1]], wins: true },
    { name: 'both voters have a newer term', candidate: [1, 1, 1], others: [[1, 2], [2]], wins: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const term = 4;
      const net = new Network([]);
      net.addPeer(1, storageWithTerms([1, 2, 3], c.candidate, term));
      net.addPeer(2, storageWithTerms([1, 2, 3], c.others[0]!, term));
      net.addPeer(3, storageWithTerms([1, 2, 3], c.others[1]!, term));
      net.campaign(1);
      expect(net.node(1).status().state === StateType.StateLeader).toBe(c.wins);
    });
  }
});

describe('§5.4.2 Figure 8: commit only entries of the current term by counting replicas', () => {
  it('an old-term entry on a majority is not committed until an entry of the current term is', () => {
    // Leader 1 in term 4 holds index 2 from term 2 (never committed); commit is 1.
    const s = storageWithTerms([1, 2, 3, 4, 5], [1, 2], 3);
    s.setHardState({ term: 3, vote: 0, commit: 1 });
    const n = newNode(1, s);
    n.campaign();
    drain(n, s);
    n.step(msg({ type: MessageType.MsgVoteResp, from: 2, to: 1, term: 4 }));
    n.step(msg({ type: MessageType.MsgVoteResp, from: 3, to: 1, term: 4 }));
    expect(n.status().state).toBe(StateType.StateLeader);
    drain(n, s); // the empty entry at index 3, term 4, persisted on the leader
    // Followers 2 and 3 acknowledge index 2: the term-2 entry now sits on 3 of 5 nodes.
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 4, index: 2 }));
    n.step(msg({ type: MessageType.MsgAppResp, from: 3, to: 1, term: 4, index: 2 }));
    expect(n.status().commit).toBe(1);
    // Once the entry of term 4 is on a majority, it and everything before it commit.
    n.step(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 4, index: 3 }));
    expect(n.status().commit).toBe(1);
    n.step(msg({ type: MessageType.MsgAppResp, from: 3, to: 1, term: 4, index: 3 }));
    expect(n.status().commit).toBe(3);
  });

  it('the Figure 8 scenario: an old-term entry on a majority is overwritten, and nobody applied it', () => {
    // (c) in the paper: S1 leads in term 4; index 2 (term 2) sits on S1, S2, S3; S4 has [1]; S5 has [1, 3].
    const net = new Network([]);
    const ids = [1, 2, 3, 4, 5];
    const logs = [[1, 2], [1, 2], [1, 2], [1], [1, 3]];
    ids.forEach((id, i) => {
      net.addPeer(id, storageWithTerms(ids, logs[i]!, 3));
      net.peer(id).storage.setHardState({ term: 3, vote: 0, commit: 1 });
      net.addPeer(id, net.peer(id).storage);
    });
    // S1's own term-4 entry never reaches anyone, and S5 is cut off.
    net.addFilter((m) => m.type === MessageType.MsgApp && m.entries.some((e) => e.term === 4));
    net.isolate(5);
    net.campaign(1);
    net.tickAll(5);
    expect(net.leaders()).toEqual([1]);
    expect(net.node(1).status().commit).toBe(1);
    // (d) S1 crashes; S5 wins with votes from S2, S3, S4 (its last term 3 beats their 2) and overwrites index 2.
    net.heal();
    net.isolate(1);
    // Its first try in term 4 meets voters that already voted for S1; the next term wins.
    net.campaign(5);
    net.campaign(5);
    expect(net.leaders()).toContain(5);
    for (const id of [2, 3, 4, 5]) expect(net.peer(id).storage.term(2)).toBe(3);
    // Nobody ever applied the term-2 entry at index 2.
    for (const id of ids) expect(net.peer(id).appliedEntries.some((e) => e.index === 2 && e.term === 2)).toBe(false);
  });

  it('once an entry of its term commits, a node with a stale log can no longer win', () => {
    const net = new Network([]);
    const ids = [1, 2, 3, 4, 5];
    net.addPeer(1, storageWithTerms(ids, [1, 2], 3));
    net.addPeer(2, storageWithTerms(ids, [1, 2], 3));
    net.addPeer(3, storageWithTerms(ids, [1], 3));
    net.addPeer(4, storageWithTerms(ids, [1], 3));
    net.addPeer(5, storageWithTerms(ids, [1, 3], 3));
    net.isolate(5);
    net.campaign(1);
    expect(net.node(1).status().commit).toBe(3);
    net.heal();
    net.isolate(1);
    net.campaign(5);
    expect(net.node(5).status().state).not.toBe(StateType.StateLeader);
    for (const id of [1, 2, 3, 4]) expect(net.peer(id).storage.term(2)).toBe(2);
  });
});

describe('§5.4 randomized safety (seeded)', () => {
  const seeds = testSeeds([1, 2, 3, 4, 5, 6, 7, 8]);
  for (const seed of seeds) {
    it(`seed ${seed}: applied sequences agree under random partitions and drops`, () => {
      announceSeed(seed, 'raft safety');
      const rnd = seeded(seed);
      const ids = [1, 2, 3, 4, 5];
      const net = new Network(ids, { preVote: seed % 2 === 0, checkQuorum: seed % 3 === 0 }, seed);
      let dropRate = 0;
      net.addFilter(() => rnd() < dropRate);
      const leadersByTerm = new Map<number, number>();
      let proposed = 0;
      for (let step = 0; step < 600; step++) {
        const r = rnd();
        if (r < 0.05) {
          net.heal();
          net.addFilter(() => rnd() < dropRate);
          const a = 1 + Math.floor(rnd() * 5);
          net.isolate(a);
        } else if (r < 0.1) {
          net.heal();
          net.addFilter(() => rnd() < dropRate);
          dropRate = rnd() < 0.5 ? 0 : 0.2;
        } else if (r < 0.4) {
          const id = 1 + Math.floor(rnd() * 5);
          try {
            net.node(id).propose([new TextEncoder().encode(`p${proposed++}`)]);
          } catch (e) {
            expect((e as { code?: string }).code).toBe('RAFT_PROPOSAL_DROPPED');
          }
        }
        for (const id of ids) net.node(id).tick();
        net.stabilize();
        for (const id of ids) {
          const st = net.node(id).status();
          if (st.state === StateType.StateLeader) {
            const prev = leadersByTerm.get(st.term);
            expect(prev === undefined || prev === id, `two leaders in term ${st.term} (seed ${seed})`).toBe(true);
            leadersByTerm.set(st.term, id);
          }
        }
        // Every applied sequence is a prefix of the longest one.
        const seqs = ids.map((id) => net.peer(id).appliedEntries.map((e) => `${e.index}/${e.term}`));
        const longest = seqs.reduce((a, b) => (b.length > a.length ? b : a));
        for (const s of seqs) expect(s, `seed ${seed} step ${step}`).toEqual(longest.slice(0, s.length));
      }
      // Liveness after healing.
      net.heal();
      net.tickAll(60);
      const leader = net.leaders();
      expect(leader.length).toBe(1);
      net.propose(leader[0]!, 'final');
      net.tickAll(3);
      for (const id of ids) expect(net.peer(id).applied[net.peer(id).applied.length - 1]).toBe('final');
    });
  }
});

describe('determinism', () => {
  function history(seed: number): string {
    const rnd = seeded(seed);
    const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true }, seed);
    net.addFilter(() => rnd() < 0.1);
    for (let step = 0; step < 200; step++) {
      if (rnd() < 0.3) {
        try {
          net.node(1 + Math.floor(rnd() * 3)).propose([new TextEncoder().encode(`p${step}`)]);
        } catch (e) {
          // A dropped proposal is part of the history too; anything else fails the test.
          expect((e as { code?: string }).code).toBe('RAFT_PROPOSAL_DROPPED');
        }
      }
      for (const id of [1, 2, 3]) net.node(id).tick();
      net.stabilize();
    }
    return JSON.stringify(net.log.map((m) => [m.type, m.from, m.to, m.term, m.index, m.logTerm, m.commit, m.reject, m.entries.length]));
  }

  it('the same inputs give the same outputs (seed 42, replayable)', () => {
    console.log('raft determinism seed 42');
    const a = history(42);
    expect(a.length).toBeGreaterThan(1000);
    expect(history(42)).toBe(a);
    expect(history(43)).not.toBe(a);
  });
});

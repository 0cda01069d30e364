// When a campaign ends without a winner. A candidate that a quorum's pre-votes (or the
// leader's MsgTimeoutNow) made knows the leader is gone: after a split vote it campaigns
// again within [2, electionTick / 2] ticks, randomized, not after a whole randomized
// election timeout, and later by as much as its pre-votes took to be answered. Followers
// keep [electionTick, 2 * electionTick), so a cluster whose leader is alive never campaigns.
import { describe, expect, it } from 'vitest';
import { Network } from './network.js';
import { MessageType, StateType, type Message } from '../../src/raft/types.js';

const { StateFollower, StateCandidate, StateLeader, StatePreCandidate } = StateType;
const ELECTION_TICK = 10;
const SEEDS = Array.from({ length: 30 }, (_, i) => i + 1);

/** Leader 1 elected, then cut off; 2 and 3 campaign on the same tick and split the vote in term 2. */
function splitVote(seed: number, preVote: boolean): Network {
  const net = new Network([1, 2, 3], { preVote, checkQuorum: preVote }, seed);
  net.campaign(1);
  expect(net.leaders()).toEqual([1]);
  net.isolate(1);
  net.node(2).campaign();
  net.node(3).campaign();
  net.stabilize();
  for (const id of [2, 3]) {
    const st = net.node(id).status();
    expect({ id, state: st.state, term: st.term, vote: st.vote }, `seed ${seed}: node ${id} after the split`).toEqual({
      id,
      state: StateCandidate,
      term: 2,
      vote: id,
    });
  }
  return net;
}

/** Ticks `id` alone until it starts another campaign; returns how many ticks that took. */
function ticksToNextCampaign(net: Network, id: number, preVote: boolean): number {
  const n = net.node(id);
  const term = n.status().term;
  for (let ticks = 1; ticks <= 100 * ELECTION_TICK; ticks++) {
    n.tick();
    const st = n.status();
    if (preVote ? st.state === StatePreCandidate : st.term > term) return ticks;
  }
  throw new Error(`node ${id} did not campaign again within ${100 * ELECTION_TICK} ticks`);
}

describe('the campaign after a split vote', () => {
  const cases: { name: string; preVote: boolean; lo: number; hi: number }[] = [
    { name: 'PreVote: retried within [2, electionTick / 2] ticks', preVote: true, lo: 2, hi: ELECTION_TICK / 2 },
    { name: 'no PreVote (nothing showed the leader is gone): a whole randomized timeout', preVote: false, lo: ELECTION_TICK, hi: 2 * ELECTION_TICK - 1 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const seen = new Set<number>();
      for (const seed of SEEDS) {
        const net = splitVote(seed, c.preVote);
        const ticks = ticksToNextCampaign(net, 2, c.preVote);
        expect(ticks, `seed ${seed}`).toBeGreaterThanOrEqual(c.lo);
        expect(ticks, `seed ${seed}`).toBeLessThanOrEqual(c.hi);
        seen.add(ticks);
      }
      // Randomized, so that two candidates that tied draw apart: most of the window is used.
      expect(seen.size).toBeGreaterThanOrEqual(Math.min(3, c.hi - c.lo + 1));
    });
  }

  it('the first candidate to retry wins the next term; the other votes for it', () => {
    for (const seed of SEEDS) {
      const net = splitVote(seed, true);
      // Node 1, cut off and never ticked, still thinks it leads term 1.
      const newLeaders = (): number[] => net.leaders().filter((id) => id !== 1);
      let ticks = 0;
      while (newLeaders().length === 0) {
        if (++ticks > ELECTION_TICK) throw new Error(`seed ${seed}: no leader ${ELECTION_TICK} ticks after the split`);
        net.tick(2);
        net.tick(3);
        net.stabilize();
      }
      const [leader] = newLeaders();
      expect([2, 3], `seed ${seed}`).toContain(leader);
      const other = leader === 2 ? 3 : 2;
      // A tie on the retry splits again (another term); otherwise term 3.
      const term = net.node(leader!).status().term;
      expect(term, `seed ${seed}`).toBeGreaterThanOrEqual(3);
      expect(net.node(other).status(), `seed ${seed}`).toMatchObject({ state: StateFollower, term, lead: leader });
    }
  });

  it('a campaign started by MsgTimeoutNow is retried within [2, electionTick / 2] ticks too', () => {
    for (const seed of SEEDS) {
      const net = new Network([1, 2, 3], {}, seed);
      net.campaign(1);
      // The transferee's vote requests are lost: its campaign cannot end.
      net.addFilter((m: Message) => m.from === 3 && m.type === MessageType.MsgVote);
      net.node(1).transferLeader(3);
      net.stabilize();
      expect(net.node(3).status(), `seed ${seed}`).toMatchObject({ state: StateCandidate, term: 2 });
      const ticks = ticksToNextCampaign(net, 3, false);
      expect(ticks, `seed ${seed}`).toBeGreaterThanOrEqual(2);
      expect(ticks, `seed ${seed}`).toBeLessThanOrEqual(ELECTION_TICK / 2);
    }
  });

  it('a campaign whose answers take longer than the retry window is not abandoned before they arrive', () => {
    // Everything sent to node 2 arrives DELAY ticks late, past the window's [2, electionTick / 2]
    // ticks but well within an election timeout: a candidate that gave up on its campaign after
    // the window campaigned again before its votes came, in a new term the voters also granted,
    // over and over, and the two nodes left never elected a leader.
    for (const [DELAY, seed] of [3, 5, 8].flatMap((d) => SEEDS.map((seed) => [d, seed] as const))) {
      const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true }, seed);
      net.campaign(1);
      net.isolate(1);
      let now = 0;
      const late: Array<{ due: number; m: Message }> = [];
      net.addFilter((m) => {
        if (m.to !== 2 || m.from === 1) return false;
        late.push({ due: now + DELAY, m });
        return true;
      });
      const newLeaders = (): number[] => net.leaders().filter((id) => id !== 1);
      while (newLeaders().length === 0) {
        if (++now > 30 * ELECTION_TICK) throw new Error(`seed ${seed}, delay ${DELAY}: no leader ${30 * ELECTION_TICK} ticks after the leader was cut off`);
        for (const id of [2, 3]) net.tick(id);
        for (let i = 0; i < late.length;) {
          if (late[i]!.due <= now) net.node(2).step(late.splice(i, 1)[0]!.m);
          else i++;
        }
        net.stabilize();
      }
      expect([2, 3], `seed ${seed}`).toContain(newLeaders()[0]);
    }
  });

  it('a pre-candidate cut off for long counts at most an election timeout of it in its retry window', () => {
    const span = ELECTION_TICK / 2 - 1;
    const most = 2 + 4 * ELECTION_TICK + span; // the window's end for answers an election timeout late
    for (const seed of SEEDS.slice(0, 10)) {
      // Without CheckQuorum node 3 grants pre-votes while it still counts 1 its leader.
      const net = new Network([1, 2, 3], { preVote: true }, seed);
      net.campaign(1);
      net.isolate(1);
      net.isolate(2);
      // Node 2 asks for pre-votes for 30 election timeouts, and no one answers.
      net.tick(2, 30 * ELECTION_TICK);
      net.stabilize();
      expect(net.node(2).status().state, `seed ${seed}`).toBe(StatePreCandidate);
      net.heal();
      net.isolate(1);
      net.addFilter((m: Message) => m.type === MessageType.MsgVote); // the campaign cannot end
      let ticks = 0;
      while (net.node(2).status().state !== StateCandidate) {
        if (++ticks > 2 * ELECTION_TICK) throw new Error(`seed ${seed}: node 2 did not become a candidate`);
        net.tick(2);
        net.stabilize();
      }
      expect(ticksToNextCampaign(net, 2, true), `seed ${seed}`).toBeLessThanOrEqual(most);
    }
  });

  it('a follower still waits [electionTick, 2 * electionTick) ticks with PreVote', () => {
    for (const seed of SEEDS) {
      const net = new Network([1, 2, 3], { preVote: true, checkQuorum: true }, seed);
      net.campaign(1);
      net.isolate(1);
      const ticks = ticksToNextCampaign(net, 2, true);
      expect(ticks, `seed ${seed}`).toBeGreaterThanOrEqual(ELECTION_TICK);
      expect(ticks, `seed ${seed}`).toBeLessThan(2 * ELECTION_TICK);
    }
  });
});

describe('a cluster whose leader is alive never campaigns', () => {
  for (const size of [3, 5]) {
    it(`${size} nodes, PreVote and CheckQuorum, 500 ticks`, () => {
      for (const seed of SEEDS.slice(0, 5)) {
        const ids = Array.from({ length: size }, (_, i) => i + 1);
        const net = new Network(ids, { preVote: true, checkQuorum: true, heartbeatTick: 2 }, seed);
        net.campaign(1);
        const votes = (): number => net.countDelivered(MessageType.MsgPreVote) + net.countDelivered(MessageType.MsgVote);
        const before = votes();
        for (let t = 0; t < 500; t++) {
          net.tickAll();
          if (t % 7 === 0) net.propose(1, `x${t}`);
        }
        expect(votes(), `seed ${seed}: vote requests after the first election`).toBe(before);
        expect(net.leaders(), `seed ${seed}`).toEqual([1]);
        for (const id of ids) expect(net.node(id).status(), `seed ${seed} node ${id}`).toMatchObject({ term: 1, lead: 1 });
        expect(net.peer(size).applied.length, `seed ${seed}`).toBe(Math.ceil(500 / 7));
      }
    });
  }
});

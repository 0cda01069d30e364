// The raft core hears only its members, takes a snapshot only from the leader it
// knows, and refuses terms and indexes at the edge of the safe integers. Each
// refusal is a coded error and changes nothing, with and without pre-vote/checkQuorum.
import { describe, expect, it } from 'vitest';
import { Network, ents, enc, msg } from '../raft/network.js';
import { EntryType, MAX_INDEX, MAX_TERM, MessageType, ConfChangeType, StateType, type Message } from '../../src/raft/types.js';
import { encodeConfChange } from '../../src/raft/index.js';

const STRANGER = 99;
const snap = (term: number) => ({ meta: { index: 50, term, conf: { voters: [STRANGER, 2], learners: [] } }, data: enc('evil') });

const fromStranger: { name: string; m: (term: number) => Message }[] = [
  { name: 'heartbeat', m: (t) => msg({ type: MessageType.MsgHeartbeat, from: STRANGER, to: 2, term: t + 1000, commit: 0 }) },
  {
    name: 'MsgApp',
    m: (t) => msg({ type: MessageType.MsgApp, from: STRANGER, to: 2, term: t + 1000, index: 0, logTerm: 0, commit: 1, entries: ents(1, [t + 1000]) }),
  },
  { name: 'MsgSnap', m: (t) => msg({ type: MessageType.MsgSnap, from: STRANGER, to: 2, term: t + 1000, snapshot: snap(t + 1000) }) },
  { name: 'MsgVote', m: (t) => msg({ type: MessageType.MsgVote, from: STRANGER, to: 2, term: t + 1000, index: 1000, logTerm: t + 1000 }) },
  { name: 'MsgPreVote', m: (t) => msg({ type: MessageType.MsgPreVote, from: STRANGER, to: 2, term: t + 1000, index: 1000, logTerm: t + 1000 }) },
  { name: 'MsgTimeoutNow', m: (t) => msg({ type: MessageType.MsgTimeoutNow, from: STRANGER, to: 2, term: t }) },
  { name: 'forwarded proposal', m: () => msg({ type: MessageType.MsgProp, from: STRANGER, to: 2, entries: ents(0, [0]) }) },
];

const modes = [
  { name: 'default', opts: {} },
  { name: 'preVote+checkQuorum', opts: { preVote: true, checkQuorum: true } },
];

function leaderCluster(opts: object): Network {
  const net = new Network([1, 2, 3], opts);
  net.campaign(1);
  net.propose(1, 'a');
  return net;
}

describe('messages from non-members change nothing', () => {
  for (const mode of modes) {
    for (const c of fromStranger) {
      it(`${c.name} from node ${STRANGER} (${mode.name}) -> RAFT_STEP_PEER_NOT_FOUND`, () => {
        const net = leaderCluster(mode.opts);
        const n = net.node(2);
        const before = JSON.stringify(n.status());
        expect(() => n.step(c.m(n.status().term))).toThrow(expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }));
        expect(JSON.stringify(n.status())).toBe(before);
        expect(n.hasReady()).toBe(false);
      });
    }
  }

  it('the same heartbeat from a member is heard (the refusal is about the sender)', () => {
    const net = leaderCluster({});
    const n = net.node(2);
    const t = n.status().term;
    n.step(msg({ type: MessageType.MsgHeartbeat, from: 3, to: 2, term: t + 1, commit: 0 }));
    expect(n.status().lead).toBe(3);
    expect(n.status().term).toBe(t + 1);
  });

  it('a node being added by a logged change may talk before the change is applied on a lagging follower', () => {
    const net = leaderCluster({});
    const n = net.node(2);
    const t = n.status().term;
    const last = n.status().commit;
    // Before the change is logged node 4 is a stranger.
    const probe = (): void => n.step(msg({ type: MessageType.MsgHeartbeat, from: 4, to: 2, term: t + 1, commit: 0 }));
    expect(probe).toThrow(expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }));
    // The leader's append logs the change on node 2 without committing it.
    const data = encodeConfChange({ type: ConfChangeType.AddNode, nodeId: 4, context: enc('addr') });
    n.step(
      msg({
        type: MessageType.MsgApp,
        from: 1,
        to: 2,
        term: t,
        index: last,
        logTerm: t,
        commit: last,
        entries: [{ index: last + 1, term: t, type: EntryType.ConfChange, data }],
      }),
    );
    expect(n.status().conf.voters).not.toContain(4);
    expect(probe).not.toThrow();
  });
});

describe('a follower whose configuration predates the leader', () => {
  it('hears leader traffic from an unknown id only while it knows no leader, then only from that one', () => {
    const net = new Network([1, 2, 3]);
    const n = net.node(2); // a fresh follower: term 0, no leader known
    const t = 5;
    n.step(msg({ type: MessageType.MsgHeartbeat, from: 7, to: 2, term: t, commit: 0 }));
    expect(n.status().lead).toBe(7);
    // Now it has a leader: another unknown id is refused, even at a higher term.
    const before = JSON.stringify(n.status());
    expect(() => n.step(msg({ type: MessageType.MsgHeartbeat, from: 8, to: 2, term: t + 10, commit: 0 }))).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
    expect(() => n.step(msg({ type: MessageType.MsgVote, from: 8, to: 2, term: t + 10, index: 99, logTerm: t }))).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
    expect(JSON.stringify(n.status())).toBe(before);
  });

  it('never hears a node it saw removed', () => {
    const net = leaderCluster({});
    net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 });
    net.stabilize();
    const n = net.node(2);
    expect(n.status().conf.voters).not.toContain(3);
    net.campaign(2); // whatever the leader, refusals below must hold even with no leader
    const t = n.status().term;
    const before = JSON.stringify(n.status());
    expect(() => n.step(msg({ type: MessageType.MsgHeartbeat, from: 3, to: 2, term: t + 5, commit: 0 }))).toThrow(
      expect.objectContaining({ code: 'RAFT_STEP_PEER_NOT_FOUND' }),
    );
    expect(JSON.stringify(n.status())).toBe(before);
  });
});

describe('a snapshot comes only from the known leader of its term', () => {
  it('a member that is not the leader cannot install one, even at a higher term', () => {
    const net = leaderCluster({});
    const n = net.node(2);
    const t = n.status().term;
    for (const term of [t, t + 1000]) {
      const before = JSON.stringify(n.status());
      const m = msg({
        type: MessageType.MsgSnap,
        from: 3,
        to: 2,
        term,
        snapshot: { meta: { index: 50, term, conf: { voters: [1, 2, 3], learners: [] } }, data: enc('x') },
      });
      expect(() => n.step(m)).toThrow(expect.objectContaining({ code: 'RAFT_SNAPSHOT_REFUSED' }));
      expect(JSON.stringify(n.status())).toBe(before);
      expect(n.hasReady()).toBe(false);
    }
  });

  it('the known leader of the current term can', () => {
    const net = leaderCluster({});
    const n = net.node(2);
    const t = n.status().term;
    n.step(
      msg({
        type: MessageType.MsgSnap,
        from: 1,
        to: 2,
        term: t,
        snapshot: { meta: { index: 50, term: t, conf: { voters: [1, 2, 3], learners: [] } }, data: enc('x') },
      }),
    );
    expect(n.ready().snapshot?.meta.index).toBe(50);
  });

  it('a pre-candidate still takes one from the leader it knew in its term, and from no other member', () => {
    // A follower busy storing the snapshot's chunks hears no heartbeat meanwhile and may campaign:
    // the snapshot, delivered once stored, must not be refused for the leader it lost sight of.
    const net = leaderCluster({ preVote: true, checkQuorum: true });
    const n = net.node(2);
    const t = n.status().term;
    n.campaign();
    expect(n.status()).toMatchObject({ state: StateType.StatePreCandidate, lead: 0, term: t });
    const snapFrom = (from: number) =>
      msg({
        type: MessageType.MsgSnap,
        from,
        to: 2,
        term: t,
        snapshot: { meta: { index: 50, term: t, conf: { voters: [1, 2, 3], learners: [] } }, data: enc('x') },
      });
    expect(() => n.step(snapFrom(3))).toThrow(expect.objectContaining({ code: 'RAFT_SNAPSHOT_REFUSED' }));
    n.step(snapFrom(1));
    expect(n.status()).toMatchObject({ state: StateType.StateFollower, lead: 1, term: t });
    expect(n.ready().snapshot?.meta.index).toBe(50);
  });
});

describe('terms and indexes are bounded by MAX_TERM', () => {
  it('MAX_TERM leaves room to count past it exactly', () => {
    expect(Number.isSafeInteger(MAX_TERM + 2 ** 31)).toBe(true);
    expect(MAX_INDEX).toBe(MAX_TERM);
  });
  const huge = 2 ** 53 - 1;
  const cases: { name: string; m: () => Message }[] = [
    { name: 'heartbeat term 2^53-1', m: () => msg({ type: MessageType.MsgHeartbeat, from: 3, to: 2, term: huge }) },
    { name: 'heartbeat term MAX_TERM+1', m: () => msg({ type: MessageType.MsgHeartbeat, from: 3, to: 2, term: MAX_TERM + 1 }) },
    { name: 'MsgApp index 2^53-1', m: () => msg({ type: MessageType.MsgApp, from: 1, to: 2, term: 1, index: huge, logTerm: 1 }) },
    { name: 'MsgApp commit 2^53-1', m: () => msg({ type: MessageType.MsgApp, from: 1, to: 2, term: 1, index: 1, logTerm: 1, commit: huge }) },
    { name: 'vote with logTerm above MAX_TERM', m: () => msg({ type: MessageType.MsgVote, from: 3, to: 2, term: huge, logTerm: huge, index: 1 }) },
    {
      name: 'snapshot meta index above MAX_INDEX',
      m: () =>
        msg({
          type: MessageType.MsgSnap,
          from: 1,
          to: 2,
          term: 1,
          snapshot: { meta: { index: huge, term: 1, conf: { voters: [1, 2, 3], learners: [] } }, data: enc('') },
        }),
    },
  ];
  for (const mode of modes) {
    for (const c of cases) {
      it(`${c.name} (${mode.name}) -> RAFT_INVALID_MESSAGE, no state change`, () => {
        const net = leaderCluster(mode.opts);
        const n = net.node(2);
        const before = JSON.stringify(n.status());
        expect(() => n.step(c.m())).toThrow(expect.objectContaining({ code: 'RAFT_INVALID_MESSAGE' }));
        expect(JSON.stringify(n.status())).toBe(before);
        expect(n.hasReady()).toBe(false);
      });
    }
  }

  it('a heartbeat at MAX_TERM itself is accepted, and counting past it stays exact', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.node(2).step(msg({ type: MessageType.MsgHeartbeat, from: 1, to: 2, term: MAX_TERM, commit: 0 }));
    expect(net.node(2).status().term).toBe(MAX_TERM);
    // The headroom above MAX_TERM keeps the node's own arithmetic exact.
    net.node(2).campaign();
    expect(net.node(2).status().term).toBe(MAX_TERM + 1);
  });
});

// When a leader's followers acknowledge entries before its own write of them is
// durable, the commit index advances while the leader still cannot apply. The
// followers with nothing more to receive hear of the commit when the leader's
// write is durable, with the next entries if the leader has any by then: not in
// a message of its own the moment the commit moves.
import { describe, expect, it } from 'vitest';
import { enc, msg, newNode } from './network.js';
import { ConfChangeType, EntryType, MessageType, StateType, type Message, type Ready } from '../../src/raft/types.js';
import { MemoryStorage, decodeConfChange, type RawNode } from '../../src/raft/index.js';

const { MsgApp, MsgAppResp, MsgVoteResp, MsgHeartbeatResp } = MessageType;

/** Takes and advances a Ready without writing it: the write is in flight until written(). */
function take(n: RawNode): Ready {
  const rd = n.ready();
  n.advance(rd);
  return rd;
}

/** The Ready's write is durable: returns what persisted() hands back to send. */
function written(n: RawNode, s: MemoryStorage, rd: Ready): Message[] {
  if (rd.entries.length > 0) s.append(rd.entries);
  if (rd.hardState !== undefined) s.setHardState(rd.hardState);
  return n.persisted(rd);
}

/** Every message the node hands out from now until it has nothing ready, its writes made durable at once. */
function drainAll(n: RawNode, s: MemoryStorage): Message[] {
  const out: Message[] = [];
  while (n.hasReady()) {
    const rd = take(n);
    out.push(...rd.messages, ...written(n, s, rd));
  }
  return out;
}

const apps = (ms: Message[], to?: number): Message[] => ms.filter((m) => m.type === MsgApp && (to === undefined || m.to === to));

/** Node 1, leader of {1, 2, 3} in term 1, its empty entry (index 1) committed on every node. */
function leader(): { n: RawNode; s: MemoryStorage } {
  const s = MemoryStorage.withConf([1, 2, 3]);
  const n = newNode(1, s);
  n.campaign();
  drainAll(n, s);
  n.step(msg({ type: MsgVoteResp, from: 2, to: 1, term: 1 }));
  drainAll(n, s);
  for (const from of [2, 3]) n.step(msg({ type: MsgAppResp, from, to: 1, term: 1, index: 1 }));
  drainAll(n, s);
  expect(n.status().commit).toBe(1);
  return { n, s };
}

/** Proposes one entry (index 2) and hands out its Ready, whose write stays in flight. */
function proposeInFlight(n: RawNode): Ready {
  n.propose(enc('a'));
  const rd = take(n);
  expect(rd.entries.map((e) => e.index)).toEqual([2]);
  expect(apps(rd.messages).map((m) => [m.to, m.entries.length])).toEqual([
    [2, 1],
    [3, 1],
  ]);
  return rd;
}

/** Both followers acknowledge index 2: the commit moves to 2 while the leader's own write is in flight. */
function followersAckFirst(n: RawNode): Message[] {
  for (const from of [2, 3]) n.step(msg({ type: MsgAppResp, from, to: 1, term: 1, index: 2 }));
  expect(n.status().commit).toBe(2);
  const out: Message[] = [];
  while (n.hasReady()) out.push(...take(n).messages);
  return out;
}

describe('a commit the leader cannot apply yet', () => {
  it('is not sent alone while the leader writes; it leaves once the write is durable', () => {
    const { n, s } = leader();
    const rd = proposeInFlight(n);
    expect(apps(followersAckFirst(n))).toEqual([]);
    const out = [...written(n, s, rd), ...drainAll(n, s)];
    expect(apps(out).map((m) => [m.to, m.commit, m.entries.length])).toEqual([
      [2, 2, 0],
      [3, 2, 0],
    ]);
  });

  it('travels with the entries the leader proposes before its write is durable', () => {
    const { n, s } = leader();
    const rd = proposeInFlight(n);
    followersAckFirst(n);
    n.propose(enc('b'));
    const next = take(n);
    expect(apps(next.messages).map((m) => [m.to, m.commit, m.entries.map((e) => e.index)])).toEqual([
      [2, 2, [3]],
      [3, 2, [3]],
    ]);
    // Nothing is left to send for the commit once the leader's write is durable.
    const out = [...written(n, s, rd), ...written(n, s, next), ...drainAll(n, s)];
    expect(apps(out)).toEqual([]);
  });

  it('is sent as soon as the commit moves when the leader wrote first', () => {
    const { n, s } = leader();
    const rd = proposeInFlight(n);
    written(n, s, rd);
    drainAll(n, s);
    n.step(msg({ type: MsgAppResp, from: 2, to: 1, term: 1, index: 2 }));
    const out = drainAll(n, s);
    expect(apps(out).map((m) => [m.to, m.commit])).toEqual([
      [2, 2],
      [3, 2],
    ]);
  });

  it('reaches the follower with the next heartbeat response if the leader never writes', () => {
    const { n } = leader();
    proposeInFlight(n);
    followersAckFirst(n);
    n.step(msg({ type: MsgHeartbeatResp, from: 2, to: 1, term: 1 }));
    const out: Message[] = [];
    while (n.hasReady()) out.push(...take(n).messages);
    expect(apps(out).map((m) => [m.to, m.commit])).toEqual([[2, 2]]);
  });

  it('is sent at once by a leader handing off, which steps down in the same step', () => {
    const { n, s } = leader();
    // Demoted to a learner, it keeps its own progress: only the hand-off tells it not to hold the commit.
    n.proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 1 });
    drainAll(n, s);
    for (const from of [2, 3]) n.step(msg({ type: MsgAppResp, from, to: 1, term: 1, index: 2 }));
    // Applying its own removal starts the hand-off: an empty entry (index 3), written while the followers take it.
    const rd = take(n);
    written(n, s, rd);
    const cc = rd.committedEntries.find((e) => e.type === EntryType.ConfChange)!;
    n.applyConfChange(decodeConfChange(cc.data));
    const inFlight = take(n);
    expect(inFlight.entries.map((e) => e.index)).toEqual([3]);
    for (const from of [2, 3]) n.step(msg({ type: MsgAppResp, from, to: 1, term: 1, index: 3 }));
    expect(n.status().state).toBe(StateType.StateFollower);
    const out: Message[] = [];
    while (n.hasReady()) out.push(...take(n).messages);
    expect(apps(out).map((m) => [m.to, m.commit])).toEqual([
      [2, 3],
      [3, 3],
    ]);
  });
});

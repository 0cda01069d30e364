// An acknowledgement leaves only while the log still holds the entry it names.
// RawNode.persisted() returns the messages to send, and drops the acks a later
// input made untrue, whether that input shared the ack's Ready or came in a
// later Ready made durable by the same group fsync.
import { describe, expect, it } from 'vitest';
import { ents, msg, newNode, storageWithTerms } from './network.js';
import { MessageType, type Message, type Ready } from '../../src/raft/types.js';
import { MemoryStorage, type RawNode } from '../../src/raft/index.js';
import { checkAcksDurable } from '../sim/acks-durable.js';

const { MsgApp, MsgAppResp } = MessageType;

/** Takes and advances a Ready without writing it: the write is "in flight". */
function take(n: RawNode): Ready {
  const rd = n.ready();
  n.advance(rd);
  return rd;
}

/** One group fsync: every Ready's writes land in storage, in order. */
function groupFsync(s: MemoryStorage, rds: Ready[]): void {
  for (const rd of rds) {
    if (rd.snapshot !== undefined) s.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) s.append(rd.entries);
    if (rd.hardState !== undefined) s.setHardState(rd.hardState);
  }
}

const acks = (ms: Message[]): [number, number, number][] => ms.filter((m) => m.type === MsgAppResp && !m.reject).map((m) => [m.to, m.index, m.logTerm]);

/**
 * Follower 2 takes 1@1 2@1 3@1 from leader 1 (term 1) and hands out Ready 1 with its ack for 3@1. Before that
 * write is durable, leader 3 (term 2) overwrites 2..3 with 2@2 3@2 (Ready 2). One fsync makes both durable.
 */
function overwrittenInFlight(): { n: RawNode; s: MemoryStorage; rd1: Ready; rd2: Ready } {
  const s = MemoryStorage.withConf([1, 2, 3]);
  const n = newNode(2, s);
  n.step(msg({ type: MsgApp, from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: ents(1, [1, 1, 1]) }));
  const rd1 = take(n);
  n.step(msg({ type: MsgApp, from: 3, to: 2, term: 2, index: 1, logTerm: 1, entries: ents(2, [2, 2]) }));
  const rd2 = take(n);
  groupFsync(s, [rd1, rd2]);
  return { n, s, rd1, rd2 };
}

describe('stale acknowledgements', () => {
  it('one group fsync completes two Readys: the ack the later one overwrote does not leave', () => {
    const { n, rd1, rd2 } = overwrittenInFlight();
    expect(acks(rd1.messagesAfterPersist)).toEqual([[1, 3, 1]]);
    expect(acks(n.persisted(rd2))).toEqual([[3, 3, 2]]);
  });

  it('the same when each Ready of the group is reported on its own', () => {
    const { n, rd1, rd2 } = overwrittenInFlight();
    expect(acks(n.persisted(rd1))).toEqual([]);
    expect(acks(n.persisted(rd2))).toEqual([[3, 3, 2]]);
  });

  it("the simulator's checker catches the stale ack had it been sent, and passes what persisted() returns", () => {
    const { n, s, rd1, rd2 } = overwrittenInFlight();
    // Index 3 is still in the durable log, so only the term tells the ack is stale.
    expect(s.lastIndex()).toBe(3);
    expect(() => checkAcksDurable(2, s, rd1.messagesAfterPersist)).toThrow(/ack-durable: node 2 acknowledges 3@1, but its durable entry 3 has term 2/);
    const out = n.persisted(rd2);
    expect(() => checkAcksDurable(2, s, out)).not.toThrow();
  });

  it('drops the ack of an append that a later append in the same Ready truncated', () => {
    // Node 1 holds 1@1 2@2 3@2, term 2. Leader 2 (term 2) confirms index 3; before node 1 takes a
    // Ready, leader 3 (term 4) overwrites index 3 with 3@4. The ack to node 2 for 3@2 must not leave.
    const s = storageWithTerms([1, 2, 3], [1, 2, 2], 2);
    const n = newNode(1, s);
    n.step(msg({ type: MsgApp, from: 2, to: 1, term: 2, index: 3, logTerm: 2, commit: 1 }));
    n.step(msg({ type: MsgApp, from: 3, to: 1, term: 4, index: 2, logTerm: 2, commit: 1, entries: ents(3, [4]) }));
    const rd = take(n);
    groupFsync(s, [rd]);
    expect(acks(rd.messagesAfterPersist)).toEqual([
      [2, 3, 2],
      [3, 3, 4],
    ]);
    expect(acks(n.persisted(rd))).toEqual([[3, 3, 4]]);
    expect(s.term(3)).toBe(4);
  });

  it('keeps what promises nothing about the overwritten entry: rejections and acks still true', () => {
    const s = storageWithTerms([1, 2, 3], [1, 1, 1], 1);
    const n = newNode(2, s);
    n.step(msg({ type: MsgApp, from: 1, to: 2, term: 1, index: 3, logTerm: 1, entries: ents(4, [1]) }));
    n.step(msg({ type: MsgApp, from: 1, to: 2, term: 1, index: 9, logTerm: 1 })); // a gap: rejected
    const rd1 = take(n);
    // Leader 3 (term 2) overwrites index 4 only; 1..3 stay as they were.
    n.step(msg({ type: MsgApp, from: 3, to: 2, term: 2, index: 3, logTerm: 1, entries: ents(4, [2]) }));
    const rd2 = take(n);
    groupFsync(s, [rd1, rd2]);
    const shape = (ms: Message[]) => ms.map((m) => [m.to, m.index, m.logTerm, m.reject]);
    expect(shape(rd1.messagesAfterPersist)).toEqual([
      [1, 4, 1, false],
      [1, 9, 0, true],
    ]);
    // The ack for 4@1 is gone; the rejection promises nothing and leaves.
    expect(shape(n.persisted(rd2))).toEqual([
      [1, 9, 0, true],
      [3, 4, 2, false],
    ]);
  });

  it("returns the Ready's own array when nothing is stale", () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(2, s);
    n.step(msg({ type: MsgApp, from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: ents(1, [1]) }));
    const rd = take(n);
    groupFsync(s, [rd]);
    expect(n.persisted(rd)).toBe(rd.messagesAfterPersist);
  });
});

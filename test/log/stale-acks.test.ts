import { describe, expect, it } from 'vitest';
import { dropStaleAcks } from '../../src/log/stale-acks.js';
import { MessageType, type Message } from '../../src/raft/types.js';

const ack = (index: number, logTerm: number, extra: Partial<Message> = {}): Message => ({
  type: MessageType.MsgAppResp, to: 2, from: 1, term: 4, logTerm, index, entries: [], commit: 0, reject: false, rejectHint: 0, ...extra,
});

describe('dropStaleAcks', () => {
  // The log now holds 1..10 at terms: 1..5 at 2, 6..10 at 4 (a later append overwrote 6..12 of term 2).
  const log = { firstIndex: () => 3, lastIndex: () => 10, term: (i: number) => (i <= 5 ? 2 : 4) };

  it('keeps acks that still match the log and drops those a later append overwrote or cut', () => {
    const msgs = [ack(5, 2), ack(8, 2), ack(8, 4), ack(12, 2), ack(2, 1), ack(9, 2, { reject: true }), { ...ack(7, 2), type: MessageType.MsgHeartbeatResp }];
    expect(dropStaleAcks(msgs, log).map((m) => [m.type, m.index, m.logTerm, m.reject])).toEqual([
      [MessageType.MsgAppResp, 5, 2, false],
      [MessageType.MsgAppResp, 8, 4, false],
      [MessageType.MsgAppResp, 2, 1, false], // below the first index: committed, cannot have changed
      [MessageType.MsgAppResp, 9, 2, true], // a rejection promises nothing
      [MessageType.MsgHeartbeatResp, 7, 2, false],
    ]);
  });

  it('returns the same array when nothing is stale', () => {
    const msgs = [ack(5, 2), ack(10, 4)];
    expect(dropStaleAcks(msgs, log)).toBe(msgs);
  });
});

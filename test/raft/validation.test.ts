// Malformed input is refused with a coded error and changes nothing.
import { describe, expect, it } from 'vitest';
import { Network, ents, enc, msg } from './network.js';
import { ConfChangeType, MessageType, type Message } from '../../src/raft/types.js';
import { RawNode, MemoryStorage, InvalidConfigError } from '../../src/raft/index.js';

const good = (): Message => msg({ type: MessageType.MsgApp, from: 2, to: 1, term: 1, index: 1, logTerm: 1, commit: 1, entries: ents(2, [1]) });

const cases: { name: string; m: () => unknown; code: string }[] = [
  { name: 'not an object', m: () => 'hello', code: 'RAFT_INVALID_MESSAGE' },
  { name: 'null', m: () => null, code: 'RAFT_INVALID_MESSAGE' },
  { name: 'unknown type', m: () => ({ ...good(), type: 99 }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'type as string', m: () => ({ ...good(), type: 'MsgApp' }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'missing term', m: () => ({ ...good(), term: undefined }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'negative index', m: () => ({ ...good(), index: -1 }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'fractional commit', m: () => ({ ...good(), commit: 1.5 }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'reject not a boolean', m: () => ({ ...good(), reject: 0 }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'entries not an array', m: () => ({ ...good(), entries: {} }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'entry data not bytes', m: () => ({ ...good(), entries: [{ index: 2, term: 1, type: 0, data: 'x' }] }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'entry of unknown type', m: () => ({ ...good(), entries: [{ index: 2, term: 1, type: 7, data: enc('x') }] }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'MsgApp entries not contiguous', m: () => ({ ...good(), entries: [...ents(2, [1]), ...ents(4, [1])] }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'MsgApp entries not after index', m: () => ({ ...good(), entries: ents(5, [1]) }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'MsgApp entry terms decreasing', m: () => ({ ...good(), term: 3, entries: [...ents(2, [3]), ...ents(3, [2])] }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'MsgApp entry term below prevTerm', m: () => ({ ...good(), term: 3, logTerm: 2, entries: ents(2, [1]) }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'MsgApp entry term above message term', m: () => ({ ...good(), entries: ents(2, [2]) }), code: 'RAFT_INVALID_MESSAGE' },
  {
    name: 'MsgVote with logTerm above term',
    m: () => msg({ type: MessageType.MsgVote, from: 2, to: 1, term: 2, logTerm: 3, index: 5 }),
    code: 'RAFT_INVALID_MESSAGE',
  },
  { name: 'MsgApp without a term', m: () => ({ ...good(), term: 0 }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'addressed to another node', m: () => ({ ...good(), to: 3 }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'context not bytes', m: () => ({ ...good(), context: 'ctx' }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'MsgSnap without snapshot', m: () => msg({ type: MessageType.MsgSnap, from: 2, to: 1, term: 1 }), code: 'RAFT_INVALID_MESSAGE' },
  {
    name: 'MsgSnap with a bad conf',
    m: () =>
      msg({
        type: MessageType.MsgSnap,
        from: 2,
        to: 1,
        term: 1,
        snapshot: { meta: { index: 5, term: 1, conf: { voters: [0], learners: [] } }, data: enc('') },
      }),
    code: 'RAFT_INVALID_MESSAGE',
  },
  { name: 'MsgProp without entries', m: () => msg({ type: MessageType.MsgProp, from: 2, to: 1 }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'MsgReadIndex without context', m: () => msg({ type: MessageType.MsgReadIndex, from: 2, to: 1 }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'local MsgHup from the network', m: () => msg({ type: MessageType.MsgHup, from: 2, to: 1 }), code: 'RAFT_STEP_LOCAL_MSG' },
  { name: 'local MsgBeat from the network', m: () => msg({ type: MessageType.MsgBeat, from: 2, to: 1 }), code: 'RAFT_STEP_LOCAL_MSG' },
  {
    name: 'response from an unknown peer',
    m: () => msg({ type: MessageType.MsgAppResp, from: 9, to: 1, term: 1, index: 1 }),
    code: 'RAFT_STEP_PEER_NOT_FOUND',
  },
  { name: 'vote response from an unknown peer', m: () => msg({ type: MessageType.MsgVoteResp, from: 9, to: 1, term: 5 }), code: 'RAFT_STEP_PEER_NOT_FOUND' },
  {
    name: 'acknowledgement beyond the leader log',
    m: () => msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: 1, index: 99 }),
    code: 'RAFT_INVALID_MESSAGE',
  },
  { name: 'sender id 0', m: () => ({ ...good(), from: 0 }), code: 'RAFT_INVALID_MESSAGE' },
  { name: 'message from itself', m: () => ({ ...good(), from: 1 }), code: 'RAFT_INVALID_MESSAGE' },
];

describe('malformed messages', () => {
  for (const c of cases) {
    it(`${c.name} -> ${c.code}, no state change`, () => {
      const net = new Network([1, 2, 3]);
      net.campaign(1);
      net.propose(1, 'a');
      const n = net.node(1);
      const before = JSON.stringify(n.status());
      expect(() => n.step(c.m() as Message)).toThrow(expect.objectContaining({ code: c.code }));
      expect(JSON.stringify(n.status())).toBe(before);
      expect(n.hasReady()).toBe(false);
    });
  }

  it('the same well-formed message is accepted (the table is not rejecting everything)', () => {
    const net = new Network([1, 2, 3]);
    const n = net.node(1);
    n.step(good());
    expect(n.status().lead).toBe(2);
  });
});

describe('bad API input', () => {
  const net = (): RawNode => {
    const x = new Network([1, 2, 3]);
    x.campaign(1);
    return x.node(1);
  };
  const calls: { name: string; f: (n: RawNode) => unknown; code: string }[] = [
    { name: 'propose a string', f: (n) => n.propose('x' as unknown as Uint8Array), code: 'RAFT_INVALID_MESSAGE' },
    { name: 'propose an empty batch', f: (n) => n.propose([]), code: 'RAFT_INVALID_MESSAGE' },
    { name: 'propose a batch with a non-bytes item', f: (n) => n.propose([enc('a'), 3 as unknown as Uint8Array]), code: 'RAFT_INVALID_MESSAGE' },
    { name: 'transfer to id 0', f: (n) => n.transferLeader(0), code: 'RAFT_INVALID_MESSAGE' },
    { name: 'report an unknown peer unreachable', f: (n) => n.reportUnreachable(9), code: 'RAFT_STEP_PEER_NOT_FOUND' },
    { name: 'report a snapshot of an unknown peer', f: (n) => n.reportSnapshot(9, true), code: 'RAFT_STEP_PEER_NOT_FOUND' },
    { name: 'read index with a string context', f: (n) => n.readIndex('x' as unknown as Uint8Array), code: 'RAFT_INVALID_MESSAGE' },
    { name: 'conf change with a bad type', f: (n) => n.proposeConfChange({ type: 9 as ConfChangeType, nodeId: 4 }), code: 'RAFT_INVALID_CONF_CHANGE' },
  ];
  for (const c of calls) {
    it(`${c.name} -> ${c.code}`, () => {
      const n = net();
      const before = JSON.stringify(n.status());
      expect(() => c.f(n)).toThrow(expect.objectContaining({ code: c.code }));
      expect(JSON.stringify(n.status())).toBe(before);
      expect(n.hasReady()).toBe(false);
    });
  }

  const configs: { name: string; patch: Record<string, unknown> }[] = [
    { name: 'id 0', patch: { id: 0 } },
    { name: 'electionTick <= heartbeatTick', patch: { electionTick: 1, heartbeatTick: 1 } },
    { name: 'no random', patch: { random: undefined } },
    { name: 'lease without checkQuorum', patch: { readOnlyOption: 'lease' } },
    { name: 'unknown read-only option', patch: { readOnlyOption: 'fast' } },
    { name: 'negative inflight bytes', patch: { maxInflightBytes: -1 } },
    { name: 'no storage', patch: { storage: undefined } },
  ];
  for (const c of configs) {
    it(`config: ${c.name} -> RAFT_INVALID_CONFIG`, () => {
      const base = { id: 1, electionTick: 10, heartbeatTick: 1, storage: MemoryStorage.withConf([1]), random: () => 0.5 };
      expect(() => new RawNode({ ...base, ...c.patch } as never)).toThrow(InvalidConfigError);
    });
  }

  it('refuses a random() outside [0, 1)', () => {
    expect(() => new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage: MemoryStorage.withConf([1]), random: () => 1 })).toThrow(InvalidConfigError);
  });

  it('refuses a durable commit index beyond the log', () => {
    const s = MemoryStorage.withConf([1]);
    s.setHardState({ term: 1, vote: 1, commit: 5 });
    expect(() => new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage: s, random: () => 0.5 })).toThrow(
      expect.objectContaining({ code: 'RAFT_CORRUPT_STATE' }),
    );
  });

  it('advance out of order is refused', () => {
    const s = MemoryStorage.withConf([1]);
    const n = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, storage: s, random: () => 0.5 });
    n.campaign();
    const rd1 = n.ready();
    n.persisted(rd1);
    const rd2 = n.ready();
    expect(() => n.advance(rd2)).toThrow(expect.objectContaining({ code: 'RAFT_READY_PROTOCOL' }));
  });
});

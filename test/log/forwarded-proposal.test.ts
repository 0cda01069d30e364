// A proposal a peer forwards is appended by the leader and applied by every node: one whose
// records do not decode would stop each node at its apply, and at every open after. The leader
// refuses, before its core sees them, forwarded proposals that are anything but record batches.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { decodeBatch, encodeBatches, recordOrigin } from '../../src/log/record-batch.js';
import { encodeConfChange } from '../../src/raft/confchange.js';
import { ConfChangeType, EntryType, MessageType, type Entry, type Message } from '../../src/raft/types.js';
import type { TransportHandlers } from '../../src/transport/transport.js';
import { RecordingLogger } from '../recording-logger.js';
import { FORWARDED_PROPOSAL_FAULTS } from '../../src/log/forwarded-proposal.js';
import { logRegistry } from '../../src/admin/prometheus.js';
import { parsePrometheus } from '../admin/prometheus-text.js';
import { msg } from '../raft/network.js';
import { MAX_PENDING_READS } from '../../src/raft/index.js';
import { RecordingMachine, enc, tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Node 1 of {1, 2, 3}, led through a scripted transport: its peers' messages are what the test delivers. */
async function scriptedLeader() {
  const t = tempDir();
  cleanups.push(t.cleanup);
  let handlers: TransportHandlers | undefined;
  const sent: Message[] = [];
  const transport = {
    start: async (h: TransportHandlers) => void (handlers = h),
    send: (ms: Message[]) => void sent.push(...ms),
    addPeer: () => undefined,
    removePeer: () => undefined,
    close: async () => undefined,
  };
  const deliver = (m: Message): void => handlers!.onMessage(m);
  const logger = new RecordingLogger();
  const machine = new RecordingMachine();
  const peers = { 1: '127.0.0.1:1', 2: '127.0.0.1:2', 3: '127.0.0.1:3' };
  const log = await ReplicatedLog.open({ dataDir: t.dir, peers, tickMs: 10, electionTicks: 10, stateMachine: machine, logger }, { transport });
  cleanups.push(() => log.close());

  // Node 2 grants every (pre-)vote node 1 asks for: node 1 leads.
  const answered = new Set<Message>();
  await waitFor('node 1 to lead', () => {
    for (const m of sent) {
      if (answered.has(m) || m.to !== 2 || (m.type !== MessageType.MsgPreVote && m.type !== MessageType.MsgVote)) continue;
      answered.add(m);
      const type = m.type === MessageType.MsgPreVote ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
      deliver(msg({ type, from: 2, to: 1, term: m.term }));
    }
    return log.status().role === 'leader';
  });

  // Node 2 takes the new leader's first entry, so that the leader sends it entries as they come.
  await waitFor("the leader's first entry", () => sent.some((m) => m.type === MessageType.MsgApp && m.to === 2));
  const first = sent.find((m) => m.type === MessageType.MsgApp && m.to === 2)!;
  deliver(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: first.term, index: first.index + first.entries.length }));

  // What the leader appends it sends to its followers.
  const appended = (): Entry[] => sent.filter((m) => m.type === MessageType.MsgApp && m.to === 2).flatMap((m) => m.entries);
  /** Node 2 acknowledges everything the leader sent it. */
  const ackAll = (): void => deliver(msg({ type: MessageType.MsgAppResp, from: 2, to: 1, term: log.status().term, index: appended().at(-1)!.index }));
  const refusals = (): string[] => logger.lines.filter((l) => l.fields.code === 'PROPOSAL_REFUSED').map((l) => `${String(l.fields.reason)}: ${l.message}`);
  /** raftlog_proposals_refused_total by reason, each of the fixed set there from the start. */
  const refusedOnMetrics = async (): Promise<Record<string, number | undefined>> => {
    const text = parsePrometheus(await logRegistry(log).metrics());
    return Object.fromEntries(FORWARDED_PROPOSAL_FAULTS.map((k) => [k, text.get(`raftlog_proposals_refused_total{reason="${k}"}`)]));
  };
  /** Who each refusal names, as fields: the sender as `peer`, as the transport names it, and this node. */
  const refusedFrom = (): unknown[] =>
    logger.lines.filter((l) => l.fields.code === 'PROPOSAL_REFUSED').map((l) => ({ node: l.fields.node, peer: l.fields.peer }));
  return { log, machine, deliver, appended, ackAll, refusals, refusedFrom, refusedOnMetrics };
}

it('refuses forwarded proposals that are not whole record batches, and appends those that are', async () => {
  const { log, machine, deliver, appended, ackAll, refusals, refusedFrom, refusedOnMetrics } = await scriptedLeader();
  const forwarded = (e: Partial<Entry>): Message =>
    msg({ type: MessageType.MsgProp, from: 2, to: 1, entries: [{ index: 0, term: 0, type: EntryType.Normal, data: new Uint8Array(0), ...e }] });
  const garbage = Uint8Array.from([0xff, 0x01, 0x02, 0x03]);
  const cut = encodeBatches(recordOrigin(2, new Uint8Array(8).fill(7)), [1, 2], [enc('one'), enc('two')], 1 << 20, [])[0]!.subarray(0, 14);
  const removal = encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3 });
  const whole = encodeBatches(recordOrigin(2, new Uint8Array(8).fill(7)), [3], [enc('forwarded')], 1 << 20, [])[0]!;
  deliver(forwarded({ data: garbage }));
  deliver(forwarded({ data: cut }));
  deliver(forwarded({})); // an empty entry
  deliver(forwarded({ type: EntryType.ConfChange, data: removal }));
  deliver(msg({ type: MessageType.MsgProp, from: 2, to: 1, entries: [] }));
  deliver(forwarded({ data: whole }));

  // What the leader sends its followers: the whole batch, and nothing refused.
  await waitFor('the forwarded batch to be sent on', () => appended().some((e) => Buffer.from(e.data).equals(Buffer.from(whole))));
  const refused = [garbage, cut, removal].map((d) => Buffer.from(d));
  expect(appended().filter((e) => refused.some((d) => d.equals(Buffer.from(e.data))))).toEqual([]);
  expect(appended().filter((e) => e.type === EntryType.ConfChange)).toEqual([]);
  expect(refusals()).toEqual([
    expect.stringMatching(/^UNDECODABLE: refused a proposal forwarded from node 2: its records do not decode \(.*unknown record version 255\)$/),
    expect.stringMatching(/^UNDECODABLE: refused a proposal forwarded from node 2: its records do not decode \(.*cut short\)$/),
    'EMPTY_ENTRY: refused a proposal forwarded from node 2: it carries an empty entry',
    'MEMBERSHIP_CHANGE: refused a proposal forwarded from node 2: it carries a membership change, which only the leader proposes',
    'NO_ENTRY: refused a proposal forwarded from node 2: it carries no entry',
  ]);
  expect(refusedFrom()).toEqual(Array(5).fill({ node: 1, peer: 2 }));
  const counted = { NO_ENTRY: 1, MEMBERSHIP_CHANGE: 1, EMPTY_ENTRY: 1, UNDECODABLE: 2 };
  expect(log.metrics().proposalsRefused).toEqual(counted);
  expect(await refusedOnMetrics()).toEqual({ ...counted, FOREIGN_ORIGIN: 0 });

  // Node 2 acknowledges: the forwarded record commits and applies, and the leader lives on.
  ackAll();
  await waitFor('the forwarded record to apply', () => machine.applied.some((a) => a.data === 'forwarded'));
  expect(log.status().role).toBe('leader');
  expect(log.status().conf.voters).toEqual([1, 2, 3]);
});

it("refuses a forwarded batch that names another node as its origin: the leader's appends resolve with their own positions", async () => {
  const { log, machine, deliver, appended, ackAll, refusals, refusedOnMetrics } = await scriptedLeader();
  const first = log.append(enc('real-1'));
  await waitFor('the first record to be sent on', () => appended().some((e) => decodeBatch(e.data, e.index)?.payloads.length === 1));
  // The leader's origin, as any member reads it from the log.
  const leaderOrigin = decodeBatch(appended().find((e) => e.data.length > 0)!.data, 0)!.origin;
  expect(leaderOrigin[1]).toBe(1);

  // Node 2 forwards a batch as the leader's next append, and one as node 3's.
  const forge = (origin: Uint8Array, seq: number, text: string): Message =>
    msg({
      type: MessageType.MsgProp,
      from: 2,
      to: 1,
      entries: [{ index: 0, term: 0, type: EntryType.Normal, data: encodeBatches(origin, [seq], [enc(text)], 1 << 20, [])[0]! }],
    });
  deliver(forge(leaderOrigin, 2, 'forged-as-1'));
  deliver(forge(recordOrigin(3, new Uint8Array(8).fill(3)), 1, 'forged-as-3'));
  const second = log.append(enc('real-2'));
  await waitFor('the second record to be sent on', () => appended().some((e) => Buffer.from(e.data).includes(Buffer.from('real-2'))));
  ackAll();

  const placed = await Promise.all([first, second]);
  const at = (text: string) => machine.applied.find((a) => a.data === text);
  expect(placed.map((r) => ({ index: r.index, offset: r.offset }))).toEqual([
    { index: at('real-1')!.index, offset: 0 },
    { index: at('real-2')!.index, offset: 0 },
  ]);
  expect(machine.applied.map((a) => a.data)).toEqual(['real-1', 'real-2']);
  expect(refusals()).toEqual([
    'FOREIGN_ORIGIN: refused a proposal forwarded from node 2: it carries records of node 1, not of its sender',
    'FOREIGN_ORIGIN: refused a proposal forwarded from node 2: it carries records of node 3, not of its sender',
  ]);
  expect(log.metrics().proposalsRefused).toEqual({ FOREIGN_ORIGIN: 2 });
  expect(await refusedOnMetrics()).toEqual({ NO_ENTRY: 0, MEMBERSHIP_CHANGE: 0, EMPTY_ENTRY: 0, UNDECODABLE: 0, FOREIGN_ORIGIN: 2 });
});

it('counts a barrier refused because peers hold every read the leader may keep unconfirmed', async () => {
  const { log, deliver } = await scriptedLeader();
  const term = log.status().term;
  // Node 2 forwards as many reads as the leader may hold, and never answers a heartbeat that would confirm them.
  for (let i = 0; i < MAX_PENDING_READS; i++) {
    const context = Buffer.alloc(8);
    context.writeUInt32BE(i);
    deliver(msg({ type: MessageType.MsgReadIndex, from: 2, to: 1, term, context }));
  }
  await expect(log.barrier()).rejects.toMatchObject({ code: 'OVERLOADED' });
  expect(log.metrics().readsRefused).toEqual({ OVERLOADED: 1 });
  const text = parsePrometheus(await logRegistry(log).metrics());
  expect(text.get('raftlog_reads_refused_total{reason="OVERLOADED"}')).toBe(1);
});

/**
 * Nodes 1 and 2 of {1, 2, 3} as logs, linked in memory; node 3 is scripted (its messages are dropped). Node 2's
 * heartbeat answers reach the leader without their read context, so the leader, whichever it is, confirms no read.
 */
async function pairWithoutReadQuorum() {
  const handlers = new Map<number, TransportHandlers>();
  const peers = { 1: '127.0.0.1:1', 2: '127.0.0.1:2', 3: '127.0.0.1:3' };
  const open = async (id: number): Promise<ReplicatedLog> => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const transport = {
      start: async (h: TransportHandlers) => void handlers.set(id, h),
      send: (ms: Message[]) => {
        for (const m of ms) {
          const to = handlers.get(m.to);
          if (to === undefined) continue;
          const unconfirming = m.type === MessageType.MsgHeartbeatResp ? { ...m, context: undefined } : m;
          setImmediate(() => to.onMessage(unconfirming));
        }
      },
      addPeer: () => undefined,
      removePeer: () => undefined,
      close: async () => undefined,
    };
    const log = await ReplicatedLog.open(
      { dataDir: t.dir, id, peers, tickMs: 10, electionTicks: 10, timeoutMs: 3_000, stateMachine: new RecordingMachine(), logger: new RecordingLogger() },
      { transport },
    );
    cleanups.push(() => log.close());
    return log;
  };
  const logs = [await open(1), await open(2)];
  let leader: ReplicatedLog | undefined;
  await waitFor('a leader', () => (leader = logs.find((l) => l.status().role === 'leader')) !== undefined);
  const follower = logs.find((l) => l !== leader)!;
  await waitFor('the follower to know its leader', () => follower.status().lead === leader!.status().id);
  const deliver = (m: Message): void => handlers.get(m.to)!.onMessage(m);
  return { leader: leader!, follower, deliver };
}

it("fails a follower's barrier with OVERLOADED as soon as its leader refuses the read, and counts it there", async () => {
  const { leader, follower, deliver } = await pairWithoutReadQuorum();
  const to = leader.status().id;
  const term = leader.status().term;
  for (let i = 0; i < MAX_PENDING_READS; i++) {
    const context = Buffer.alloc(8);
    context.writeUInt32BE(i);
    deliver(msg({ type: MessageType.MsgReadIndex, from: 3, to, term, context }));
  }
  // Without an answer the barrier would wait for its deadline (timeoutMs) and fail with another code.
  await expect(follower.barrier()).rejects.toMatchObject({ code: 'OVERLOADED' });
  expect(follower.metrics().readsRefused).toEqual({ OVERLOADED: 1 });
  expect(leader.metrics().readsRefused).toEqual({});
  expect(leader.status().role).toBe('leader');
});

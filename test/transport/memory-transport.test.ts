import { describe, expect, it } from 'vitest';
import { EntryType, MessageType } from '../../src/raft/types.js';
import type { Message } from '../../src/raft/types.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import type { MemoryNetworkOptions } from '../../src/transport/memory-transport.js';
import type { IncomingSnapshot, SnapshotStreams } from '../../src/transport/snapshot-streams.js';
import { SnapshotRejectedError } from '../../src/transport/errors.js';
import { RecordingLogger } from '../recording-logger.js';
import { Recorder, msg, seeded, testSeed, until, within } from './helpers.js';

/** A virtual clock: scheduled callbacks run in time order when the test says so. */
class VirtualTime {
  now = 0;
  private seq = 0;
  private timers: Array<{ at: number; seq: number; fn: () => void }> = [];
  schedule = (fn: () => void, delayMs: number): void => {
    this.timers.push({ at: this.now + delayMs, seq: this.seq++, fn });
  };
  runAll(): void {
    while (this.timers.length > 0) {
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const t = this.timers.shift()!;
      this.now = t.at;
      t.fn();
    }
  }
}

const snapMsg = (data: Uint8Array): Message =>
  msg(1, 2, { type: MessageType.MsgSnap, snapshot: { meta: { index: 5, term: 1, conf: { voters: [1, 2], learners: [] } }, data } });

/**
 * Streams where a snapshot's `data` is a name for its bytes, as a file store's is: the sender
 * reads `bytes` for any name, in two chunks; the receiver keeps what it is written, and its
 * spool's finish() gives `finish` back.
 */
function namedSnapshots(bytes: Uint8Array, finish: () => Promise<Uint8Array>, write: () => Promise<void> = async () => {}) {
  const written: number[] = [];
  const aborted: string[] = [];
  const streams: SnapshotStreams = {
    async open() {
      return {
        size: bytes.byteLength,
        chunks: (async function* () {
          yield bytes.subarray(0, 2);
          yield bytes.subarray(2);
        })(),
      };
    },
    async spool(meta, size): Promise<IncomingSnapshot> {
      return {
        write: async (chunk) => {
          await write();
          written.push(...chunk);
        },
        finish,
        abort: async () => void aborted.push(`${meta.index}/${meta.term}, ${size} bytes`),
      };
    },
  };
  return { streams, written, aborted };
}

async function cluster(ids: number[], o: MemoryNetworkOptions = {}, snapshots: (id: number) => SnapshotStreams | undefined = () => undefined) {
  const net = new MemoryNetwork(o);
  const rec = new Map<number, Recorder>();
  for (const id of ids) {
    const r = new Recorder();
    const s = snapshots(id);
    if (s !== undefined) r.snapshots = s;
    rec.set(id, r);
    await net.endpoint(id).start(r);
  }
  return { net, rec: (id: number) => rec.get(id)! };
}

describe('MemoryNetwork', () => {
  it('delivers asynchronously what was sent, and the receiver shares no memory with the sender', async () => {
    const { net, rec } = await cluster([1, 2]);
    const data = new Uint8Array([1, 2, 3]);
    const m = msg(1, 2, { type: MessageType.MsgApp, entries: [{ index: 1, term: 1, type: EntryType.Normal, data }] });
    net.endpoint(1).send([m]);
    expect(rec(2).messages).toEqual([]);
    data[0] = 99;
    await until(() => rec(2).messages.length === 1, 'delivery');
    expect([...rec(2).messages[0]!.entries[0]!.data]).toEqual([1, 2, 3]); // as it was when sent
    rec(2).messages[0]!.entries[0]!.data[1] = 42;
    expect(data[1]).toBe(2);
  });

  it('reports unreachable for a node that is not started; a removed peer gets nothing and is not reported', async () => {
    const { net, rec } = await cluster([1, 2]);
    net.endpoint(1).removePeer(2);
    net.endpoint(1).send([msg(1, 2), msg(1, 3)]);
    await until(() => rec(1).unreachable.length === 1, 'the unreachable report');
    // Reports come in order: once the one for node 4 is in, any report about node 2 would have come before it.
    net.endpoint(1).send([msg(1, 4)]);
    await until(() => rec(1).unreachable.includes(4), 'the report for node 4');
    expect(rec(1).unreachable).toEqual([3, 4]);
    expect(rec(2).messages).toEqual([]);
    net.endpoint(1).addPeer(2, 'memory');
    net.endpoint(1).send([msg(1, 2)]);
    await until(() => rec(2).messages.length === 1, 'delivery after addPeer');
  });

  it('refuses as removed only a peer it removed, on a link that is not cut; the peer is told', async () => {
    const { net, rec } = await cluster([1, 2, 3]);
    // Node 3 is no peer node 2 removed: a node being added is unknown to a member that lags, not removed.
    net.endpoint(2).refuseRemoved(3);
    net.endpoint(2).removePeer(1);
    net.cut(2, 1, true);
    net.endpoint(2).refuseRemoved(1);
    net.heal();
    net.endpoint(2).refuseRemoved(1);
    await until(() => rec(1).removedBy.length > 0, 'node 1 to be told');
    // Told in order: node 3 would have been told before node 1 was.
    expect(rec(3).removedBy).toEqual([]);
    expect(rec(1).removedBy).toEqual([2]);
    net.endpoint(2).addPeer(1, 'memory');
    net.endpoint(2).refuseRemoved(1);
    net.endpoint(3).removePeer(1);
    net.endpoint(3).refuseRemoved(1);
    await until(() => rec(1).removedBy.length > 1, 'node 1 to be told by node 3');
    expect(rec(1).removedBy).toEqual([2, 3]);
  });

  it('partitions and heals', async () => {
    const vt = new VirtualTime();
    const { net, rec } = await cluster([1, 2, 3], { schedule: vt.schedule });
    net.partition([1], [2, 3]);
    for (const from of [1, 2, 3]) for (const to of [1, 2, 3]) if (from !== to) net.endpoint(from).send([msg(from, to)]);
    vt.runAll();
    expect(rec(1).messages).toEqual([]);
    expect(rec(2).messages.map((m) => m.from)).toEqual([3]);
    expect(rec(3).messages.map((m) => m.from)).toEqual([2]);
    net.heal();
    net.endpoint(1).send([msg(1, 2)]);
    vt.runAll();
    expect(rec(2).messages.map((m) => m.from)).toEqual([3, 1]);
    expect(net.stats).toMatchObject({ sent: 7, delivered: 3, dropped: 4 });
  });

  it('reports a delivered snapshot as ok and a lost one as failed', async () => {
    const vt = new VirtualTime();
    const { net, rec } = await cluster([1, 2], { schedule: vt.schedule });
    const snap = (): Message =>
      msg(1, 2, {
        type: MessageType.MsgSnap,
        snapshot: { meta: { index: 5, term: 1, conf: { voters: [1, 2], learners: [] } }, data: new Uint8Array(100).fill(7) },
      });
    net.endpoint(1).send([snap()]);
    // The snapshot's bytes are copied outside the schedule: the report is scheduled once they are.
    await until(() => (vt.runAll(), rec(1).snapshotStatus.length === 1), 'the report of the delivered snapshot');
    net.cut(1, 2);
    net.endpoint(1).send([snap()]);
    vt.runAll();
    expect(rec(1).snapshotStatus).toEqual([
      [2, true],
      [2, false],
    ]);
    expect([...rec(2).messages[0]!.snapshot!.data]).toEqual([...new Uint8Array(100).fill(7)]);
  });

  it("carries a snapshot's bytes from the sender's streams to the receiver's, and delivers the MsgSnap with what the receiver's finish() gave", async () => {
    const named = namedSnapshots(new Uint8Array([1, 2, 3, 4, 5, 6]), async () => Buffer.from('spooled'));
    const { net, rec } = await cluster([1, 2], {}, () => named.streams);
    net.endpoint(1).send([snapMsg(Buffer.from('sender-name'))]);
    await until(() => rec(2).messages.length === 1, 'the snapshot');
    expect(named.written).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Buffer.from(rec(2).messages[0]!.snapshot!.data).toString()).toBe('spooled');
    expect(rec(2).messages[0]!.snapshot!.meta).toEqual({ index: 5, term: 1, conf: { voters: [1, 2], learners: [] } });
    await until(() => rec(1).snapshotStatus.length === 1, 'the report');
    expect(rec(1).snapshotStatus).toEqual([[2, true]]);
    expect(named.aborted).toEqual([]);
  });

  it("reports as failed, and does not deliver, a snapshot the receiver's check refuses", async () => {
    const named = namedSnapshots(new Uint8Array(6), () => Promise.reject(new Error('not a snapshot')));
    const { net, rec } = await cluster([1, 2], {}, () => named.streams);
    net.endpoint(1).send([snapMsg(Buffer.from('sender-name')), msg(1, 2)]);
    await until(() => rec(1).snapshotStatus.length === 1, 'the report');
    expect(rec(1).snapshotStatus).toEqual([[2, false]]);
    expect(rec(2).messages.map((m) => m.type)).toEqual([MessageType.MsgHeartbeat]);
    expect(named.written).toHaveLength(6);
    expect(net.stats.dropped).toBe(1);
  });

  it('reports as failed a snapshot whose receiver closes while it is copied; the close ends the copy, a write that never ends included, and deletes its spool', async () => {
    let writing = false;
    const named = namedSnapshots(
      new Uint8Array(6),
      async () => Buffer.from('spooled'),
      () => {
        writing = true;
        return new Promise<void>(() => undefined);
      },
    );
    const { net, rec } = await cluster([1, 2], {}, () => named.streams);
    net.endpoint(1).send([snapMsg(Buffer.from('sender-name'))]);
    await until(() => writing, 'the first write');
    await within('the close of the receiver', net.endpoint(2).close());
    expect(named.aborted).toEqual(['5/1, 6 bytes']);
    await until(() => rec(1).snapshotStatus.length === 1, 'the report');
    expect(rec(1).snapshotStatus).toEqual([[2, false]]);
    expect(rec(2).messages).toEqual([]);
  });

  it('ends a copy whose source never yields when the sender closes, and closes the source once its read ends', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let reading = false;
    let sourceClosed = false;
    const streams: SnapshotStreams = {
      async open() {
        return {
          size: 6,
          chunks: (async function* () {
            try {
              reading = true;
              await held;
              yield new Uint8Array(6);
            } finally {
              sourceClosed = true;
            }
          })(),
        };
      },
      async spool() {
        throw new Error('no spool is opened before the source yields');
      },
    };
    const { net } = await cluster([1, 2], {}, () => streams);
    net.endpoint(1).send([snapMsg(Buffer.from('sender-name'))]);
    await until(() => reading, 'the first read');
    await within('the close of the sender', net.endpoint(1).close());
    expect(net.stats.dropped).toBe(1);
    release();
    await until(() => sourceClosed, 'the source closed');
  });

  it("logs why a snapshot was not copied with the endpoint's logger (the log's), with a code", async () => {
    const named = namedSnapshots(new Uint8Array(6), () => Promise.reject(new SnapshotRejectedError('its checksum does not match')));
    const { net, rec } = await cluster([1, 2], {}, () => named.streams);
    const logger = new RecordingLogger();
    rec(1).logger = logger;
    net.endpoint(1).send([snapMsg(Buffer.from('sender-name'))]);
    await until(() => rec(1).snapshotStatus.length === 1, 'the report');
    expect(logger.lines.map((l) => ({ level: l.level, code: l.fields.code, peer: l.fields.peer }))).toEqual([
      { level: 'warn', code: 'TRANSPORT_SNAPSHOT_REJECTED', peer: 2 },
    ]);
    expect(logger.lines[0]!.message).toContain('its checksum does not match');
  });

  for (const [what, held] of [
    ['fewer', 4],
    ['more', 8],
  ] as const) {
    it(`copies no snapshot whose source streams ${what} bytes than it announced, and logs it as TRANSPORT_SNAPSHOT_SOURCE_MISMATCH`, async () => {
      const named = namedSnapshots(new Uint8Array(held), async () => Buffer.from('spooled'));
      const lying: SnapshotStreams = { ...named.streams, open: async (s) => ({ ...(await named.streams.open(s)), size: 6 }) };
      const { net, rec } = await cluster([1, 2], {}, () => lying);
      const logger = new RecordingLogger();
      rec(1).logger = logger;
      net.endpoint(1).send([snapMsg(Buffer.from('sender-name'))]);
      await until(() => rec(1).snapshotStatus.length === 1, 'the report');
      expect(rec(1).snapshotStatus).toEqual([[2, false]]);
      expect(rec(2).messages).toEqual([]);
      expect(logger.lines.map((l) => l.fields.code)).toEqual(['TRANSPORT_SNAPSHOT_SOURCE_MISMATCH']);
      expect(logger.lines[0]!.message).toMatch(/announced 6 bytes and (ended after 4|held at least 8)$/);
    });
  }

  it('is deterministic for a seed: drops and delays replay exactly, and links stay FIFO', async () => {
    const seed = testSeed('memory network');
    const run = async () => {
      const vt = new VirtualTime();
      const { net, rec } = await cluster([1, 2, 3], { random: seeded(seed), schedule: vt.schedule, faults: { drop: 0.3, delayMs: [1, 50] } });
      for (let i = 0; i < 200; i++) net.endpoint(1 + (i % 2)).send([msg(1 + (i % 2), 3, { index: i })]);
      vt.runAll();
      return rec(3).messages.map((m) => `${m.from}:${m.index}`);
    };
    const first = await run();
    expect(await run()).toEqual(first);
    expect(first.length).toBeGreaterThan(80);
    expect(first.length).toBeLessThan(200);
    for (const from of [1, 2]) {
      const seq = first.filter((s) => s.startsWith(`${from}:`)).map((s) => Number(s.split(':')[1]));
      expect(seq).toEqual([...seq].sort((a, b) => a - b));
    }
    // Delays do interleave the two links, so ordering is not trivially send order.
    expect(first).not.toEqual([...first].sort((a, b) => Number(a.split(':')[1]) - Number(b.split(':')[1])));
  });

  it('drops what a filter rejects, and a restarted endpoint is a fresh node', async () => {
    const { net, rec } = await cluster([1, 2]);
    net.filter = (m) => m.type !== MessageType.MsgVote;
    net.endpoint(1).send([msg(1, 2, { type: MessageType.MsgVote }), msg(1, 2, { type: MessageType.MsgHeartbeat })]);
    await until(() => rec(2).messages.length === 1, 'the heartbeat');
    expect(rec(2).messages[0]!.type).toBe(MessageType.MsgHeartbeat);
    await net.endpoint(2).close();
    net.endpoint(1).send([msg(1, 2)]);
    await until(() => rec(1).unreachable.includes(2), 'unreachable after close');
    const fresh = new Recorder();
    await net.endpoint(2).start(fresh);
    net.endpoint(1).send([msg(1, 2)]);
    await until(() => fresh.messages.length === 1, 'delivery to the restarted node');
  });
  it('remembers a bounded number of removed peers however many are added and removed, and still drops to the latest', async () => {
    const { net, rec } = await cluster([1, 2]);
    const e = net.endpoint(1);
    // Members replaced by new ids, one after another, for as long as a node runs.
    for (let id = 3; id < 20_000; id++) {
      e.addPeer(id, 'embedded');
      e.removePeer(id);
    }
    expect(e.removed.size).toBeLessThanOrEqual(1024);
    e.removePeer(2);
    e.send([msg(1, 2)]);
    await new Promise((r) => setImmediate(r));
    expect(rec(2).messages).toEqual([]);
    expect(net.stats.unreachable).toBe(1);
  });
});

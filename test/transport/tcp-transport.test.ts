import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { EntryType, MessageType } from '../../src/raft/types.js';
import type { Message } from '../../src/raft/types.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import type { TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { FrameDecoder, encodeFrames } from '../../src/transport/frame.js';
import {
  decodeFrame,
  encodeChallenge,
  encodeChunk,
  encodeHello,
  encodeMessage,
  encodePing,
  encodeProof,
  encodeRefuse,
  newPacker,
} from '../../src/transport/wire.js';
import { LogCapture, Recorder, msg, until, within } from './helpers.js';
import { inMemorySnapshots } from '../../src/transport/snapshot-streams.js';
import { PEER_REFUSALS } from '../../src/transport/peer-refusals.js';
import { REFUSAL_LOG_LINES } from '../../src/refusal-log.js';
import { UNPROVEN_CODE } from '../../src/transport/errors.js';
import { ManualClock } from '../manual-clock.js';
import { failAccepts, serverAt } from '../listening-server.js';
import { BrokenLogger, looseErrors } from '../broken-logger.js';

const open: TcpTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function node(o: Partial<TcpTransportOptions> & { id: number }, rec = new Recorder(), log = new LogCapture()) {
  const t = new TcpTransport({ clusterId: 'c1', listen: '127.0.0.1:0', insecure: true, backoff: { initialMs: 10, maxMs: 100 }, logger: log, ...o });
  open.push(t);
  await t.start(rec);
  return { t, rec, log };
}

/** Two connected nodes, 1 and 2. */
async function pair(o: Partial<TcpTransportOptions> = {}) {
  const b = await node({ id: 2, ...o });
  const a = await node({ id: 1, peers: { 2: b.t.address }, ...o });
  b.t.addPeer(1, a.t.address);
  return { a, b };
}

/**
 * Node 1 dialing node 2, which has no address for it (node 1 is told what `rec` records, node 2 is
 * given `acceptor`), once a first message (commit 1) has gone through.
 */
async function oneWay(o: { rec?: Recorder; acceptor?: Partial<TcpTransportOptions> } = {}) {
  const b = await node({ id: 2, ...o.acceptor });
  const a = await node({ id: 1, peers: { 2: b.t.address } }, o.rec);
  await stillWorks(a.t, b.rec, 1);
  return { a, b };
}

/** The hello of node 5 to node 2, for a raw connection. */
const FROM_5 = { clusterId: 'c1', from: 5, to: 2 };

/** Opens a raw socket to a transport, optionally sending a valid handshake first. */
async function raw(address: string, hello?: { from: number; to: number; clusterId: string }): Promise<net.Socket> {
  const [host, port] = address.split(':');
  const s = net.connect({ host: host!, port: Number(port) });
  await within('the raw connection', new Promise((r) => s.once('connect', r)));
  s.resume(); // read (and discard) the refusal, so the close is seen
  // Without a secret the proof is empty, but the handshake still has its three steps.
  if (hello) s.write(encodeFrames([encodeHello(newPacker(), hello.clusterId, hello.from, hello.to), encodeProof(newPacker(), new Uint8Array(0))]));
  return s;
}
/** What an insecure acceptor answers to any hello: a challenge with an empty proof. */
function acceptHandshake(): Buffer {
  return encodeFrames([encodeChallenge(newPacker(), new Uint8Array(32), new Uint8Array(0))]);
}

function closed(s: net.Socket): Promise<void> {
  return within(
    'the transport to close the connection',
    new Promise((r) => {
      if (s.closed) r();
      else s.once('close', () => r());
    }),
  );
}
/** A frame with the given raw payload. */
function frame(payload: Uint8Array): Buffer {
  return encodeFrames([payload]);
}

/** Sends 1 -> 2 and waits until it arrives: the node still works. */
async function stillWorks(a: TcpTransport, b: Recorder, tag: number): Promise<void> {
  a.send([msg(1, 2, { commit: tag })]);
  await until(() => b.messages.some((m) => m.commit === tag), `message ${tag}`);
}

/** A fake peer listening on a free port, `onConnection` taking each connection, and its address. */
async function fakePeer(onConnection: (s: net.Socket) => void): Promise<{ sink: net.Server; address: string }> {
  const sink = net.createServer(onConnection);
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  return { sink, address: `127.0.0.1:${(sink.address() as net.AddressInfo).port}` };
}

function sinkClosed(sink: net.Server, what = 'the sink to close'): Promise<unknown> {
  return within(what, new Promise((r) => sink.close(r)));
}

/**
 * A peer that accepts a connection and then reads nothing until the test resumes it
 * (`reader()`, once connected), decoding every message it then reads. `close()` drops the
 * connection and closes the sink.
 */
async function stalledPeer(onMessage: (m: Message) => void = () => undefined) {
  let reader: net.Socket | undefined;
  const { sink, address } = await fakePeer((s) => {
    reader = s;
    s.write(acceptHandshake());
    s.pause();
    const d = new FrameDecoder(1 << 24);
    s.on('data', (c: Buffer) => {
      d.push(c);
      for (let f = d.next(); f !== undefined; f = d.next()) {
        const fr = decodeFrame(f);
        if (fr.kind === 'message') onMessage(fr.message);
      }
    });
  });
  return {
    address,
    /** The connection, once the transport has dialed. */
    async reader(): Promise<net.Socket> {
      await until(() => reader !== undefined, 'the connection');
      return reader!;
    },
    async close(what?: string): Promise<void> {
      reader!.destroy();
      await sinkClosed(sink, what);
    },
  };
}

/** A MsgSnap 1 -> 2 of a snapshot at index 9, term 2 whose data is `data`. */
function snap(data: Uint8Array = new Uint8Array(0)): Message {
  return msg(1, 2, { type: MessageType.MsgSnap, snapshot: { meta: { index: 9, term: 2, conf: { voters: [1, 2], learners: [] } }, data } });
}

const ENTRY_16K = new Uint8Array(16 * 1024);

/** A MsgApp 1 -> 2 at `index` with one entry of 16 KiB. */
function app16k(index: number): Message {
  return msg(1, 2, { type: MessageType.MsgApp, index, entries: [{ index: 1, term: 1, type: EntryType.Normal, data: ENTRY_16K }] });
}

/** Sends `total` of app16k, from index 0, four a turn. */
async function sendApps(t: TcpTransport, total: number): Promise<void> {
  for (let i = 0; i < total; i++) {
    t.send([app16k(i)]);
    if (i % 4 === 3) await new Promise((r) => setImmediate(r));
  }
}

/**
 * Node 1 (given `options`) sending a stalled node 2 a MsgSnap whose 64 MiB are read a MiB at a
 * time, once `ready` resolves; closing the source runs `release`. Resolves once the first MiB is
 * sent (`midStream: false`: once the source is asked for it).
 */
async function sendingSnapshot(o: { release: () => Promise<void>; ready?: Promise<void>; midStream?: boolean; options?: Partial<TcpTransportOptions> }) {
  let read = 0;
  let entered = false;
  const chunks = (async function* () {
    try {
      entered = true;
      if (o.ready !== undefined) await o.ready;
      for (let i = 0; i < 64; i++, read++) yield new Uint8Array(1024 * 1024);
    } finally {
      await o.release();
    }
  })();
  const peer = await stalledPeer();
  const snapshots = { ...inMemorySnapshots, open: async () => ({ size: 64 * 1024 * 1024, chunks }) };
  const { t, log } = await node({ id: 1, peers: { 2: peer.address }, snapshots, ...o.options });
  await peer.reader();
  t.send([snap()]);
  await until(() => (o.midStream === false ? entered : read > 0), 'the stream to start');
  return { t, log, peer };
}

describe('TcpTransport', () => {
  it('round-trips messages with entries and binary fields, both ways', async () => {
    const { a, b } = await pair();
    const sent: Message = msg(1, 2, {
      type: MessageType.MsgApp,
      term: 7,
      logTerm: 6,
      index: 41,
      commit: 40,
      rejectHintTerm: 3,
      context: new Uint8Array([1, 2, 3]),
      entries: [
        { index: 42, term: 7, type: EntryType.Normal, data: new Uint8Array([0, 255, 7]) },
        { index: 43, term: 7, type: EntryType.ConfChange, data: new Uint8Array(0) },
      ],
    });
    a.t.send([sent]);
    await until(() => b.rec.messages.length === 1, 'the MsgApp');
    const got = b.rec.messages[0]!;
    expect(got).toEqual({ ...sent, context: Buffer.from([1, 2, 3]), entries: sent.entries.map((e) => ({ ...e, data: Buffer.from(e.data) })) });
    expect(got.entries[0]!.data).toBeInstanceOf(Uint8Array);
    expect([...got.entries[0]!.data]).toEqual([0, 255, 7]);
    b.t.send([msg(2, 1, { type: MessageType.MsgAppResp, index: 43, reject: true, rejectHint: 5 })]);
    await until(() => a.rec.messages.length === 1, 'the reply');
    expect(a.rec.messages[0]).toMatchObject({ type: MessageType.MsgAppResp, from: 2, to: 1, index: 43, reject: true, rejectHint: 5 });
    expect(a.rec.messages[0]!.rejectHintTerm).toBeUndefined();
  });

  it('sends everything queued to a peer in one turn as one write, and separate turns as separate writes', async () => {
    const { a, b } = await pair();
    await stillWorks(a.t, b.rec, 1);
    const before = a.t.stats().peers[2]!.writes;
    for (let i = 0; i < 100; i++) a.t.send([msg(1, 2, { index: i })]);
    a.t.send(Array.from({ length: 50 }, (_, i) => msg(1, 2, { index: 100 + i })));
    await until(() => b.rec.messages.length === 151, '150 messages');
    expect(a.t.stats().peers[2]!.writes - before).toBe(1);
    expect(b.rec.messages.slice(1).map((m) => m.index)).toEqual(Array.from({ length: 150 }, (_, i) => i));
    a.t.send([msg(1, 2)]);
    await new Promise((r) => setImmediate(r));
    a.t.send([msg(1, 2)]);
    await until(() => b.rec.messages.length === 153, 'two more');
    expect(a.t.stats().peers[2]!.writes - before).toBe(3);
  });

  it('writes large and small messages of one turn in one write, in order and intact', async () => {
    const { a, b } = await pair();
    await stillWorks(a.t, b.rec, 1);
    const before = a.t.stats().peers[2]!;
    // Ten entries of 40 KiB each: a message packed in parts, its entries written from where they were packed.
    const entries = Array.from({ length: 10 }, (_, i) => ({ index: 10 + i, term: 2, type: EntryType.Normal, data: randomBytes(40 * 1024) }));
    const sent = [
      msg(1, 2, { index: 1 }),
      msg(1, 2, { type: MessageType.MsgApp, index: 9, entries }),
      msg(1, 2, { index: 2 }),
      msg(1, 2, { type: MessageType.MsgApp, index: 9, entries: entries.slice(0, 9) }),
    ];
    a.t.send(sent);
    await until(() => b.rec.messages.length === 5, 'four messages');
    const after = a.t.stats().peers[2]!;
    expect(after.writes - before.writes).toBe(1);
    expect(after.framesSent - before.framesSent).toBe(4);
    const got = b.rec.messages.slice(1);
    expect(got.map((m) => [m.index, m.entries.length])).toEqual([
      [1, 0],
      [9, 10],
      [2, 0],
      [9, 9],
    ]);
    for (const m of [got[1]!, got[3]!]) m.entries.forEach((e, i) => expect(Buffer.from(e.data).equals(entries[i]!.data), `entry ${e.index}`).toBe(true));
  });

  it('leaves out a queued MsgApp with no entries that the next MsgApp of the turn says the same and more as, and nothing else', async () => {
    const { a, b } = await pair();
    await stillWorks(a.t, b.rec, 1);
    const before = a.t.stats().peers[2]!;
    const app = (over: Partial<Message>): Message => msg(1, 2, { type: MessageType.MsgApp, term: 3, logTerm: 3, index: 9, commit: 8, ...over });
    const e10 = [{ index: 10, term: 3, type: EntryType.Normal, data: new Uint8Array([1]) }];
    const sent = [
      app({ commit: 9 }), // a commit index, then the next entries from the same place: left out
      app({ commit: 9, entries: e10 }),
      app({ index: 10, commit: 9 }), // then entries from elsewhere: both sent
      app({ index: 11, commit: 10, entries: [{ ...e10[0]!, index: 12 }] }),
      app({ index: 12, commit: 11 }), // a later commit index than the entries carry: both sent
      app({ index: 12, commit: 10, entries: [{ ...e10[0]!, index: 13 }] }),
      app({ index: 13, commit: 12 }), // another message between them: all three sent
      msg(1, 2, { index: 99 }),
      app({ index: 13, commit: 12, entries: [{ ...e10[0]!, index: 14 }] }),
      app({ index: 14, term: 4, logTerm: 4, commit: 13 }), // another term: both sent
      app({ index: 14, term: 5, logTerm: 4, commit: 13, entries: [{ ...e10[0]!, index: 15 }] }),
    ];
    a.t.send(sent);
    await until(() => b.rec.messages.length === 1 + sent.length - 1, 'the messages');
    const got = b.rec.messages.slice(1);
    expect(got.map((m) => [m.type, m.index, m.commit, m.entries.length])).toEqual(sent.slice(1).map((m) => [m.type, m.index, m.commit, m.entries.length]));
    expect(a.t.stats().peers[2]!.coalesced - before.coalesced).toBe(1);
    // Not across writes: a commit index already written is not taken back.
    a.t.send([app({ index: 20, commit: 19 })]);
    await until(() => b.rec.messages.length === sent.length + 1, 'the commit index alone');
    a.t.send([app({ index: 20, commit: 19, entries: [{ ...e10[0]!, index: 21 }] })]);
    await until(() => b.rec.messages.length === sent.length + 2, 'the entries');
    expect(a.t.stats().peers[2]!.coalesced - before.coalesced).toBe(1);
  });

  it("round after round, each turn's commit index waits for that turn's entries, and they go out as one", async () => {
    const rec = Object.assign(new Recorder(), { later: false, sendingLater: (): boolean => rec.later });
    const { a, b } = await oneWay({ rec });
    const before = a.t.stats().peers[2]!;
    const app = (index: number, entries: number): Message =>
      msg(1, 2, {
        type: MessageType.MsgApp,
        term: 3,
        logTerm: 3,
        index,
        commit: index,
        entries: Array.from({ length: entries }, (_, k) => ({ index: index + 1 + k, term: 3, type: EntryType.Normal, data: new Uint8Array([k]) })),
      });
    const rounds = 8;
    await new Promise<void>((done) => {
      // A leader's round: an answer moves the commit index (sent at once), the clients it
      // freed append, and the driver proposes at the end of the turn and flushes. Each round
      // starts with a timer, ahead of a flush the transport put off in the turn before.
      const round = (r: number): void => {
        rec.later = true;
        a.t.send([app(10 + r, 0)]);
        setImmediate(() => {
          rec.later = false;
          a.t.send([app(10 + r, 1)]);
          a.t.flush();
          if (r + 1 === rounds) return done();
          setTimeout(() => round(r + 1), 0);
          const due = performance.now() + 3;
          while (performance.now() < due); // the timer is due when the next turn starts
        });
      };
      round(0);
    });
    await until(() => b.rec.messages.some((m) => m.index === 10 + rounds - 1), 'the last round');
    expect(b.rec.messages.slice(1).map((m) => [m.index, m.entries.length])).toEqual(Array.from({ length: rounds }, (_, r) => [10 + r, 1]));
    expect(a.t.stats().peers[2]!.coalesced - before.coalesced).toBe(rounds);
    expect(a.t.stats().peers[2]!.writes - before.writes).toBe(rounds);
  });

  it('flush() writes what is queued at once, even while the driver will send more in the turn', async () => {
    const rec = Object.assign(new Recorder(), { sendingLater: (): boolean => true });
    const { a, b } = await oneWay({ rec });
    const writes = (): number => a.t.stats().peers[2]!.writes;
    const before = writes();
    a.t.send([msg(1, 2, { index: 1 }), msg(1, 2, { index: 2 })]);
    a.t.flush();
    // Synchronously: the frames are in the socket before the caller goes on to block its loop.
    expect(writes() - before).toBe(1);
    expect(a.t.stats().peers[2]!.queuedBytes).toBe(0);
    a.t.flush(); // nothing queued: no write
    a.t.send([msg(1, 2, { index: 3 })]);
    await until(() => b.rec.messages.length === 4, 'three messages');
    expect(writes() - before).toBe(2);
    expect(b.rec.messages.slice(1).map((m) => m.index)).toEqual([1, 2, 3]);
  });

  it("holds a turn's messages while the driver will send more in it, a few turns at most", async () => {
    const rec = Object.assign(new Recorder(), { later: false, sendingLater: (): boolean => rec.later });
    const { a, b } = await oneWay({ rec });
    const writes = (): number => a.t.stats().peers[2]!.writes;
    const before = writes();
    rec.later = true;
    a.t.send([msg(1, 2, { index: 1 })]);
    // The driver's end of the turn, queued after the transport's flush: it sends again.
    setImmediate(() => {
      rec.later = false;
      a.t.send([msg(1, 2, { index: 2 })]);
    });
    await until(() => b.rec.messages.length === 3, 'both messages');
    expect(writes() - before).toBe(1);
    // A driver that always has more to send, and never flushes, holds nothing back for long.
    rec.later = true;
    a.t.send([msg(1, 2, { index: 3 })]);
    await until(() => b.rec.messages.length === 4, 'the third message');
    expect(writes() - before).toBe(2);
    expect(b.rec.messages.slice(1).map((m) => m.index)).toEqual([1, 2, 3]);
  });

  it('reports an unreachable peer, reconnects once it is back on the same port, and logs each connection at info', async () => {
    const { a, b } = await pair();
    await stillWorks(a.t, b.rec, 1);
    // A loss is logged (warn); so is each connection, so that the log says when the peer is back.
    const connected = (): string[] => a.log.lines.filter((l) => l.level === 'info' && /connected to peer 2 at /.test(l.message)).map((l) => l.message);
    expect(connected()).toEqual([`transport: connected to peer 2 at ${b.t.address}`]);
    const address = b.t.address;
    await b.t.close();
    await until(() => a.rec.unreachable.includes(2), 'onUnreachable(2) after the peer closed');
    a.t.send([msg(1, 2)]); // while down: dropped, never throws
    const b2 = await node({ id: 2, listen: address });
    let tag = 100;
    await until(() => {
      a.t.send([msg(1, 2, { commit: tag++ })]);
      return b2.rec.messages.length > 0;
    }, 'delivery after the restart');
    expect(a.t.stats().peers[2]!.connects).toBe(2);
    expect(connected()).toHaveLength(2);
  });

  it('logs a peer that closes each connection as soon as it is open a few times, not twice per dial', async () => {
    const { sink, address } = await fakePeer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.end(acceptHandshake()));
    });
    // Connections close long before the 500 ms a connection must last to count as working.
    const { t, log } = await node({ id: 1, peers: { 2: address }, backoff: { initialMs: 10, maxMs: 500 } });
    await until(() => t.stats().peers[2]!.connects >= 8, 'eight connections');
    await t.close();
    await sinkClosed(sink);
    const lines = log.lines.map((l) => l.message.replace(/ at 127\.0\.0\.1:\d+/, ''));
    // Once as open, once as lost, and once more as open: nothing said yet it was lost again.
    expect(lines).toEqual(['transport: connected to peer 2', 'transport: connection to peer 2 lost: closed by peer', 'transport: connected to peer 2']);
  });

  it('keeps backing off from a peer that closes each connection once open, whatever the wall clock does', async () => {
    // The peer completes the handshake, then closes as soon as the dialer has proved itself.
    const accepted: number[] = [];
    let seventh = (): void => undefined;
    const sevenConnections = new Promise<void>((r) => (seventh = r));
    const { sink, address } = await fakePeer((s) => {
      if (accepted.push(performance.now()) === 7) seventh();
      s.on('error', () => undefined);
      let reads = 0;
      s.on('data', () => {
        if (++reads === 1) s.write(acceptHandshake());
        else s.destroy();
      });
    });
    // The wall clock is stepped an hour forward at every reading (an NTP step, made extreme): it
    // says nothing of how long a connection lasted. (`within` waits on a timer, not on this clock.)
    const wall = Date.now;
    let stepped = 0;
    Date.now = () => wall() + ++stepped * 3_600_000;
    try {
      const { t } = await node({ id: 1, peers: { 2: address }, backoff: { initialMs: 20, maxMs: 60_000 } });
      await within('seven connections', sevenConnections, 20_000);
      await t.close();
    } finally {
      Date.now = wall;
    }
    // Backoff step n waits between half and all of 20 ms × 2^n: the dial before the seventh waited
    // at least 320 ms (step 5), which only a connection that never counted as lasting grows to.
    expect(accepted[6]! - accepted[5]!).toBeGreaterThanOrEqual(300);
    await sinkClosed(sink);
  });

  it('refuses a node of another cluster with a logged reason on both sides', async () => {
    const { a, b } = await pair();
    const stranger = await node({ id: 3, clusterId: 'other', peers: { 2: b.t.address } });
    stranger.t.send([msg(3, 2)]);
    await until(() => b.log.has('TRANSPORT_CLUSTER_MISMATCH'), 'the refusal in the log');
    await until(() => stranger.log.has('refused the connection: TRANSPORT_CLUSTER_MISMATCH'), "the stranger's log");
    expect(b.rec.messages.filter((m) => m.from === 3)).toEqual([]);
    expect(b.t.stats().connectionsRefused).toBeGreaterThan(0);
    await stillWorks(a.t, b.rec, 9);
  });

  it('a logger that throws loses its lines, not the transport: it refuses a stranger and keeps serving its peer', async () => {
    const broken = new BrokenLogger();
    const loose = looseErrors();
    const b = await node({ id: 2, logger: broken });
    const a = await node({ id: 1, peers: { 2: b.t.address } });
    b.t.addPeer(1, a.t.address);
    const stranger = await node({ id: 3, clusterId: 'other', peers: { 2: b.t.address } });
    stranger.t.send([msg(3, 2)]);
    await until(() => stranger.log.has('refused the connection: TRANSPORT_CLUSTER_MISMATCH'), "the stranger's log");
    expect(broken.calls).toBeGreaterThan(0);
    await stillWorks(a.t, b.rec, 9);
    expect(loose).toEqual([]);
  });

  it("quotes what a peer sent before it was authenticated, cut short and with its control characters written out, in its refusals' lines", async () => {
    // A terminal escape, a forged line, a bidirectional override, then a handshake's worth of text.
    const hostile = '\x1b[2J\nWARN forged line\u202e' + 'x'.repeat(700);
    const quoted = '\\x1b[2J\\x0aWARN forged line\\u202e';
    const b = await node({ id: 2 });
    const p = newPacker();
    const clean = (l: { message: string; fields: Record<string, unknown> }): void => {
      for (const text of [l.message, ...Object.values(l.fields).filter((v): v is string => typeof v === 'string')]) {
        expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
        expect(text.length, text).toBeLessThan(600);
      }
      expect(l.message).toContain(quoted);
    };

    const mismatch = await raw(b.t.address, { clusterId: hostile, from: 5, to: 2 });
    await closed(mismatch);
    await until(() => b.log.lines.some((l) => l.fields.code === 'TRANSPORT_CLUSTER_MISMATCH'), 'the refused cluster id in the log');
    clean(b.log.lines.find((l) => l.fields.code === 'TRANSPORT_CLUSTER_MISMATCH')!);

    const address = await raw(b.t.address);
    address.write(encodeFrames([encodeHello(p, 'c1', 5, 2, `${hostile}:port`), encodeProof(p, new Uint8Array(0))]));
    await closed(address);
    await until(() => b.log.has('impossible address'), 'the refused address in the log');
    clean(b.log.lines.find((l) => /impossible address/.test(l.message))!);

    // An acceptor that refuses every dial with a code and a reason of its own making.
    const { sink, address: refuser } = await fakePeer((c) => {
      c.on('error', () => undefined);
      c.resume(); // reads the hello, so the dialer's close is seen
      c.end(frame(pack([3, hostile.slice(0, 200), hostile])));
    });
    const dialer = await node({ id: 1, peers: { 9: refuser } });
    dialer.t.send([msg(1, 9)]);
    await until(() => dialer.log.has('refused the connection'), "the peer's refusal in the log");
    const refused = dialer.log.lines.find((l) => /refused the connection/.test(l.message))!;
    expect(refused.fields.code).toBe('TRANSPORT_PEER_REFUSED');
    clean(refused);
    expect(String(refused.fields.remoteCode)).toContain(quoted);
    await dialer.t.close();
    await sinkClosed(sink);
  });

  it('logs every refusal and every failed or lost connection with its code as a field, on both sides', async () => {
    const { a, b } = await pair();
    const stranger = await node({ id: 3, clusterId: 'other', peers: { 2: b.t.address } });
    stranger.t.send([msg(3, 2)]);
    const s = await raw(b.t.address);
    s.write(frame(Uint8Array.of(1, 2, 3)));
    await closed(s);
    const { sink, address } = await fakePeer((c) => c.destroy());
    await sinkClosed(sink);
    const lonely = await node({ id: 4, peers: { 9: address } });
    lonely.t.send([msg(4, 9)]);
    await until(() => b.log.has('TRANSPORT_CLUSTER_MISMATCH') && b.log.has('TRANSPORT_MALFORMED_FRAME'), 'the refusals in the log');
    await until(() => stranger.log.has('refused the connection'), "the stranger's log");
    await until(() => lonely.log.has('connection to peer 9'), 'the failed dial in the log');
    const warnings = [b, stranger, lonely].flatMap((n) => n.log.lines.filter((l) => l.level === 'warn' || l.level === 'error'));
    for (const w of warnings) expect(w.fields.code, w.message).toMatch(/^[A-Z][A-Z0-9_]+$/);
    const codes = (n: { log: LogCapture }): unknown[] => n.log.lines.map((l) => l.fields.code);
    expect(codes(b)).toEqual(expect.arrayContaining(['TRANSPORT_CLUSTER_MISMATCH', 'TRANSPORT_MALFORMED_FRAME']));
    // The client's address as fields, as the RESP server and the admin endpoint log it.
    for (const l of b.log.lines.filter((l) => /^TRANSPORT_(CLUSTER_MISMATCH|MALFORMED_FRAME)$/.test(String(l.fields.code)))) {
      expect(l.fields, l.message).toMatchObject({ remoteAddress: '127.0.0.1', remotePort: expect.any(Number) });
    }
    expect(stranger.log.lines.find((l) => /refused the connection/.test(l.message))?.fields).toMatchObject({
      code: 'TRANSPORT_PEER_REFUSED',
      remoteCode: 'TRANSPORT_CLUSTER_MISMATCH',
    });
    expect(codes(lonely)).toContain('ECONNREFUSED');
    await stillWorks(a.t, b.rec, 3);
  });

  it("logs a dial's failure again when its reason changes: refused at first, then the peer up with another secret", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const secret = (c: string): string => c.repeat(24);
    const a = await node({ id: 1, insecure: false, clusterSecret: secret('a'), peers: { 2: `127.0.0.1:${port}` } });
    a.t.send([msg(1, 2)]);
    await until(() => a.log.lines.some((l) => l.fields.code === 'ECONNREFUSED'), 'the refused dial in the log');
    await node({ id: 2, insecure: false, clusterSecret: secret('b'), listen: `127.0.0.1:${port}` });
    await until(() => a.log.lines.some((l) => l.fields.code === 'TRANSPORT_AUTH_FAILED'), 'the peer that proves another secret in the log', 30_000);
    expect(a.log.lines.find((l) => l.fields.code === 'TRANSPORT_AUTH_FAILED')?.message).toMatch(/did not prove it holds the cluster secret/);
  });

  it('closes a connection whose frame is over maxFrameBytes, and keeps working', async () => {
    const { a, b } = await pair({ maxFrameBytes: 1024 });
    const s = await raw(b.t.address, FROM_5);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025);
    s.write(header);
    await closed(s);
    expect(b.log.has('TRANSPORT_FRAME_TOO_LARGE')).toBe(true);
    await stillWorks(a.t, b.rec, 2);
  });

  it('drops a message too large to send instead of sending it', async () => {
    const { a, b } = await pair({ maxFrameBytes: 1024 });
    a.t.send([msg(1, 2, { type: MessageType.MsgApp, entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(2000) }] })]);
    await until(() => a.rec.unreachable.includes(2), 'onUnreachable for the dropped message');
    expect(a.log.has('over maxFrameBytes')).toBe(true);
    await stillWorks(a.t, b.rec, 3);
    expect(b.rec.messages.some((m) => m.type === MessageType.MsgApp)).toBe(false);
  });

  const malformed: Array<[string, Buffer, boolean, string?]> = [
    ['garbage before any handshake', Buffer.from('GET / HTTP/1.1\r\n\r\n'), false, 'TRANSPORT_FRAME_TOO_LARGE'],
    ['an empty frame after the handshake', frame(new Uint8Array(0)), true],
    ['an empty frame instead of the handshake', frame(new Uint8Array(0)), false],
    ['not msgpack after the handshake', frame(Buffer.from([0xc1, 0xc1, 0xc1])), true],
    ['trailing bytes after the msgpack value', frame(Buffer.from([0x91, 0x01, 0x02])), true],
    ['a message whose term is a string', frame(pack([1, [8, 2, 5, 'one', 0, 0, 0, false, 0, [], null, null]])), true],
    ['a message with an unknown type', frame(pack([1, [99, 2, 5, 1, 0, 0, 0, false, 0, [], null, null]])), true],
    ['an entry whose data is not binary', frame(pack([1, [3, 2, 5, 1, 0, 0, 0, false, 0, [[1, 1, 0, 'text']], null, null]])), true],
    ['a message claiming another sender', frame(pack([1, [8, 2, 6, 1, 0, 0, 0, false, 0, [], null, null]])), true],
    // A proposal's records name its maker, which the leader holds to its sender: it is never relayed.
    ['a proposal claiming another sender', frame(pack([1, [2, 2, 6, 0, 0, 0, 0, false, 0, [[0, 0, 0, Buffer.from([1])]], null, null]])), true],
    // A read's answer goes to its sender: one asked in another's name is answered to it as if fresh.
    ['a read claiming another sender', frame(pack([1, [15, 2, 6, 0, 0, 0, 0, false, 0, [], null, Buffer.from([9])]])), true],
    ['a negative index', frame(pack([1, [8, 2, 5, 1, 0, -4, 0, false, 0, [], null, null]])), true],
    ['a MsgSnap outside a snapshot stream', frame(pack([1, [7, 2, 5, 1, 0, 0, 0, false, 0, [], null, null]])), true],
    ['a message frame instead of the handshake', frame(pack([1, [8, 2, 5, 1, 0, 0, 0, false, 0, [], null, null]])), false],
    // [{ toString: 1 }]: decoded, a frame kind whose own toString is not a function
    ['a frame kind that cannot be made a string, instead of the handshake', frame(Buffer.from('9181a8746f537472696e6701', 'hex')), false],
  ];
  for (const [what, bytes, hello, code] of malformed) {
    it(`closes the connection on ${what}, and keeps working`, async () => {
      const { a, b } = await pair();
      const s = await raw(b.t.address, hello ? FROM_5 : undefined);
      s.write(bytes);
      await closed(s);
      expect(b.log.messages.join('\n')).toMatch(code ?? /TRANSPORT_(MALFORMED_FRAME|WRONG_NODE)/);
      expect(b.rec.messages.filter((m) => m.from === 5)).toEqual([]);
      await stillWorks(a.t, b.rec, 4);
    });
  }

  it("counts bytes received only from its peers: ids a connection claims are not kept, nor a removed peer's", async () => {
    const { a, b } = await pair();
    await stillWorks(a.t, b.rec, 1);
    // Without a secret anyone who reaches the port completes a handshake as any id: 50 of them.
    for (let from = 100; from < 150; from++) {
      const s = await raw(b.t.address, { clusterId: 'c1', from, to: 2 });
      s.write(frame(encodePing(newPacker(), false)));
      s.end();
      await closed(s);
    }
    await until(() => b.t.stats().framesReceived >= 50, 'the strangers to be read');
    expect(Object.keys(b.t.stats().bytesReceived)).toEqual(['1']);
    b.t.removePeer(1);
    expect(b.t.stats().bytesReceived).toEqual({});
  });

  it('delivers transfer requests that name the transferee as from, even back to the transferee', async () => {
    const { a, b } = await pair();
    a.t.send([
      msg(1, 2, { type: MessageType.MsgProp, from: 1, entries: [{ index: 0, term: 0, type: EntryType.Normal, data: new Uint8Array([1]) }] }),
      msg(1, 2, { type: MessageType.MsgReadIndex, from: 1, context: new Uint8Array([9]) }),
      msg(1, 2, { type: MessageType.MsgTransferLeader, from: 3 }),
      msg(1, 2, { type: MessageType.MsgTransferLeader, from: 2 }),
    ]);
    await until(() => b.rec.messages.length === 4, 'four requests');
    expect(b.rec.messages.map((m) => [m.type, m.from])).toEqual([
      [MessageType.MsgProp, 1],
      [MessageType.MsgReadIndex, 1],
      [MessageType.MsgTransferLeader, 3],
      [MessageType.MsgTransferLeader, 2],
    ]);
    // Nothing refused or closed: its only lines say it connected.
    expect(b.log.lines.filter((l) => l.level !== 'info')).toEqual([]);
  });

  it('accepts a well-formed message from a raw socket (the malformed cases differ only in the fault)', async () => {
    const { b } = await pair();
    const s = await raw(b.t.address, FROM_5);
    s.write(frame(pack([1, [8, 2, 5, 1, 0, 0, 0, false, 0, [], null, null]])));
    await until(() => b.rec.messages.some((m) => m.from === 5), 'the raw message');
    s.destroy();
  });

  it('splits a snapshot larger than maxFrameBytes into chunks and reassembles it byte-identical', async () => {
    const { a, b } = await pair({ maxFrameBytes: 64 * 1024 });
    await stillWorks(a.t, b.rec, 1);
    const data = randomBytes(1024 * 1024 + 123);
    const framesBefore = a.t.stats().peers[2]!.framesSent;
    const snap = msg(1, 2, {
      type: MessageType.MsgSnap,
      term: 3,
      snapshot: { meta: { index: 99, term: 3, conf: { voters: [1, 2, 3], learners: [4] } }, data },
    });
    a.t.send([snap, msg(1, 2, { commit: 77 })]);
    await until(() => b.rec.messages.some((m) => m.type === MessageType.MsgSnap), 'the snapshot');
    const got = b.rec.messages.find((m) => m.type === MessageType.MsgSnap)!;
    expect(got.snapshot!.meta).toEqual({ index: 99, term: 3, conf: { voters: [1, 2, 3], learners: [4] } });
    expect(Buffer.compare(Buffer.from(got.snapshot!.data), data)).toBe(0);
    expect(got).toMatchObject({ from: 1, to: 2, term: 3 });
    await until(() => a.rec.snapshotStatus.length === 1, 'the snapshot status');
    expect(a.rec.snapshotStatus).toEqual([[2, true]]);
    expect(a.t.stats().peers[2]!.framesSent - framesBefore).toBeGreaterThan(16);
    expect(b.rec.messages.some((m) => m.commit === 77)).toBe(true);
  });

  for (const [what, held] of [
    ['fewer', [new Uint8Array(4)]],
    ['more', [new Uint8Array(4), new Uint8Array(8)]],
  ] as const) {
    it(`reports a snapshot whose store streams ${what} bytes than it announced as failed, coded TRANSPORT_SNAPSHOT_SOURCE_MISMATCH`, async () => {
      // A store that breaks its contract: no peer's doing, and said so with a code, not INTERNAL.
      const lying = {
        ...inMemorySnapshots,
        open: async () => ({
          size: 10,
          chunks: (async function* () {
            yield* held;
          })(),
        }),
      };
      const b = await node({ id: 2 });
      const a = await node({ id: 1, peers: { 2: b.t.address }, snapshots: lying });
      await stillWorks(a.t, b.rec, 1);
      a.t.send([snap()]);
      await until(() => a.rec.snapshotStatus.length === 1, 'the snapshot status');
      expect(a.rec.snapshotStatus).toEqual([[2, false]]);
      const line = a.log.lines.find((l) => /snapshot 9\/2 to peer 2 not sent/.test(l.message));
      expect(line?.fields).toEqual({ code: 'TRANSPORT_SNAPSHOT_SOURCE_MISMATCH' });
      expect(line?.message).toMatch(/the snapshot store's stream of snapshot 9\/2 announced 10 bytes and (ended after 4|held at least 12)$/);
      expect(b.rec.messages.some((m) => m.type === MessageType.MsgSnap)).toBe(false);
    });
  }

  it("logs the connection its own snapshot store failed mid-stream as closed here, not by the peer, and counts it as no peer's refusal", async () => {
    // The store yields a first chunk, then fails: the peer holds half a stream, so the connection goes.
    const failing = {
      ...inMemorySnapshots,
      open: async () => ({
        size: 10,
        chunks: (async function* () {
          yield new Uint8Array(4);
          throw Object.assign(new Error('read failed'), { code: 'EIO' });
        })(),
      }),
    };
    const b = await node({ id: 2 });
    const a = await node({ id: 1, peers: { 2: b.t.address }, snapshots: failing, snapshotChunkBytes: 4 });
    await stillWorks(a.t, b.rec, 1);
    a.t.send([snap()]);
    await until(() => a.rec.snapshotStatus.length === 1, 'the snapshot status');
    expect(a.rec.snapshotStatus).toEqual([[2, false]]);
    await until(() => a.log.lines.some((l) => /connection to peer 2 at .* lost/.test(l.message)), 'the lost connection logged');
    const lost = a.log.lines.find((l) => /connection to peer 2 at .* lost/.test(l.message))!;
    expect(lost.message).toMatch(/lost: closed by this node: its snapshot store failed sending snapshot 9\/2: read failed$/);
    expect(lost.fields).toEqual({ code: 'EIO' });
    expect(a.t.stats().refused).toEqual({});
    // Redialed: a message sent once the connection is back arrives.
    await until(() => {
      a.t.send([msg(1, 2, { commit: 2 })]);
      return b.rec.messages.some((m) => m.commit === 2);
    }, 'a message on the new connection');
  });

  it('reports a snapshot to an unreachable peer as failed', async () => {
    const { a, b } = await pair();
    await stillWorks(a.t, b.rec, 1);
    await b.t.close();
    await until(() => a.rec.unreachable.includes(2), 'the peer to be seen down');
    a.t.send([snap(new Uint8Array(10))]);
    await until(() => a.rec.snapshotStatus.length === 1, 'the snapshot status');
    expect(a.rec.snapshotStatus).toEqual([[2, false]]);
  });

  it('reads no more than a handshake frame from whoever answers at a peer address before it proves itself', async () => {
    // An impostor at the address announces a 64 KiB frame and sends it slowly: the dialer
    // refuses it at the header, instead of buffering it until its connect timeout.
    const sockets: net.Socket[] = [];
    const { sink, address } = await fakePeer((s) => {
      sockets.push(s.on('error', () => undefined));
      const header = Buffer.alloc(4);
      header.writeUInt32BE(64 * 1024);
      s.write(header);
    });
    const { t, log } = await node({ id: 1, peers: { 2: address }, connectTimeoutMs: 30_000 });
    t.send([msg(1, 2, { type: MessageType.MsgHeartbeat })]);
    await until(() => log.has('exceeds the limit of 1024 bytes'), 'the dialer to refuse the oversized frame');
    await t.close();
    for (const c of sockets) c.destroy();
    await sinkClosed(sink);
  });

  it('gives up a dial the peer accepts but never answers at connectTimeoutMs, logged as ETIMEDOUT and counted as no refusal', async () => {
    const sockets: net.Socket[] = [];
    const { sink, address } = await fakePeer((s) => void sockets.push(s.on('error', () => undefined)));
    const { t, log } = await node({ id: 1, peers: { 2: address }, connectTimeoutMs: 100 });
    t.send([msg(1, 2, { type: MessageType.MsgHeartbeat })]);
    await until(() => log.has('no completed handshake after 100 ms'), 'the dial to time out');
    const line = log.lines.find((l) => l.message.includes('no completed handshake'));
    expect(line?.fields.code).toBe('ETIMEDOUT');
    expect(t.stats().refused).toEqual({});
    await t.close();
    for (const c of sockets) c.destroy();
    await sinkClosed(sink);
  });

  it('bounds the queue to a peer that stops reading, dropping the oldest and reporting it', async () => {
    // A peer that accepts and then never reads: the kernel buffers fill, write() returns false.
    const sockets: net.Socket[] = [];
    const { sink, address } = await fakePeer((s) => {
      s.pause();
      sockets.push(s);
    });
    const limit = 256 * 1024;
    const { t, rec } = await node({ id: 1, peers: { 2: address }, maxQueueBytes: limit });
    let maxQueued = 0;
    for (let turn = 0; turn < 400; turn++) {
      t.send(Array.from({ length: 4 }, (_, i) => app16k(turn * 4 + i)));
      maxQueued = Math.max(maxQueued, t.stats().peers[2]!.queuedBytes);
      await new Promise((r) => setImmediate(r));
    }
    const s = t.stats().peers[2]!;
    expect(s.dropped).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(limit);
    expect(rec.unreachable).toContain(2);
    for (const c of sockets) c.destroy();
    await sinkClosed(sink, 'the sink to close (the transport still holds a connection to it)');
  });

  it('closes a connection that sends no handshake in time', async () => {
    const { a, b } = await pair({ handshakeTimeoutMs: 50 });
    const s = await raw(b.t.address);
    await closed(s);
    expect(b.log.has('TRANSPORT_HANDSHAKE_TIMEOUT')).toBe(true);
    await stillWorks(a.t, b.rec, 5);
  });

  it('closes an authenticated connection that then sends no frame, or trickles one without end, at the idle timeout', async () => {
    const b = await node({ id: 2, electionTimeoutMs: 100 }); // an idle timeout of 300 ms, and no peer of its own
    const silent = await raw(b.t.address, FROM_5);
    await closed(silent);
    expect(b.log.has('TRANSPORT_IDLE_TIMEOUT')).toBe(true);
    // Only a complete frame counts: a byte every 30 ms of a 4 KiB one is still idle.
    const trickling = await raw(b.t.address, FROM_5);
    trickling.write(Buffer.from([0, 0, 16, 0]));
    const drip = setInterval(() => trickling.writable && trickling.write(Buffer.from([1])), 30);
    try {
      await closed(trickling);
    } finally {
      clearInterval(drip);
    }
    expect(b.log.lines.filter((l) => l.fields.code === 'TRANSPORT_IDLE_TIMEOUT')).toHaveLength(2);
  });

  it('never dials a peer the driver did not add, but answers it on the connection it dialed', async () => {
    const { a, b } = await oneWay(); // b has never heard of a
    // A vote answer to a candidate whose addition b's log does not hold yet.
    b.t.send([msg(2, 1, { type: MessageType.MsgPreVoteResp, term: 3 })]);
    await until(() => a.rec.messages.some((m) => m.type === MessageType.MsgPreVoteResp && m.term === 3), 'the answer on the dialed connection');
    expect(b.t.stats().peers[1]).toBeUndefined();
    expect(b.rec.unreachable).toEqual([]);
    // Without a connection from it, the stranger is unreachable.
    await a.t.close();
    await until(() => {
      b.t.send([msg(2, 1, { commit: 7 })]);
      return b.rec.unreachable.includes(1);
    }, 'node 1 reported unreachable once its connection closed');
    expect(b.t.stats().peers[1]).toBeUndefined();
  });

  it('delivers a transfer request a follower forwards on the connection its leader dialed, which names the transferee as its sender', async () => {
    const { a, b } = await oneWay(); // b follows a, whose addition its log does not hold yet
    b.t.send([msg(3, 1, { type: MessageType.MsgTransferLeader, term: 0 })]);
    await until(() => a.rec.messages.some((m) => m.type === MessageType.MsgTransferLeader), 'the forwarded transfer request');
    expect(a.rec.messages.filter((m) => m.type === MessageType.MsgTransferLeader).map((m) => m.from)).toEqual([3]);
    expect(a.log.has(/connection to peer 2 .* lost/)).toBe(false);
    await stillWorks(a.t, b.rec, 2); // the connection it came on is the one still open
    expect(a.t.stats().peers[2]!.connects).toBe(1);
  });

  it('stops answering on a connection whose dialer does not read: the unsent bytes stay bounded', async () => {
    const b = await node({ id: 2 });
    const s = await raw(b.t.address, { from: 7, to: 2, clusterId: 'c1' });
    s.pause();
    await until(() => b.t.stats().messagesReceived === 0 && b.t.stats().framesReceived >= 2, 'the handshake');
    const big = { type: MessageType.MsgApp, entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(512 * 1024) }] };
    let sent = 0;
    await until(() => {
      if (sent < 200) b.t.send([msg(2, 7, big)]);
      sent++;
      return b.rec.unreachable.includes(7) || sent > 200;
    }, 'node 7 reported unreachable once its connection backed up');
    // What the kernel's socket buffers take, and 1 MiB more: nowhere near the 512 KiB x 200 tried.
    expect(b.rec.unreachable).toContain(7);
    expect(sent).toBeLessThan(200);
    expect(sent).toBeGreaterThan(1); // answered, until the buffer filled
    s.destroy();
  });

  it('does not answer on a dialed connection with a message over maxFrameBytes', async () => {
    const { a, b } = await oneWay({ acceptor: { maxFrameBytes: 64 * 1024 } }); // b has never heard of a
    const big = { type: MessageType.MsgApp, entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(128 * 1024) }] };
    b.t.send([msg(2, 1, big)]);
    await until(() => b.rec.unreachable.includes(1), 'node 1 reported unreachable');
    b.t.send([msg(2, 1, { commit: 9 })]);
    await until(() => a.rec.messages.some((m) => m.commit === 9), 'a small answer on the same connection');
    expect(a.rec.messages.some((m) => m.type === MessageType.MsgApp)).toBe(false);
  });

  it('drops a connection on which the accepting side answers in the name of another node', async () => {
    const { sink, address } = await fakePeer((s) => {
      s.write(acceptHandshake());
      s.write(frame(encodeMessage(newPacker(), msg(3, 1, { type: MessageType.MsgVoteResp, term: 2 }))));
      s.resume();
    });
    const { t, rec, log } = await node({ id: 1, peers: { 2: address } });
    await until(() => log.has(/connection to peer 2 .* lost: message 3->1 answered on the connection to node 2/), 'the connection to be dropped');
    expect(rec.messages).toEqual([]);
    await t.close();
    await sinkClosed(sink);
  });

  it('uses an announced address only for a peer the driver added without a dialable one', async () => {
    const { a, b } = await oneWay({ acceptor: { peers: { 1: 'embedded' } } });
    b.t.send([msg(2, 1, { commit: 7 })]);
    await until(() => a.rec.messages.some((m) => m.commit === 7), 'an answer from the node that was dialed');
  });

  it('logs a peer address that cannot be dialled once, not at every backoff step, and dials the address given next', async () => {
    const { t, log, rec } = await node({ id: 1, peers: { 2: 'embedded' }, backoff: { initialMs: 10, maxMs: 20 } });
    // Some 25 backoff steps.
    await new Promise((r) => setTimeout(r, 500));
    t.send([msg(1, 2)]);
    await until(() => rec.unreachable.includes(2), 'the message to peer 2 reported unreachable');
    expect(log.lines.filter((l) => l.fields.code === 'TRANSPORT_BAD_ADDRESS').map((l) => l.message)).toEqual([
      "transport: peer 2: bad address 'embedded': expected host:port",
    ]);
    const b = await node({ id: 2 });
    t.addPeer(2, b.t.address);
    await stillWorks(t, b.rec, 1);
  });

  it('follows a peer to a new address given by addPeer', async () => {
    const { a, b } = await pair();
    await stillWorks(a.t, b.rec, 1);
    const moved = await node({ id: 2 });
    a.t.addPeer(2, moved.t.address);
    await stillWorks(a.t, moved.rec, 2);
    expect(b.rec.messages.some((m) => m.commit === 2)).toBe(false);
  });

  it('refuses as removed, on the connection it dialed, a peer it removed, which is told so; added back, it is heard again', async () => {
    const { a, b } = await pair({ clusterSecret: 's'.repeat(24), insecure: false });
    await stillWorks(a.t, b.rec, 1);
    // Not removed: nothing is refused.
    b.t.refuseRemoved(1);
    await stillWorks(a.t, b.rec, 2);
    b.t.removePeer(1);
    await stillWorks(a.t, b.rec, 3); // the driver judges what a removed peer sends
    b.t.refuseRemoved(1);
    await until(() => a.rec.removedBy.length > 0, 'node 1 to be told it was removed');
    expect(a.rec.removedBy).toEqual([2]);
    expect(b.t.stats().refused).toMatchObject({ TRANSPORT_PEER_REMOVED: 1 });
    await until(
      () => a.log.lines.some((l) => l.fields.remoteCode === 'TRANSPORT_PEER_REMOVED' && /refuses this node \(1\) as removed/.test(l.message)),
      'the refusal in the log of node 1',
    );
    b.t.addPeer(1, a.t.address);
    await until(() => {
      a.t.send([msg(1, 2, { commit: 4 })]);
      return b.rec.messages.some((m) => m.commit === 4);
    }, 'node 1 to be heard once added back');
    expect(a.rec.removedBy).toEqual([2]);
  });

  it('takes a refusal as removed only from a peer that proved itself, never one sent before the handshake', async () => {
    const rec = new Recorder();
    const { sink, address } = await fakePeer((s) => {
      s.on('error', () => undefined);
      s.write(frame(encodeRefuse(newPacker(), 'TRANSPORT_PEER_REMOVED', 'you were removed')), () => s.destroy());
    });
    const a = await node({ id: 1, peers: { 2: address } }, rec);
    await until(() => (a.t.stats().refusedByPeers[UNPROVEN_CODE] ?? 0) >= 2, 'the refusals to be read');
    // Reports reach the driver a turn after they are made.
    await new Promise((r) => setImmediate(r));
    expect(rec.removedBy).toEqual([]);
    await a.t.close();
    await sinkClosed(sink);
  });

  for (const code of PEER_REFUSALS.keys()) {
    it(`counts ${code} sent before the handshake as UNPROVEN and logs it as any refusal, once until a connection ends otherwise`, async () => {
      const rec = new Recorder();
      const { sink, address } = await fakePeer((s) => {
        s.on('error', () => undefined);
        s.write(frame(encodeRefuse(newPacker(), code, 'said by whoever answers')), () => s.destroy());
      });
      const a = await node({ id: 1, peers: { 2: address } }, rec);
      const refusals = (): number => a.t.stats().refusedByPeers[UNPROVEN_CODE] ?? 0;
      await until(() => refusals() >= 3, 'three refusals');
      // Whoever answers at the address may send any code: it is not counted as the peer's.
      expect(Object.keys(a.t.stats().refusedByPeers)).toEqual([UNPROVEN_CODE]);
      const lines = a.log.lines.filter((l) => l.fields.remoteCode === code);
      expect(lines).toHaveLength(1);
      expect(lines[0]!.level).toBe('warn');
      expect(lines[0]!.fields).toEqual({ code: 'TRANSPORT_PEER_REFUSED', remoteCode: code });
      expect(lines[0]!.message).toMatch(new RegExp(`^transport: connection to peer 2 at ${address} failed: peer 2 refused the connection: ${code} `));
      await new Promise((r) => setImmediate(r));
      expect(rec.removedBy).toEqual([]);
      await a.t.close();
      await sinkClosed(sink);
    });
  }

  /** A fake acceptor that proves itself (insecure: an empty proof) and then refuses each dial with `code(n)`, n counting dials. */
  async function provenRefuser(code: (n: number) => string, reason = 'no') {
    let dials = 0;
    return fakePeer((s) => {
      s.on('error', () => undefined);
      const n = dials++;
      s.write(acceptHandshake());
      const d = new FrameDecoder(1 << 16);
      s.on('data', (c: Buffer) => {
        d.push(c);
        for (let f = d.next(); f !== undefined; f = d.next()) {
          // The dialer's proof: it is open, and the refusal is from a peer that proved itself.
          if (decodeFrame(f).kind === 'proof') s.end(frame(encodeRefuse(newPacker(), code(n), reason)));
        }
      });
    });
  }

  it('logs a proven refusal without a row once until a connection ends otherwise, counted under its code; another code is logged again', async () => {
    let switchAt = Infinity;
    const { sink, address } = await provenRefuser((n) => (n < switchAt ? 'TRANSPORT_AUTH_FAILED' : 'TRANSPORT_CLUSTER_MISMATCH'));
    const a = await node({ id: 1, peers: { 2: address } });
    const counted = (code: string): number => a.t.stats().refusedByPeers[code] ?? 0;
    const lines = (code: string) => a.log.lines.filter((l) => l.fields.remoteCode === code);
    await until(() => counted('TRANSPORT_AUTH_FAILED') >= 4, 'four refusals');
    expect(lines('TRANSPORT_AUTH_FAILED')).toHaveLength(1);
    expect(lines('TRANSPORT_AUTH_FAILED')[0]!.message).toMatch(
      /^transport: connection to peer 2 at .* lost: peer 2 refused the connection: TRANSPORT_AUTH_FAILED no$/,
    );
    switchAt = 0;
    await until(() => counted('TRANSPORT_CLUSTER_MISMATCH') >= 3, 'three refusals of the other code');
    expect(lines('TRANSPORT_CLUSTER_MISMATCH')).toHaveLength(1);
    expect(lines('TRANSPORT_AUTH_FAILED')).toHaveLength(1);
    expect(a.t.stats().refusedByPeers[UNPROVEN_CODE]).toBeUndefined();
    await a.t.close();
    await sinkClosed(sink);
  });

  it("rations the lines of refusals whose code changes at every dial as refused connections are, then logs the rest's count", async () => {
    const clock = new ManualClock();
    const { sink, address } = await provenRefuser((n) => `EVIL_${n}`);
    const a = await node({ id: 1, peers: { 2: address }, refusalLogClock: clock });
    const refused = (): number => a.t.stats().refusedByPeers.OTHER ?? 0;
    await until(() => refused() >= REFUSAL_LOG_LINES + 5, 'more refusals than the log takes in an interval');
    const lines = () => a.log.lines.filter((l) => l.fields.code === 'TRANSPORT_PEER_REFUSED');
    expect(lines().filter((l) => l.fields.remoteCode !== undefined)).toHaveLength(REFUSAL_LOG_LINES);
    await a.t.close(); // flushes the count, as the interval's end would
    const summary = lines().find((l) => l.fields.suppressed !== undefined);
    expect(summary?.message).toMatch(/^transport: dials refused by peers: \d+ more TRANSPORT_PEER_REFUSED not logged/);
    expect((summary?.fields.suppressed as number) + REFUSAL_LOG_LINES).toBe(refused());
    await sinkClosed(sink);
  });

  it('logs a dial failing in turn by a refusal, a close and a bad frame once per reason, not at each change: 3 lines for 51 dials', async () => {
    let dials = 0;
    const { sink, address } = await fakePeer((s) => {
      s.on('error', () => undefined);
      const n = dials++;
      if (n % 3 === 0) s.write(frame(encodeRefuse(newPacker(), 'TRANSPORT_AUTH_FAILED', 'said by whoever answers')), () => s.destroy());
      else if (n % 3 === 1) s.destroy();
      else s.write(frame(new Uint8Array([0xc1])), () => s.destroy());
    });
    const a = await node({ id: 1, peers: { 2: address }, backoff: { initialMs: 1, maxMs: 4 } });
    await until(() => dials >= 51, '51 dials', 20_000);
    await a.t.close();
    await sinkClosed(sink);
    const lines = a.log.lines.filter((l) => l.message.startsWith('transport: connection to peer 2 '));
    // Before, a line per dial: the refusal's rationed to 10 in 10 s, the others never.
    expect(lines.map((l) => l.fields.code).sort()).toEqual(['TRANSPORT_CONNECTION_CLOSED', 'TRANSPORT_MALFORMED_FRAME', 'TRANSPORT_PEER_REFUSED']);
  });

  it('logs a frame refusal again once the peer is at another address: perhaps another process, with its own limit', async () => {
    const first = await provenRefuser(() => 'TRANSPORT_FRAME_TOO_LARGE');
    const second = await provenRefuser(() => 'TRANSPORT_FRAME_TOO_LARGE');
    const a = await node({ id: 1, peers: { 2: first.address } });
    const counted = (): number => a.t.stats().refusedByPeers.TRANSPORT_FRAME_TOO_LARGE ?? 0;
    const lines = () => a.log.lines.filter((l) => l.fields.remoteCode === 'TRANSPORT_FRAME_TOO_LARGE');
    await until(() => counted() >= 3, 'three refusals at the first address');
    expect(lines()).toHaveLength(1);
    a.t.addPeer(2, second.address);
    const before = counted();
    await until(() => counted() >= before + 3, 'three refusals at the second address');
    expect(lines()).toHaveLength(2);
    await a.t.close();
    await sinkClosed(first.sink);
    await sinkClosed(second.sink);
  });

  it('acts on nothing an acceptor sends after its refusal, and closes', async () => {
    const rec = new Recorder();
    const p = newPacker();
    // Proven, then a refusal with a message behind it in the same write.
    const after = await fakePeer((s) => {
      s.on('error', () => undefined);
      s.write(acceptHandshake());
      s.once('data', () => s.end(encodeFrames([encodeRefuse(p, 'TRANSPORT_AUTH_FAILED', 'no'), encodeMessage(p, msg(2, 1, { commit: 7 }))])));
    });
    const a = await node({ id: 1, peers: { 2: after.address } }, rec);
    await until(() => (a.t.stats().refusedByPeers.TRANSPORT_AUTH_FAILED ?? 0) >= 2, 'two refusals');
    expect(rec.messages).toEqual([]);
    await a.t.close();
    await sinkClosed(after.sink);
    // Before the handshake: a refusal, then a challenge that would open the connection.
    const before = await fakePeer((s) => {
      s.on('error', () => undefined);
      s.resume();
      s.write(encodeFrames([encodeRefuse(p, 'TRANSPORT_AUTH_FAILED', 'no'), encodeChallenge(p, new Uint8Array(32), new Uint8Array(0))]));
    });
    const b = await node({ id: 1, peers: { 2: before.address } });
    // The acceptor never closes: the dialer does, at the refusal.
    await until(() => (b.t.stats().refusedByPeers[UNPROVEN_CODE] ?? 0) >= 2, 'two refusals');
    expect(b.t.stats().peers[2]!.connects).toBe(0);
    expect(b.log.has('connected to peer 2')).toBe(false);
    await b.t.close();
    await sinkClosed(before.sink);
  });

  it('stops sending to a removed peer, reports unknown peers unreachable, never from inside send()', async () => {
    const { a, b } = await pair();
    await stillWorks(a.t, b.rec, 1);
    a.t.send([snap(new Uint8Array(10))]);
    a.t.removePeer(2); // the snapshot fails, but raft has forgotten peer 2: nothing may be reported about it
    a.t.send([msg(1, 2, { commit: 2 }), msg(1, 9)]);
    expect(a.rec.unreachable).toEqual([]);
    await until(() => a.rec.unreachable.length === 1, 'the unreachable report');
    // Reports come in order: once the one for node 8 is in, any report about node 2 would have come before it.
    a.t.send([msg(1, 8)]);
    await until(() => a.rec.unreachable.includes(8), 'the report for node 8');
    expect(a.rec.unreachable).toEqual([9, 8]);
    expect(a.rec.snapshotStatus).toEqual([]);
    expect(b.rec.messages.some((m) => m.commit === 2 || m.type === MessageType.MsgSnap)).toBe(false);
  });

  it('remembers a bounded number of removed peers however many are added and removed, and never reports the latest', async () => {
    const { t, rec } = await node({ id: 1 });
    const removed = (): Set<number> => (t as unknown as { removed: Set<number> }).removed;
    // Members replaced by new ids, one after another, for as long as a node runs.
    for (let id = 2; id < 20_000; id++) {
      t.addPeer(id, 'embedded');
      t.removePeer(id);
    }
    expect(removed().size).toBeLessThanOrEqual(1024);
    t.send([msg(1, 19_999), msg(1, 9)]);
    await until(() => rec.unreachable.length === 1, 'the report for node 9');
    t.send([msg(1, 8)]);
    await until(() => rec.unreachable.includes(8), 'the report for node 8');
    expect(rec.unreachable).toEqual([9, 8]);
  });

  it('reports a snapshot as failed when the connection dies mid-stream', async () => {
    // A peer that reads a little of the stream and then drops the connection.
    const { sink, address } = await fakePeer((s) => {
      s.write(acceptHandshake());
      let seen = 0;
      s.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen > 100_000) s.destroy();
      });
    });
    const { t, rec } = await node({ id: 1, peers: { 2: address }, maxFrameBytes: 64 * 1024 });
    t.send([snap(randomBytes(8 * 1024 * 1024))]);
    await until(() => rec.snapshotStatus.length === 1, 'the snapshot status');
    expect(rec.snapshotStatus).toEqual([[2, false]]);
    await sinkClosed(sink, 'the sink to close (the transport still holds a connection to it)');
  });

  /** Two connected nodes taking snapshots of 1 KiB at most, and a raw connection to node 2 from node 5, a peer it knows. */
  async function snapshotsFrom5() {
    const { a, b } = await pair({ maxSnapshotBytes: 1024 });
    b.t.addPeer(5, '127.0.0.1:1'); // snapshot streams come only from known peers
    return { a, b, s: await raw(b.t.address, FROM_5) };
  }
  const snapHeader = () => ({
    message: msg(5, 2, { type: MessageType.MsgSnap }),
    meta: { index: 3, term: 1, conf: { voters: [2, 5], learners: [] } },
  });
  const chunkCases: Array<[string, (p: ReturnType<typeof newPacker>) => Buffer[], string]> = [
    [
      'a snapshot chunk out of sequence',
      (p) => [frame(encodeChunk(p, 1, 0, 20, new Uint8Array(10), snapHeader())), frame(encodeChunk(p, 1, 15, 20, new Uint8Array(5)))],
      'TRANSPORT_MALFORMED_FRAME',
    ],
    ['a snapshot continued without a start', (p) => [frame(encodeChunk(p, 1, 10, 20, new Uint8Array(10)))], 'TRANSPORT_MALFORMED_FRAME'],
    ['a snapshot chunk running past its total', (p) => [frame(encodeChunk(p, 1, 0, 5, new Uint8Array(10), snapHeader()))], 'TRANSPORT_MALFORMED_FRAME'],
    ['a snapshot larger than maxSnapshotBytes', (p) => [frame(encodeChunk(p, 1, 0, 4096, new Uint8Array(10), snapHeader()))], 'TRANSPORT_SNAPSHOT_TOO_LARGE'],
  ];
  for (const [what, frames, code] of chunkCases) {
    it(`closes the connection on ${what}, and keeps working`, async () => {
      const { a, b, s } = await snapshotsFrom5();
      for (const f of frames(newPacker())) s.write(f);
      await closed(s);
      expect(b.log.has(code)).toBe(true);
      expect(b.rec.messages.filter((m) => m.from === 5)).toEqual([]);
      await stillWorks(a.t, b.rec, 6);
    });
  }

  it('reassembles a well-formed raw snapshot stream (the chunk cases differ only in the fault)', async () => {
    const { b, s } = await snapshotsFrom5();
    const p = newPacker();
    s.write(frame(encodeChunk(p, 1, 0, 20, new Uint8Array(10).fill(1), snapHeader())));
    s.write(frame(encodeChunk(p, 1, 10, 20, new Uint8Array(10).fill(2))));
    await until(() => b.rec.messages.some((m) => m.from === 5), 'the raw snapshot');
    expect([...b.rec.messages.find((m) => m.from === 5)!.snapshot!.data]).toEqual([...Array(10).fill(1), ...Array(10).fill(2)]);
    s.destroy();
  });

  it('resumes after back-pressure: a slow reader gets the newest messages, in order, without the shed ones', async () => {
    const indexes: number[] = [];
    const peer = await stalledPeer((m) => indexes.push(m.index));
    // The fake peer never pings back: a long idle limit keeps the test about back-pressure, not liveness.
    const { t } = await node({ id: 1, peers: { 2: peer.address }, maxQueueBytes: 256 * 1024, electionTimeoutMs: 60_000 });
    const total = 1200;
    await sendApps(t, total);
    (await peer.reader()).resume();
    await until(() => indexes.at(-1) === total - 1, 'the newest message');
    const s = t.stats().peers[2]!;
    expect(s.dropped).toBeGreaterThan(0);
    expect(indexes.length + s.dropped).toBe(total);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    await peer.close('the sink to close (the transport still holds a connection to it)');
  });

  it('writes a heartbeat sent while a slow peer holds up entries ahead of the entries still queued', async () => {
    const received: { type: MessageType; index: number }[] = [];
    const peer = await stalledPeer((m) => received.push({ type: m.type, index: m.index }));
    const { t } = await node({ id: 1, peers: { 2: peer.address }, electionTimeoutMs: 60_000 }); // as above
    const reader = await peer.reader();
    const total = 1000; // 16 MB: more than the socket buffers take, less than maxQueueBytes
    await sendApps(t, total);
    await until(() => t.stats().peers[2]!.queuedBytes > 0, 'entries queued behind the blocked socket');
    t.send([msg(1, 2, { index: 123456 })]);
    reader.resume();
    await until(() => received.length === total + 1, 'every message');
    expect(t.stats().peers[2]!.dropped).toBe(0);
    const heartbeat = received.findIndex((m) => m.type === MessageType.MsgHeartbeat);
    // It overtook the entries that were still queued when it was sent; those kept their order.
    expect(heartbeat).toBeGreaterThan(0);
    expect(heartbeat).toBeLessThan(total);
    const entries = received.filter((m) => m.type === MessageType.MsgApp).map((m) => m.index);
    expect(entries).toEqual(Array.from({ length: total }, (_, i) => i));
    await peer.close('the sink to close (the transport still holds a connection to it)');
  });
});

describe('TcpTransport.close()', () => {
  it('makes a start() still binding its port reject with TRANSPORT_CLOSED, dialing no peer', async () => {
    const t = new TcpTransport({ id: 1, clusterId: 'c1', listen: '127.0.0.1:0', insecure: true, peers: { 2: '127.0.0.1:1' } });
    const starting = t.start(new Recorder());
    await t.close();
    await expect(within('start() to settle', starting)).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED' });
    expect(t.stats().peers).toEqual({});
  });

  it('resolves once the source of a snapshot it cut off is released: mid-stream, mid-read, and for a peer removed before', async () => {
    for (const what of ['mid-stream', 'mid-read', 'removed']) {
      let released = false;
      let readable: (() => void) | undefined;
      const { t, peer } = await sendingSnapshot({
        ready: what === 'mid-read' ? new Promise<void>((r) => (readable = r)) : undefined,
        midStream: what !== 'mid-read',
        // Something that takes a while to let go of (a file, say).
        release: async () => {
          await new Promise((r) => setTimeout(r, 50));
          released = true;
        },
      });
      if (what === 'removed') t.removePeer(2);
      const closing = t.close();
      readable?.();
      await closing;
      expect(released, what).toBe(true);
      await peer.close();
    }
  });

  it('logs a snapshot source that fails to close, and still resolves', async () => {
    const { t, log, peer } = await sendingSnapshot({
      release: async () => {
        throw new Error('EIO: the snapshot file would not close');
      },
    });
    await within('close()', t.close());
    expect(log.messages).toContainEqual(
      expect.stringMatching(/^transport: releasing a snapshot being sent to peer 2 failed: EIO: the snapshot file would not close/),
    );
    await peer.close();
  });

  it('stops waiting for a snapshot source that never lets go after the idle timeout, says so, and resolves', async () => {
    const { t, log, peer } = await sendingSnapshot({
      release: () => new Promise<never>(() => undefined), // a file whose close never returns
      // An idle timeout of 300 ms, which may drop the connection to the silent peer before the
      // first MiB is through: then the source is being closed before close() is called.
      options: { electionTimeoutMs: 100 },
      midStream: false,
    });
    const started = performance.now();
    await within('close()', t.close());
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(log.lines.filter((l) => l.level === 'warn').map((l) => l.message)).toContain(
      'transport: closed without waiting longer for releasing a snapshot being sent to peer 2: not settled after 300 ms',
    );
    await peer.close();
  });
});

describe('TcpTransport listener errors', () => {
  it('logs failed accepts with their code at the bounded rate, the count at close, and keeps serving', async () => {
    const { a, b } = await pair();
    failAccepts(serverAt(b.t.address), REFUSAL_LOG_LINES + 5);
    // A line each flooded the log while accept() kept failing (EMFILE fails every one).
    expect(b.log.lines.filter((l) => l.fields['code'] === 'EMFILE')).toHaveLength(REFUSAL_LOG_LINES);
    await stillWorks(a.t, b.rec, 1);
    await b.t.close();
    expect(b.log.lines.some((l) => l.fields['suppressed'] === 5)).toBe(true);
  });
});

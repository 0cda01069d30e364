// A link slower than a frame per idle limit, but faster than the stall window's rate, carries
// every frame and every snapshot over one connection: progress keeps a connection alive, not
// only complete frames.
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EntryType, MessageType } from '../../src/raft/types.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { TcpTransport, type TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import { FrameDecoder, encodeFrames } from '../../src/transport/frame.js';
import { decodeFrame, encodeChallenge, encodeHello, encodeMessage, encodeProof, newPacker } from '../../src/transport/wire.js';
import { LogCapture, Recorder, msg, until } from './helpers.js';

const MiB = 1024 * 1024;
const SECRET = 'slow link secret';
const open: TcpTransport[] = [];
const closers: Array<() => void> = [];
const temps: string[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await Promise.all(open.splice(0).map((t) => t.close()));
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** What the throttled link carries each way per `everyMs`. */
const LINK_BYTES = 16 * 1024;

/**
 * A TCP proxy to `target` carrying LINK_BYTES each way per `everyMs`: a slow link, with the
 * back-pressure one has. Its rate holds in time, not in timer ticks: a tick that a loaded machine
 * runs late passes what the link would have carried meanwhile (up to four ticks' worth).
 */
async function throttle(target: string, everyMs: number): Promise<string> {
  const [host, port] = target.split(':');
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const pump = (from: net.Socket, to: net.Socket): void => {
    from.on('readable', () => undefined); // buffer up to the high-water mark, no more
    let last = performance.now();
    let allowance = 0;
    const t = setInterval(() => {
      const now = performance.now();
      allowance = Math.min(allowance + ((now - last) / everyMs) * LINK_BYTES, 4 * LINK_BYTES);
      last = now;
      const n = Math.min(Math.floor(allowance), from.readableLength);
      if (n > 0 && to.writable) {
        to.write(from.read(n) as Buffer);
        allowance -= n;
      }
    }, everyMs);
    timers.add(t);
  };
  const server = net.createServer({ highWaterMark: 4 * LINK_BYTES }, (client) => {
    const upstream = net.connect({ host: host!, port: Number(port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    pump(client, upstream);
    pump(upstream, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const t of timers) clearInterval(t);
    for (const s of sockets) s.destroy();
    server.close();
  });
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

async function node(o: Partial<TcpTransportOptions> & { id: number }) {
  const rec = new Recorder();
  const log = new LogCapture();
  // An idle limit of 900 ms, so that a loaded machine's stalls of the event loop do not end a
  // connection: a MiB takes 3.2 s over the 320 KiB/s link (16 KiB per 50 ms), a stall window 200 ms.
  const t = new TcpTransport({ clusterId: 'c1', listen: '127.0.0.1:0', clusterSecret: SECRET, electionTimeoutMs: 300, logger: log, ...o });
  open.push(t);
  await t.start(rec);
  return { t, rec, log };
}

/** A listener at `address` that runs an insecure acceptor's handshake, then hands the connection to `then`. */
async function acceptor(then: (s: net.Socket) => void): Promise<string> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.resume(); // reads, and drops, the dialer's hello, proof and pings
    s.write(encodeFrames([encodeChallenge(newPacker(), new Uint8Array(32), new Uint8Array(0))]));
    then(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

const idleCloses = (log: LogCapture): number => log.lines.filter((l) => l.fields.code === 'TRANSPORT_IDLE_TIMEOUT').length;

describe('a slow link', () => {
  it('carries a frame that takes many idle limits to cross, over one connection', async () => {
    const b = await node({ id: 2 });
    const a = await node({ id: 1, peers: { 2: await throttle(b.t.address, 50) } });
    const data = new Uint8Array(2 * MiB).fill(7);
    a.t.send([msg(1, 2, { type: MessageType.MsgApp, index: 1, entries: [{ index: 2, term: 1, type: EntryType.Normal, data }] })]);
    await until(() => b.rec.messages.some((m) => m.type === MessageType.MsgApp), 'the 2 MiB message', 20_000);
    expect(Buffer.from(data).equals(b.rec.messages.find((m) => m.type === MessageType.MsgApp)!.entries[0]!.data)).toBe(true);
    expect(a.t.stats().peers[2]!.connects).toBe(1);
    expect(idleCloses(a.log) + idleCloses(b.log)).toBe(0);
  }, 30_000);

  it('carries an answer from the accepting side that takes many idle limits to cross, over one connection', async () => {
    // The dialer hears only pongs and answers; an answer slower than the idle limit is all it hears.
    const data = new Uint8Array(MiB).fill(9);
    const answer = encodeFrames([
      encodeMessage(newPacker(), msg(2, 1, { type: MessageType.MsgApp, index: 1, entries: [{ index: 2, term: 1, type: EntryType.Normal, data }] })),
    ]);
    const timers: NodeJS.Timeout[] = [];
    closers.push(() => timers.forEach((t) => clearInterval(t)));
    const address = await acceptor((s) => {
      let at = 0;
      const t = setInterval(() => {
        if (at < answer.length && s.writable) s.write(answer.subarray(at, (at += 16 * 1024)));
      }, 50);
      timers.push(t);
    });
    const a = await node({ id: 1, peers: { 2: address }, insecure: true, clusterSecret: undefined });
    await until(() => a.rec.messages.some((m) => m.type === MessageType.MsgApp), 'the 1 MiB answer', 20_000);
    expect(Buffer.from(data).equals(a.rec.messages.find((m) => m.type === MessageType.MsgApp)!.entries[0]!.data)).toBe(true);
    expect(a.t.stats().peers[2]!.connects).toBe(1);
    expect(idleCloses(a.log)).toBe(0);
  }, 30_000);

  it('still drops an accepting side that trickles its answer', async () => {
    const answer = encodeFrames([
      encodeMessage(newPacker(), msg(2, 1, { type: MessageType.MsgApp, entries: [{ index: 2, term: 1, type: EntryType.Normal, data: new Uint8Array(4096) }] })),
    ]);
    const timers: NodeJS.Timeout[] = [];
    closers.push(() => timers.forEach((t) => clearInterval(t)));
    const address = await acceptor((s) => {
      let at = 0;
      timers.push(setInterval(() => at < answer.length && s.writable && s.write(answer.subarray(at, ++at)), 10));
    });
    const a = await node({ id: 1, peers: { 2: address }, insecure: true, clusterSecret: undefined });
    await until(() => idleCloses(a.log) > 0, 'the connection to be dropped as idle', 8_000);
    expect(a.rec.messages).toEqual([]);
  }, 15_000);

  it('sends no pong for progress on a fast link, where frames complete far more often than a window arrives', async () => {
    // A dialer of its own that never pings: any pong it reads was sent for progress.
    const b = await node({ id: 2, insecure: true, clusterSecret: undefined, peers: { 1: '127.0.0.1:1' }, electionTimeoutMs: 1_000 });
    const [host, port] = b.t.address.split(':');
    const s = net.connect({ host: host!, port: Number(port) });
    closers.push(() => s.destroy());
    const p = newPacker();
    const kinds: string[] = [];
    const decoder = new FrameDecoder(1 << 20);
    s.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) kinds.push(decodeFrame(f).kind);
    });
    await new Promise<void>((r) => s.once('connect', r));
    s.write(encodeFrames([encodeHello(p, 'c1', 1, 2)]));
    await until(() => kinds.includes('challenge'), 'the challenge');
    s.write(encodeFrames([encodeProof(p, new Uint8Array(0))]));
    // 8 MiB in 512 messages of 16 KiB: 128 windows.
    const data = new Uint8Array(16 * 1024).fill(5);
    const frames = Array.from({ length: 512 }, (_, i) =>
      encodeMessage(p, msg(1, 2, { type: MessageType.MsgApp, index: i + 1, entries: [{ index: i + 2, term: 1, type: EntryType.Normal, data }] })),
    );
    s.write(encodeFrames(frames));
    await until(() => b.rec.messages.length === 512, 'the 512 messages');
    expect(kinds.filter((k) => k === 'pong')).toEqual([]);
  });

  it('carries a snapshot whose every chunk takes several idle limits to cross', async () => {
    await snapshotOverOneConnection(FileSnapshotStore.open, (address) => throttle(address, 50));
  }, 45_000);
});

describe('a slow disk', () => {
  it('carries a snapshot whose every chunk takes several idle limits to store, over one connection', async () => {
    let writes = 0;
    await snapshotOverOneConnection(
      async (dir) => {
        // Each chunk (1 MiB) takes 3 s to store, over three idle limits of 900 ms.
        const store = await FileSnapshotStore.open(dir);
        const spool = store.spool.bind(store);
        store.spool = async (m, size) => {
          const s = await spool(m, size);
          return { ...s, write: (c) => new Promise((r) => setTimeout(r, 3_000)).then(() => (writes++, s.write(c))) };
        };
        return store;
      },
      async (address) => address,
    );
    expect(writes).toBe(3);
  }, 45_000);
});

/**
 * Sends a snapshot of three chunks from node 1 to node 2, whose snapshots `receiving` keeps in a
 * directory and which node 1 reaches at the address `route` makes of node 2's: it must arrive,
 * over one connection, neither side closing one as idle.
 */
async function snapshotOverOneConnection(receiving: (dir: string) => Promise<FileSnapshotStore>, route: (address: string) => Promise<string>) {
  const sendDir = mkdtempSync(join(tmpdir(), 'raftlog-slowlink-'));
  const recvDir = mkdtempSync(join(tmpdir(), 'raftlog-slowlink-'));
  temps.push(sendDir, recvDir);
  const sender = await FileSnapshotStore.open(sendDir);
  const meta = { index: 40, term: 2, conf: { voters: [1, 2], learners: [] } };
  const held = await sender.save({ meta, data: new Uint8Array(2 * MiB).fill(3) });
  const b = await node({ id: 2, snapshots: await receiving(recvDir), peers: { 1: '127.0.0.1:1' } });
  const a = await node({ id: 1, peers: { 2: await route(b.t.address) }, snapshots: sender });
  a.t.send([msg(1, 2, { type: MessageType.MsgSnap, term: 2, snapshot: held })]);
  await until(() => a.rec.snapshotStatus.length > 0, 'the snapshot status', 20_000);
  expect(a.rec.snapshotStatus).toEqual([[2, true]]);
  await until(() => b.rec.messages.some((m) => m.type === MessageType.MsgSnap), 'the snapshot delivered', 20_000);
  expect(b.rec.messages.find((m) => m.type === MessageType.MsgSnap)!.snapshot!.meta).toEqual(meta);
  expect(a.t.stats().peers[2]!.connects).toBe(1);
  expect(idleCloses(a.log) + idleCloses(b.log)).toBe(0);
}

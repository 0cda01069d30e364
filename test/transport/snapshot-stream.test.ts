// Snapshots travel as files: read from the sender's store a chunk at a time,
// spooled to the receiver's snapshot directory, checked whole before the driver
// hears of them. What a peer sends is hostile: an oversized, corrupt, abandoned
// or superseded stream leaves nothing behind and is never delivered.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { appendFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EntryType, MessageType, type SnapshotMeta } from '../../src/raft/types.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { TcpTransport, type TcpTransportOptions } from '../../src/transport/tcp-transport.js';
import type { IncomingSnapshot } from '../../src/transport/snapshot-streams.js';
import { encodeChunk, encodeMessage, encodePing, newPacker } from '../../src/transport/wire.js';
import { encodeFrames } from '../../src/transport/frame.js';
import type { Packr } from 'msgpackr';
import { LogCapture, Recorder, msg, until, within } from './helpers.js';
import { rawPeer, refusal } from './raw-peer.js';
import { fdsUnder } from '../log/helpers.js';

const SECRET = 'snapshot streams secret';
const MiB = 1024 * 1024;
const conf = { voters: [1, 2], learners: [] };
const temps: string[] = [];
const open: TcpTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'raftlog-snapstream-'));
  temps.push(d);
  return d;
}

const spools = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('spool-'));

/** `n` MiB of bytes that differ per MiB, made as they are read. */
async function* pattern(n: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < n; i++) {
    const b = Buffer.alloc(MiB, i % 251);
    b.writeUInt32LE(i, 0);
    yield b;
  }
}

async function digest(chunks: AsyncIterable<Uint8Array>): Promise<{ hash: string; bytes: number; largest: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  let largest = 0;
  for await (const c of chunks) {
    h.update(c);
    bytes += c.byteLength;
    largest = Math.max(largest, c.byteLength);
  }
  return { hash: h.digest('hex'), bytes, largest };
}

/** A one-chunk stream from node 5 is stored and delivered, and its connection not refused. */
async function deliveredAgain(b: Awaited<ReturnType<typeof receiver>>, p: ReturnType<typeof newPacker>, meta: SnapshotMeta): Promise<void> {
  const data = Buffer.alloc(1024, 7);
  const last = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
  await last.send([encodeChunk(p, 9, 0, data.length, data, snapHeader(5, meta))]);
  await until(() => b.rec.messages.length === 1, 'the snapshot delivered');
  expect(Buffer.from(b.rec.messages[0]!.snapshot!.data)).toEqual(data);
  expect(refusal(last)).toBeUndefined();
  last.socket.destroy();
}

/** Snapshot spools whose writes hang until answer(); those after it complete at once. */
function hangingDisk() {
  const hung: Array<() => void> = [];
  const disk = {
    hanging: true,
    outstanding: 0,
    aborted: 0,
    answer(): void {
      disk.hanging = false;
      hung.splice(0).forEach((r) => r());
    },
    snapshots: {
      open: () => Promise.reject(new Error('not sending')),
      spool: async (): Promise<IncomingSnapshot> => {
        const parts: Uint8Array[] = [];
        return {
          write: (chunk: Uint8Array) => {
            parts.push(chunk);
            if (!disk.hanging) return Promise.resolve();
            disk.outstanding++;
            return new Promise<void>((r) =>
              hung.push(() => {
                disk.outstanding--;
                r();
              }),
            );
          },
          finish: async () => Buffer.concat(parts),
          abort: async () => {
            disk.aborted++;
          },
        };
      },
    },
  };
  return disk;
}

async function receiver(dir: string, o: Partial<TcpTransportOptions> = {}) {
  const store = await FileSnapshotStore.open(dir);
  const rec = new Recorder();
  const log = new LogCapture();
  // Node 5 is the raw peers' id: snapshot streams come only from known peers (port 1 refuses dials).
  const t = new TcpTransport({
    id: 2,
    clusterId: 'c1',
    listen: '127.0.0.1:0',
    clusterSecret: SECRET,
    snapshots: store,
    logger: log,
    peers: { 5: '127.0.0.1:1' },
    ...o,
  });
  open.push(t);
  await t.start(rec);
  return { t, rec, log, store };
}

/** The bytes of a snapshot file for `meta` holding `mib` MiB, as a sender's store writes it. */
async function snapshotFile(meta: SnapshotMeta, mib: number): Promise<Buffer> {
  const sendDir = tempDir();
  await (await FileSnapshotStore.open(sendDir)).save({ meta, data: pattern(mib) });
  return readFileSync(join(sendDir, readdirSync(sendDir)[0]!));
}

const snapHeader = (from: number, meta: SnapshotMeta) => ({ message: msg(from, 2, { type: MessageType.MsgSnap, term: meta.term }), meta });

describe('snapshot streams', () => {
  it("a snapshot far larger than a frame streams from the sender's file to the receiver's spool in bounded chunks, checked, then installs", async () => {
    const meta = { index: 500, term: 3, conf };
    const sendDir = tempDir();
    const sender = await FileSnapshotStore.open(sendDir);
    const held = await sender.save({ meta, data: pattern(32) });
    const recvDir = tempDir();
    const b = await receiver(recvDir, { maxFrameBytes: MiB, snapshotChunkBytes: 256 * 1024, maxSnapshotBytes: 40 * MiB });
    // Every write into the spool is at most one chunk: the receiver never holds more of it.
    const writes: number[] = [];
    const spool = b.store.spool.bind(b.store);
    b.store.spool = async (m, size) => {
      const s = await spool(m, size);
      return { ...s, write: (c) => (writes.push(c.byteLength), s.write(c)) };
    };
    const a = new TcpTransport({
      id: 1,
      clusterId: 'c1',
      listen: '127.0.0.1:0',
      clusterSecret: SECRET,
      peers: { 2: b.t.address },
      snapshots: sender,
      maxFrameBytes: MiB,
      snapshotChunkBytes: 256 * 1024,
      logger: new LogCapture(),
    });
    open.push(a);
    const aRec = new Recorder();
    await a.start(aRec);
    b.t.addPeer(1, a.address);
    a.send([msg(1, 2, { type: MessageType.MsgSnap, term: 3, snapshot: held })]);
    await until(() => b.rec.messages.some((m) => m.type === MessageType.MsgSnap), 'the snapshot', 60_000);
    await until(() => aRec.snapshotStatus.length === 1, 'the snapshot status');
    expect(aRec.snapshotStatus).toEqual([[2, true]]);
    const got = b.rec.messages.find((m) => m.type === MessageType.MsgSnap)!.snapshot!;
    expect(got.meta).toEqual(meta);
    expect(got.data.byteLength).toBeLessThan(64); // a reference to the spool, not the bytes
    expect(Math.max(...writes)).toBeLessThanOrEqual(256 * 1024);
    expect(writes.reduce((x, y) => x + y, 0)).toBeGreaterThan(32 * MiB);
    expect(spools(recvDir)).toHaveLength(1);
    const installed = await b.store.install(got);
    const want = await digest(sender.read(held));
    const have = await digest(b.store.read(installed));
    expect(have).toEqual({ ...want, largest: have.largest });
    expect(have.bytes).toBe(32 * MiB);
    expect(have.largest).toBeLessThanOrEqual(MiB);
  }, 120_000);

  it('refuses a stream announced over maxSnapshotBytes with TRANSPORT_SNAPSHOT_TOO_LARGE before storing a byte', async () => {
    const dir = tempDir();
    const b = await receiver(dir, { maxSnapshotBytes: 4 * MiB });
    const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    const p = newPacker();
    await peer.send([encodeChunk(p, 1, 0, 4 * MiB + 1, new Uint8Array(1024), snapHeader(5, { index: 9, term: 2, conf }))]);
    await peer.closed;
    expect(refusal(peer)).toBe('TRANSPORT_SNAPSHOT_TOO_LARGE');
    expect(b.log.has('TRANSPORT_SNAPSHOT_TOO_LARGE')).toBe(true);
    expect(b.t.stats().refused).toEqual({ TRANSPORT_SNAPSHOT_TOO_LARGE: 1 });
    expect(b.rec.messages).toEqual([]);
    expect(spools(dir)).toEqual([]);
  });

  it('a snapshot a peer refuses as over its maxSnapshotBytes is logged once and not streamed to it again until its connection ends otherwise', async () => {
    const meta = { index: 500, term: 3, conf };
    const sender = await FileSnapshotStore.open(tempDir());
    const held = await sender.save({ meta, data: pattern(2) });
    const b = await receiver(tempDir(), { maxSnapshotBytes: MiB });
    const log = new LogCapture();
    const a = new TcpTransport({
      id: 1,
      clusterId: 'c1',
      listen: '127.0.0.1:0',
      clusterSecret: SECRET,
      peers: { 2: b.t.address },
      snapshots: sender,
      logger: log,
    });
    open.push(a);
    const aRec = new Recorder();
    await a.start(aRec);
    b.t.addPeer(1, a.address);
    const refusals = () => log.lines.filter((l) => l.fields.remoteCode === 'TRANSPORT_SNAPSHOT_TOO_LARGE');
    // The leader offers it again at each heartbeat while the follower is behind.
    for (let i = 1; i <= 4; i++) {
      await until(() => a.stats().peers[2]?.connected === true, 'the connection to the receiver');
      a.send([msg(1, 2, { type: MessageType.MsgSnap, term: 3, snapshot: held })]);
      await until(() => aRec.snapshotStatus.length === i, `the status of offer ${i}`);
      await until(() => refusals().length > 0, 'the refusal logged');
    }
    // The first may have been written whole before the refusal came back; the others never left.
    expect(aRec.snapshotStatus.slice(1)).toEqual([
      [2, false],
      [2, false],
      [2, false],
    ]);
    expect(b.t.stats().refused).toEqual({ TRANSPORT_SNAPSHOT_TOO_LARGE: 1 });
    expect(refusals()).toHaveLength(1);
    const line = refusals()[0]!;
    expect(line.level).toBe('warn');
    expect(line.fields).toMatchObject({ code: 'TRANSPORT_PEER_REFUSED', peer: 2, index: 500, term: 3 });
    const size = line.fields.bytes as number;
    expect(size).toBeGreaterThan(2 * MiB);
    expect(line.message).toContain(`snapshot of ${size} bytes exceeds this node's maxSnapshotBytes ${MiB}`);
    expect(line.message).toContain(`maxSnapshotBytes of at least ${size}`);
    expect(b.log.has(`snapshot of ${size} bytes exceeds this node's maxSnapshotBytes ${MiB}`)).toBe(true);
    // At another address, perhaps another process: refused there too, the snapshot is logged again.
    const same = await receiver(tempDir(), { maxSnapshotBytes: MiB });
    same.t.addPeer(1, a.address);
    a.addPeer(2, same.t.address);
    await until(() => a.stats().peers[2]?.connected === true, 'the connection to the receiver at another address');
    a.send([msg(1, 2, { type: MessageType.MsgSnap, term: 3, snapshot: held })]);
    await until(() => refusals().length === 2, 'the refusal at the other address logged', 60_000);
    // Restarted with a higher limit (here: another receiver at another address), the peer is sent it again, and takes it.
    const c = await receiver(tempDir(), { maxSnapshotBytes: 4 * MiB });
    c.t.addPeer(1, a.address);
    a.addPeer(2, c.t.address);
    await until(() => a.stats().peers[2]?.connected === true, 'the connection to the new receiver');
    a.send([msg(1, 2, { type: MessageType.MsgSnap, term: 3, snapshot: held })]);
    await until(() => c.rec.messages.some((m) => m.type === MessageType.MsgSnap), 'the snapshot delivered', 60_000);
    expect(refusals()).toHaveLength(2);
  }, 120_000);

  it('never delivers a stream that fails its checksum or is not the snapshot announced, and deletes its spool', async () => {
    const meta = { index: 40, term: 2, conf };
    const file = await snapshotFile(meta, 3);
    const flipped = Buffer.from(file);
    flipped[file.length - 1000]! ^= 0x01; // one bit of the data
    const cases: Array<[string, Buffer, SnapshotMeta, RegExp]> = [
      ['one bit flipped', flipped, meta, /checksum/],
      ['a whole file announced as another snapshot', file, { ...meta, index: 41 }, /another snapshot/],
      ['bytes that are no snapshot file', Buffer.alloc(file.length, 7), meta, /bad header/],
    ];
    for (const [what, bytes, announced, why] of cases) {
      const dir = tempDir();
      const b = await receiver(dir, { maxSnapshotBytes: 8 * MiB });
      const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
      const p = newPacker();
      for (let at = 0; at < bytes.length; at += 256 * 1024) {
        await peer.send([encodeChunk(p, 1, at, bytes.length, bytes.subarray(at, at + 256 * 1024), at === 0 ? snapHeader(5, announced) : undefined)]);
      }
      await peer.closed;
      expect(refusal(peer), what).toBe('TRANSPORT_SNAPSHOT_REJECTED');
      expect(b.t.stats().refused, what).toEqual({ TRANSPORT_SNAPSHOT_REJECTED: 1 });
      expect(b.log.has(why), what).toBe(true);
      expect(b.rec.messages, what).toEqual([]);
      expect(spools(dir), what).toEqual([]);
    }
  });

  it('deletes the spool of a stream whose connection closes half-way, and of one on a connection the same peer replaces', async () => {
    const dir = tempDir();
    const b = await receiver(dir, { maxSnapshotBytes: 8 * MiB });
    const meta = { index: 9, term: 2, conf };
    const p = newPacker();
    const first = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    await first.send([encodeChunk(p, 1, 0, 4 * MiB, new Uint8Array(MiB), snapHeader(5, meta))]);
    await until(() => spools(dir).length === 1, 'the first spool');
    // The same peer id on a second connection, which only authenticates: one connection per peer, the newer wins.
    const second = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    await first.closed;
    expect(refusal(first)).toBe('TRANSPORT_CONNECTION_REPLACED');
    await until(() => spools(dir).length === 0, "the replaced stream's spool to be deleted");
    await second.send([encodeChunk(p, 1, 0, 4 * MiB, new Uint8Array(MiB), snapHeader(5, meta))]);
    await until(() => spools(dir).length === 1, 'the second spool');
    const kept = spools(dir)[0]!;
    second.socket.destroy();
    await until(() => spools(dir).length === 0, 'the abandoned spool to be deleted');
    expect(readdirSync(dir)).not.toContain(kept);
    expect(b.rec.messages).toEqual([]);
  });

  it('drops a stream that stops while pings keep its connection alive, or that trickles a byte per chunk: TRANSPORT_SNAPSHOT_STALLED, spool deleted', async () => {
    // Idle timeout: 3 election timeouts, 300 ms; a stream must bring 64 KiB (or its rest) in each.
    const total = 4 * MiB;
    const senders = {
      // The sender goes on pinging, well within the idle timeout, and sends no more of the stream.
      'pings only': (p: Packr, _at: number) => encodePing(p, false),
      // A byte per chunk, well within the idle timeout: 4 MiB would take 35 hours, its spool and its file open all along.
      'a byte per chunk': (p: Packr, at: number) => encodeChunk(p, 1, at, total, new Uint8Array(1)),
    };
    for (const [what, next] of Object.entries(senders)) {
      const dir = tempDir();
      const b = await receiver(dir, { maxSnapshotBytes: 8 * MiB, electionTimeoutMs: 100 });
      const p = newPacker();
      const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
      await peer.send([encodeChunk(p, 1, 0, total, new Uint8Array(1), snapHeader(5, { index: 9, term: 2, conf }))]);
      await until(() => spools(dir).length === 1, 'the spool');
      let at = 1;
      const sending = setInterval(() => void peer.send([next(p, at++)]), 20);
      try {
        await within(`the stream to be dropped (${what})`, peer.closed);
      } finally {
        clearInterval(sending);
      }
      expect(refusal(peer), what).toBe('TRANSPORT_SNAPSHOT_STALLED');
      expect(b.t.stats().refused, what).toEqual({ TRANSPORT_SNAPSHOT_STALLED: 1 });
      await until(() => spools(dir).length === 0, 'the stalled spool to be deleted');
      expect(fdsUnder(dir), what).toEqual([]);
      expect(b.rec.messages, what).toEqual([]);
    }
  });

  it('drops a stream while a large message, not its next chunk, crawls in fast enough to keep the connection alive', async () => {
    // Idle timeout 3 s: 16 KiB every 20 ms keeps the connection's progress, none of it the stream's.
    // On a loaded machine the writes may come far apart: one in 3 s keeps the connection, and the
    // 8 MiB message takes 10 s at the full rate, so it never completes before the stream is dropped.
    const dir = tempDir();
    const b = await receiver(dir, { maxSnapshotBytes: 8 * MiB, electionTimeoutMs: 1000 });
    const p = newPacker();
    const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    await peer.send([encodeChunk(p, 1, 0, 4 * MiB, new Uint8Array(1), snapHeader(5, { index: 9, term: 2, conf }))]);
    await until(() => spools(dir).length === 1, 'the spool');
    const big = encodeFrames([
      encodeMessage(p, msg(5, 2, { type: MessageType.MsgApp, entries: [{ index: 1, term: 2, type: EntryType.Normal, data: new Uint8Array(8 * MiB) }] })),
    ]);
    let at = 0;
    const sending = setInterval(() => {
      if (at < big.length && peer.socket.writable) peer.socket.write(big.subarray(at, (at += 16 * 1024)));
    }, 20);
    try {
      await within('the stream to be dropped', peer.closed, 30_000);
    } finally {
      clearInterval(sending);
    }
    expect(refusal(peer)).toBe('TRANSPORT_SNAPSHOT_STALLED');
    expect(at).toBeLessThan(big.length);
    await until(() => spools(dir).length === 0, 'the stalled spool to be deleted');
    expect(b.rec.messages).toEqual([]);
  });

  it('delivers a stream slower in all than the idle timeout whose chunks each come within it', async () => {
    const meta = { index: 12, term: 2, conf };
    const file = await snapshotFile(meta, 1);
    const dir = tempDir();
    // Idle timeout 900 ms; the eight chunks come 150 ms apart, over a second in all.
    const b = await receiver(dir, { maxSnapshotBytes: 8 * MiB, electionTimeoutMs: 300 });
    const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    const p = newPacker();
    const step = Math.ceil(file.length / 8);
    for (let at = 0; at < file.length; at += step) {
      if (at > 0) await new Promise((r) => setTimeout(r, 150));
      await peer.send([encodeChunk(p, 1, at, file.length, file.subarray(at, at + step), at === 0 ? snapHeader(5, meta) : undefined)]);
    }
    await until(() => b.rec.messages.length === 1, 'the snapshot delivered');
    expect(refusal(peer)).toBeUndefined();
    peer.socket.destroy();
  });

  it('close(), and a second call of it, resolve only once the spool of a stream it cut off is deleted', async () => {
    const dir = tempDir();
    const b = await receiver(dir, { maxSnapshotBytes: 8 * MiB });
    // A deletion that takes a while, as on a busy disk.
    const spool = b.store.spool.bind(b.store);
    b.store.spool = async (m, size) => {
      const s = await spool(m, size);
      return { ...s, abort: () => new Promise<void>((r) => setTimeout(r, 100)).then(() => s.abort()) };
    };
    const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    await peer.send([encodeChunk(newPacker(), 1, 0, 4 * MiB, new Uint8Array(MiB), snapHeader(5, { index: 9, term: 2, conf }))]);
    await until(() => spools(dir).length === 1, 'the spool');
    const first = b.t.close();
    // A second call, as the log's close() makes after a fatal error closed the transport, waits as long.
    await b.t.close();
    expect(spools(dir)).toEqual([]);
    await first;
  });

  it('close() waits for a spool still being opened to be deleted once open, and logs a deletion that failed', async () => {
    const dir = tempDir();
    let opened: (() => void) | undefined;
    const snapshots = {
      open: () => Promise.reject(new Error('not sending')),
      spool: () =>
        new Promise<IncomingSnapshot>((resolve) => {
          opened = () =>
            resolve({
              write: async () => undefined,
              finish: async () => new Uint8Array(0),
              abort: async () => {
                throw new Error('disk gone');
              },
            });
        }),
    };
    const b = await receiver(dir, { snapshots });
    const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    await peer.send([encodeChunk(newPacker(), 1, 0, 4096, new Uint8Array(1024), snapHeader(5, { index: 9, term: 2, conf }))]);
    await until(() => opened !== undefined, 'the spool to be asked for');
    const closing = b.t.close();
    opened!();
    await closing;
    expect(b.log.lines.filter((l) => l.level === 'warn').map((l) => l.message)).toContain(
      'transport: deleting an abandoned snapshot from peer 5 failed: disk gone',
    );
  });

  it('close() stops waiting for a spool whose deletion never settles after the idle timeout, says so, and resolves', async () => {
    const dir = tempDir();
    let written = false;
    const snapshots = {
      open: () => Promise.reject(new Error('not sending')),
      spool: async (): Promise<IncomingSnapshot> => ({
        write: async () => {
          written = true;
        },
        finish: async () => new Uint8Array(0),
        abort: () => new Promise<never>(() => undefined), // a disk that never answers
      }),
    };
    const b = await receiver(dir, { snapshots, electionTimeoutMs: 100 }); // an idle timeout of 300 ms
    const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    await peer.send([encodeChunk(newPacker(), 1, 0, 4096, new Uint8Array(1024), snapHeader(5, { index: 9, term: 2, conf }))]);
    await until(() => written, 'the first chunk to be spooled');
    const started = performance.now();
    await within('close()', b.t.close());
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(b.log.lines.filter((l) => l.level === 'warn').map((l) => l.message)).toContain(
      'transport: closed without waiting longer for deleting an abandoned snapshot from peer 5: not settled after 300 ms',
    );
  });

  it('deletes a spool cut off mid-write after the write, never beside it', async () => {
    const dir = tempDir();
    // A spool that appends each chunk to its file as it comes: a write that outlived the deletion would make the file again.
    const events: string[] = [];
    let release: (() => void) | undefined;
    const snapshots = {
      open: () => Promise.reject(new Error('not sending')),
      spool: async (): Promise<IncomingSnapshot> => {
        const file = join(dir, 'spool-appended.part');
        return {
          write: async (chunk) => {
            events.push('write');
            await new Promise<void>((r) => (release = r));
            await appendFile(file, chunk);
            events.push('written');
          },
          finish: async () => Buffer.from(file),
          abort: async () => {
            events.push('abort');
            await rm(file, { force: true });
          },
        };
      },
    };
    const b = await receiver(dir, { snapshots });
    const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    await peer.send([encodeChunk(newPacker(), 1, 0, 4096, new Uint8Array(1024), snapHeader(5, { index: 9, term: 2, conf }))]);
    await until(() => release !== undefined, 'the write to start');
    const closing = b.t.close();
    await new Promise((r) => setImmediate(r)); // time for an abort that does not wait to start
    release!();
    await closing;
    expect(events).toEqual(['write', 'written', 'abort']);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('pongs the dialer while a chunk is being stored, and gives up on a store that never completes: TRANSPORT_SNAPSHOT_REJECTED', async () => {
    const dir = tempDir();
    let release: (() => void) | undefined;
    let aborted = false;
    const snapshots = {
      open: () => Promise.reject(new Error('not sending')),
      spool: async (): Promise<IncomingSnapshot> => ({
        write: () => new Promise<void>((r) => (release = r)), // a disk that hangs
        finish: async () => new Uint8Array(0),
        abort: async () => {
          aborted = true;
        },
      }),
    };
    // An idle limit of 300 ms: a hung store is given up on after 20 of them, 6 s.
    const b = await receiver(dir, { snapshots, electionTimeoutMs: 100 });
    const peer = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    await peer.send([encodeChunk(newPacker(), 1, 0, 4096, new Uint8Array(1024), snapHeader(5, { index: 9, term: 2, conf }))]);
    await until(() => release !== undefined, 'the write to start');
    await within('the connection to be closed', peer.closed);
    expect(refusal(peer)).toBe('TRANSPORT_SNAPSHOT_REJECTED');
    expect(b.log.has(/storing a chunk took over 6000 ms/)).toBe(true);
    // The peer sent nothing after its chunk: every pong was sent unasked, to keep it from closing as idle.
    expect(peer.frames.filter((f) => f.kind === 'pong').length).toBeGreaterThanOrEqual(15);
    expect(aborted).toBe(false); // never beside the write
    release!();
    await until(() => aborted, 'the spool to be deleted once the write ended');
    expect(b.rec.messages).toEqual([]);
  });

  it('while a store given up on as hung has not settled, refuses every new snapshot stream at once, from any peer: one hung chunk held at most', async () => {
    const dir = tempDir();
    const disk = hangingDisk();
    // An idle limit of 300 ms: a hung store is given up on after 6 s. Node 6 is a second member.
    const b = await receiver(dir, { snapshots: disk.snapshots, electionTimeoutMs: 100, peers: { 5: '127.0.0.1:1', 6: '127.0.0.1:1' } });
    const p = newPacker();
    const meta = { index: 9, term: 2, conf };
    const first = await rawPeer(b.t.address, 'c1', 5, 2, SECRET);
    await first.send([encodeChunk(p, 1, 0, 4096, new Uint8Array(1024), snapHeader(5, meta))]);
    await within('the hung store to be given up on', first.closed);
    expect(refusal(first)).toBe('TRANSPORT_SNAPSHOT_REJECTED');
    // The leader tries again, and again, as each attempt is refused: none of them reaches the disk.
    for (const [i, from] of [5, 6, 5].entries()) {
      const retry = await rawPeer(b.t.address, 'c1', from, 2, SECRET);
      await retry.send([encodeChunk(p, 2 + i, 0, 4096, new Uint8Array(1024), snapHeader(from, meta))]);
      await until(() => disk.outstanding > 1 || retry.frames.some((f) => f.kind === 'refuse'), 'the retry to be refused');
      expect(disk.outstanding).toBe(1);
      expect(refusal(retry)).toBe('TRANSPORT_SNAPSHOT_REJECTED');
      await within('the retry to be closed', retry.closed);
    }
    expect(b.log.has(/a snapshot chunk given up on is still being stored/)).toBe(true);
    expect(disk.aborted).toBe(0);
    disk.answer();
    await until(() => disk.aborted === 1, 'the hung spool to be deleted once its write ended');
    // The disk answered again: the next stream is stored and delivered.
    await deliveredAgain(b, p, meta);
  });

  it('a stream dropped while its chunk is being stored holds that chunk too: no chunk is stored until that write settles', async () => {
    const dir = tempDir();
    const disk = hangingDisk();
    const b = await receiver(dir, { snapshots: disk.snapshots, electionTimeoutMs: 100, peers: { 5: '127.0.0.1:1', 6: '127.0.0.1:1' } });
    const p = newPacker();
    const meta = { index: 9, term: 2, conf };
    // The leader's connection is lost (it restarted, or redialed) long before the store would be given up on as hung.
    for (const [i, from] of [5, 6, 5].entries()) {
      const peer = await rawPeer(b.t.address, 'c1', from, 2, SECRET);
      await peer.send([encodeChunk(p, 1 + i, 0, 4096, new Uint8Array(1024), snapHeader(from, meta))]);
      await until(
        () => disk.outstanding > 1 || (disk.outstanding === 1 && i === 0) || peer.frames.some((f) => f.kind === 'refuse'),
        'the chunk stored or refused',
      );
      expect(disk.outstanding).toBe(1);
      if (i > 0) expect(refusal(peer)).toBe('TRANSPORT_SNAPSHOT_REJECTED');
      peer.socket.destroy();
      await within('the connection to be closed', peer.closed);
    }
    disk.answer();
    await until(() => disk.aborted === 1, 'the dropped spool to be deleted once its write ended');
    await deliveredAgain(b, p, meta);
  });

  it('refuses a snapshot stream from a node this transport does not know, before storing a byte', async () => {
    const dir = tempDir();
    const b = await receiver(dir);
    const peer = await rawPeer(b.t.address, 'c1', 6, 2, SECRET);
    await peer.send([encodeChunk(newPacker(), 1, 0, 2048, new Uint8Array(1024), snapHeader(6, { index: 9, term: 2, conf }))]);
    await peer.closed;
    expect(refusal(peer)).toBe('TRANSPORT_SNAPSHOT_REJECTED');
    expect(b.log.has(/node 6 is not a known peer/)).toBe(true);
    expect(b.rec.messages).toEqual([]);
    expect(spools(dir)).toEqual([]);
  });

  it('at open, removes spools and unfinished saves left by an earlier run (never installed), and keeps snapshots', async () => {
    const dir = tempDir();
    const store = await FileSnapshotStore.open(dir);
    await store.save({ meta: { index: 3, term: 1, conf }, data: Buffer.from('held') });
    writeFileSync(join(dir, 'spool-0123456789abcdef.part'), 'half a snapshot');
    writeFileSync(join(dir, 'snap-0000000000000009-1.snap.tmp'), 'half a save');
    await FileSnapshotStore.open(dir);
    expect(readdirSync(dir)).toEqual(['snap-0000000000000003-1.snap']);
  });
});

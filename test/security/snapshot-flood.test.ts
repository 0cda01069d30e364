// A flood of snapshot streams from authenticated peers: each is written to the
// snapshot directory as it arrives, never gathered in memory, so the receiver's
// resident memory stays within a fixed bound however much is announced and sent.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { MessageType } from '../../src/raft/types.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import { decodeFrame, encodeChunk, newPacker } from '../../src/transport/wire.js';
import { LogCapture, Recorder, msg, until } from '../transport/helpers.js';
import { rawPeer, refusal, type RawPeer } from '../transport/raw-peer.js';

const SECRET = 'snapshot flood secret';
const MiB = 1024 * 1024;
const STREAMS = 8;
const STREAM_BYTES = 48 * MiB;
const CHUNK = MiB;
/**
 * A quarter of what is sent (8 x 48 MiB, all at once): a receiver that gathered each stream in
 * memory before writing it would hold all of it. What it measures is resident memory, which also holds what the allocator keeps
 * after the frames are freed: a stream spooled as it arrives peaks at 50-60 MiB here, so a
 * tighter bound would measure the allocator on a loaded machine.
 */
const RSS_BOUND = (STREAMS * STREAM_BYTES) / 4;

const temps: string[] = [];
const open: TcpTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * A chunk frame whose data is `data` itself, written without copying it: the sender
 * reuses one buffer for every chunk, so the memory measured is the receiver's.
 */
function chunkFrame(streamId: number, offset: number, total: number, data: Buffer, header?: Parameters<typeof encodeChunk>[5]): Buffer[] {
  const p = newPacker();
  // The tuple is [kind, streamId, offset, total, data, header]: an empty binary encodes as
  // c4 00 just before the header, so the data is spliced in there as a bin32.
  const bare = Buffer.from(encodeChunk(p, streamId, offset, total, new Uint8Array(0)));
  const at = bare.length - 3;
  if (bare.readUInt16BE(at) !== 0xc400 || bare[at + 2] !== 0xc0) throw new Error('unexpected chunk encoding');
  const full = Buffer.from(encodeChunk(p, streamId, offset, total, new Uint8Array(0), header));
  const head = full.subarray(0, at);
  const tail = full.subarray(at + 2);
  const prefix = Buffer.alloc(4 + head.length + 5);
  prefix.writeUInt32BE(head.length + 5 + data.length + tail.length, 0);
  head.copy(prefix, 4);
  prefix[4 + head.length] = 0xc6;
  prefix.writeUInt32BE(data.length, 4 + head.length + 1);
  return [prefix, data, Buffer.from(tail)];
}

async function flood(peer: RawPeer, from: number, data: Buffer): Promise<void> {
  const meta = { index: 1000 + from, term: 2, conf: { voters: [2, from], learners: [] } };
  const header = { message: msg(from, 2, { type: MessageType.MsgSnap, term: 2 }), meta };
  for (let at = 0; at < STREAM_BYTES && !peer.socket.destroyed; at += CHUNK) {
    const parts = chunkFrame(1, at, STREAM_BYTES, data, at === 0 ? header : undefined);
    peer.socket.write(parts[0]!);
    peer.socket.write(parts[1]!);
    if (!peer.socket.write(parts[2]!)) await new Promise<void>((r) => peer.socket.once('drain', r).once('close', r));
  }
}

it(`${STREAMS} authenticated connections each streaming a ${STREAM_BYTES / MiB} MiB snapshot grow RSS by less than ${RSS_BOUND / MiB} MiB`, async () => {
  // The spliced frame decodes as the chunk it claims to be.
  const probe = Buffer.alloc(8, 9);
  const frame = Buffer.concat(chunkFrame(3, 16, 64, probe));
  expect(decodeFrame(frame.subarray(4))).toEqual({ kind: 'chunk', streamId: 3, offset: 16, total: 64, data: probe });
  const meta = { index: 7, term: 2, conf: { voters: [2, 3], learners: [] } };
  const first = Buffer.concat(chunkFrame(3, 0, 64, probe, { message: msg(3, 2, { type: MessageType.MsgSnap, term: 2 }), meta }));
  expect(decodeFrame(first.subarray(4))).toMatchObject({ kind: 'chunk', offset: 0, data: probe, header: { meta } });

  const dir = mkdtempSync(join(tmpdir(), 'raftlog-flood-'));
  temps.push(dir);
  const store = await FileSnapshotStore.open(dir);
  let spooled = 0;
  let spoolsOpened = 0;
  const spool = store.spool.bind(store);
  store.spool = async (meta, size) => {
    spoolsOpened++;
    const s = await spool(meta, size);
    return {
      ...s,
      write: async (c) => {
        await s.write(c);
        spooled += c.byteLength;
      },
    };
  };
  const rec = new Recorder();
  const log = new LogCapture();
  // The flooding ids are members (snapshot streams come only from known peers; port 1 refuses dials):
  // the worst case is an insider holding the secret.
  const members = Object.fromEntries(Array.from({ length: STREAMS }, (_, i) => [3 + i, '127.0.0.1:1']));
  const t = new TcpTransport({
    id: 2,
    clusterId: 'c1',
    listen: '127.0.0.1:0',
    clusterSecret: SECRET,
    snapshots: store,
    maxSnapshotBytes: 64 * MiB,
    peers: members,
    logger: log,
  });
  open.push(t);
  await t.start(rec);
  const peers: RawPeer[] = [];
  for (let i = 0; i < STREAMS; i++) peers.push(await rawPeer(t.address, 'c1', 3 + i, 2, SECRET));
  const data = Buffer.alloc(CHUNK, 0x5a); // not a snapshot file: each stream is refused at its end, after all of it was spooled

  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  try {
    await Promise.all(peers.map((p, i) => flood(p, 3 + i, data)));
    await Promise.all(peers.map((p) => p.closed));
  } finally {
    clearInterval(sampler);
  }
  const after = process.memoryUsage().rss;
  peak = Math.max(peak, after);
  console.log(
    `snapshot flood: ${STREAMS} x ${STREAM_BYTES / MiB} MiB spooled; RSS before ${(before / MiB).toFixed(0)} MiB, peak +${((peak - before) / MiB).toFixed(1)} MiB, after +${((after - before) / MiB).toFixed(1)} MiB`,
  );

  expect(spoolsOpened).toBe(STREAMS);
  expect(spooled).toBe(STREAMS * STREAM_BYTES); // every byte was received: none was skipped to save memory
  expect(peers.map(refusal)).toEqual(Array(STREAMS).fill('TRANSPORT_SNAPSHOT_REJECTED'));
  expect(rec.messages).toEqual([]);
  await until(() => readdirSync(dir).length === 0, 'every refused spool to be deleted');
  expect(peak - before).toBeLessThan(RSS_BOUND);
}, 300_000);

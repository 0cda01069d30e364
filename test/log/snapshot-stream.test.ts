// The log's snapshots end to end: a follower that needs the leader's snapshot
// receives it as a file, several frames long, and the KV state machine restores
// it from chunks; a received snapshot raft does not take is deleted.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KvStateMachine, encodeCommand } from '../../src/kv/kv-state-machine.js';
import { ReplicatedLog, type ReplicatedLogDeps } from '../../src/log/replicated-log.js';
import type { ReplicatedLogOptions } from '../../src/log/options.js';
import { encodeConfChange } from '../../src/raft/confchange.js';
import { ConfChangeType, EntryType, MessageType, type Message, type SnapshotMeta } from '../../src/raft/types.js';
import { encodeSnapshotData } from '../../src/log/snapshot-data.js';
import type { LogStore } from '../../src/storage/log-store.js';
import { PeerInstanceFile, readPeerInstances } from '../../src/storage/peer-instances.js';
import { Wal } from '../../src/wal/index.js';
import { FileSnapshotStore, type SnapshotSpool, type SnapshotStore } from '../../src/storage/snapshot-store.js';
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';
import { encodeChunk, encodeMessage, newPacker } from '../../src/transport/wire.js';
import { msg } from '../transport/helpers.js';
import { rawPeer, refusal } from '../transport/raw-peer.js';
import { RecordingLogger } from '../recording-logger.js';
import { freePorts, tempDir, waitFor } from './helpers.js';

const SECRET = 'a secret for the snapshot stream tests';
const KiB = 1024;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const spools = (dir: string): string[] => readdirSync(join(dir, 'snapshots')).filter((n) => n.startsWith('spool-'));

/** A transport that sends nothing, and through which a test hands the log its messages. */
function inertTransport(): { transport: Transport; deliver: (m: Message) => void } {
  let handlers: TransportHandlers | undefined;
  const transport: Transport = {
    start: async (h) => void (handlers = h),
    send: () => undefined,
    addPeer: () => undefined,
    removePeer: () => undefined,
    close: async () => undefined,
  };
  return { transport, deliver: (m) => handlers!.onMessage(m) };
}

/**
 * Node 1 of a two-node cluster whose node 2 is a raw peer, known to node 1 as the leader of
 * term 1000 (a heartbeat): it streams snapshot files of its own making.
 */
async function ledByRawPeer() {
  const ports = await freePorts(2);
  const t = tempDir();
  cleanups.push(t.cleanup);
  const peers = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}` };
  // A long election timeout: the raw peer sends no pings, and its connection must outlive each stream.
  const log = await ReplicatedLog.open({ dataDir: t.dir, id: 1, peers, clusterSecret: SECRET, tickMs: 10, electionTicks: 300, logger: new RecordingLogger() });
  cleanups.push(() => log.close());
  // Node 1 keeps a record of its peers' instances: a peer that names none is refused.
  const peer = await rawPeer(peers[1], 'raftlog', 2, 1, SECRET, randomBytes(16));
  cleanups.push(() => void peer.socket.destroy());
  const p = newPacker();
  await peer.send([encodeMessage(p, msg(2, 1, { type: MessageType.MsgHeartbeat, term: 1000 }))]);
  await waitFor('node 2 to be known as the leader', () => log.status().lead === 2);
  // `between`, if given, runs once the first half is sent.
  const sendSnapshot = async (meta: SnapshotMeta, data: Buffer, streamId = 1, between?: () => Promise<void>): Promise<void> => {
    const elsewhere = tempDir();
    cleanups.push(elsewhere.cleanup);
    await (await FileSnapshotStore.open(elsewhere.dir)).save({ meta, data });
    const file = readFileSync(join(elsewhere.dir, readdirSync(elsewhere.dir)[0]!));
    const header = { message: msg(2, 1, { type: MessageType.MsgSnap, term: meta.term }), meta };
    if (between === undefined) return peer.send([encodeChunk(p, streamId, 0, file.length, file, header)]);
    const half = file.length >> 1;
    await peer.send([encodeChunk(p, streamId, 0, file.length, file.subarray(0, half), header)]);
    await between();
    await peer.send([encodeChunk(p, streamId, half, file.length, file.subarray(half))]);
  };
  return { t, peers, log, peer, sendSnapshot };
}

interface KvNode {
  id: number;
  dir: string;
  kv: KvStateMachine;
  log: ReplicatedLog<unknown> | null;
}

/**
 * A three-node KV cluster with its leader, and a follower closed for the test to leave behind and
 * start again with open(): with no catch-up window, it then needs the leader's snapshot.
 */
async function withLaggingFollower(options: Partial<ReplicatedLogOptions>) {
  const ports = await freePorts(3);
  const peers = Object.fromEntries(ports.map((p, i) => [i + 1, `127.0.0.1:${p}`]));
  const nodes: KvNode[] = [1, 2, 3].map((id) => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return { id, dir: t.dir, kv: new KvStateMachine(), log: null };
  });
  const open = async (n: KvNode, deps?: Partial<ReplicatedLogDeps>): Promise<void> => {
    n.kv = new KvStateMachine();
    const o = { dataDir: n.dir, id: n.id, peers, stateMachine: n.kv, clusterSecret: SECRET, tickMs: 10, snapshotCatchUpEntries: 0, maxRecordBytes: 256 * KiB };
    n.log = await ReplicatedLog.open({ ...o, ...options }, deps);
  };
  await Promise.all(nodes.map((n) => open(n)));
  cleanups.push(async () => {
    for (const n of nodes) await n.log?.close();
  });
  let leader: KvNode | undefined;
  await waitFor('a leader', () => (leader = nodes.find((n) => n.log?.status().role === 'leader')) !== undefined);
  const lagging = nodes.find((n) => n !== leader)!;
  await lagging.log!.close();
  lagging.log = null;
  return { nodes, leader: leader!, lagging, open };
}

describe('snapshots through the log', () => {
  it("a lagging follower installs a KV snapshot several frames long, streamed from the leader's file and restored from chunks", async () => {
    // 256 KiB records make frames of about 2.3 MiB: a snapshot of several MiB needs several.
    const { leader, lagging, open } = await withLaggingFollower({
      electionTicks: 40,
      heartbeatTicks: 2,
      snapshotEvery: 20,
      maxSnapshotBytes: 64 * 1024 * KiB,
    });
    const value = (i: number): Buffer => Buffer.alloc(200 * KiB, i % 256);
    for (let i = 0; i < 60; i++) await leader.log!.append(encodeCommand(['SET', Buffer.from(`k${i}`), value(i)]));
    // A snapshot holding at least 40 values (8 MiB), and the WAL released below it.
    await waitFor('the leader to snapshot and release its WAL', () => leader.log!.status().snapshotIndex > 41 && leader.log!.status().firstIndex > 41);
    const snapFile = readdirSync(join(leader.dir, 'snapshots'))
      .filter((n) => n.endsWith('.snap'))
      .sort()
      .at(-1)!;
    expect(readFileSync(join(leader.dir, 'snapshots', snapFile)).length).toBeGreaterThan(6 * 1024 * KiB);
    const last = leader.log!.status().commit;
    await open(lagging);
    await waitFor('the lagging node to catch up', () => (lagging.log?.status().applied ?? 0) >= last, 60_000);
    expect(lagging.log!.status().snapshotIndex).toBeGreaterThan(0);
    expect(lagging.log!.status().firstIndex).toBeGreaterThan(1); // it started from the snapshot, not from the log
    expect(lagging.kv.size).toBe(60);
    for (let i = 0; i < 60; i++) expect(lagging.kv.get(Buffer.from(`k${i}`))?.equals(value(i)), `k${i}`).toBe(true);
    // A leader that heard nothing back in time (a loaded machine) may have sent the snapshot again:
    // that stream, spooled as it arrives, is refused once whole (the node holds it) and deleted.
    await waitFor('no spool left', () => spools(lagging.dir).length === 0, 30_000);
  }, 120_000);

  it('a follower whose disk takes several election timeouts per snapshot chunk installs the snapshot, and the leader keeps its term', async () => {
    const electionMs = 10 * 50;
    // Each chunk's store: well past the follower's election timeout (at most twice electionMs),
    // well within the 20 idle limits (60 election timeouts) after which it is taken as hung.
    const writeMs = 4 * electionMs;
    let slowWrites = 0;
    /** The node's own snapshot store, but for chunks received from a peer, each stored writeMs late. */
    const slowSpools = (store: FileSnapshotStore): SnapshotStore =>
      new Proxy(store, {
        get: (target, prop) => {
          if (prop === 'spool')
            return async (meta: SnapshotMeta, size: number): Promise<SnapshotSpool> => {
              const spool = await target.spool(meta, size);
              return {
                write: async (chunk) => {
                  slowWrites++;
                  await new Promise((r) => setTimeout(r, writeMs));
                  return spool.write(chunk);
                },
                finish: () => spool.finish(),
                abort: () => spool.abort(),
              };
            };
          const v: unknown = Reflect.get(target, prop, target);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    const { nodes, leader, lagging, open } = await withLaggingFollower({ electionTicks: electionMs / 10, heartbeatTicks: 5, snapshotEvery: 10 });
    const value = (i: number): Buffer => Buffer.alloc(100 * KiB, i % 256);
    for (let i = 0; i < 30; i++) await leader.log!.append(encodeCommand(['SET', Buffer.from(`k${i}`), value(i)]));
    // A snapshot of at least 29 values (2.9 MiB: three chunks), and the WAL released below it.
    await waitFor('the leader to snapshot and release its WAL', () => leader.log!.status().snapshotIndex >= 30 && leader.log!.status().firstIndex > 30);
    const { term } = leader.log!.status();
    const leaderChanges: Array<{ id: number; term: number }> = [];
    leader.log!.on('leader', (e) => leaderChanges.push(e));
    const last = leader.log!.status().commit;
    await open(lagging, { snapshots: slowSpools(await FileSnapshotStore.open(join(lagging.dir, 'snapshots'))) });
    const lost: number[] = [];
    lagging.log!.on('leader', (e) => lost.push(e.id));
    await waitFor('the slow follower to install the snapshot and catch up', () => (lagging.log?.status().applied ?? 0) >= last, 60_000);
    expect(lagging.log!.status().snapshotIndex).toBeGreaterThan(0);
    expect(lagging.kv.size).toBe(30);
    // Its stores kept it from reading the leader's heartbeats for longer than its election timeout,
    // more than once: it lost its leader and asked for (pre-)votes, which no one granted.
    expect(slowWrites).toBeGreaterThanOrEqual(3);
    expect(lost).toContain(0);
    expect(leaderChanges).toEqual([]);
    expect(leader.log!.status()).toMatchObject({ role: 'leader', term });
    for (const n of nodes) expect(n.log!.status().term, `node ${n.id}`).toBe(term);
  }, 120_000);

  it('installs a snapshot received while a membership change waits for its commit to be durable', async () => {
    // A Ready that applies a membership change waits for its write to be durable, and the
    // Readies after it wait too. A snapshot raft takes meanwhile comes out in one of those:
    // its spool must stay until then, or the install finds no file and the node stops.
    const t = tempDir();
    cleanups.push(t.cleanup);
    const snapshots = await FileSnapshotStore.open(join(t.dir, 'snapshots'));
    const wal = await Wal.open(join(t.dir, 'wal'));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let appends = 0;
    // The WAL's writes complete, but the second (the one that makes the membership change's
    // commit durable: raft hands out a committed entry once the entry itself is written) is
    // reported durable only once the test says so.
    const held = new Proxy(wal, {
      get: (target, prop) => {
        if (prop === 'append')
          return async (...args: Parameters<LogStore['append']>): Promise<void> => {
            const second = appends++ === 1;
            await target.append(...args);
            if (second) await gate;
          };
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
      set: (target, prop, value) => Reflect.set(target, prop, value, target),
    }) as LogStore;
    const { transport, deliver } = inertTransport();
    const log = await ReplicatedLog.open(
      { dataDir: t.dir, id: 1, peers: { 1: '127.0.0.1:1', 2: '127.0.0.1:2' }, clusterSecret: SECRET },
      { transport, snapshots, wal: held },
    );
    cleanups.push(() => log.close());
    const base = { from: 2, to: 1, term: 2, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0 };
    // The leader's first entry adds a learner; the next message commits it.
    const add = encodeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 3, context: new TextEncoder().encode('127.0.0.1:3') });
    deliver({ ...base, type: MessageType.MsgApp, entries: [{ index: 1, term: 2, type: EntryType.ConfChange, data: add }] });
    await waitFor('the membership change to be written', () => log.status().lastIndex === 1 && appends === 1);
    deliver({ ...base, type: MessageType.MsgApp, logTerm: 2, index: 1, commit: 1 });
    await waitFor('its commit to be written', () => appends === 2);
    // Then a snapshot past it, while that write is not yet durable.
    const meta = { index: 500, term: 2, conf: { voters: [1, 2], learners: [3] } };
    const members: Array<[number, string]> = [
      [1, '127.0.0.1:1'],
      [2, '127.0.0.1:2'],
      [3, '127.0.0.1:3'],
    ];
    const chunks: Uint8Array[] = [];
    for await (const c of encodeSnapshotData(members, (async function* () {})())) chunks.push(c);
    // The file as a leader sends it, received into a spool as the transport does.
    const leader = await FileSnapshotStore.open(join(t.dir, 'leader'));
    await leader.save({ meta, data: Buffer.concat(chunks) });
    const out = await leader.open({ meta, data: new Uint8Array(0) });
    const spool = await snapshots.spool(meta, out.size);
    for await (const c of out.chunks) await spool.write(c);
    const ref = await spool.finish();
    deliver({ ...base, type: MessageType.MsgSnap, index: 0, snapshot: { meta, data: ref } });
    release();
    await waitFor('the snapshot to be installed', () => log.status().applied === 500 || log.status().role === 'fatal');
    expect(log.status().fatal?.message).toBeUndefined();
    expect(log.status()).toMatchObject({ snapshotIndex: 500, applied: 500, role: 'follower' });
    expect(spools(t.dir)).toEqual([]);
  });

  it('deletes a received snapshot that raft refuses (here: from a node that is not a member)', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const snapshots = await FileSnapshotStore.open(join(t.dir, 'snapshots'));
    const { transport, deliver } = inertTransport();
    const log = await ReplicatedLog.open({ dataDir: t.dir, id: 1 }, { transport, snapshots });
    cleanups.push(() => log.close());
    // A whole, checked spool, as the transport hands one over.
    const other = await FileSnapshotStore.open(join(t.dir, 'elsewhere'));
    const meta = { index: 500, term: 7, conf: { voters: [9], learners: [] } };
    await other.save({ meta, data: Buffer.from('not for this node') });
    const out = await other.open({ meta, data: new Uint8Array(0) });
    const spool = await snapshots.spool(meta, out.size);
    for await (const c of out.chunks) await spool.write(c);
    const ref = await spool.finish();
    expect(spools(t.dir)).toHaveLength(1);
    const m: Message = {
      type: MessageType.MsgSnap,
      from: 9,
      to: 1,
      term: 7,
      logTerm: 0,
      index: 0,
      commit: 0,
      entries: [],
      reject: false,
      rejectHint: 0,
      snapshot: { meta, data: ref },
    };
    deliver(m);
    await waitFor('the refused spool to be deleted', () => spools(t.dir).length === 0);
    expect(log.status().snapshotIndex).toBe(0);
  });

  it("refuses a received snapshot whose data the log cannot read before raft sees it: the node's log and state stay", async () => {
    const { t, peers, log, peer, sendSnapshot } = await ledByRawPeer();
    // A whole snapshot file, its checksum good, whose data is no raftlog snapshot data.
    await sendSnapshot({ index: 50, term: 1000, conf: { voters: [1, 2], learners: [] } }, Buffer.from('not a raftlog snapshot'));
    await waitFor('the stream to be refused, or the node to stop', () => refusal(peer) !== undefined || log.status().role === 'fatal');
    expect(log.status().role).not.toBe('fatal');
    expect(refusal(peer)).toBe('TRANSPORT_SNAPSHOT_REJECTED');
    expect(log.status().snapshotIndex).toBe(0);
    await waitFor('the spool to be deleted', () => spools(t.dir).length === 0);
    await log.close();
    const again = await ReplicatedLog.open({ dataDir: t.dir, id: 1, peers, clusterSecret: SECRET, tickMs: 10, electionTicks: 300 });
    cleanups.push(() => again.close());
    expect(again.status().snapshotIndex).toBe(0);
  });

  it('deletes a received snapshot below the one the node holds, and keeps its own', async () => {
    const { t, log, sendSnapshot } = await ledByRawPeer();
    const conf = { voters: [1, 2], learners: [] };
    const data = async (): Promise<Buffer> => {
      const parts: Uint8Array[] = [];
      for await (const c of encodeSnapshotData([], (async function* () {})())) parts.push(c);
      return Buffer.concat(parts);
    };
    await sendSnapshot({ index: 50, term: 1000, conf }, await data(), 1);
    await waitFor('the snapshot at 50 to be installed', () => log.status().snapshotIndex === 50 && log.status().applied === 50);
    await sendSnapshot({ index: 40, term: 1000, conf }, await data(), 2, () => waitFor('the older stream to be spooled', () => spools(t.dir).length === 1));
    await waitFor('the older spool to be deleted', () => spools(t.dir).length === 0);
    expect(log.status()).toMatchObject({ role: 'follower', snapshotIndex: 50, applied: 50 });
    expect(readdirSync(join(t.dir, 'snapshots')).filter((n) => n.startsWith('snap-'))).toEqual(['snap-0000000000000050-1000.snap']);
  });
});

describe("a received snapshot past a member's removal", () => {
  it('forgets the removed member before the snapshot is the restart point: a crash after it loses no forgetting', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const peers = { 1: '127.0.0.1:1', 2: '127.0.0.1:2' };
    // Node 3, added later, was met and recorded before this node fell behind.
    writeFileSync(join(t.dir, 'peer-instances'), `3 ${'ab'.repeat(16)} 1\n`);
    const wal = await Wal.open(join(t.dir, 'wal'));
    // A crash right after the WAL records the snapshot: a forgetting not durable by then is lost.
    let crashed = false;
    const saveMarker = wal.saveSnapshot.bind(wal);
    wal.saveSnapshot = async (marker, options) => {
      await saveMarker(marker, options);
      crashed = true;
    };
    const file = await PeerInstanceFile.open(t.dir);
    const peerInstances = {
      forget: (ids: Iterable<number>, index: number): Promise<void> => (crashed ? new Promise<void>(() => undefined) : file.forget(ids, index)),
      settled: () => file.settled(),
    };
    const snapshots = await FileSnapshotStore.open(join(t.dir, 'snapshots'));
    const { transport, deliver } = inertTransport();
    const log = await ReplicatedLog.open({ dataDir: t.dir, id: 1, peers, clusterSecret: SECRET }, { transport, snapshots, wal, peerInstances });
    const base = { from: 2, to: 1, term: 2, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0 };
    const add = encodeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: 3, context: new TextEncoder().encode('127.0.0.1:3') });
    deliver({ ...base, type: MessageType.MsgApp, entries: [{ index: 1, term: 2, type: EntryType.ConfChange, data: add }] });
    deliver({ ...base, type: MessageType.MsgApp, logTerm: 2, index: 1, commit: 1 });
    await waitFor('node 3 to be added', () => log.status().members[3] !== undefined);
    // The leader removed node 3 since, and sends a snapshot past the removal.
    const meta = { index: 500, term: 2, conf: { voters: [1, 2], learners: [] } };
    const chunks: Uint8Array[] = [];
    for await (const c of encodeSnapshotData(
      Object.entries(peers).map(([id, a]) => [Number(id), a] as [number, string]),
      (async function* () {})(),
    ))
      chunks.push(c);
    const leader = await FileSnapshotStore.open(join(t.dir, 'leader'));
    await leader.save({ meta, data: Buffer.concat(chunks) });
    const out = await leader.open({ meta, data: new Uint8Array(0) });
    const spool = await snapshots.spool(meta, out.size);
    for await (const c of out.chunks) await spool.write(c);
    deliver({ ...base, type: MessageType.MsgSnap, snapshot: { meta, data: await spool.finish() } });
    await waitFor('the snapshot to be installed', () => log.status().applied === 500 || log.status().role === 'fatal');
    expect(log.status().members[3]).toBeUndefined();
    await log.close();
    // Opened again from that snapshot, the node never applies the removal: nothing forgets node 3 after this.
    const again = await ReplicatedLog.open({ dataDir: t.dir, id: 1, peers, clusterSecret: SECRET }, { transport: inertTransport().transport });
    await again.close();
    expect((await readPeerInstances(t.dir)).has(3)).toBe(false);
  });
});

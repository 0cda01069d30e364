// Raft paper §7: log compaction. Snapshots in MemoryStorage, MsgSnap to a
// follower whose next entry was compacted away, restore, reportSnapshot.
import { describe, expect, it } from 'vitest';
import { Network, drain, ents, enc, msg, newNode } from './network.js';
import { MessageType, ProgressStateType, type Entry, type Snapshot } from '../../src/raft/types.js';
import {
  CompactedError,
  EntriesPendingError,
  MemoryStorage,
  SnapOutOfDateError,
  SnapshotTemporarilyUnavailableError,
  UnavailableError,
} from '../../src/raft/index.js';

describe('MemoryStorage', () => {
  function filled(): MemoryStorage {
    const s = MemoryStorage.withConf([1]);
    s.append(ents(1, [1, 1, 2, 2, 3]));
    return s;
  }
  const errors: { name: string; f: (s: MemoryStorage) => unknown; err: new (...a: never[]) => Error; code: string }[] = [
    { name: 'term below the snapshot', f: (s) => s.term(1), err: CompactedError, code: 'RAFT_COMPACTED' },
    { name: 'term beyond the end', f: (s) => s.term(6), err: UnavailableError, code: 'RAFT_UNAVAILABLE' },
    { name: 'entries from a compacted index', f: (s) => s.entries(2, 4, 100), err: CompactedError, code: 'RAFT_COMPACTED' },
    { name: 'entries beyond the end', f: (s) => s.entries(4, 7, 100), err: UnavailableError, code: 'RAFT_UNAVAILABLE' },
    { name: 'compact twice at the same index', f: (s) => s.compact(2), err: CompactedError, code: 'RAFT_COMPACTED' },
    {
      name: 'an older snapshot',
      f: (s) => s.createSnapshot(2, { voters: [1], learners: [] }, enc('')),
      err: SnapOutOfDateError,
      code: 'RAFT_SNAP_OUT_OF_DATE',
    },
  ];
  for (const e of errors) {
    it(`refuses ${e.name} with ${e.code}`, () => {
      const s = filled();
      s.createSnapshot(2, { voters: [1], learners: [] }, enc('sm@2'));
      s.compact(2);
      expect(() => e.f(s)).toThrow(e.err);
      expect(() => e.f(s)).toThrow(expect.objectContaining({ code: e.code }));
      // Nothing was lost by the failed call.
      expect([s.firstIndex(), s.lastIndex(), s.term(2), s.term(5)]).toEqual([3, 5, 1, 3]);
    });
  }

  it('appends with suffix overwrite and keeps the snapshot term at firstIndex-1', () => {
    const s = filled();
    s.append(ents(4, [4, 4, 4]));
    expect([3, 4, 5, 6].map((i) => s.term(i))).toEqual([2, 4, 4, 4]);
    s.createSnapshot(4, { voters: [1], learners: [] }, enc('x'));
    s.compact(4);
    expect(s.firstIndex()).toBe(5);
    expect(s.term(4)).toBe(4);
    expect(s.entries(5, 7, 1000).map((e) => e.index)).toEqual([5, 6]);
  });

  it('setConfState changes what a restart sees, never the snapshot of an earlier index', () => {
    const s = filled();
    s.createSnapshot(3, { voters: [1], learners: [] }, enc('sm@3'));
    s.setConfState({ voters: [1, 2], learners: [3] });
    expect(s.initialState().confState).toEqual({ voters: [1, 2], learners: [3] });
    expect(s.snapshot().meta.conf).toEqual({ voters: [1], learners: [] });
    s.createSnapshot(5, { voters: [1, 2], learners: [] }, enc('sm@5'));
    expect(s.initialState().confState).toEqual({ voters: [1, 2], learners: [] });
  });

  it('limits entries() by size but returns at least one', () => {
    const s = MemoryStorage.withConf([1]);
    s.append(ents(1, [1, 1, 1]).map((e) => ({ ...e, data: new Uint8Array(100) })));
    expect(s.entries(1, 4, 1).length).toBe(1);
    expect(s.entries(1, 4, 250).length).toBe(2);
  });

  it('applySnapshot replaces the log and moves commit', () => {
    const s = filled();
    s.applySnapshot({ meta: { index: 10, term: 5, conf: { voters: [1, 2], learners: [] } }, data: enc('sm') });
    expect([s.firstIndex(), s.lastIndex(), s.term(10)]).toEqual([11, 10, 5]);
    expect(s.initialState().confState.voters).toEqual([1, 2]);
    expect(s.hardStateNow().commit).toBe(10);
  });
});

describe('§7 snapshots', () => {
  it('a follower whose next entry was compacted away gets a snapshot, restores, and catches up', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
    net.snapshotAndCompact(1);
    net.propose(1, 'tail');
    net.heal();
    net.tickAll(3);
    expect(net.countDelivered(MessageType.MsgSnap)).toBe(1);
    const p3 = net.peer(3);
    expect(p3.restoredFrom).toBe(11);
    expect(p3.applied).toEqual([...Array.from({ length: 10 }, (_, i) => `v${i}`), 'tail']);
    expect(p3.storage.firstIndex()).toBe(12);
    expect(net.node(1).status().progress![3]).toMatchObject({ match: 12, state: ProgressStateType.ProgressStateReplicate });
  });

  it('nothing more is sent while the snapshot is in flight; a failed report makes the leader retry', () => {
    const net = new Network([1, 2, 3]);
    net.autoReportSnapshot = false;
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.snapshotAndCompact(1);
    net.heal();
    // The snapshot is lost on the way.
    net.addFilter((m) => m.type === MessageType.MsgSnap);
    net.tickAll(3);
    const pr = net.node(1).status().progress![3]!;
    expect(pr.state).toBe(ProgressStateType.ProgressStateSnapshot);
    expect(pr.paused).toBe(true);
    const sent = net.log.filter((m) => m.to === 3 && m.type === MessageType.MsgApp).length;
    net.tickAll(5);
    expect(net.log.filter((m) => m.to === 3 && m.type === MessageType.MsgApp).length).toBe(sent);
    net.node(1).reportSnapshot(3, false);
    expect(net.node(1).status().progress![3]!.state).toBe(ProgressStateType.ProgressStateProbe);
    net.heal();
    net.autoReportSnapshot = true;
    net.tickAll(3);
    expect(net.peer(3).applied).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  it('a snapshot older than the commit index is ignored and answered with the commit index', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    s.append(ents(1, [1, 1, 1]));
    s.setHardState({ term: 1, vote: 0, commit: 3 });
    const n = newNode(2, s);
    const snap: Snapshot = { meta: { index: 2, term: 1, conf: { voters: [1, 2, 3], learners: [] } }, data: enc('old') };
    n.step(msg({ type: MessageType.MsgHeartbeat, from: 1, to: 2, term: 1 })); // a snapshot comes only from the known leader
    n.step(msg({ type: MessageType.MsgSnap, from: 1, to: 2, term: 1, snapshot: snap }));
    const rd = drain(n, s);
    expect(rd.snapshot).toBeUndefined();
    expect(rd.messagesAfterPersist.map((m) => [m.type, m.index])).toEqual([[MessageType.MsgAppResp, 3]]);
  });

  it('a snapshot whose last entry the follower already has only moves commit', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    s.append(ents(1, [1, 1, 1, 1]));
    const n = newNode(2, s);
    const snap: Snapshot = { meta: { index: 3, term: 1, conf: { voters: [1, 2, 3], learners: [] } }, data: enc('sm') };
    n.step(msg({ type: MessageType.MsgHeartbeat, from: 1, to: 2, term: 1 })); // a snapshot comes only from the known leader
    n.step(msg({ type: MessageType.MsgSnap, from: 1, to: 2, term: 1, snapshot: snap }));
    const rd = drain(n, s);
    expect(rd.snapshot).toBeUndefined();
    expect(n.status().commit).toBe(3);
    expect(s.lastIndex()).toBe(4);
  });

  it('restored snapshot: the Ready carries it, committed entries wait for it, applied moves to it', () => {
    const s = MemoryStorage.withConf([1, 2, 3]);
    const n = newNode(2, s);
    const snap: Snapshot = { meta: { index: 7, term: 2, conf: { voters: [1, 2, 3], learners: [] } }, data: enc('sm@7') };
    n.step(msg({ type: MessageType.MsgHeartbeat, from: 1, to: 2, term: 2 })); // a snapshot comes only from the known leader
    n.step(msg({ type: MessageType.MsgSnap, from: 1, to: 2, term: 2, snapshot: snap }));
    n.step(msg({ type: MessageType.MsgApp, from: 1, to: 2, term: 2, index: 7, logTerm: 2, commit: 8, entries: ents(8, [2]) }));
    const rd = n.ready();
    n.advance(rd);
    expect(rd.snapshot?.meta.index).toBe(7);
    expect(rd.entries.map((e) => e.index)).toEqual([8]);
    expect(rd.committedEntries).toEqual([]);
    s.applySnapshot(rd.snapshot!);
    s.append(rd.entries);
    n.persisted(rd);
    expect(n.status().applied).toBe(7);
    expect(n.ready().committedEntries.map((e) => e.index)).toEqual([8]);
  });

  it('a snapshot temporarily unavailable in storage is retried later', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.snapshotAndCompact(1);
    const storage = net.peer(1).storage;
    const real = storage.snapshot.bind(storage);
    let busy = true;
    storage.snapshot = () => {
      if (busy) throw new SnapshotTemporarilyUnavailableError();
      return real();
    };
    net.heal();
    net.tickAll(3);
    expect(net.countDelivered(MessageType.MsgSnap)).toBe(0);
    busy = false;
    net.tickAll(3);
    expect(net.countDelivered(MessageType.MsgSnap)).toBe(1);
    expect(net.peer(3).applied).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  it('entries storage is still reading (EntriesPendingError) go to the follower when RawNode.entriesFetched() says they are read, and not before', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(3);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    const storage: MemoryStorage & { entriesToSend?: (lo: number, hi: number, max: number) => Entry[] } = net.peer(1).storage;
    const asked: number[] = [];
    let reading = true;
    storage.entriesToSend = (lo, hi, max) => {
      asked.push(lo);
      if (reading) throw new EntriesPendingError(lo);
      return storage.entries(lo, hi, max);
    };
    const before = net.log.length;
    net.heal();
    net.tickAll(3); // heartbeats, their answers, and probes of node 3
    expect(asked.length).toBeGreaterThan(0);
    expect(net.log.slice(before).filter((m) => m.type === MessageType.MsgApp && m.entries.length > 0)).toEqual([]);
    expect(net.peer(3).applied).toEqual([]);

    // Only a leader sends: a follower told the same does nothing.
    net.node(2).entriesFetched();
    expect(net.node(2).hasReady()).toBe(false);

    reading = false;
    net.node(1).entriesFetched();
    const sent = net.handleReady(1)!.messages;
    // Entries for the follower that waited for them, and no empty message to the one that did not.
    expect(sent.map((m) => [m.type, m.to])).toEqual([[MessageType.MsgApp, 3]]);
    expect(sent[0]!.entries.length).toBeGreaterThan(0);
    net.stabilize();
    expect(net.peer(3).applied).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  it('a restarted node resumes from its snapshot and durable log', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
    net.snapshotAndCompact(2);
    const st = net.node(2).status();
    const again = newNode(2, net.peer(2).storage, { applied: st.applied });
    expect(again.status()).toMatchObject({ term: st.term, commit: st.commit, applied: st.applied });
    expect(again.hasReady()).toBe(false);
  });
});

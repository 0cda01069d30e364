// The storage side of joint consensus and of the catch-up window: a snapshot
// file keeps the joint parts of its configuration (and older files without them
// still read), a snapshot stream header carries them, and a local snapshot
// leaves its last entries readable when asked to.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EntryType, MessageType, type ConfState, type Entry, type Ready } from '../../src/raft/types.js';
import { CompactedError } from '../../src/raft/errors.js';
import { RaftStorage } from '../../src/storage/raft-storage.js';
import { FileSnapshotStore, MemorySnapshotStore } from '../../src/storage/snapshot-store.js';
import { unpack } from 'msgpackr';
import { decodeFrame, encodeChunk, newPacker } from '../../src/transport/wire.js';
import { MalformedFrameError } from '../../src/transport/errors.js';
import { Wal } from '../../src/wal/index.js';

const joint: ConfState = { voters: [1, 2, 4], learners: [7], votersOutgoing: [1, 2, 3], learnersNext: [3], autoLeave: true };

function ready(p: Partial<Ready>): Ready {
  return { readStates: [], entries: [], committedEntries: [], messages: [], messagesAfterPersist: [], mustSync: true, ...p };
}

function entries(lo: number, hi: number, term: number): Entry[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => ({ index: lo + i, term, type: EntryType.Normal, data: Buffer.from(`e${lo + i}`) }));
}

const dirs: string[] = [];
const dir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'raftlog-joint-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('snapshot files and joint configurations', () => {
  it('a joint configuration survives a save and a load', async () => {
    const store = await FileSnapshotStore.open(dir());
    await store.save({ meta: { index: 9, term: 2, conf: joint }, data: Buffer.from('x') });
    expect((await store.load(9, 2)).meta.conf).toEqual(joint);
  });

  it('a plain configuration is written as before (no joint fields) and reads back the same', async () => {
    const d = dir();
    const store = await FileSnapshotStore.open(d);
    await store.save({ meta: { index: 9, term: 2, conf: { voters: [1, 2, 3], learners: [] } }, data: Buffer.from('x') });
    const file = readFileSync(join(d, 'snap-0000000000000009-2.snap'));
    expect(file.toString('latin1')).not.toMatch(/votersOutgoing|learnersNext|autoLeave/);
    expect((await store.load(9, 2)).meta.conf).toEqual({ voters: [1, 2, 3], learners: [] });
  });

  it('an inconsistent joint configuration is corruption, not state to use', async () => {
    const d = dir();
    const store = await FileSnapshotStore.open(d);
    // learnersNext must be outgoing voters; the file is otherwise whole (its checksum is rewritten to match).
    const bad = { ...joint, learnersNext: [9] };
    await store.save({ meta: { index: 9, term: 2, conf: bad }, data: Buffer.from('x') });
    await expect(store.load(9, 2)).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT' });
  });
});

describe('snapshot stream headers and joint configurations', () => {
  const p = newPacker();
  const message = { type: MessageType.MsgSnap, to: 2, from: 1, term: 3, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };

  it('carries the joint parts, and keeps the five-field header for a plain configuration', () => {
    for (const conf of [joint, { voters: [1, 2], learners: [3] }]) {
      const frame = decodeFrame(Buffer.from(encodeChunk(p, 1, 0, 4, new Uint8Array(4), { message, meta: { index: 9, term: 2, conf } })));
      expect(frame).toMatchObject({ kind: 'chunk', header: { meta: { index: 9, term: 2, conf } } });
    }
    const plain = unpack(
      Buffer.from(encodeChunk(p, 1, 0, 4, new Uint8Array(4), { message, meta: { index: 9, term: 2, conf: { voters: [1], learners: [] } } })),
    ) as unknown[];
    expect((plain[5] as unknown[]).length).toBe(5);
  });

  it('refuses malformed joint parts', () => {
    const good = unpack(Buffer.from(encodeChunk(p, 1, 0, 4, new Uint8Array(4), { message, meta: { index: 9, term: 2, conf: joint } }))) as unknown[];
    const header = good[5] as unknown[];
    const variants: unknown[][] = [[...header.slice(0, 7), 'yes'], [...header.slice(0, 5), 'not a list', [], false], [...header.slice(0, 6)]];
    for (const h of variants) {
      const bytes = p.pack([good[0], good[1], good[2], good[3], good[4], h]);
      expect(() => decodeFrame(Buffer.from(bytes))).toThrow(MalformedFrameError);
    }
  });
});

describe('the catch-up window', () => {
  async function withSnapshot(keep: number): Promise<{ storage: RaftStorage; wal: Wal }> {
    const d = dir();
    const wal = await Wal.open(join(d, 'wal'), { sync: 'none' });
    const storage = await RaftStorage.open(wal, new MemorySnapshotStore(), { voters: [1], learners: [] });
    await storage.persist(ready({ entries: [...entries(1, 5, 1), ...entries(6, 40, 2)], hardState: { term: 2, vote: 1, commit: 40 } }));
    await storage.compact(30, 2, { voters: [1], learners: [] }, Buffer.from('state'), keep);
    return { storage, wal };
  }

  it('keeps the last entries below a local snapshot readable', async () => {
    const { storage, wal } = await withSnapshot(10);
    expect(storage.snapshot().meta.index).toBe(30);
    expect(wal.firstIndex).toBe(31); // the WAL itself released them
    expect(storage.firstIndex()).toBe(21);
    expect(storage.term(20)).toBe(2);
    expect(storage.term(25)).toBe(2);
    expect(storage.entries(21, 41, Infinity).map((e) => e.index)).toEqual(Array.from({ length: 10 }, (_, i) => 21 + i));
    expect(storage.entries(31, 41, Infinity).map((e) => e.index)).toEqual(Array.from({ length: 10 }, (_, i) => 31 + i));
    expect(Buffer.from(storage.entries(25, 26, Infinity)[0]!.data).toString()).toBe('e25');
    expect(() => storage.entries(20, 25, Infinity)).toThrow(CompactedError);
    expect(() => storage.term(19)).toThrow(CompactedError);
    await wal.close();
  });

  it('crosses terms and an older snapshot: the window reaches back to the previous one', async () => {
    const { storage, wal } = await withSnapshot(10);
    await storage.persist(ready({ entries: entries(41, 60, 3), hardState: { term: 3, vote: 1, commit: 60 } }));
    await storage.compact(45, 3, { voters: [1], learners: [] }, Buffer.from('state'), 30);
    // 30 back from 45 is 16, but only 21.. was readable.
    expect(storage.firstIndex()).toBe(21);
    expect(storage.entries(21, 46, Infinity).map((e) => e.term)).toEqual([...Array<number>(20).fill(2), ...Array<number>(5).fill(3)]);
    expect(storage.term(40)).toBe(2);
    expect(storage.term(41)).toBe(3);
    await wal.close();
  });

  it('holds the newest entries within 8 MiB, and reads no older one to find them', async () => {
    const d = dir();
    const wal = await Wal.open(join(d, 'wal'), { sync: 'none' });
    const storage = await RaftStorage.open(wal, new MemorySnapshotStore(), { voters: [1], learners: [] });
    const MiB = 1024 * 1024;
    const big = Array.from({ length: 20 }, (_, i) => ({ index: i + 1, term: 1, type: EntryType.Normal, data: Buffer.alloc(MiB, i + 1) }));
    await storage.persist(ready({ entries: big, hardState: { term: 1, vote: 1, commit: 20 } }));
    const read: number[] = [];
    const entriesSync = wal.entriesSync.bind(wal);
    wal.entriesSync = (lo, hi, maxBytes) => {
      read.push(lo);
      return entriesSync(lo, hi, maxBytes);
    };
    // Off the event loop, whatever the WAL's cache no longer holds.
    const entries = wal.entries.bind(wal);
    wal.entries = (lo, hi, maxBytes) => {
      read.push(lo);
      return entries(lo, hi, maxBytes);
    };
    // The window copies what the WAL holds in memory through copyCached.
    const copyCached = wal.copyCached.bind(wal);
    wal.copyCached = (lo, hi, copy) => {
      read.push(lo);
      return copyCached(lo, hi, copy);
    };
    await storage.compact(20, 1, { voters: [1], learners: [] }, Buffer.from('state'), 15);
    expect(storage.firstIndex()).toBe(13); // 13..20: 8 MiB; 15 entries would be 15 MiB
    expect(Math.min(...read)).toBe(13);
    expect(storage.entries(13, 21, Infinity).map((e) => e.data[0])).toEqual([13, 14, 15, 16, 17, 18, 19, 20]);
    expect(storage.term(12)).toBe(1);
    await wal.close();
  });

  it('0 keeps nothing: the log starts right after the snapshot', async () => {
    const { storage, wal } = await withSnapshot(0);
    expect(storage.firstIndex()).toBe(31);
    expect(() => storage.entries(30, 31, Infinity)).toThrow(CompactedError);
    await wal.close();
  });

  it('a received snapshot drops the window', async () => {
    const { storage, wal } = await withSnapshot(10);
    await storage.persist(
      ready({
        snapshot: { meta: { index: 100, term: 4, conf: { voters: [1], learners: [] } }, data: Buffer.from('s') },
        hardState: { term: 4, vote: 0, commit: 100 },
      }),
    );
    expect(storage.firstIndex()).toBe(101);
    await wal.close();
  });

  it('is in memory only: after a reopen the log starts at the snapshot', async () => {
    const d = dir();
    let wal = await Wal.open(join(d, 'wal'), { sync: 'none' });
    const snaps = await FileSnapshotStore.open(join(d, 'snaps'));
    let storage = await RaftStorage.open(wal, snaps, { voters: [1], learners: [] });
    await storage.persist(ready({ entries: entries(1, 40, 1), hardState: { term: 1, vote: 1, commit: 40 } }));
    await storage.compact(30, 1, { voters: [1], learners: [] }, Buffer.from('state'), 10);
    expect(storage.firstIndex()).toBe(21);
    await storage.flush();
    await wal.close();
    wal = await Wal.open(join(d, 'wal'), { sync: 'none' });
    storage = await RaftStorage.open(wal, snaps, { voters: [1], learners: [] });
    expect(storage.firstIndex()).toBe(31);
    await wal.close();
  });
});

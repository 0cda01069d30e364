import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EntryType, MAX_INDEX, MAX_TERM, type Entry, type HardState, type Ready, type Snapshot } from '../../src/raft/types.js';
import type { LogStore } from '../../src/storage/log-store.js';
import { CompactedError, EntriesPendingError } from '../../src/raft/errors.js';
import { MAX_CATCH_UP_READS } from '../../src/storage/catch-up-reads.js';
import { RaftStorage } from '../../src/storage/raft-storage.js';
import { FileSnapshotStore, MemorySnapshotStore } from '../../src/storage/snapshot-store.js';
import { Wal } from '../../src/wal/index.js';
import { countReadsOnCaller } from '../wal/helpers.js';

const conf = { voters: [1, 2, 3], learners: [] };

function ready(p: Partial<Ready>): Ready {
  return { readStates: [], entries: [], committedEntries: [], messages: [], messagesAfterPersist: [], mustSync: true, ...p };
}

function entries(lo: number, hi: number, term: number): Entry[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => ({ index: lo + i, term, type: EntryType.Normal, data: Buffer.from(`e${lo + i}`) }));
}

/** A LogStore that checks, as the WAL does, that each append continues the last one handed to it. */
function strictMemoryLog(): LogStore & { order: number[] } {
  let last = 0;
  const order: number[] = [];
  return {
    order,
    hardState: { term: 0, vote: 0, commit: 0 },
    snapshot: null,
    firstIndex: 1,
    get lastIndex() {
      return last;
    },
    async append(es) {
      if (es.length > 0) {
        if (es[0]!.index > last + 1) throw new Error(`gap: ${es[0]!.index} after ${last}`);
        last = es[es.length - 1]!.index;
        order.push(es[0]!.index);
      }
    },
    entriesSync: () => [],
    entries: async () => [],
    get cachedFrom() {
      return last + 1;
    },
    dataLength: () => 0,
    term: () => 0,
    async saveSnapshot(m, o) {
      if (o?.discardLog) last = m.index;
    },
    async releaseTo() {},
    async close() {},
  };
}

describe('RaftStorage hard state', () => {
  /** The hard states handed to the log, in order. */
  function recordingLog(): LogStore & { written: HardState[] } {
    const log = strictMemoryLog();
    const written: HardState[] = [];
    const append = log.append.bind(log);
    return Object.assign(log, {
      written,
      append: (es: Entry[], hs?: HardState) => {
        if (hs !== undefined) written.push(hs);
        return append(es, hs);
      },
    });
  }
  const confEntry: Entry = { index: 5, term: 1, type: EntryType.ConfChange, data: Buffer.from([1]) };

  it('a commit-only hard state waits for the next write: losing it only delays applying', async () => {
    const log = recordingLog();
    const storage = await RaftStorage.open(log, new MemorySnapshotStore(), conf);
    await storage.persist(ready({ hardState: { term: 1, vote: 1, commit: 4 }, mustSync: false }));
    expect(log.written).toEqual([]);
    await storage.persist(ready({ entries: entries(1, 1, 1), mustSync: true }));
    expect(log.written).toEqual([{ term: 1, vote: 1, commit: 4 }]);
  });

  it('the commit of a membership change is written before it is applied, deferred or not', async () => {
    const log = recordingLog();
    const storage = await RaftStorage.open(log, new MemorySnapshotStore(), conf);
    await storage.persist(ready({ hardState: { term: 1, vote: 1, commit: 5 }, committedEntries: [confEntry], mustSync: false }));
    expect(log.written).toEqual([{ term: 1, vote: 1, commit: 5 }]);
    // The commit moved in one Ready, the change is handed out in a later one: the deferred state goes with it.
    await storage.persist(ready({ hardState: { term: 1, vote: 1, commit: 6 }, mustSync: false }));
    await storage.persist(ready({ committedEntries: [{ ...confEntry, index: 6 }], mustSync: false }));
    expect(log.written).toEqual([
      { term: 1, vote: 1, commit: 5 },
      { term: 1, vote: 1, commit: 6 },
    ]);
  });
});

describe('RaftStorage write ordering', () => {
  // A write that arrives just as a received snapshot finishes installing must still
  // queue behind the writes chained after that snapshot. Try every microtask depth.
  for (let depth = 0; depth < 8; depth++) {
    it(`keeps appends in order when a write lands ${depth} microtasks after a snapshot install`, async () => {
      const log = strictMemoryLog();
      const snapshots = new MemorySnapshotStore();
      const storage = await RaftStorage.open(log, snapshots, conf);
      let late: Promise<void> | undefined;
      const prune = snapshots.prune.bind(snapshots);
      snapshots.prune = async (i) => {
        await prune(i);
        let k = depth;
        const hop = (): void => {
          if (k-- > 0) queueMicrotask(hop);
          else late = storage.persist(ready({ entries: entries(13, 14, 2) }));
        };
        queueMicrotask(hop);
      };
      const snap: Snapshot = { meta: { index: 10, term: 2, conf }, data: Buffer.from('s') };
      await Promise.all([storage.persist(ready({ snapshot: snap })), storage.persist(ready({ entries: entries(11, 12, 2) }))]);
      for (let i = 0; i < 20 && late === undefined; i++) await Promise.resolve();
      await late;
      expect(log.order).toEqual([11, 13]);
    });
  }
});

describe('RaftStorage over the native WAL', () => {
  const dirs: string[] = [];
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'raftlog-storage-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('keeps pipelined writes in Ready order around a received snapshot', async () => {
    const wal = await Wal.open(join(dir(), 'wal'), { sync: 'none' });
    const storage = await RaftStorage.open(wal, new MemorySnapshotStore(), conf);
    await storage.persist(ready({ entries: entries(1, 5, 1), hardState: { term: 1, vote: 1, commit: 3 } }));
    const snap: Snapshot = { meta: { index: 20, term: 2, conf }, data: Buffer.from('state') };
    const writes = [
      storage.persist(ready({ snapshot: snap, hardState: { term: 2, vote: 0, commit: 20 } })),
      storage.persist(ready({ entries: entries(21, 22, 2) })),
    ];
    // More writes arrive on later microtasks, while the install is still running.
    let next = 23;
    for (let i = 0; i < 20; i++) {
      await Promise.resolve();
      writes.push(storage.persist(ready({ entries: entries(next, next + 1, 2) })));
      next += 2;
    }
    await Promise.all(writes);
    expect(storage.firstIndex()).toBe(21);
    expect(storage.lastIndex()).toBe(next - 1);
    expect(storage.term(20)).toBe(2);
    expect(storage.entries(21, next, Infinity).map((e) => e.index)).toEqual(Array.from({ length: next - 21 }, (_, i) => 21 + i));
    await wal.close();
  });

  it('a local snapshot does not hold up appends, and survives a reopen with its file', async () => {
    const d = dir();
    let wal = await Wal.open(join(d, 'wal'), { sync: 'none' });
    let storage = await RaftStorage.open(wal, await FileSnapshotStore.open(join(d, 'snap')), conf);
    await storage.persist(ready({ entries: entries(1, 10, 1), hardState: { term: 1, vote: 1, commit: 10 } }));
    const compacting = storage.compact(8, 1, conf, Buffer.from('sm@8'));
    const appending = storage.persist(ready({ entries: entries(11, 12, 1) }));
    await Promise.all([compacting, appending]);
    expect(storage.firstIndex()).toBe(9);
    expect(storage.lastIndex()).toBe(12);
    await wal.close();

    wal = await Wal.open(join(d, 'wal'), { sync: 'none' });
    const store = await FileSnapshotStore.open(join(d, 'snap'));
    storage = await RaftStorage.open(wal, store, conf);
    expect(storage.snapshot().meta.index).toBe(8);
    const held: Uint8Array[] = [];
    for await (const c of store.read(storage.snapshot())) held.push(c);
    expect(Buffer.concat(held).toString()).toBe('sm@8');
    expect(storage.initialState().hardState).toEqual({ term: 1, vote: 1, commit: 10 });
    expect(storage.entries(9, 13, Infinity).map((e) => e.index)).toEqual([9, 10, 11, 12]);
    expect(() => storage.entries(5, 9, Infinity)).toThrow(expect.objectContaining({ code: 'RAFT_COMPACTED' }));
    await wal.close();
  });

  it('answers term(firstIndex - 1) at every moment of a local compaction', async () => {
    const wal = await Wal.open(join(dir(), 'wal'), { sync: 'none' });
    const storage = await RaftStorage.open(wal, new MemorySnapshotStore(), conf);
    await storage.persist(ready({ entries: entries(1, 10, 3), hardState: { term: 3, vote: 1, commit: 10 } }));
    let done = false;
    const compacting = storage.compact(8, 3, conf, Buffer.from('sm@8')).then(() => (done = true));
    const seen = new Set<number>();
    while (!done) {
      const first = storage.firstIndex();
      seen.add(first);
      expect(storage.term(first - 1)).toBe(first === 1 ? 0 : 3);
      expect(storage.snapshot().meta.index).toBe(first - 1 === 0 ? 0 : first - 1);
      await new Promise((r) => setImmediate(r));
    }
    await compacting;
    expect(storage.firstIndex()).toBe(9);
    await wal.close();
  });

  it('a local compaction reads the catch-up window the WAL keeps only on disk off the calling thread', async () => {
    const wal = await Wal.open(join(dir(), 'wal'), { sync: 'none', cacheBytes: 64 * 1024 });
    const readsOnCaller = countReadsOnCaller(wal);
    const storage = await RaftStorage.open(wal, new MemorySnapshotStore(), conf);
    const big = (lo: number, hi: number): Entry[] => entries(lo, hi, 1).map((e) => ({ ...e, data: Buffer.alloc(4096, e.index) }));
    await storage.persist(ready({ entries: big(1, 100), hardState: { term: 1, vote: 1, commit: 100 } }));
    expect(wal.cachedFrom).toBe(101); // the 400 KiB write's slab alone is over 64 KiB: nothing stays in memory
    await storage.compact(90, 1, conf, Buffer.from('sm@90'), 50);
    expect(readsOnCaller()).toBe(0);
    expect(storage.firstIndex()).toBe(41);
    const window = storage.entries(41, 91, Infinity);
    expect(window.map((e) => e.index)).toEqual(Array.from({ length: 50 }, (_, i) => 41 + i));
    expect(window.every((e) => e.data.length === 4096 && e.data[0] === (e.index & 0xff))).toBe(true);
    await wal.close();
  });

  it('refuses a snapshot file that fails its checksum', async () => {
    const d = dir();
    const store = await FileSnapshotStore.open(d);
    await store.save({ meta: { index: 5, term: 1, conf }, data: Buffer.from('hello world') });
    const { readdirSync, readFileSync, writeFileSync } = await import('node:fs');
    const file = join(d, readdirSync(d)[0]!);
    const bytes = readFileSync(file);
    bytes[bytes.length - 8] ^= 0xff;
    writeFileSync(file, bytes);
    await expect(store.load(5, 1)).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT' });
    await expect(store.load(6, 1)).rejects.toMatchObject({ code: 'SNAPSHOT_MISSING' });
  });
});

describe('RaftStorage.open refuses raft state no node can reach', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const termed = (first: number, terms: number[]): Entry[] =>
    terms.map((term, k) => ({ index: first + k, term, type: EntryType.Normal, data: Buffer.from('x') }));

  it('a term above MAX_TERM or falling along the log is STATE_CORRUPT; at MAX_TERM, and rising, it opens', async () => {
    const cases: Array<[string, (wal: Wal) => Promise<void>, boolean]> = [
      ['a hard state at MAX_TERM', (wal) => wal.append([], { term: MAX_TERM, vote: 1, commit: 0 }), true],
      ['a hard state above MAX_TERM', (wal) => wal.append([], { term: MAX_TERM + 1, vote: 1, commit: 0 }), false],
      ['a commit above MAX_INDEX', (wal) => wal.append([], { term: 1, vote: 1, commit: MAX_INDEX + 1 }), false],
      ['an entry above MAX_TERM', (wal) => wal.append([{ index: 1, term: MAX_TERM + 1, type: EntryType.Normal, data: Buffer.from('x') }]), false],
      ['terms that rise along the log', (wal) => wal.append(termed(1, [1, 1, 2, 5])), true],
      ['a term that falls in the middle of the log', (wal) => wal.append(termed(1, [1, 3, 2, 3])), false],
      ['a middle term above MAX_TERM, the last below it', (wal) => wal.append(termed(1, [1, MAX_TERM + 1, 2])), false],
      [
        "a first entry below the snapshot marker's term",
        async (wal) => {
          await wal.saveSnapshot({ index: 5, term: 4 }, { discardLog: true });
          await wal.append(termed(6, [3]));
        },
        false,
      ],
    ];
    for (const [what, write, opens] of cases) {
      const dir = mkdtempSync(join(tmpdir(), 'raftlog-state-'));
      dirs.push(dir);
      const wal = await Wal.open(join(dir, 'wal'));
      await write(wal);
      await wal.close();
      const again = await Wal.open(join(dir, 'wal'));
      const opened = RaftStorage.open(again, new MemorySnapshotStore(), conf);
      if (opens) await expect(opened, what).resolves.toBeInstanceOf(RaftStorage);
      else await expect(opened, what).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
      await again.close();
    }
  });
});

describe('RaftStorage catch-up reads (entries for followers, off the event loop)', () => {
  /**
   * Entries 1..100 of term 1, the newest from `cachedFrom` "in memory"; every read of older
   * ones through entries() waits until the test settles it.
   */
  function diskLog() {
    const held = new Map<number, Entry>(entries(1, 100, 1).map((e) => [e.index, e]));
    const reads: Array<{ lo: number; hi: number; maxBytes: number; resolve(): void; reject(err: Error): void }> = [];
    let syncDiskReads = 0;
    const state = { first: 1, cachedFrom: 90 };
    const slice = (lo: number, hi: number, maxBytes = Infinity): Entry[] => {
      const out: Entry[] = [];
      let bytes = 0;
      for (let i = lo; i < hi; i++) {
        const e = held.get(i)!;
        bytes += e.data.byteLength;
        if (out.length > 0 && bytes > maxBytes) break;
        out.push(e);
      }
      return out;
    };
    const log: LogStore = {
      hardState: { term: 1, vote: 1, commit: 100 },
      snapshot: null,
      get firstIndex() {
        return state.first;
      },
      lastIndex: 100,
      get cachedFrom() {
        return state.cachedFrom;
      },
      async append() {},
      entriesSync(lo, hi, maxBytes) {
        if (lo < state.cachedFrom) syncDiskReads++;
        return slice(lo, hi, maxBytes);
      },
      entries(lo, hi, maxBytes = Infinity) {
        const read = slice(lo, hi, maxBytes); // what the disk held when the read began
        return new Promise<Entry[]>((resolve, reject) => reads.push({ lo, hi, maxBytes, resolve: () => resolve(read), reject }));
      },
      dataLength: (i) => held.get(i)!.data.byteLength,
      term: (i) => (i === 0 ? 0 : held.get(i)!.term),
      async saveSnapshot() {},
      async releaseTo() {},
      async close() {},
    };
    return { log, held, reads, state, syncDiskReads: () => syncDiskReads };
  }

  async function opened() {
    const d = diskLog();
    const storage = await RaftStorage.open(d.log, new MemorySnapshotStore(), conf);
    const fetched: Array<unknown> = [];
    storage.onEntriesFetched = (err) => fetched.push(err);
    return { ...d, storage, fetched };
  }
  const settle = () => new Promise<void>((r) => setImmediate(r));
  const indexes = (es: Entry[]): number[] => es.map((e) => e.index);
  const pending = (f: () => unknown): void => {
    expect(f).toThrow(EntriesPendingError);
  };

  it('entries older than the WAL keeps in memory are read off the calling thread, then handed out, and the next ones read ahead', async () => {
    const { storage, reads, fetched, syncDiskReads } = await opened();
    pending(() => storage.entriesToSend(10, 101, 20)); // each entry holds 3 bytes: 6 fit in 20 bytes
    expect(reads.map((r) => [r.lo, r.hi, r.maxBytes])).toEqual([[10, 101, 20]]);
    pending(() => storage.entriesToSend(10, 101, 20)); // asked again while it reads: no second read
    expect(reads.length).toBe(1);
    expect(fetched).toEqual([]);

    reads[0]!.resolve();
    await settle();
    expect(fetched).toEqual([undefined]);
    expect(indexes(storage.entriesToSend(10, 101, 20))).toEqual([10, 11, 12, 13, 14, 15]);
    // The next message's entries are already on their way.
    expect(reads.map((r) => r.lo)).toEqual([10, 16]);
    reads[1]!.resolve();
    await settle();
    expect(indexes(storage.entriesToSend(16, 101, 20))).toEqual([16, 17, 18, 19, 20, 21]);
    expect(storage.catchUpReads).toBe(1); // the read ahead from 22
    expect(syncDiskReads()).toBe(0);
  });

  it('entries in memory, and every read before a driver listens, are served at once', async () => {
    const { storage, reads, syncDiskReads } = await opened();
    expect(indexes(storage.entriesToSend(95, 101, 100))).toEqual([95, 96, 97, 98, 99, 100]);
    expect(reads).toEqual([]);
    storage.onEntriesFetched = null;
    expect(indexes(storage.entriesToSend(10, 13, 100))).toEqual([10, 11, 12]);
    expect(syncDiskReads()).toBe(1);
    expect(reads).toEqual([]);
  });

  it('a read the log changed under is not handed out: entries replaced since are read again', async () => {
    const { storage, reads, held } = await opened();
    pending(() => storage.entriesToSend(10, 101, 1000));
    // Entries from 13 on are replaced by a newer leader's while the read runs.
    for (let i = 13; i <= 100; i++) held.set(i, { ...held.get(i)!, term: 2 });
    reads[0]!.resolve();
    await settle();
    expect(indexes(storage.entriesToSend(10, 101, 1000))).toEqual([10, 11, 12]);
    pending(() => storage.entriesToSend(13, 101, 1000)); // the read ahead from 13 was started after the change
    reads[1]!.resolve();
    await settle();
    const again = storage.entriesToSend(13, 101, 1000);
    expect(again[0]).toMatchObject({ index: 13, term: 2 });
  });

  it('a read that finds nothing still held starts over', async () => {
    const { storage, reads, held } = await opened();
    pending(() => storage.entriesToSend(10, 101, 1000));
    for (let i = 10; i <= 100; i++) held.set(i, { ...held.get(i)!, term: 2 });
    reads[0]!.resolve();
    await settle();
    pending(() => storage.entriesToSend(10, 101, 1000));
    expect(reads.map((r) => r.lo)).toEqual([10, 10]);
  });

  it('a failed read is reported, unless the log was compacted past it meanwhile (raft then sends a snapshot)', async () => {
    const { storage, reads, fetched, state } = await opened();
    pending(() => storage.entriesToSend(10, 101, 1000));
    pending(() => storage.entriesToSend(40, 101, 1000));
    const damage = new Error('checksum mismatch');
    reads[0]!.reject(damage);
    await settle();
    expect(fetched).toEqual([damage]);
    state.first = 50;
    reads[1]!.reject(new Error('compacted'));
    await settle();
    expect(fetched).toEqual([damage, undefined]);
    expect(storage.catchUpReads).toBe(0);
    expect(() => storage.entriesToSend(40, 101, 1000)).toThrow(CompactedError);
  });

  it(`holds at most ${MAX_CATCH_UP_READS} reads: a finished one nobody took gives way, and while all run the next waits for one to end`, async () => {
    const { storage, reads, fetched } = await opened();
    for (let k = 0; k < MAX_CATCH_UP_READS; k++) pending(() => storage.entriesToSend(10 + k, 101, 3));
    expect(reads.length).toBe(MAX_CATCH_UP_READS);
    pending(() => storage.entriesToSend(50, 101, 3));
    expect(reads.length).toBe(MAX_CATCH_UP_READS); // not started: every slot runs
    reads[0]!.resolve();
    await settle();
    expect(fetched).toEqual([undefined]); // the caller asks again now
    pending(() => storage.entriesToSend(50, 101, 3));
    expect(reads.map((r) => r.lo).at(-1)).toBe(50); // the finished read from 10 gave way
    expect(storage.catchUpReads).toBe(MAX_CATCH_UP_READS);
  });
});

describe('RaftStorage.open refuses a lost log beside its snapshots', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('a WAL with no entry, marker or term beside a held snapshot is STATE_CORRUPT; a store that cannot list its snapshots opens as before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-state-'));
    dirs.push(dir);
    const store = new MemorySnapshotStore();
    await store.save({ meta: { index: 9, term: 2, conf }, data: Buffer.from('state') });
    const wal = await Wal.open(join(dir, 'wal'));
    try {
      await expect(RaftStorage.open(wal, store, conf)).rejects.toMatchObject({ code: 'STATE_CORRUPT', message: expect.stringMatching(/index 9 term 2/) });
      await expect(RaftStorage.open(wal, new MemorySnapshotStore(), conf)).resolves.toBeInstanceOf(RaftStorage);
      const unlisted: MemorySnapshotStore = Object.assign(Object.create(store) as MemorySnapshotStore, { held: undefined });
      await expect(RaftStorage.open(wal, unlisted, conf)).resolves.toBeInstanceOf(RaftStorage);
    } finally {
      await wal.close();
    }
  });

  it('a snapshot past the end of the log that the WAL does not record is STATE_CORRUPT, unless it was received and its install cut short', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-state-'));
    dirs.push(dir);
    const wal = await Wal.open(join(dir, 'wal'));
    try {
      await wal.append(entries(1, 5, 1), { term: 1, vote: 1, commit: 5 });
      const snap = { meta: { index: 9, term: 2, conf }, data: Buffer.from('state') };
      // Taken here: the node had made 1..9 durable, so the WAL lost its end.
      const taken = new MemorySnapshotStore();
      await taken.save(snap);
      await expect(RaftStorage.open(wal, taken, conf)).rejects.toMatchObject({
        code: 'STATE_CORRUPT',
        message: expect.stringMatching(/snapshot at index 9 term 2 is beyond the log's last entry 5/),
      });
      // Received from a leader, the crash came before the WAL's marker: not used, not refused.
      const received = new MemorySnapshotStore();
      await received.install(snap);
      const storage = await RaftStorage.open(wal, received, conf);
      expect([storage.snapshot().meta.index, storage.lastIndex()]).toEqual([0, 5]);
      // Within the log, a snapshot the WAL does not record is a crash's leftover too (a save before its marker).
      const within = new MemorySnapshotStore();
      await within.save({ ...snap, meta: { ...snap.meta, index: 4, term: 1 } });
      await expect(RaftStorage.open(wal, within, conf)).resolves.toBeInstanceOf(RaftStorage);
      // Once a marker is durable, prune forgets what was received.
      await received.prune(9);
      await expect(RaftStorage.open(wal, received, conf)).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
    } finally {
      await wal.close();
    }
  });
});

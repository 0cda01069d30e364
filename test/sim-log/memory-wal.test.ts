import { describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '../../src/raft/types.js';
import { Prng } from '../sim/prng.js';
import { MemoryDisk, perfectDisk, type DiskFaults } from './memory-wal.js';
import { Lifetime, Scheduler } from './scheduler.js';

function ent(index: number, term: number, text = `e${index}t${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

function text(e: Entry): string {
  return new TextDecoder().decode(e.data);
}

function setup(seed: number, faults: DiskFaults = { ...perfectDisk, syncMs: [1, 5] }) {
  const sched = new Scheduler();
  const disk = new MemoryDisk(new Prng(seed), faults);
  let life = new Lifetime();
  const open = () => disk.open(sched.clock(life));
  const crash = () => {
    life.end();
    life = new Lifetime();
    return disk.crash();
  };
  const settle = async () => {
    while (await sched.step());
  };
  return { sched, disk, open, crash, settle };
}

describe('MemoryWal: the LogStore contract', () => {
  it('starts empty: firstIndex 1, lastIndex 0, zero hard state, no snapshot', () => {
    const { open } = setup(1);
    const wal = open();
    expect([wal.firstIndex, wal.lastIndex, wal.hardState, wal.snapshot]).toEqual([1, 0, { term: 0, vote: 0, commit: 0 }, null]);
    expect(wal.term(0)).toBe(0);
    expect(wal.entriesSync(1, 1)).toEqual([]);
  });

  it('makes appends visible at once and durable, in call order, after the fsync delay', async () => {
    const { open, settle, disk, sched } = setup(2, { ...perfectDisk, syncMs: [1, 30] });
    const wal = open();
    const order: number[] = [];
    const ps = [1, 2, 3, 4, 5].map((i) => wal.append([ent(i, 1)], { term: 1, vote: 1, commit: i - 1 }).then(() => order.push(i)));
    expect(wal.lastIndex).toBe(5);
    expect(wal.hardState.commit).toBe(4);
    expect(disk.image().lastIndex).toBe(0);
    await settle();
    await Promise.all(ps);
    expect(order).toEqual([1, 2, 3, 4, 5]);
    expect(sched.now).toBeGreaterThan(0);
    expect(disk.image().lastIndex).toBe(5);
    expect(disk.image().hardState).toEqual({ term: 1, vote: 1, commit: 4 });
  });

  it('replaces an existing index and everything after it, also when the writes are pipelined', async () => {
    const { open, settle, disk, crash } = setup(3);
    const wal = open();
    const a = wal.append([ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1)]);
    const b = wal.append([ent(3, 2, 'new3')]); // outstanding together with a
    expect(wal.lastIndex).toBe(3);
    expect(wal.term(3)).toBe(2);
    expect(() => wal.term(4)).toThrow(expect.objectContaining({ code: 'WAL_UNAVAILABLE' }));
    await settle();
    await Promise.all([a, b]);
    expect(disk.image().entries.map(text)).toEqual(['e1t1', 'e2t1', 'new3']);
    await wal.close();
    crash();
    const again = disk.open(new Scheduler().clock(new Lifetime()));
    expect(again.entriesSync(1, 4).map(text)).toEqual(['e1t1', 'e2t1', 'new3']);
  });

  it('rejects gaps, rewrites below firstIndex and non-contiguous batches, changing nothing', async () => {
    const { open, settle } = setup(4);
    const wal = open();
    await expect(wal.append([ent(2, 1)])).rejects.toMatchObject({ code: 'WAL_GAP' });
    await expect(wal.append([ent(1, 1), ent(3, 1)])).rejects.toMatchObject({ code: 'WAL_GAP' });
    expect(wal.lastIndex).toBe(0);
    const p = wal.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    const s = wal.saveSnapshot({ index: 2, term: 1 });
    await settle();
    await Promise.all([p, s]);
    await expect(wal.append([ent(2, 1)])).rejects.toMatchObject({ code: 'WAL_GAP' });
    expect(wal.lastIndex).toBe(3);
  });

  it('a local snapshot keeps the entries above it; releaseTo needs a marker at or above its index', async () => {
    const { open, settle, disk } = setup(5);
    const wal = open();
    void wal.append([1, 2, 3, 4, 5].map((i) => ent(i, 1)));
    await expect(wal.releaseTo(1)).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT' });
    const s = wal.saveSnapshot({ index: 3, term: 1 });
    expect([wal.firstIndex, wal.lastIndex, wal.term(3)]).toEqual([4, 5, 1]);
    expect(() => wal.entriesSync(3, 5)).toThrow(expect.objectContaining({ code: 'WAL_COMPACTED' }));
    expect(wal.entriesSync(4, 6).map(text)).toEqual(['e4t1', 'e5t1']);
    await expect(Promise.all([settle(), s, wal.releaseTo(4)])).rejects.toMatchObject({ code: 'WAL_INVALID_ARGUMENT' });
    const r = wal.releaseTo(3);
    await settle();
    await r;
    expect(disk.image()).toMatchObject({ firstIndex: 4, lastIndex: 5, snapshot: { index: 3, term: 1 } });
  });

  it('discardLog empties the log, even over conflicting entries, and the next append follows the marker', async () => {
    const { open, settle, disk, crash } = setup(6);
    const wal = open();
    void wal.append([1, 2, 3, 4, 5].map((i) => ent(i, 1)));
    const s = wal.saveSnapshot({ index: 4, term: 1 }, { discardLog: true });
    expect([wal.firstIndex, wal.lastIndex, wal.term(4)]).toEqual([5, 4, 1]);
    await expect(wal.append([ent(6, 2)])).rejects.toMatchObject({ code: 'WAL_GAP' });
    const a = wal.append([ent(5, 2)]);
    await settle();
    await Promise.all([s, a]);
    crash();
    const again = disk.open(new Scheduler().clock(new Lifetime()));
    expect([again.firstIndex, again.lastIndex, again.term(4), again.term(5)]).toEqual([5, 5, 1, 2]);
    // A local snapshot whose term disagrees with the log also discards it, as the native Wal does.
    const t = setup(7);
    const w2 = t.open();
    void w2.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
    void w2.saveSnapshot({ index: 2, term: 5 });
    expect([w2.firstIndex, w2.lastIndex, w2.term(2)]).toEqual([3, 2, 5]);
  });

  it('limits reads by bytes but returns at least one entry', async () => {
    const { open } = setup(8);
    const wal = open();
    void wal.append([ent(1, 1, 'aaaa'), ent(2, 1, 'bbbb'), ent(3, 1, 'cccc')]);
    expect(wal.entriesSync(1, 4, 8).length).toBe(2);
    expect(wal.entriesSync(1, 4, 1).length).toBe(1);
    expect(wal.entriesSync(1, 4).length).toBe(3);
  });

  it('stores copies, frozen: a caller mutating its entry after append changes nothing', async () => {
    const { open } = setup(9);
    const wal = open();
    const e = ent(1, 1, 'x');
    void wal.append([e]);
    e.data[0] = 0x79;
    e.term = 9;
    expect(text(wal.entriesSync(1, 2)[0]!)).toBe('x');
    expect(() => {
      (wal.entriesSync(1, 2)[0] as { term: number }).term = 7;
    }).toThrow(TypeError);
  });

  it('a second open of the same disk is refused while one is open', () => {
    const { open } = setup(10);
    open();
    expect(() => open()).toThrow(expect.objectContaining({ code: 'WAL_LOCKED' }));
  });
});

describe('MemoryWal: faults', () => {
  it('a failed fsync rejects that write and every later one, and reads fail too', async () => {
    const { open, settle, disk } = setup(11, { ...perfectDisk, syncMs: [1, 1], failSync: 1 });
    const wal = open();
    const errs: unknown[] = [];
    const a = wal.append([ent(1, 1)]).catch((e: unknown) => errs.push(e));
    disk.faults = perfectDisk; // only the first write was chosen to fail
    const b = wal.append([ent(2, 1)]).catch((e: unknown) => errs.push(e));
    await settle();
    await Promise.all([a, b]);
    expect(errs).toHaveLength(2);
    expect(errs[0]).toMatchObject({ code: 'WAL_IO' });
    expect(wal.injectedFailure).toBe(true);
    await expect(wal.append([ent(3, 1)])).rejects.toMatchObject({ code: 'WAL_IO' });
    expect(() => wal.term(1)).toThrow(expect.objectContaining({ code: 'WAL_IO' }));
    expect(disk.image().lastIndex).toBe(0);
    // close() after the failed writes settled still settles, and frees the disk.
    await wal.close();
    expect(() => open()).not.toThrow();
  });

  it('a crash keeps every acknowledged write and a prefix of the rest, torn at an entry boundary', async () => {
    let sawTorn = false;
    let sawLost = false;
    let sawWhole = false;
    for (let seed = 1; seed <= 200; seed++) {
      const rng = new Prng(seed);
      const { open, disk, crash, sched } = setup(seed * 7919, { ...perfectDisk, syncMs: [1, 20] });
      const wal = open();
      const acked: number[] = [];
      const hsAcked: number[] = [];
      let next = 1;
      for (let round = 0; round < 6; round++) {
        const n = rng.range(1, 4);
        const batch = Array.from({ length: n }, () => ent(next++, 1));
        const hs = { term: 1, vote: 0, commit: next - 1 };
        void wal.append(batch, hs).then(() => {
          acked.push(batch[batch.length - 1]!.index);
          hsAcked.push(hs.commit);
        });
      }
      const stopAt = rng.range(0, 40);
      while (sched.now < stopAt && (await sched.step()));
      const ackedLast = Math.max(0, ...acked);
      const report = crash();
      const img = disk.image();
      // Everything acknowledged is there; what is there is a contiguous prefix of what was written.
      expect(img.lastIndex, `seed ${seed}`).toBeGreaterThanOrEqual(ackedLast);
      expect(img.entries.map((e) => e.index)).toEqual(Array.from({ length: img.lastIndex }, (_, i) => i + 1));
      // The hard state on disk is never ahead of the entries on disk, and never behind an acknowledged one.
      expect(img.hardState.commit).toBeLessThanOrEqual(img.lastIndex);
      expect(img.hardState.commit).toBeGreaterThanOrEqual(Math.max(0, ...hsAcked));
      if (report.tornEntries >= 0) sawTorn = true;
      if (report.lost > 0) sawLost = true;
      if (report.survived > 0) sawWhole = true;
      // The dead handle never settles again.
      const before = acked.length;
      while (await sched.step());
      expect(acked.length).toBe(before);
    }
    expect([sawTorn, sawLost, sawWhole]).toEqual([true, true, true]);
  });

  it('is deterministic: the same seed gives the same completion times', async () => {
    const run = async (seed: number) => {
      const { open, sched } = setup(seed, { syncMs: [0, 3], slowSync: 0.3, slowSyncMs: [10, 50], failSync: 0 });
      const wal = open();
      const times: number[] = [];
      for (let i = 1; i <= 20; i++) void wal.append([ent(i, 1)]).then(() => times.push(sched.now));
      while (await sched.step());
      return times;
    };
    expect(await run(42)).toEqual(await run(42));
    expect(await run(42)).not.toEqual(await run(43));
  });
});

import { describe, expect, it } from 'vitest';
import { ENTRY_OVERHEAD, EntryCache, KEEP_ABOVE, type PackedBytes } from '../../src/wal/cache.js';
import type { WalEntry } from '../../src/wal/types.js';
import { seeded, testSeed } from '../seeded.js';

/** Data that differs from entry to entry, so that a read of the wrong bytes shows. */
const entry = (index: number, len: number): WalEntry => {
  const data = new Uint8Array(len).fill(index & 0xff);
  if (len > 1) data[len - 1] = (index >> 8) & 0xff;
  return { index, term: 1 + (index % 7) * 2 ** 40, type: index % 3, data };
};

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Entries the cache keeps as given rather than reading them from their slab. */
const keptAsGiven = (n: number): boolean => n === 0 || n > KEEP_ABOVE;

/** The length and the bytes at both ends: enough to tell these entries apart, and cheap. */
const sameEnds = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a[0] === b[0] && a[a.length - 1] === b[b.length - 1];

/** The callers' data objects the cache still references. */
const held = (cache: EntryCache): Set<Uint8Array> => {
  type Arrays = (Uint8Array | undefined)[];
  const c = cache as unknown as { datas: Arrays; recent: { current: Arrays; older: Arrays } };
  return new Set([...c.datas, ...c.recent.current, ...c.recent.older].filter((d): d is Uint8Array => d !== undefined));
};

/**
 * Packs entries' bytes as the WAL does, into small slabs, and pushes them. A slab is
 * reused once the cache counts no entry in it (the WAL waits for its job to be durable
 * too), and is filled with 0xdd first: a read of bytes the cache let go of shows.
 * `gap` bytes go before each entry, as a record's header and the hard states and
 * markers between entries do.
 */
class Packer {
  readonly slabs: PackedBytes[] = [];
  /** Where each pushed entry was packed: a shared slab or one of its own. */
  readonly slabOf = new Map<WalEntry, PackedBytes>();
  #current: PackedBytes | null = null;
  #used = 0;

  constructor(
    private readonly cache: EntryCache,
    private readonly slabBytes = 16 * 1024,
    private readonly gap: () => number = () => 0,
  ) {}

  push(e: WalEntry): void {
    const n = e.data.length;
    if (n > this.slabBytes) {
      const own = { u8: e.data.slice(), refs: 0 };
      this.slabOf.set(e, own);
      this.cache.push(e, own, 0);
      return;
    }
    const gap = this.gap();
    if (this.#current === null || this.#used + gap + n > this.slabBytes) {
      const current = this.#current;
      let s = this.slabs.find((x) => x.refs === 0 && x !== current);
      if (s === undefined) {
        s = { u8: new Uint8Array(this.slabBytes), refs: 0 };
        this.slabs.push(s);
      } else s.u8.fill(0xdd);
      this.#current = s;
      this.#used = 0;
    }
    const at = this.#used + gap;
    this.#current.u8.set(e.data, at);
    this.slabOf.set(e, this.#current);
    this.cache.push(e, this.#current, at);
    this.#used = at + n;
  }

  /** What `entries` should count against the cache's budget: their slots, the data kept as given, and every slab the others lie in, whole. */
  charge(entries: readonly WalEntry[]): number {
    const slabs = new Set<PackedBytes>();
    let bytes = 0;
    for (const e of entries) {
      const n = e.data.length;
      bytes += ENTRY_OVERHEAD;
      if (keptAsGiven(n)) bytes += n;
      else slabs.add(this.slabOf.get(e)!);
    }
    for (const s of slabs) bytes += s.u8.length;
    return bytes;
  }

  /** Slabs the cache counts entries in. */
  get held(): number {
    return this.slabs.filter((x) => x.refs > 0).length;
  }

  /** The sum of every slab's count: the entries the cache holds in slabs. */
  get refs(): number {
    return this.slabs.reduce((sum, x) => sum + x.refs, 0);
  }
}

describe('EntryCache', () => {
  it('matches a plain array model under random pushes, truncations, drops, trims and clears, its slabs reused as soon as it lets go', async () => {
    const rand = seeded(testSeed('entry cache model'));
    const int = (n: number): number => Math.floor(rand() * n);
    const cache = new EntryCache();
    const packer = new Packer(cache, 16 * 1024, () => int(3) * 40);
    let model: WalEntry[] = [];
    let lo = 1; // the model's first index (lastIndex + 1 when empty)
    let mismatches = 0;
    for (let step = 0; step < 2000; step++) {
      // About 2 s of CPU in all: a turn per 100 steps keeps the worker answering.
      if (step % 100 === 99) await new Promise(setImmediate);
      const op = int(100);
      const last = lo + model.length - 1;
      if (op < 60) {
        // Bursts that grow the cache's columns past their first size several times.
        const n = 1 + int(op < 5 ? 3000 : 100);
        for (let i = 0; i < n; i++) {
          // Mostly small entries, now and then a larger one, rarely one kept as given, and empty ones.
          const r = int(2000);
          const len = r === 0 ? KEEP_ABOVE + 1 + int(100) : r < 40 ? 1000 + int(4000) : r < 60 ? 0 : int(300);
          const e = entry(last + 1 + i, len);
          packer.push(e);
          model.push(e);
        }
      } else if (op < 70 && model.length > 0) {
        const keep = lo - 1 + int(model.length + 1);
        cache.truncateAfter(keep);
        model = model.slice(0, keep - lo + 1);
      } else if (op < 85 && model.length > 0) {
        const budget = int(20_000);
        const bound = lo + int(model.length);
        cache.trim(budget, bound);
        // The model's own count: each entry's slot, the data kept as given, each slab once.
        const inSlab = new Map<PackedBytes, number>();
        let bytes = 0;
        for (const e of model) {
          const n = e.data.length;
          bytes += ENTRY_OVERHEAD + (keptAsGiven(n) ? n : 0);
          if (keptAsGiven(n)) continue;
          const slab = packer.slabOf.get(e)!;
          const k = inSlab.get(slab) ?? 0;
          if (k === 0) bytes += slab.u8.length;
          inSlab.set(slab, k + 1);
        }
        while (bytes > budget && model.length > 0 && lo <= bound) {
          const e = model.shift()!;
          const n = e.data.length;
          bytes -= ENTRY_OVERHEAD + (keptAsGiven(n) ? n : 0);
          if (!keptAsGiven(n)) {
            const slab = packer.slabOf.get(e)!;
            const k = inSlab.get(slab)! - 1;
            inSlab.set(slab, k);
            if (k === 0) bytes -= slab.u8.length;
          }
          lo++;
        }
      } else if (op < 95 && model.length > 0) {
        const at = lo + int(model.length);
        cache.dropBefore(at);
        model = model.slice(at - lo);
        lo = at;
      } else if (op < 97) {
        lo = last + 1;
        cache.clear(lo);
        model = [];
      }
      const expectLo = model.length > 0 ? model[0]!.index : lo;
      if (model.length > 0) lo = model[0]!.index;
      if (cache.size !== model.length || cache.bytes !== packer.charge(model) || (model.length > 0 && cache.lo !== expectLo)) mismatches++;
      // Every cached entry packed, and nothing else, is counted in its slab.
      if (packer.refs !== model.filter((e) => !keptAsGiven(e.data.length)).length) mismatches++;
      // Every entry's ends every fourth step, and a few entries' every byte each step.
      for (const e of step % 4 === 0 ? model : []) {
        const got = cache.get(e.index);
        if (got.index !== e.index || got.term !== e.term || got.type !== e.type || !sameEnds(got.data, e.data)) mismatches++;
      }
      for (let k = 0; k < 4 && model.length > 0; k++) {
        const e = model[int(model.length)]!;
        if (!sameBytes(cache.get(e.index).data, e.data)) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
    cache.clear(1);
    expect(packer.refs).toBe(0);
  });

  it('lets go of the data objects it drops, so the garbage collector can free them', () => {
    const cache = new EntryCache();
    const packer = new Packer(cache, 128 * 1024);
    const pushed = new Map<number, WalEntry>();
    for (let i = 1; i <= 5000; i++) {
      const e = entry(i, i === 100 || i === 4993 ? KEEP_ABOVE + 1 : 300);
      pushed.set(i, e);
      packer.push(e);
    }
    const last10 = packer.charge([...pushed.values()].slice(4990));
    // Entry 100 is kept as given; of the small ones, only the newest are held.
    expect(held(cache).has(pushed.get(100)!.data)).toBe(true);
    expect(held(cache).has(pushed.get(4000)!.data)).toBe(false);
    cache.trim(last10, 5000); // keeps 4991-5000
    cache.truncateAfter(4995);
    expect(cache.lo).toBe(4991);
    expect(cache.size).toBe(5);
    const kept = new Set([4991, 4992, 4993, 4994, 4995].map((i) => pushed.get(i)!.data));
    for (const d of held(cache)) expect(kept.has(d)).toBe(true);
    expect(held(cache).has(pushed.get(4993)!.data)).toBe(true);
    for (let i = 4991; i <= 4995; i++) expect(sameBytes(cache.get(i).data, pushed.get(i)!.data)).toBe(true);
    // The four small entries left lie in the last slab or two.
    expect(packer.held).toBeLessThanOrEqual(2);
    expect(packer.refs).toBe(4);
  });

  it('holds the data of its newest entries and of larger ones as given, and hands out copies of the rest', () => {
    const cache = new EntryCache();
    const packer = new Packer(cache);
    const large = entry(1, KEEP_ABOVE + 1);
    cache.push(large, { u8: new Uint8Array(0), refs: 0 }, 0);
    const pushed: WalEntry[] = [large];
    for (let i = 2; i <= 10_001; i++) {
      const e = entry(i, i % 10 === 0 ? 5000 : 100);
      pushed.push(e);
      packer.push(e);
    }
    // The large entry and at most 128 recent ones: no object per entry.
    const objects = held(cache);
    expect(objects.has(large.data)).toBe(true);
    expect(objects.size).toBeLessThanOrEqual(1 + 128);
    expect(cache.get(1).data).toBe(large.data);
    expect(cache.get(10_001).data).toBe(pushed[10_000]!.data);
    const read = cache.get(5000).data;
    expect(read).not.toBe(pushed[4999]!.data);
    expect(sameBytes(read, entry(5000, 5000).data)).toBe(true);
    // A copy: changing it changes nothing cached.
    read.fill(0xee);
    expect(sameBytes(cache.get(5000).data, entry(5000, 5000).data)).toBe(true);
  });

  it('copies a view into a larger buffer too: holding it would hold the whole buffer', () => {
    const cache = new EntryCache();
    const packer = new Packer(cache);
    const frame = new Uint8Array(1 << 16).map((_, i) => i & 0xff);
    const view = frame.subarray(1000, 1000 + 600);
    packer.push({ index: 1, term: 1, type: 0, data: view });
    for (let i = 2; i <= 200; i++) packer.push(entry(i, 100)); // past the recent ones
    expect(held(cache).has(view)).toBe(false);
    const got = cache.get(1).data;
    expect(got).not.toBe(view);
    expect(got.buffer).not.toBe(frame.buffer);
    expect(sameBytes(got, view)).toBe(true);
  });

  it('holds only the slabs its entries lie in: trimmed to a budget, as few as the budget needs however much passes through', async () => {
    const cache = new EntryCache();
    const packer = new Packer(cache, 64 * 1024);
    const budget = 256 * 1024;
    let most = 0;
    for (let i = 1; i <= 200_000; i++) {
      if (i % 20_000 === 0) await new Promise(setImmediate); // a second of CPU in all
      packer.push(entry(i, 100 + (i % 7) * 300));
      cache.trim(budget, i);
      most = Math.max(most, packer.held);
    }
    // 200 MB went through 64 KiB slabs, four of which hold the budget.
    expect(most).toBeLessThanOrEqual(6);
    expect(packer.slabs.length).toBeLessThanOrEqual(7);
    expect(cache.size).toBeGreaterThan(100);
    for (let i = cache.lo; i <= 200_000; i++) expect(sameBytes(cache.get(i).data, entry(i, 100 + (i % 7) * 300).data)).toBe(true);
  });

  it('counts the memory its entries hold against the budget: with tiny entries, their slabs, not their data', async () => {
    // One-byte entries, each after 80 bytes of headers, hard states and markers (as when
    // each is written alone), through 64 KiB slabs, trimmed to 256 KiB: counted by their
    // data, the cache kept 256 Ki entries and every slab they lie in, 20 MiB.
    const cache = new EntryCache();
    const packer = new Packer(cache, 64 * 1024, () => 80);
    const budget = 256 * 1024;
    let most = 0;
    for (let i = 1; i <= 300_000; i++) {
      if (i % 30_000 === 0) await new Promise(setImmediate);
      packer.push(entry(i, 1));
      cache.trim(budget, i);
      most = Math.max(most, packer.held);
    }
    expect(cache.bytes).toBeLessThanOrEqual(budget);
    expect(most).toBeLessThanOrEqual(4);
    expect(cache.size).toBeLessThan(4 * Math.ceil((64 * 1024) / 81));
    expect(sameBytes(cache.get(300_000).data, entry(300_000, 1).data)).toBe(true);
  });

  it('counts a slab whole while any entry it holds lies in it: one entry left of a large write holds all of it', () => {
    // 300 entries of 1 KiB in a slab of their own, then overwritten after the first.
    const cache = new EntryCache();
    const packer = new Packer(cache, 16 * 1024);
    const slab = { u8: new Uint8Array(512 * 1024), refs: 0 };
    for (let i = 1; i <= 300; i++) cache.push(entry(i, 1024), slab, (i - 1) * 1024);
    cache.truncateAfter(1);
    expect(slab.refs).toBe(1);
    expect(cache.bytes).toBe(slab.u8.length + ENTRY_OVERHEAD);
    // Trimmed to less, it lets go of the slab.
    for (let i = 2; i <= 10; i++) packer.push(entry(i, 100));
    cache.trim(64 * 1024, 10);
    expect(slab.refs).toBe(0);
    expect(cache.lo).toBe(2);
    expect(cache.bytes).toBe(packer.charge([...packer.slabOf.keys()]));
  });

  it('reads an entry packed more than 2 GiB into its slab where it lies', () => {
    // One write may pack more than 2 GiB into a slab of its own. A stand-in for the slab
    // records where it is read from, instead of holding 2 GiB.
    const far = 2 ** 31 + 4096;
    const reads: number[] = [];
    const u8 = {
      length: far + 8192,
      slice: (from: number, to: number): Uint8Array => {
        reads.push(from);
        return new Uint8Array(to - from);
      },
      subarray: (from: number, to: number): Uint8Array => {
        reads.push(from);
        return new Uint8Array(to - from);
      },
    } as unknown as Uint8Array;
    const cache = new EntryCache();
    const slab = { u8, refs: 0 };
    cache.push(entry(1, 100), slab, far);
    for (let i = 2; i <= 200; i++) cache.push(entry(i, 100), { u8: new Uint8Array(100), refs: 0 }, 0); // past the recent ones
    cache.get(1);
    cache.visit(1, 2, () => undefined);
    expect(reads).toEqual([far, far]);
    expect(cache.bytes).toBe(u8.length + 199 * 100 + 200 * ENTRY_OVERHEAD);
  });

  it('gives back the columns a burst grew once it is trimmed away', () => {
    const cache = new EntryCache();
    const packer = new Packer(cache, 64 * 1024);
    const slots = (): number => (cache as unknown as { datas: unknown[] }).datas.length;
    for (let i = 1; i <= 70_000; i++) packer.push(entry(i, 10));
    expect(slots()).toBe(131_072);
    cache.trim(256 * 1024, 70_000);
    expect(cache.size).toBeLessThan(5000);
    expect(slots()).toBeLessThanOrEqual(16_384);
    for (let i = cache.lo; i <= 70_000; i++) expect(sameBytes(cache.get(i).data, entry(i, 10).data)).toBe(true);
  });

  it('lets go of the slabs of a burst once it is trimmed away', () => {
    const cache = new EntryCache();
    const packer = new Packer(cache, 64 * 1024);
    // 40 MB in flight (nothing may be trimmed), then durable and trimmed to 256 KiB.
    for (let i = 1; i <= 10_000; i++) packer.push(entry(i, 4000));
    cache.trim(256 * 1024, 0);
    expect(packer.held).toBeGreaterThan(600);
    cache.trim(256 * 1024, 10_000);
    expect(packer.held).toBeLessThanOrEqual(4);
    expect(cache.size).toBeGreaterThan(30);
    for (let i = cache.lo; i <= 10_000; i++) expect(sameBytes(cache.get(i).data, entry(i, 4000).data)).toBe(true);
    for (let i = 10_001; i <= 12_000; i++) packer.push(entry(i, 4000));
    expect(sameBytes(cache.get(11_000).data, entry(11_000, 4000).data)).toBe(true);
  });

  it('never changes an entry it handed out: its bytes stay as read after drops, truncations and more pushes', () => {
    const cache = new EntryCache();
    const packer = new Packer(cache);
    for (let i = 1; i <= 100; i++) packer.push(entry(i, 200));
    // Entry 100 is read before the truncation drops it, and other bytes take its index.
    const views = [10, 50, 100].map((i) => ({ want: entry(i, 200).data, data: cache.get(i).data }));
    cache.truncateAfter(60);
    cache.dropBefore(55);
    for (let i = 61; i <= 2000; i++) packer.push(entry(i + 7, 200));
    views.push({ want: entry(2007, 200).data, data: cache.get(2000).data });
    cache.clear(3000);
    for (let i = 3000; i <= 4000; i++) packer.push(entry(i, 200));
    for (const v of views) expect(sameBytes(v.data, v.want)).toBe(true);
  });
});

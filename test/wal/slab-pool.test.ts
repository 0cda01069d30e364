import { describe, expect, it } from 'vitest';
import { BLOCK_BYTES, type Slab, SLAB_BYTES, SlabPool } from '../../src/wal/slab-pool.js';
import { seeded, testSeed } from '../seeded.js';

/** Whether every byte of `s` is `v` (a native compare: the slices are up to half a megabyte). */
const allAre = (s: Uint8Array, v: number): boolean => Buffer.from(s.buffer, s.byteOffset, s.length).equals(Buffer.alloc(s.length, v));

/** The `n` bytes allocate() reserved for `fileOffset`, as a view of their slab. */
const take = (pool: SlabPool, n: number, fileOffset = 0): Uint8Array => {
  const at = pool.allocate(n, fileOffset);
  return pool.u8.subarray(at, at + n);
};

/** Slabs as malloc places them: 16 bytes into a block. */
const phaseOf = (): number => 16;

describe('SlabPool', () => {
  it('never hands out bytes of a job that is not yet durable, nor of a slab the cache counts entries in', async () => {
    const rand = seeded(testSeed('slab pool model'));
    const pool = new SlabPool(phaseOf);
    // Each live slice is filled with its job's id; the writer thread reads it until the job is
    // durable, and the cache, while it counts the slice as an entry in its slab, until it lets go.
    interface Live {
      job: number;
      slice: Uint8Array;
      cachedIn: Slab | null;
    }
    const live: Live[] = [];
    let collecting: Live[] = [];
    let nextJob = 1;
    let durable = 0;
    let corrupted = 0;
    const settle = (): void => {
      for (let i = live.length - 1; i >= 0; i--) if (live[i]!.job <= durable && live[i]!.cachedIn === null) live.splice(i, 1);
    };
    for (let step = 0; step < 5000; step++) {
      if (step % 500 === 0) await new Promise(setImmediate); // a few hundred ms of work in all: let the loop turn
      const r = rand();
      if (r < 0.5) {
        const n = rand() < 0.05 ? SLAB_BYTES / 2 : 1 + Math.floor(rand() * (rand() < 0.5 ? 4096 : SLAB_BYTES / 4));
        const s = take(pool, n, Math.floor(rand() * 2 ** 26));
        expect(s.length).toBe(n);
        // The invariant itself: no byte handed out belongs to a job the writer may still read, or to a cached entry.
        for (const l of live) {
          if (l.slice.buffer === s.buffer && s.byteOffset < l.slice.byteOffset + l.slice.length && l.slice.byteOffset < s.byteOffset + s.length) corrupted++;
        }
        // A third of the writes are entries the cache holds.
        const cachedIn = rand() < 0.33 ? pool.slab : null;
        if (cachedIn !== null) cachedIn.refs++;
        collecting.push({ job: Infinity, slice: s, cachedIn });
      } else if (r < 0.7 && collecting.length > 0) {
        const job = nextJob++;
        pool.seal(job);
        for (const l of collecting) {
          l.slice.fill(job & 0xff || 1);
          l.job = job;
          live.push(l);
        }
        collecting = [];
      } else if (r < 0.85) {
        // The cache lets go of an entry, mostly its oldest.
        const cached = live.filter((l) => l.cachedIn !== null);
        if (cached.length > 0) {
          const l = cached[rand() < 0.8 ? 0 : Math.floor(rand() * cached.length)]!;
          if (!allAre(l.slice, l.job & 0xff || 1)) corrupted++;
          l.cachedIn!.refs--;
          l.cachedIn = null;
          settle();
        }
      } else if (durable < nextJob - 1) {
        // Mostly one job at a time, as a writer finishing group commits in order.
        durable += rand() < 0.7 ? 1 : 1 + Math.floor(rand() * (nextJob - 1 - durable));
        // The writer is done with these jobs: their bytes must still be as written when it finished.
        for (const l of live) if (l.job <= durable && !allAre(l.slice, l.job & 0xff || 1)) corrupted++;
        pool.done(durable);
        settle();
      }
    }
    for (const l of live) if (!allAre(l.slice, l.job & 0xff || 1)) corrupted++;
    expect(corrupted).toBe(0);
  });

  it('packs a write where its memory lies within a block as its place in the file does, and the writes that follow it in the file right after it', () => {
    const phases = new Map<ArrayBufferLike, number>();
    const pool = new SlabPool((u8) => {
      phases.set(u8.buffer, [16, 4080, 0][phases.size % 3]!);
      return phases.get(u8.buffer)!;
    });
    /** Where the write's first byte lies within a block of memory. */
    const phase = (s: Uint8Array): number => (phases.get(s.buffer)! + s.byteOffset) % BLOCK_BYTES;
    let last: Uint8Array | undefined;
    let offset = 12_345;
    for (const [n, gap] of [
      [100, 0],
      [5000, 0], // follows in the file: right after the last in the slab
      [70_000, 0],
      [32, 777], // a jump in the file: a gap of less than a block in the slab
      [SLAB_BYTES / 2, 0], // a slab of its own
      [SLAB_BYTES / 4, 0],
      [SLAB_BYTES / 4, 0],
      [SLAB_BYTES / 4, 0],
      [SLAB_BYTES / 4, 0], // no room left: the next slab
      [40, 0],
    ] as const) {
      offset += gap;
      const s = take(pool, n, offset);
      expect(phase(s), `${n} bytes at ${offset}`).toBe(offset % BLOCK_BYTES);
      if (last !== undefined && s.buffer === last.buffer) {
        const slack = s.byteOffset - (last.byteOffset + last.length);
        expect(slack, `${n} bytes at ${offset}`).toBe(gap % BLOCK_BYTES);
      }
      last = s;
      offset += n;
    }
    expect(phases.size).toBe(3);
  });

  it('reuses slabs once their jobs are durable instead of allocating new ones', () => {
    const pool = new SlabPool(phaseOf);
    const first = take(pool, SLAB_BYTES / 4);
    for (let job = 1; job <= 100; job++) {
      take(pool, SLAB_BYTES / 4);
      pool.seal(job);
      pool.done(job);
    }
    // A slab in use, one waiting or free: not one per 1 MiB written.
    expect(pool.held).toBeLessThanOrEqual(3);
    expect(first.buffer.byteLength).toBe(SLAB_BYTES + BLOCK_BYTES);
  });

  it('keeps the slabs a heavy writer cycles through while jobs are in flight, and gives most back once idle', () => {
    const pool = new SlabPool(phaseOf);
    // 20 MiB in flight, a slab of 512 KiB per job, then all of it durable at once.
    const slabs = 40;
    for (let job = 1; job <= slabs; job++) {
      take(pool, SLAB_BYTES / 4 + 1);
      pool.seal(job);
    }
    pool.done(slabs);
    expect(pool.held).toBe(slabs);
    // The next 40 jobs reuse them: no fresh slab, whose pages would fault in as they are written.
    const seen = new Set<ArrayBufferLike>();
    for (let job = slabs + 1; job <= 2 * slabs; job++) {
      seen.add(take(pool, SLAB_BYTES / 4 + 1).buffer);
      pool.seal(job);
    }
    pool.done(2 * slabs);
    expect(pool.held).toBe(slabs);
    expect(seen.size).toBe(slabs);
    pool.shrink();
    // 16 MiB of free slabs of 512 KiB stay for the next burst.
    expect(pool.held).toBe(32);
  });

  it('keeps a retired slab while a job packed into it is still in flight', () => {
    const pool = new SlabPool(phaseOf);
    const quarter = SLAB_BYTES / 4;
    const a = [take(pool, quarter), take(pool, quarter), take(pool, quarter)];
    pool.seal(1);
    const last = take(pool, quarter); // fills slab A: job 2 is the last in it
    last.fill(7);
    pool.seal(2);
    take(pool, quarter); // retires A, starts B
    pool.seal(3);
    pool.done(1); // job 2 is still being written
    const fresh: Uint8Array[] = [];
    for (let i = 0; i < 12; i++) fresh.push(take(pool, quarter));
    expect(fresh.every((f) => f.buffer !== a[0]!.buffer)).toBe(true);
    expect(allAre(last, 7)).toBe(true);
    pool.seal(4);
    pool.done(4);
    // Now A is free: the pool takes it again rather than a new slab.
    const again: Uint8Array[] = [];
    for (let i = 0; i < 24; i++) again.push(take(pool, quarter));
    expect(again.some((f) => f.buffer === a[0]!.buffer)).toBe(true);
  });

  it('reuses the slabs after one the cache still holds, so that an entry held for long does not make the pool grow', () => {
    const pool = new SlabPool(phaseOf);
    let job = 0;
    take(pool, 100);
    pool.slab!.refs++; // an entry the cache holds throughout
    pool.seal(++job);
    pool.done(job);
    // 200 MB of writes that hold no cached entry (hard states, say), each durable at once.
    for (let i = 0; i < 2000; i++) {
      take(pool, 100 * 1024);
      pool.seal(++job);
      pool.done(job);
    }
    expect(pool.held).toBeLessThanOrEqual(4);
  });

  it('gives a write larger than a quarter slab a slab of its own, reused once durable', () => {
    const pool = new SlabPool(phaseOf);
    const big = take(pool, SLAB_BYTES / 4 + 1);
    expect((16 + big.byteOffset) % BLOCK_BYTES).toBe(0); // bound for offset 0 of a segment
    expect(big.buffer.byteLength).toBe(SLAB_BYTES / 2 + BLOCK_BYTES);
    big.fill(9);
    pool.seal(1);
    const second = take(pool, SLAB_BYTES / 2);
    expect(second.buffer).not.toBe(big.buffer);
    pool.seal(2);
    pool.done(1);
    const third = take(pool, SLAB_BYTES / 3);
    expect(third.buffer).toBe(big.buffer);
    // A write too large to be kept free gets exactly its size, not the next power of two.
    const huge = take(pool, 20 * 1024 * 1024 + 1);
    expect(huge.buffer.byteLength).toBe(20 * 1024 * 1024 + 1 + BLOCK_BYTES);
    // Nor is it kept once durable: no later write would have its size.
    const before = pool.held;
    pool.seal(3);
    pool.done(3);
    expect(pool.held).toBe(before - 1);
  });
});

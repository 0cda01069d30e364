// Where the WAL packs records before the writer thread writes them: slices of
// shared slabs, since one ArrayBuffer per append costs more than the packing
// itself for small batches. Slices are not zeroed: the record writers write
// every byte of a record, its padding included.
//
// Slabs are reused once every job packed into them is durable and the WAL's
// cache, which reads the entries it holds where they were packed, holds none of
// them (it counts them in a slab's `refs`). A fresh
// ArrayBuffer counts as external memory to V8, and at disk speed (hundreds of
// MB/s) that growth alone triggers a full mark-compact every few hundred
// milliseconds, each a pause of the event loop. Its pages also fault in as
// they are first written: about 15 us a page on a small virtual machine, 4 ms
// a MiB, taken in the middle of an append. So while jobs are in flight the
// pool keeps as many free slabs as a heavy writer cycles through, and gives
// the excess back once the WAL is idle.
//
// Where segments are written past the page cache, the writer moves whole blocks
// between block-aligned memory and block-aligned places in the file. A write is
// therefore packed where its memory lies within a block as its place in the file
// does: the writer writes its whole blocks straight from the slab, and copies
// only the blocks where a write starts and ends.

/** Bytes per shared slab: a write larger than a quarter of it gets a slab of its own, a power of two in size. */
export const SLAB_BYTES = 1024 * 1024;

/**
 * Bytes of free slabs kept for reuse while jobs are in flight; beyond them, freed slabs
 * go to the garbage collector. 256 appends of 1,024 records of 100 B in flight hold
 * 34 MiB: with 16 MiB kept, a third of the slabs it packed into were fresh.
 */
const MAX_FREE_BYTES = 64 * 1024 * 1024;

/** Bytes of free slabs kept once nothing is in flight (shrink()); also the largest write whose slab is kept. */
const IDLE_FREE_BYTES = 16 * 1024 * 1024;

/** The block of direct I/O (native/direct_io.h): a slab has this much more room, for placing writes in phase. */
export const BLOCK_BYTES = 4096;

/** Where a slab's first byte lies within a block of memory (the addon's blockPhase). */
export type PhaseOf = (u8: Uint8Array) => number;

export interface Slab {
  /** BLOCK_BYTES more than `size`. */
  u8: Uint8Array;
  /** Its size class: what it was asked for. */
  size: number;
  /** Where u8's first byte lies within a block of memory. */
  phase: number;
  /** Over the whole slab, made once: a DataView per append costs a call into the engine. */
  dv: DataView;
  /** The last job packed into it; Infinity while a job being collected still uses it. */
  job: number;
  /** Listed in `unsealed`: used by the job being collected. */
  unsealed: boolean;
  /** Cached entries whose bytes lie here: the slab is not reused while there are any. */
  refs: number;
}

export class SlabPool {
  /** The slab of the last allocate(): its bytes, and a view of them for the multi-byte fields. */
  u8: Uint8Array = new Uint8Array(0);
  dv: DataView = new DataView(this.u8.buffer);
  /** The slab of the last allocate(), for a cache to count its references in. */
  slab: Slab | null = null;
  #current: Slab | null = null;
  /** Every job up to this one is durable. */
  #durable = 0;
  #used = 0;
  /** Slabs no longer packed into, oldest first, waiting for their last job to be durable and the cache to let go of their entries. */
  #retired: Slab[] = [];
  /** Free slabs by size. */
  readonly #free = new Map<number, Slab[]>();
  #freeBytes = 0;
  /** Slabs used since the last seal(): the job being collected. */
  #unsealed: Slab[] = [];

  constructor(private readonly phaseOf: PhaseOf) {}

  /**
   * Reserves `n` bytes (not zeroed) for the job being collected (until seal()), bound for
   * `fileOffset` in a segment, and returns where they start in `u8`, the slab they were
   * taken from. Offsets into the slab, not a view per append: a fresh subarray and
   * DataView cost more than packing a small append.
   */
  allocate(n: number, fileOffset: number): number {
    if (n > SLAB_BYTES / 4) {
      // Its own slab, retired at once: nothing else is packed into it. Rounded up to a power
      // of two so that it can serve the next write of about its size, unless it is too large
      // to be kept anyway.
      const pooled = 2 ** Math.ceil(Math.log2(n));
      const s = this.#take(pooled <= IDLE_FREE_BYTES ? pooled : n);
      this.#use(s);
      this.#retired.push(s);
      return this.#slice(s, inPhase(s, 0, fileOffset));
    }
    let s = this.#current;
    // Writes that follow each other in the file and in the slab stay in phase with no gap.
    let at = s === null ? 0 : inPhase(s, this.#used, fileOffset);
    if (s === null || at + n > s.u8.length) {
      if (s !== null) this.#retired.push(s);
      s = this.#take(SLAB_BYTES);
      this.#current = s;
      at = inPhase(s, 0, fileOffset);
    }
    this.#use(s);
    this.#used = at + n;
    return this.#slice(s, at);
  }

  /** The job being collected was submitted as `id`: its slabs are free once `id` is durable. */
  seal(id: number): void {
    for (const s of this.#unsealed) {
      s.job = id;
      s.unsealed = false;
    }
    if (this.#unsealed.length > 0) this.#unsealed = []; // not length = 0, a call into the engine
  }

  /** Every job up to `lastId` is durable: the native writer no longer reads their slabs. */
  done(lastId: number): void {
    this.#durable = lastId;
    this.#reclaim(false);
  }

  /**
   * Frees the retired slabs that no job in flight and no cached entry uses. Jobs become
   * durable in order, so those slabs lie in the list's durable front, and so do the
   * cache's, oldest first. Usually this stops at the first slab the cache holds; with
   * `passOver` (before a fresh slab is allocated) it goes past those too, so that one
   * holding an old entry does not keep the slabs after it, which may hold no entry at
   * all (hard states), from ever being reused.
   */
  #reclaim(passOver: boolean): void {
    const r = this.#retired;
    let kept = 0;
    let i = 0;
    for (; i < r.length && r[i]!.job <= this.#durable; i++) {
      const s = r[i]!;
      if (s.refs > 0) {
        if (!passOver) break;
        r[kept++] = s;
        continue;
      }
      const size = s.size;
      if (size <= IDLE_FREE_BYTES && this.#freeBytes + size <= MAX_FREE_BYTES) {
        this.#freeBytes += size;
        const list = this.#free.get(size);
        if (list === undefined) this.#free.set(size, [s]);
        else list.push(s);
      }
    }
    if (kept < i) r.splice(kept, i - kept);
  }

  /** Nothing is in flight: keeps at most IDLE_FREE_BYTES of free slabs, the rest goes to the garbage collector. */
  shrink(): void {
    for (const [size, list] of this.#free) {
      while (this.#freeBytes > IDLE_FREE_BYTES && list.length > 0) {
        list.pop();
        this.#freeBytes -= size;
      }
      if (list.length === 0) this.#free.delete(size);
    }
  }

  /** Slabs allocated and not yet given back to the garbage collector (for tests). */
  get held(): number {
    let free = 0;
    for (const list of this.#free.values()) free += list.length;
    return (this.#current === null ? 0 : 1) + this.#retired.length + free;
  }

  /** Their memory. */
  get heldBytes(): number {
    let bytes = this.#current?.u8.length ?? 0;
    for (const s of this.#retired) bytes += s.u8.length;
    for (const list of this.#free.values()) for (const s of list) bytes += s.u8.length;
    return bytes;
  }

  #take(size: number): Slab {
    let s = this.#free.get(size)?.pop();
    if (s === undefined) {
      // The cache may have let go of entries since the last job was done.
      this.#reclaim(true);
      s = this.#free.get(size)?.pop();
    }
    if (s === undefined) {
      const u8 = new Uint8Array(new ArrayBuffer(size + BLOCK_BYTES));
      return { u8, size, phase: this.phaseOf(u8), dv: new DataView(u8.buffer), job: 0, unsealed: false, refs: 0 };
    }
    this.#freeBytes -= size;
    return s;
  }

  /** Marks the slab as used by the job being collected. */
  #use(s: Slab): void {
    if (s.unsealed) return;
    s.unsealed = true;
    s.job = Infinity;
    this.#unsealed.push(s);
  }

  #slice(s: Slab, at: number): number {
    this.slab = s;
    this.u8 = s.u8;
    this.dv = s.dv;
    return at;
  }
}

/** The first place in `s` from `at` on whose memory lies within a block as `fileOffset` does in the file. */
function inPhase(s: Slab, at: number, fileOffset: number): number {
  return at + ((((fileOffset - s.phase - at) % BLOCK_BYTES) + BLOCK_BYTES) % BLOCK_BYTES);
}

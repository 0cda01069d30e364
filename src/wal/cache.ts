// The recent tail of the log, kept in memory so that the common read (a
// leader sending what it just appended) never touches the disk. It always
// ends at lastIndex; the front is trimmed to a memory budget, but never past an
// entry whose write is still in flight (its bytes may not be in the file yet).
//
// Columns, a circular array that doubles when full: a term, a type and where the
// data lies per entry, not the entry objects. The cache keeps no object of its own
// per entry alive: at a million entries a second, objects that outlive a few
// young-generation collections are promoted, and the old generation then fills
// and is collected in pauses of the event loop. A read builds its entries
// afresh; they die young.
//
// The entries' bytes are not the caller's: the cache reads them where the WAL
// packed them for the writer, in slabs the WAL reuses once neither the writer nor
// the cache needs them (each slab counts the cached entries that lie in it). Holding
// the caller's data instead would hold every entry past the young generation (8 MiB
// is a tenth of a second of a busy log's writes): V8 counts the buffers it promotes
// against the old generation's limit until a full collection frees them, and in a
// small heap a full collection then ran every tenth of a second. Reusing the bytes
// means a view handed out could change under its holder, so a read returns a copy,
// except of the last few entries, whose data the cache still holds as given: the
// common read, applying what was just written, then costs no copy, and those entries
// are let go young. Only an entry larger than KEEP_ABOVE, or an empty one, is kept as
// given.
//
// The budget is memory, not data: an entry read from a slab keeps the whole slab
// from reuse, so a slab counts whole while any cached entry lies in it, and every
// entry counts its slot in each column. With tiny entries written one at a time a
// slab holds a hundred times their data (headers, hard states, markers), so a
// budget of data alone would let an 8 MiB cache hold a gigabyte, and one entry left
// of a large write holds a slab of the write's size.
import { RecentData } from './recent-data.js';
import type { WalEntry } from './types.js';

const INITIAL = 1024;

/** Entries larger than this are kept as given: they are few, and copying them costs many passes over bytes. */
export const KEEP_ABOVE = 64 * 1024;

/** What the cache counts for an entry besides the memory its bytes lie in: its slot in each column (about 37 bytes), and room for the columns to double. */
export const ENTRY_OVERHEAD = 48;

/** Memory that entries' bytes were packed into: its owner reuses it only once `refs`, the cached entries in it, is back to 0. */
export interface PackedBytes {
  readonly u8: Uint8Array;
  refs: number;
}

export class EntryCache {
  private terms = new Float64Array(INITIAL);
  private types = new Uint8Array(INITIAL);
  /** The data of an entry kept as given (no `packs`); else undefined. */
  private datas: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(INITIAL);
  /** The data of the newest entries, also held as given. */
  private readonly recent = new RecentData();
  /** Where an entry's bytes were packed (undefined: kept as given), and their offset there. */
  private packs: (PackedBytes | undefined)[] = new Array<PackedBytes | undefined>(INITIAL);
  /** Not 32-bit: one write may pack more than 2 GiB into a slab of its own. */
  private offsets = new Float64Array(INITIAL);
  private lengths = new Int32Array(INITIAL);
  private mask = INITIAL - 1;
  /** Ring slot of the entry at `lo`. */
  private head = 0;
  private count = 0;
  /** Index of the first cached entry (lastIndex + 1 when empty). */
  lo = 1;
  /** The memory the cached entries hold: their slabs, the data kept as given, their slots (see the budget above). */
  bytes = 0;

  get size(): number {
    return this.count;
  }

  /** A new entry object for a cached index, with a copy of its bytes (or its own data, if held as given). */
  get(index: number): WalEntry {
    const slot = (this.head + index - this.lo) & this.mask;
    const off = this.offsets[slot]!;
    const data = this.given(index, slot) ?? this.packs[slot]!.u8.slice(off, off + this.lengths[slot]!);
    return { index, term: this.terms[slot]!, type: this.types[slot]!, data };
  }

  /**
   * Calls `fn` for the cached entries from `lo` below `hi`, with a view of each entry's
   * bytes that is valid only during the call (the packed bytes are reused): for a
   * caller that copies them at once, this is a read without a copy of its own.
   */
  visit(lo: number, hi: number, fn: (index: number, term: number, type: number, data: Uint8Array) => void): void {
    for (let index = lo; index < hi; index++) {
      const slot = (this.head + index - this.lo) & this.mask;
      const off = this.offsets[slot]!;
      fn(index, this.terms[slot]!, this.types[slot]!, this.given(index, slot) ?? this.packs[slot]!.u8.subarray(off, off + this.lengths[slot]!));
    }
  }

  /**
   * Appends the entry after the last cached one (or starts the cache at it). Its bytes
   * are also at `at` in `packed`, which the cache holds (counts in `refs`, and in its
   * `bytes` while the count is above 0) while it holds the entry, unless it keeps the
   * entry's data as given.
   */
  push(e: WalEntry, packed: PackedBytes, at: number): void {
    if (this.count === 0) this.lo = e.index;
    if (this.count === this.datas.length) this.resize(this.datas.length * 2);
    const slot = (this.head + this.count) & this.mask;
    const len = e.data.length;
    this.terms[slot] = e.term;
    this.types[slot] = e.type;
    this.lengths[slot] = len;
    if (len === 0 || len > KEEP_ABOVE) {
      this.datas[slot] = e.data;
      this.packs[slot] = undefined;
      this.bytes += len;
    } else {
      if (packed.refs++ === 0) this.bytes += packed.u8.length;
      this.packs[slot] = packed;
      this.offsets[slot] = at;
    }
    this.recent.push(this.lo + this.count, e.data);
    this.count++;
    this.bytes += ENTRY_OVERHEAD;
  }

  truncateAfter(index: number): void {
    if (index < this.lo) {
      this.clear(index + 1);
      return;
    }
    const keep = index - this.lo + 1;
    if (keep >= this.count) return;
    this.recent.truncateAfter(index);
    for (let i = keep; i < this.count; i++) this.forget((this.head + i) & this.mask);
    this.count = keep;
    this.fit();
  }

  dropBefore(index: number): void {
    while (this.count > 0 && this.lo < index) this.shift();
    if (this.count === 0) this.lo = Math.max(this.lo, index);
    this.fit();
  }

  clear(lo: number): void {
    for (let i = 0; i < this.count; i++) this.forget((this.head + i) & this.mask);
    this.count = 0;
    this.resize(INITIAL);
    this.recent.clear();
    this.bytes = 0;
    this.lo = lo;
  }

  /** The data the cache holds as given for the entry at `index` in `slot`, if it does. */
  private given(index: number, slot: number): Uint8Array | undefined {
    return this.packs[slot] === undefined ? this.datas[slot] : this.recent.get(index);
  }

  /** Drops from the front while over budget, but only entries at or below `bound`. */
  trim(budget: number, bound: number): void {
    while (this.bytes > budget && this.count > 0 && this.lo <= bound) this.shift();
    this.fit();
  }

  private shift(): void {
    this.forget(this.head);
    this.recent.drop(this.lo);
    this.head = (this.head + 1) & this.mask;
    this.count--;
    this.lo++;
  }

  /** Accounts for the entry in `slot` leaving the cache, and lets go of what it held. */
  private forget(slot: number): void {
    const packed = this.packs[slot];
    if (packed !== undefined) {
      if (--packed.refs === 0) this.bytes -= packed.u8.length;
      this.packs[slot] = undefined;
    } else {
      this.bytes -= this.lengths[slot]!;
      this.datas[slot] = undefined;
    }
    this.bytes -= ENTRY_OVERHEAD;
  }

  /** Shrinks the columns to less than four times the entries: a burst that grew them does not keep them at its size. */
  private fit(): void {
    const n = this.datas.length;
    let m = n;
    while (m > INITIAL && this.count <= m >>> 2) m >>>= 1;
    if (m < n) this.resize(m);
  }

  /** Moves the entries into columns of `n` slots (a power of two, at least `count`), the oldest in slot 0. */
  private resize(n: number): void {
    const terms = new Float64Array(n);
    const types = new Uint8Array(n);
    const datas = new Array<Uint8Array | undefined>(n);
    const packs = new Array<PackedBytes | undefined>(n);
    const offsets = new Float64Array(n);
    const lengths = new Int32Array(n);
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head + i) & this.mask;
      terms[i] = this.terms[slot]!;
      types[i] = this.types[slot]!;
      datas[i] = this.datas[slot];
      packs[i] = this.packs[slot];
      offsets[i] = this.offsets[slot]!;
      lengths[i] = this.lengths[slot]!;
    }
    this.terms = terms;
    this.types = types;
    this.datas = datas;
    this.packs = packs;
    this.offsets = offsets;
    this.lengths = lengths;
    this.mask = n - 1;
    this.head = 0;
  }
}

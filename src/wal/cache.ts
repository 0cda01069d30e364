// The recent tail of the log, kept in memory so that the common read (a
// leader sending what it just appended) never touches the disk. It always
// ends at lastIndex; the front is trimmed to a byte budget, but never past an
// entry whose write is still in flight (its bytes may not be in the file yet).
//
// Columns, a circular array that doubles when full: a term, a type and where the
// data lies per entry, not the entry objects. The cache keeps no object of its own
// per entry alive: at a million entries a second, objects that outlive a few
// young-generation collections are promoted, and the old generation then fills
// and is collected in pauses of the event loop. A read builds its entries
// afresh; they die young.
//
// The entries' bytes are copied into one buffer that the cache reuses as a ring.
// Holding the caller's data instead would hold every entry past the young
// generation (8 MiB is a tenth of a second of a busy log's writes): V8 counts the
// buffers it promotes against the old generation's limit until a full collection
// frees them, and in a small heap a full collection then ran every tenth of a
// second. Reusing the bytes means a view handed out could change under its holder,
// so a read returns a copy, except of the last few entries, whose data the cache
// still holds as given: the common read, applying what was just written, then
// costs no copy, and those entries are let go young. A view into a larger buffer is
// copied too: a follower's entries are views of the messages they came in, and
// holding them held those. The copy costs a pass over the bytes (about 0.1 us a KiB
// on a small virtual machine), paid also by a caller whose data are views of a
// buffer that lives on anyway. Only an entry larger than KEEP_ABOVE is kept as given.
import type { WalEntry } from './types.js';

const INITIAL = 1024;

/** Entries larger than this are kept as given: they are few, and copying them costs many passes over bytes. */
export const KEEP_ABOVE = 64 * 1024;

/** The ring's smallest size, and the unit it grows by. */
const RING_UNIT = 64 * 1024;

/** A ring larger than this is let go when the cache is cleared, not kept for reuse. */
const RETAIN_BYTES = 16 * 1024 * 1024;

/** The `offsets` of an entry kept as given, or empty. */
const OWN = -1;

/** The newest entries whose data is also held as given: at most this many, of at most RECENT_BYTES. */
const RECENT_ENTRIES = 64;
const RECENT_BYTES = 1024 * 1024;

export class EntryCache {
  private terms = new Float64Array(INITIAL);
  private types = new Uint8Array(INITIAL);
  /** The data of an entry kept as given (offset OWN), or of a recent one in the ring; else undefined. */
  private datas: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(INITIAL);
  /** No entry in the ring below this index still has its data held as given. */
  private recentLo = 1;
  private recentEntries = 0;
  private recentBytes = 0;
  private offsets = new Int32Array(INITIAL);
  private lengths = new Int32Array(INITIAL);
  private mask = INITIAL - 1;
  /** Ring slot of the entry at `lo`. */
  private head = 0;
  private count = 0;
  /**
   * The entries' bytes, in index order from `ringHead` to `ringTail`, wrapping at most
   * once to 0 (the end it skipped is unused). Empty when `ringEntries` is 0.
   */
  private ring = new Uint8Array(0);
  private ringHead = 0;
  private ringTail = 0;
  private ringEntries = 0;
  private ringBytes = 0;
  /** Index of the first cached entry (lastIndex + 1 when empty). */
  lo = 1;
  bytes = 0;

  get size(): number {
    return this.count;
  }

  /** A new entry object for a cached index, with a copy of its bytes (or its own data, if kept as given). */
  get(index: number): WalEntry {
    const slot = (this.head + index - this.lo) & this.mask;
    const off = this.offsets[slot]!;
    const data = this.datas[slot] ?? this.ring.slice(off, off + this.lengths[slot]!);
    return { index, term: this.terms[slot]!, type: this.types[slot]!, data };
  }

  /**
   * Calls `fn` for the cached entries from `lo` below `hi`, with a view of each entry's
   * bytes that is valid only during the call (the ring's bytes are reused): for a
   * caller that copies them at once, this is a read without a copy of its own.
   */
  visit(lo: number, hi: number, fn: (index: number, term: number, type: number, data: Uint8Array) => void): void {
    for (let index = lo; index < hi; index++) {
      const slot = (this.head + index - this.lo) & this.mask;
      const off = this.offsets[slot]!;
      fn(index, this.terms[slot]!, this.types[slot]!, this.datas[slot] ?? this.ring.subarray(off, off + this.lengths[slot]!));
    }
  }

  /** Appends the entry after the last cached one (or starts the cache at it). */
  push(e: WalEntry): void {
    if (this.count === 0) this.lo = e.index;
    if (this.count === this.datas.length) this.grow();
    const slot = (this.head + this.count) & this.mask;
    const len = e.data.length;
    this.terms[slot] = e.term;
    this.types[slot] = e.type;
    this.lengths[slot] = len;
    if (len === 0 || len > KEEP_ABOVE) {
      this.datas[slot] = e.data;
      this.offsets[slot] = OWN;
    } else {
      const at = this.place(len);
      this.ring.set(e.data, at);
      this.offsets[slot] = at;
      this.ringTail = at + len;
      this.ringEntries++;
      this.ringBytes += len;
      this.datas[slot] = e.data;
      this.recentEntries++;
      this.recentBytes += len;
    }
    this.count++;
    this.bytes += len;
    // Let go of the oldest recent data (still in the ring) beyond the bounds.
    while ((this.recentEntries > RECENT_ENTRIES || this.recentBytes > RECENT_BYTES) && this.recentLo < this.lo + this.count) {
      const i = Math.max(this.recentLo, this.lo);
      const old = (this.head + i - this.lo) & this.mask;
      if (this.offsets[old] !== OWN && this.datas[old] !== undefined) {
        this.datas[old] = undefined;
        this.recentEntries--;
        this.recentBytes -= this.lengths[old]!;
      }
      this.recentLo = i + 1;
    }
  }

  truncateAfter(index: number): void {
    if (index < this.lo) {
      this.clear(index + 1);
      return;
    }
    const keep = index - this.lo + 1;
    if (keep >= this.count) return;
    // The entries pushed after the truncation are recent; none below it became so.
    this.recentLo = Math.min(this.recentLo, index + 1);
    for (let i = keep; i < this.count; i++) this.forget((this.head + i) & this.mask);
    this.count = keep;
    // The ring now ends where the last entry left in it ends.
    for (let i = keep - 1; i >= 0 && this.ringEntries > 0; i--) {
      const slot = (this.head + i) & this.mask;
      if (this.offsets[slot] !== OWN) {
        this.ringTail = this.offsets[slot]! + this.lengths[slot]!;
        break;
      }
    }
  }

  dropBefore(index: number): void {
    while (this.count > 0 && this.lo < index) this.shift();
    if (this.count === 0) this.lo = Math.max(this.lo, index);
  }

  clear(lo: number): void {
    this.terms = new Float64Array(INITIAL);
    this.types = new Uint8Array(INITIAL);
    this.datas = new Array<Uint8Array | undefined>(INITIAL);
    this.offsets = new Int32Array(INITIAL);
    this.lengths = new Int32Array(INITIAL);
    this.mask = INITIAL - 1;
    this.head = 0;
    this.count = 0;
    if (this.ring.length > RETAIN_BYTES) this.ring = new Uint8Array(0);
    this.ringHead = this.ringTail = this.ringEntries = this.ringBytes = 0;
    this.recentLo = lo;
    this.recentEntries = this.recentBytes = 0;
    this.bytes = 0;
    this.lo = lo;
  }

  /**
   * Drops from the front while over budget, but only entries at or below `bound`. A ring
   * that a burst of writes in flight made large is packed into a smaller one once it is
   * mostly empty, so that the burst does not hold its memory for good.
   */
  trim(budget: number, bound: number): void {
    while (this.bytes > budget && this.count > 0 && this.lo <= bound) this.shift();
    if (this.ring.length > RETAIN_BYTES && this.ring.length > 4 * this.ringBytes) this.repack(this.ringBytes * 1.5);
  }

  private shift(): void {
    this.forget(this.head);
    this.head = (this.head + 1) & this.mask;
    this.count--;
    this.lo++;
    // The ring now starts where the first entry left in it starts.
    for (let i = 0; i < this.count && this.ringEntries > 0; i++) {
      const slot = (this.head + i) & this.mask;
      if (this.offsets[slot] !== OWN) {
        this.ringHead = this.offsets[slot]!;
        break;
      }
    }
  }

  /** Accounts for the entry in `slot` leaving the cache. */
  private forget(slot: number): void {
    const len = this.lengths[slot]!;
    this.bytes -= len;
    if (this.offsets[slot] === OWN) this.datas[slot] = undefined;
    else {
      if (this.datas[slot] !== undefined) {
        this.datas[slot] = undefined;
        this.recentEntries--;
        this.recentBytes -= len;
      }
      this.ringBytes -= len;
      if (--this.ringEntries === 0) this.ringHead = this.ringTail = 0;
    }
  }

  /** Where in the ring `len` bytes go after the last entry's, growing the ring if they do not fit. */
  private place(len: number): number {
    const cap = this.ring.length;
    if (this.ringEntries === 0) {
      if (len <= cap) return 0;
    } else if (this.ringTail > this.ringHead) {
      // [head, tail) in use: after it, or else from the start, before head. Strictly
      // before, so that head and tail are equal only when the ring is empty.
      if (this.ringTail + len <= cap) return this.ringTail;
      if (len < this.ringHead) return 0;
    } else if (this.ringTail + len < this.ringHead) {
      // Wrapped: [head, end) and [0, tail) in use.
      return this.ringTail;
    }
    this.resize(len);
    return this.ringTail;
  }

  /** A larger ring: half as large again as what it must hold, or as the ring before, whichever is larger. */
  private resize(len: number): void {
    this.repack(Math.max(this.ringBytes + len, this.ring.length, RING_UNIT / 2) * 1.5);
  }

  /** A new ring of about `size` bytes, with the entries' bytes packed from its start in index order. */
  private repack(size: number): void {
    const ring = new Uint8Array(Math.max(1, Math.ceil(size / RING_UNIT)) * RING_UNIT);
    let at = 0;
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head + i) & this.mask;
      const off = this.offsets[slot]!;
      if (off === OWN) continue;
      const n = this.lengths[slot]!;
      ring.set(this.ring.subarray(off, off + n), at);
      this.offsets[slot] = at;
      at += n;
    }
    this.ring = ring;
    this.ringHead = 0;
    this.ringTail = at;
  }

  private grow(): void {
    const n = this.datas.length * 2;
    const terms = new Float64Array(n);
    const types = new Uint8Array(n);
    const datas = new Array<Uint8Array | undefined>(n);
    const offsets = new Int32Array(n);
    const lengths = new Int32Array(n);
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head + i) & this.mask;
      terms[i] = this.terms[slot]!;
      types[i] = this.types[slot]!;
      datas[i] = this.datas[slot];
      offsets[i] = this.offsets[slot]!;
      lengths[i] = this.lengths[slot]!;
    }
    this.terms = terms;
    this.types = types;
    this.datas = datas;
    this.offsets = offsets;
    this.lengths = lengths;
    this.mask = n - 1;
    this.head = 0;
  }
}

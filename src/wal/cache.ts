// The recent tail of the log, kept in memory so that the common read (a
// leader sending what it just appended) never touches the disk. It always
// ends at lastIndex; the front is trimmed to a byte budget, but never past an
// entry whose write is still in flight (its bytes may not be in the file yet).
//
// Columns in a ring that doubles when full: a term, a type and the caller's
// data per entry, not the entry objects. Pushing and trimming copy nothing in
// steady state, and the cache keeps no object of its own per entry alive: at a
// million entries a second, objects that outlive a few young-generation
// collections are promoted, and the old generation then fills and is
// collected in pauses of the event loop. A read builds its entries afresh;
// they die young.
import type { WalEntry } from './types.js';

const INITIAL = 1024;

export class EntryCache {
  private terms = new Float64Array(INITIAL);
  private types = new Uint8Array(INITIAL);
  private datas: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(INITIAL);
  private mask = INITIAL - 1;
  /** Ring slot of the entry at `lo`. */
  private head = 0;
  private count = 0;
  /** Index of the first cached entry (lastIndex + 1 when empty). */
  lo = 1;
  bytes = 0;

  get size(): number {
    return this.count;
  }

  /** A new entry object for a cached index. */
  get(index: number): WalEntry {
    const slot = (this.head + index - this.lo) & this.mask;
    return { index, term: this.terms[slot]!, type: this.types[slot]!, data: this.datas[slot]! };
  }

  /** Appends the entry after the last cached one (or starts the cache at it). */
  push(e: WalEntry): void {
    if (this.count === 0) this.lo = e.index;
    if (this.count === this.datas.length) this.grow();
    const slot = (this.head + this.count) & this.mask;
    this.terms[slot] = e.term;
    this.types[slot] = e.type;
    this.datas[slot] = e.data;
    this.count++;
    this.bytes += e.data.length;
  }

  truncateAfter(index: number): void {
    if (index < this.lo) {
      this.clear(index + 1);
      return;
    }
    const keep = index - this.lo + 1;
    for (let i = keep; i < this.count; i++) {
      const slot = (this.head + i) & this.mask;
      this.bytes -= this.datas[slot]!.length;
      this.datas[slot] = undefined;
    }
    if (keep < this.count) this.count = keep;
  }

  dropBefore(index: number): void {
    while (this.count > 0 && this.lo < index) this.shift();
    if (this.count === 0) this.lo = Math.max(this.lo, index);
  }

  clear(lo: number): void {
    this.terms = new Float64Array(INITIAL);
    this.types = new Uint8Array(INITIAL);
    this.datas = new Array<Uint8Array | undefined>(INITIAL);
    this.mask = INITIAL - 1;
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
    this.lo = lo;
  }

  /** Drops from the front while over budget, but only entries at or below `bound`. */
  trim(budget: number, bound: number): void {
    while (this.bytes > budget && this.count > 0 && this.lo <= bound) this.shift();
  }

  private shift(): void {
    this.bytes -= this.datas[this.head]!.length;
    this.datas[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.count--;
    this.lo++;
  }

  private grow(): void {
    const n = this.datas.length * 2;
    const terms = new Float64Array(n);
    const types = new Uint8Array(n);
    const datas = new Array<Uint8Array | undefined>(n);
    for (let i = 0; i < this.count; i++) {
      const slot = (this.head + i) & this.mask;
      terms[i] = this.terms[slot]!;
      types[i] = this.types[slot]!;
      datas[i] = this.datas[slot];
    }
    this.terms = terms;
    this.types = types;
    this.datas = datas;
    this.mask = n - 1;
    this.head = 0;
  }
}

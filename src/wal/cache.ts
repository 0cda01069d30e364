// The recent tail of the log, kept as entry objects so that the common read
// (a leader sending what it just appended) never touches the disk. It always
// ends at lastIndex; the front is trimmed to a byte budget, but never past an
// entry whose write is still in flight (its bytes may not be in the file yet).
//
// A ring that doubles when full: pushing and trimming never copy the tail,
// which at a million entries a second is most of what a plain array costs.
import type { WalEntry } from './types.js';

export class EntryCache {
  private ring: (WalEntry | undefined)[] = new Array<WalEntry | undefined>(1024);
  private mask = 1023;
  /** Ring slot of the entry at `lo`. */
  private head = 0;
  private count = 0;
  /** Index of the first cached entry (lastIndex + 1 when empty). */
  lo = 1;
  bytes = 0;

  get size(): number {
    return this.count;
  }

  get(index: number): WalEntry {
    return this.ring[(this.head + index - this.lo) & this.mask]!;
  }

  /** Appends the entry after the last cached one (or starts the cache at it). */
  push(e: WalEntry): void {
    if (this.count === 0) this.lo = e.index;
    if (this.count === this.ring.length) this.grow();
    this.ring[(this.head + this.count) & this.mask] = e;
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
      this.bytes -= this.ring[slot]!.data.length;
      this.ring[slot] = undefined;
    }
    if (keep < this.count) this.count = keep;
  }

  dropBefore(index: number): void {
    while (this.count > 0 && this.lo < index) this.shift();
    if (this.count === 0) this.lo = Math.max(this.lo, index);
  }

  clear(lo: number): void {
    this.ring = new Array<WalEntry | undefined>(1024);
    this.mask = 1023;
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
    const e = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.bytes -= e.data.length;
    this.head = (this.head + 1) & this.mask;
    this.count--;
    this.lo++;
  }

  private grow(): void {
    const next = new Array<WalEntry | undefined>(this.ring.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.ring[(this.head + i) & this.mask];
    this.ring = next;
    this.mask = next.length - 1;
    this.head = 0;
  }
}

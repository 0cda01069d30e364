// The recent tail of the log, kept as entry objects so that the common read
// (a leader sending what it just appended) never touches the disk. It always
// ends at lastIndex; the front is trimmed to a byte budget, but never past an
// entry whose write is still in flight (its bytes may not be in the file yet).
import type { WalEntry } from './types.js';

export class EntryCache {
  private items: WalEntry[] = [];
  private head = 0;
  /** Index of the first cached entry (lastIndex + 1 when empty). */
  lo = 1;
  bytes = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  get(index: number): WalEntry {
    return this.items[this.head + index - this.lo]!;
  }

  /** Appends the entry after the last cached one (or starts the cache at it). */
  push(e: WalEntry): void {
    if (this.size === 0) this.lo = e.index;
    this.items.push(e);
    this.bytes += e.data.length;
  }

  truncateAfter(index: number): void {
    if (index < this.lo) {
      this.clear(index + 1);
      return;
    }
    const keep = this.head + index - this.lo + 1;
    for (let i = keep; i < this.items.length; i++) this.bytes -= this.items[i]!.data.length;
    if (keep < this.items.length) this.items.length = keep;
  }

  dropBefore(index: number): void {
    while (this.size > 0 && this.lo < index) this.shift();
    if (this.size === 0) this.lo = Math.max(this.lo, index);
  }

  clear(lo: number): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    this.lo = lo;
  }

  /** Drops from the front while over budget, but only entries at or below `bound`. */
  trim(budget: number, bound: number): void {
    while (this.bytes > budget && this.size > 0 && this.lo <= bound) this.shift();
  }

  private shift(): void {
    this.bytes -= this.items[this.head]!.data.length;
    this.head++;
    this.lo++;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

// The data objects of the newest cached entries, as their writer gave them, so
// that reading what was just written (applying it, sending it to a follower)
// hands them back instead of copying their bytes.
//
// They are kept in small arrays made afresh every few dozen entries, not in a
// slot of the cache's long-lived columns. Storing a just-made object into an
// object that has outlived the young generation takes V8's write barrier down its
// slow path, which records the slot for the next scavenge: for a WAL fed 1 KiB
// entries as fast as it can write them, that store and its barrier were a third
// of the event loop's time. A store into an array that is itself young takes the
// fast path, and the array dies young along with what it held.

/** Entries an array holds: the newest ENTRIES to 2 x ENTRIES entries are kept. */
const ENTRIES = 64;

/** An array is also replaced once it holds this many bytes of data: at most about twice this is kept. */
const BYTES = 512 * 1024;

const NONE: (Uint8Array | undefined)[] = [];

export class RecentData {
  /** Data of entries [from, from + count). */
  private current: (Uint8Array | undefined)[] = NONE;
  private from = 1;
  private count = 0;
  private bytes = 0;
  /** The array before it: data of entries [olderFrom, olderFrom + olderCount). */
  private older: (Uint8Array | undefined)[] = NONE;
  private olderFrom = 1;
  private olderCount = 0;

  /** The data of entry `index` if it is held, else undefined. */
  get(index: number): Uint8Array | undefined {
    const k = index - this.from;
    if (k >= 0 && k < this.count) return this.current[k];
    const j = index - this.olderFrom;
    if (j >= 0 && j < this.olderCount) return this.older[j];
    return undefined;
  }

  /** Holds the data of entry `index`, the newest: the one after the last pushed, or the first after a truncation. */
  push(index: number, data: Uint8Array): void {
    if (this.count === 0 || index !== this.from + this.count || this.count === ENTRIES || this.bytes >= BYTES) this.turn(index);
    this.current[this.count++] = data;
    this.bytes += data.length;
  }

  /** Lets go of the data of the entries after `index`. */
  truncateAfter(index: number): void {
    this.count = this.cut(this.current, this.from, this.count, index);
    this.olderCount = this.cut(this.older, this.olderFrom, this.olderCount, index);
  }

  /** Lets go of the data of entry `index`, the oldest the cache holds, as the cache drops it. */
  drop(index: number): void {
    if (index - this.olderFrom >= 0 && index - this.olderFrom < this.olderCount) this.older[index - this.olderFrom] = undefined;
    else if (index - this.from >= 0 && index - this.from < this.count) this.current[index - this.from] = undefined;
  }

  clear(): void {
    this.current = this.older = NONE;
    this.count = this.olderCount = this.bytes = 0;
  }

  /** A fresh array from entry `index` on; the current one becomes the older if `index` follows it. */
  private turn(index: number): void {
    if (this.count > 0 && index === this.from + this.count) {
      this.older = this.current;
      this.olderFrom = this.from;
      this.olderCount = this.count;
    } else if (index !== this.olderFrom + this.olderCount) {
      this.older = NONE;
      this.olderCount = 0;
    }
    this.current = new Array<Uint8Array | undefined>(ENTRIES);
    this.from = index;
    this.count = 0;
    this.bytes = 0;
  }

  /** The count left of an array of `count` entries from `from` once entries after `index` go; their slots are cleared. */
  private cut(a: (Uint8Array | undefined)[], from: number, count: number, index: number): number {
    const keep = Math.max(0, Math.min(count, index + 1 - from));
    for (let k = keep; k < count; k++) a[k] = undefined;
    return keep;
  }
}

// The replicate-state flow-control window: the MsgApps sent to one follower
// and not yet acknowledged, bounded both in count and in bytes. A fixed ring of
// two typed arrays, so sending and acknowledging allocate nothing.

export class Inflights {
  private start = 0;
  private count = 0;
  private totalBytes = 0;
  private readonly lastIndexes: Float64Array;
  private readonly sizes: Float64Array;

  /** maxBytes 0 means unbounded in bytes. */
  constructor(
    readonly capacity: number,
    readonly maxBytes: number,
  ) {
    this.lastIndexes = new Float64Array(capacity);
    this.sizes = new Float64Array(capacity);
  }

  /** Records a MsgApp whose last entry is `lastIndex`. */
  add(lastIndex: number, bytes: number): void {
    if (this.count === this.capacity) throw new RangeError('inflights: add on a full window');
    let slot = this.start + this.count;
    if (slot >= this.capacity) slot -= this.capacity;
    this.lastIndexes[slot] = lastIndex;
    this.sizes[slot] = bytes;
    this.count++;
    this.totalBytes += bytes;
  }

  /** Frees every message whose last entry is <= `to` (they were acknowledged). */
  freeLE(to: number): void {
    while (this.count > 0 && this.lastIndexes[this.start]! <= to) {
      this.totalBytes -= this.sizes[this.start]!;
      this.count--;
      this.start++;
      if (this.start === this.capacity) this.start = 0;
    }
    if (this.count === 0) {
      this.start = 0;
      this.totalBytes = 0;
    }
  }

  full(): boolean {
    return this.count === this.capacity || (this.maxBytes > 0 && this.totalBytes >= this.maxBytes);
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.totalBytes = 0;
  }
}

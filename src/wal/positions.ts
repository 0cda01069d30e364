// Where every live entry is: term, segment and offset, in parallel typed
// arrays indexed by log index. This is the only per-entry state the WAL keeps
// for the whole log (16-24 bytes an entry); the data itself stays on disk.
//
// Slot 0 (at `head`) is a sentinel for index `base` = firstIndex - 1 so that
// term(firstIndex - 1) answers the snapshot's term, as Raft needs.

export class Positions {
  private terms = new Float64Array(1024);
  private seqs = new Uint32Array(1024);
  private offsets = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  private head = 0;
  private count = 1;
  /** The sentinel's index: firstIndex - 1. */
  base = 0;

  get last(): number {
    return this.base + this.count - 1;
  }

  term(index: number): number {
    return this.terms[this.head + index - this.base]!;
  }
  seq(index: number): number {
    return this.seqs[this.head + index - this.base]!;
  }
  offset(index: number): number {
    return this.offsets[this.head + index - this.base]!;
  }
  /** Data length of the entry. */
  length(index: number): number {
    return this.lengths[this.head + index - this.base]!;
  }

  push(term: number, seq: number, offset: number, length: number): void {
    if (this.head + this.count === this.terms.length) this.makeRoom();
    const s = this.head + this.count++;
    this.terms[s] = term;
    this.seqs[s] = seq;
    this.offsets[s] = offset;
    this.lengths[s] = length;
  }

  /** Keeps entries up to and including `index`. */
  truncateAfter(index: number): void {
    this.count = index - this.base + 1;
  }

  /** Forgets every entry: the log restarts after (index, term). */
  reset(index: number, term: number): void {
    this.head = 0;
    this.count = 1;
    this.base = index;
    this.terms[0] = term;
  }

  /** Drops entries below `index`; `index` (which must exist) becomes the sentinel. */
  dropBefore(index: number): void {
    const k = index - this.base;
    this.head += k;
    this.count -= k;
    this.base = index;
  }

  private makeRoom(): void {
    const cap = this.terms.length;
    const grow = this.count * 2 > cap;
    const size = grow ? cap * 2 : cap;
    const move = <T extends Float64Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      if (!grow) {
        a.copyWithin(0, this.head, this.head + this.count);
        return a;
      }
      const b = make(size);
      b.set(a.subarray(this.head, this.head + this.count));
      return b;
    };
    this.terms = move(this.terms, (n) => new Float64Array(n));
    this.seqs = move(this.seqs, (n) => new Uint32Array(n));
    this.offsets = move(this.offsets, (n) => new Float64Array(n));
    this.lengths = move(this.lengths, (n) => new Uint32Array(n));
    this.head = 0;
  }
}

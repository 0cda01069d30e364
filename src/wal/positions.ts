// Where every live entry is: term, segment and offset, indexed by log index.
// This is the only per-entry state the WAL keeps for the whole log (24 bytes
// an entry); the data itself stays on disk.
//
// Stored in fixed-size chunks of typed arrays, so that growing never copies
// the whole index (a multi-megabyte copy would stall the event loop) and
// releasing the front frees whole chunks. A freed chunk is kept for the next
// one needed: a fresh chunk is 384 KiB of zeroed memory, which costs the
// page faults of filling it and counts as external memory to V8. Its four
// columns share one ArrayBuffer: four separate ones of 64-128 KiB were each
// zeroed by the allocator at once (0.5 ms, up to 3 ms, on a small virtual
// machine), where one of 384 KiB comes as fresh pages whose faults are spread
// over the pushes that fill them.
//
// Slot 0 (at `head`) is a sentinel for index `base` = firstIndex - 1 so that
// term(firstIndex - 1) answers the snapshot's term, as Raft needs.

const SHIFT = 14;
const CHUNK = 1 << SHIFT;
const MASK = CHUNK - 1;

class Chunk {
  readonly terms: Float64Array;
  readonly offsets: Float64Array;
  readonly seqs: Uint32Array;
  readonly lengths: Uint32Array;
  constructor() {
    const b = new ArrayBuffer(CHUNK * 24);
    this.terms = new Float64Array(b, 0, CHUNK);
    this.offsets = new Float64Array(b, CHUNK * 8, CHUNK);
    this.seqs = new Uint32Array(b, CHUNK * 16, CHUNK);
    this.lengths = new Uint32Array(b, CHUNK * 20, CHUNK);
  }
}

/**
 * Freed chunks kept for reuse (3 MiB): a snapshot of a replicated log at its default
 * interval (100,000 entries) releases about six, which its next entries need again.
 */
const MAX_SPARE = 8;

export class Positions {
  private chunks: Chunk[] = [new Chunk()];
  private readonly spare: Chunk[] = [];
  /** Slot of the sentinel in chunks[0]. */
  private head = 0;
  private count = 1;
  /** The sentinel's index: firstIndex - 1. */
  base = 0;

  get last(): number {
    return this.base + this.count - 1;
  }

  term(index: number): number {
    const k = this.head + index - this.base;
    return this.chunks[k >>> SHIFT]!.terms[k & MASK]!;
  }
  seq(index: number): number {
    const k = this.head + index - this.base;
    return this.chunks[k >>> SHIFT]!.seqs[k & MASK]!;
  }
  offset(index: number): number {
    const k = this.head + index - this.base;
    return this.chunks[k >>> SHIFT]!.offsets[k & MASK]!;
  }
  /** Data length of the entry. */
  length(index: number): number {
    const k = this.head + index - this.base;
    return this.chunks[k >>> SHIFT]!.lengths[k & MASK]!;
  }

  push(term: number, seq: number, offset: number, length: number): void {
    const k = this.head + this.count++;
    const n = k >>> SHIFT;
    if (n === this.chunks.length) this.chunks.push(this.spare.pop() ?? new Chunk());
    const c = this.chunks[n]!;
    const s = k & MASK;
    c.terms[s] = term;
    c.seqs[s] = seq;
    c.offsets[s] = offset;
    c.lengths[s] = length;
  }

  /** Keeps entries up to and including `index`. */
  truncateAfter(index: number): void {
    this.count = index - this.base + 1;
    const needed = ((this.head + this.count - 1) >>> SHIFT) + 1;
    if (this.chunks.length > needed + 1) this.keep(this.chunks.splice(needed + 1));
  }

  /** Forgets every entry: the log restarts after (index, term). */
  reset(index: number, term: number): void {
    this.keep(this.chunks.splice(1));
    this.head = 0;
    this.count = 1;
    this.base = index;
    this.chunks[0]!.terms[0] = term;
  }

  /** Sets the term of the sentinel (the entry at `base`) without touching the entries. */
  setBaseTerm(term: number): void {
    this.chunks[0]!.terms[this.head] = term;
  }

  /**
   * A snapshot marker at (index, term). If the log holds that entry with that term,
   * the entries above it stay (a local snapshot); otherwise, or with `discardLog`,
   * the log restarts after it. Returns whether the entries were discarded.
   */
  applySnapshot(index: number, term: number, discardLog: boolean): boolean {
    if (discardLog || index > this.last || this.term(index) !== term) {
      this.reset(index, term);
      return true;
    }
    this.dropBefore(index);
    return false;
  }

  /** Drops entries below `index`; `index` (which must exist) becomes the sentinel. */
  dropBefore(index: number): void {
    const k = index - this.base;
    this.head += k;
    this.count -= k;
    this.base = index;
    const whole = this.head >>> SHIFT;
    if (whole > 0) {
      this.keep(this.chunks.splice(0, whole));
      this.head &= MASK;
    }
  }

  private keep(freed: Chunk[]): void {
    for (const c of freed) if (this.spare.length < MAX_SPARE) this.spare.push(c);
  }
}

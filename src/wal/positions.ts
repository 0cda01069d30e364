// Where every live entry is: term, segment, offset and data length, indexed
// by log index. This is the only per-entry state the WAL keeps for the whole
// log; the data itself stays on disk.
//
// Terms and segments change rarely along the log and are kept as runs. The
// offset and length (32 bits each, 8 bytes an entry) are kept in fixed-size
// chunks of typed arrays, so that growing never copies the whole index (a
// multi-megabyte copy would stall the event loop) and releasing the front
// frees whole chunks. Fresh memory is what an uncompacted log pays for per
// entry: a fresh chunk is zeroed and its pages fault in, at about 15 us a
// page on a small virtual machine. With a column per field (24 bytes an
// entry), a log never compacted spent a fifth of its CPU per 100-byte record
// on them, appending 1,024 records at a time. A freed chunk is kept for the
// next one needed. Its two columns share one ArrayBuffer: one allocation, not
// one per column.
//
// Slot 0 (at `head`) is a sentinel for index `base` = firstIndex - 1 so that
// term(firstIndex - 1) answers the snapshot's term, as Raft needs.

import { Runs } from './runs.js';

const SHIFT = 14;
const CHUNK = 1 << SHIFT;
const MASK = CHUNK - 1;

class Chunk {
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  constructor() {
    const b = new ArrayBuffer(CHUNK * 8);
    this.offsets = new Uint32Array(b, 0, CHUNK);
    this.lengths = new Uint32Array(b, CHUNK * 4, CHUNK);
  }
}

/**
 * Freed chunks kept for reuse (1 MiB): a snapshot of a replicated log at its default
 * interval (100,000 entries) releases about six, which its next entries need again.
 */
const MAX_SPARE = 8;

/** Offsets are kept in 32 bits: the WAL starts no record past 2^30 in a segment (segments are at most 2^30 bytes). */
export const MAX_OFFSET = 2 ** 32 - 1;

export class Positions {
  private chunks: Chunk[] = [new Chunk()];
  private readonly spare: Chunk[] = [];
  private readonly terms = new Runs();
  private readonly seqs = new Runs();
  /** Slot of the sentinel in chunks[0]. */
  private head = 0;
  private count = 1;
  /** The sentinel's index: firstIndex - 1. */
  base = 0;

  constructor() {
    this.terms.reset(0, 0);
  }

  get last(): number {
    return this.base + this.count - 1;
  }

  term(index: number): number {
    return this.terms.at(index);
  }
  seq(index: number): number {
    return this.seqs.at(index);
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
    const index = this.base + this.count;
    const k = this.head + this.count++;
    const n = k >>> SHIFT;
    if (n === this.chunks.length) this.chunks.push(this.spare.pop() ?? new Chunk());
    const c = this.chunks[n]!;
    const s = k & MASK;
    c.offsets[s] = offset;
    c.lengths[s] = length;
    this.terms.push(index, term);
    this.seqs.push(index, seq);
  }

  /** Keeps entries up to and including `index`. */
  truncateAfter(index: number): void {
    this.count = index - this.base + 1;
    this.terms.truncateAfter(index);
    this.seqs.truncateAfter(index);
    const needed = ((this.head + this.count - 1) >>> SHIFT) + 1;
    if (this.chunks.length > needed + 1) this.keep(this.chunks.splice(needed + 1));
  }

  /** Forgets every entry: the log restarts after (index, term). */
  reset(index: number, term: number): void {
    this.keep(this.chunks.splice(1));
    this.head = 0;
    this.count = 1;
    this.base = index;
    this.terms.reset(index, term);
    this.seqs.clear(); // the sentinel is in no segment
  }

  /** Sets the term of the sentinel (the entry at `base`) without touching the entries. */
  setBaseTerm(term: number): void {
    this.terms.setFirst(this.base, term, this.count > 1);
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
    this.terms.dropBefore(index);
    this.seqs.dropBefore(index);
    const whole = this.head >>> SHIFT;
    if (whole > 0) {
      this.keep(this.chunks.splice(0, whole));
      this.head &= MASK;
    }
  }

  /** Runs of terms and segments kept (for tests): a few per term and per segment, not one per entry. */
  get runs(): number {
    return this.terms.size + this.seqs.size;
  }

  private keep(freed: Chunk[]): void {
    for (const c of freed) if (this.spare.length < MAX_SPARE) this.spare.push(c);
  }
}

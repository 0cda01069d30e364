// The entries just below the latest local snapshot, kept readable in memory after
// the WAL released them, so that a follower a little behind catches up from the
// log rather than by a whole snapshot.
//
// Their bytes live in one buffer that is refilled at every snapshot, and a read
// returns a copy. Holding the entry objects instead held up to 8 MiB of buffers
// from one snapshot to the next (a tenth of a second on a busy log): past the
// young generation, where V8 counts them against the old generation's limit
// until a full collection frees them.
import type { Entry, EntryType } from '../raft/types.js';

export class CatchUpWindow {
  /** Index of the first entry; the window is empty when `size` is 0. */
  first = 0;
  size = 0;
  /** Term of the entry just below the window. */
  prevTerm = 0;
  private terms = new Float64Array(0);
  private types = new Uint8Array(0);
  /** Where each entry's bytes end in `bytes` (they start where the one before ends). */
  private ends = new Float64Array(0);
  private bytes = new Uint8Array(0);

  /** Empties the window, keeping its memory for the next fill. */
  clear(): void {
    this.first = this.size = this.prevTerm = 0;
  }

  /** Appends the entry after the last one (the first fixes `first`). */
  push(e: Entry): void {
    if (this.size === 0) this.first = e.index;
    else if (e.index !== this.first + this.size) throw new Error(`internal error: catch-up window entry ${e.index} after ${this.first + this.size - 1}`);
    const n = this.size;
    if (n === this.terms.length) this.growColumns();
    const start = n === 0 ? 0 : this.ends[n - 1]!;
    const end = start + e.data.length;
    if (end > this.bytes.length) this.growBytes(end);
    this.bytes.set(e.data, start);
    this.terms[n] = e.term;
    this.types[n] = e.type;
    this.ends[n] = end;
    this.size = n + 1;
  }

  /** Whether entry `i` is in the window. */
  has(i: number): boolean {
    return this.size > 0 && i >= this.first && i < this.first + this.size;
  }

  term(i: number): number {
    return this.terms[i - this.first]!;
  }

  dataLength(i: number): number {
    const k = i - this.first;
    return this.ends[k]! - (k === 0 ? 0 : this.ends[k - 1]!);
  }

  /** A new entry object for entry `i`, with a copy of its bytes. */
  entry(i: number): Entry {
    const k = i - this.first;
    const start = k === 0 ? 0 : this.ends[k - 1]!;
    return { index: i, term: this.terms[k]!, type: this.types[k]! as EntryType, data: this.bytes.slice(start, this.ends[k]!) };
  }

  private growColumns(): void {
    const n = Math.max(64, this.terms.length * 2);
    const terms = new Float64Array(n);
    const types = new Uint8Array(n);
    const ends = new Float64Array(n);
    terms.set(this.terms);
    types.set(this.types);
    ends.set(this.ends);
    this.terms = terms;
    this.types = types;
    this.ends = ends;
  }

  private growBytes(need: number): void {
    const bytes = new Uint8Array(Math.max(need, Math.ceil(this.bytes.length * 1.5), 64 * 1024));
    bytes.set(this.bytes.subarray(0, this.size === 0 ? 0 : this.ends[this.size - 1]!));
    this.bytes = bytes;
  }
}

// The tail of the log that stable storage does not hold yet: entries (and at
// most one incoming snapshot) that were accepted but not reported persisted.
// Entries below offsetInProgress were handed out in a Ready whose write is
// still running: they must not be handed out again, yet they are still served
// from here until persisted() moves the offset past them.
import type { Entry, Snapshot } from './types.js';
import { EMPTY } from './empty.js';

export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: number;
  /** Entries with index < offsetInProgress are being written. */
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.meta.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.meta.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      const s = this.snapshot;
      return s !== undefined && s.meta.index === i ? s.meta.term : undefined;
    }
    const k = i - this.offset;
    return k < this.entries.length ? this.entries[k]!.term : undefined;
  }

  /** Entries not yet handed out. */
  nextEntries(): Entry[] {
    const k = this.offsetInProgress - this.offset;
    return k >= this.entries.length ? EMPTY : this.entries.slice(k);
  }

  nextSnapshot(): Snapshot | undefined {
    return this.snapshotInProgress ? undefined : this.snapshot;
  }

  /** Marks everything currently held as handed out. */
  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot !== undefined) this.snapshotInProgress = true;
  }

  /**
   * Entries up to (i, t) are durable. A pair that no longer matches (the suffix
   * was overwritten while its write was running) is ignored: a later write
   * carries the replacement.
   */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    const k = i + 1 - this.offset;
    if (k === this.entries.length) this.entries = [];
    else this.entries = this.entries.slice(k);
    this.offset = i + 1;
    if (this.offsetInProgress < this.offset) this.offsetInProgress = this.offset;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.meta.index === i) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  /** Appends `ents` (contiguous), replacing whatever this log held from ents[0].index on. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const from = ents[0]!.index;
    const end = this.offset + this.entries.length;
    if (from === end) {
      pushAll(this.entries, ents);
    } else if (from <= this.offset) {
      // Replaces everything held here (and, by shadowing, storage from `from` on).
      this.entries = ents.slice();
      this.offset = from;
      this.offsetInProgress = from;
    } else {
      this.entries = this.entries.slice(0, from - this.offset);
      pushAll(this.entries, ents);
      if (this.offsetInProgress > from) this.offsetInProgress = from;
    }
  }

  /** Entries [lo, hi) held here; the caller checks the bounds. */
  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

const PUSH_CHUNK = 8192;

/** push(...src) without the argument-count limit of spreading (chunks keep the fast native push). */
export function pushAll<T>(dst: T[], src: readonly T[]): void {
  if (src.length <= PUSH_CHUNK) {
    Array.prototype.push.apply(dst, src as T[]);
    return;
  }
  for (let i = 0; i < src.length; i += PUSH_CHUNK) Array.prototype.push.apply(dst, src.slice(i, i + PUSH_CHUNK));
}

// The node's view of the Raft log: stable storage (read-only here) followed by
// the unstable tail, plus the commit and apply cursors.
import type { Entry, Snapshot, Storage } from './types.js';
import { Unstable } from './log-unstable.js';
import { CompactedError, CorruptStateError, UnavailableError } from './errors.js';
import { countWithin, entrySize } from './size.js';
import { EMPTY } from './empty.js';

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known committed. */
  committed: number;
  /** Highest index handed out for applying (in a Ready not yet advanced). */
  applying: number;
  /** Highest index the caller has applied (advance). */
  applied: number;

  constructor(
    readonly storage: Storage,
    readonly maxApplyingSize: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    const i = this.unstable.maybeFirstIndex();
    return i === undefined ? this.storage.firstIndex() : i;
  }

  lastIndex(): number {
    const i = this.unstable.maybeLastIndex();
    return i === undefined ? this.storage.lastIndex() : i;
  }

  /** Term of entry i, or undefined when i is compacted away or beyond the log. */
  term(i: number): number | undefined {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    return this.storage.term(i);
  }

  /** Term of entry i; 0 when it is not in the log. */
  zeroTerm(i: number): number {
    return this.term(i) ?? 0;
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    if (t === undefined) throw new CorruptStateError(`no term for the last index ${this.lastIndex()}`);
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The follower side of MsgApp. Returns the index of the last new entry, or
   * undefined when (prevIndex, prevTerm) does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) throw new CorruptStateError(`entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      const skip = ci - ents[0]!.index;
      this.append(skip === 0 ? ents : ents.slice(skip));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) throw new CorruptStateError(`append after ${after} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry whose term differs from ours (new entries
   * count as differing), or 0 when all are already present.
   */
  findConflict(ents: readonly Entry[]): number {
    const last = this.lastIndex();
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      if (e.index > last) return e.index;
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term (0 when
   * unknown). Terms never decrease along a log, so a binary search finds it.
   * Used to skip a whole term per rejection instead of one index.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let lo = this.firstIndex() - 1;
    let hi = Math.min(index, this.lastIndex());
    const loTerm = this.term(lo);
    if (hi < lo || loTerm === undefined) return { index: Math.max(0, Math.min(index, lo)), term: 0 };
    if (loTerm > term) return { index: lo, term: loTerm };
    // Invariant: term(lo) <= term; find the largest such index in [lo, hi].
    while (lo < hi) {
      const mid = lo + Math.ceil((hi - lo) / 2);
      if (this.term(mid)! <= term) lo = mid;
      else hi = mid - 1;
    }
    return { index: lo, term: this.term(lo)! };
  }

  /** Entries [lo, hi) within maxSize bytes (at least one). `toSend`: for a follower (see Storage.entriesToSend). */
  slice(lo: number, hi: number, maxSize: number, toSend = false): Entry[] {
    if (lo >= hi) return EMPTY;
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    const last = this.lastIndex();
    if (hi > last + 1) throw new UnavailableError(hi - 1, last);
    const off = this.unstable.offset;
    if (lo >= off) {
      const u = this.unstable.entries;
      const n = countWithin(u, lo - off, hi - off, maxSize);
      return u.slice(lo - off, lo - off + n);
    }
    const storedHi = Math.min(hi, off);
    const stored =
      toSend && this.storage.entriesToSend !== undefined ? this.storage.entriesToSend(lo, storedHi, maxSize) : this.storage.entries(lo, storedHi, maxSize);
    if (stored.length < storedHi - lo || hi <= off) return stored;
    let size = 0;
    for (let i = 0; i < stored.length; i++) size += entrySize(stored[i]!);
    if (size >= maxSize) return stored;
    const u = this.unstable.entries;
    const n = countWithin(u, 0, hi - off, maxSize - size);
    // countWithin always takes one; only keep it if it truly fits.
    let take = n;
    if (take === 1 && size + entrySize(u[0]!) > maxSize) take = 0;
    return take === 0 ? stored : stored.concat(u.slice(0, take));
  }

  /** Entries from i to the end, within maxSize bytes, for a message to a follower (may throw EntriesPendingError). */
  entriesToSend(i: number, maxSize: number): Entry[] {
    const last = this.lastIndex();
    if (i > last) return EMPTY;
    return this.slice(i, last + 1, maxSize, true);
  }

  commitTo(tocommit: number): void {
    if (tocommit <= this.committed) return;
    if (tocommit > this.lastIndex()) throw new CorruptStateError(`commit ${tocommit} is beyond the last index ${this.lastIndex()}`);
    this.committed = tocommit;
  }

  /** Leader: commit `maxIndex` if it is of the current term (Figure 8: never count replicas of older terms). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.zeroTerm(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Highest index durably in storage (entries below the unstable offset). */
  stableLastIndex(): number {
    if (this.unstable.snapshot !== undefined) return this.unstable.snapshot.meta.index - 1;
    return this.unstable.offset - 1;
  }

  hasNextUnstableEnts(): boolean {
    return this.unstable.offsetInProgress < this.unstable.offset + this.unstable.entries.length;
  }

  hasNextOrInProgressSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  /**
   * Committed entries not yet handed out. Only durable ones: a node's state
   * machine must never run ahead of its own log.
   */
  nextCommittedEnts(): Entry[] {
    if (this.hasNextOrInProgressSnapshot()) return EMPTY;
    const lo = Math.max(this.applying, this.firstIndex() - 1) + 1;
    const hi = Math.min(this.committed, this.stableLastIndex()) + 1;
    if (lo >= hi) return EMPTY;
    return this.slice(lo, hi, this.maxApplyingSize);
  }

  hasNextCommittedEnts(): boolean {
    if (this.hasNextOrInProgressSnapshot()) return false;
    return Math.max(this.applying, this.firstIndex() - 1) < Math.min(this.committed, this.stableLastIndex());
  }

  acceptApplying(i: number): void {
    if (i > this.applying) this.applying = i;
  }

  appliedTo(i: number): void {
    if (i > this.applied) this.applied = i;
    if (i > this.applying) this.applying = i;
  }

  /** The latest snapshot: an incoming one not yet persisted, or storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }
}

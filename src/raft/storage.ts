// MemoryStorage: Storage held in arrays, for tests, the simulator and the
// benchmark. ents[0] is a dummy entry at the snapshot's index carrying its
// term, so term(firstIndex - 1) needs no special case.
import { EntryType, type ConfState, type Entry, type HardState, type Snapshot, type Storage } from './types.js';
import { cloneConfState } from './changer.js';
import { CompactedError, SnapOutOfDateError, UnavailableError } from './errors.js';
import { pushAll } from './log-unstable.js';
import { countWithin } from './size.js';

const EMPTY = new Uint8Array(0);

export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: EMPTY };
  private ents: Entry[] = [{ index: 0, term: 0, type: EntryType.Normal, data: EMPTY }];
  /** The configuration initialState reports: the latest snapshot's, or what setConfState recorded since. */
  private conf: ConfState = { voters: [], learners: [] };

  /** A storage whose initial configuration is `voters` (and `learners`): how a fresh cluster is bootstrapped. */
  static withConf(voters: number[], learners: number[] = []): MemoryStorage {
    const s = new MemoryStorage();
    s.conf = { voters: voters.slice(), learners: learners.slice() };
    s.snap = { meta: { index: 0, term: 0, conf: s.conf }, data: EMPTY };
    return s;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    const c = this.conf;
    return { hardState: { ...this.hardState }, confState: cloneConfState(c) };
  }

  /**
   * Records the configuration the state machine reached (what initialState reports after a restart, so a
   * node restarted with Config.applied past the snapshot knows the changes it will not see again).
   * The snapshot itself keeps the configuration of its own index.
   */
  setConfState(cs: ConfState): void {
    this.conf = cloneConfState(cs);
  }

  setHardState(hs: HardState): void {
    this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  hardStateNow(): HardState {
    return { ...this.hardState };
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new CompactedError(i, offset + 1);
    if (i - offset >= this.ents.length) throw new UnavailableError(i, this.lastIndex());
    return this.ents[i - offset]!.term;
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new CompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (lo >= hi) return [];
    const n = countWithin(this.ents, lo - offset, hi - offset, maxSize);
    return this.ents.slice(lo - offset, lo - offset + n);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Appends entries, replacing any suffix they overlap (a new leader
   * overwrote uncommitted entries). Entries below firstIndex are skipped.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return;
    const from = entries[0]!.index;
    if (from > this.lastIndex() + 1) throw new UnavailableError(from, this.lastIndex());
    const skip = first > from ? first - from : 0;
    const at = from + skip - this.ents[0]!.index;
    if (at < this.ents.length) this.ents.length = at;
    if (skip === 0) pushAll(this.ents, entries);
    else pushAll(this.ents, entries.slice(skip));
  }

  /** Replaces everything with `snap` (a follower installing the leader's snapshot). */
  applySnapshot(snap: Snapshot): void {
    const cur = this.snap.meta.index;
    if (snap.meta.index < cur) throw new SnapOutOfDateError(snap.meta.index, cur);
    this.snap = snap;
    this.conf = cloneConfState(snap.meta.conf);
    this.ents = [{ index: snap.meta.index, term: snap.meta.term, type: EntryType.Normal, data: EMPTY }];
    if (this.hardState.commit < snap.meta.index) this.hardState = { ...this.hardState, commit: snap.meta.index };
  }

  /** Records a snapshot of the state machine at applied index `i` (<= commit); compaction is separate. */
  createSnapshot(i: number, conf: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.meta.index) throw new SnapOutOfDateError(i, this.snap.meta.index);
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    this.snap = { meta: { index: i, term: this.term(i), conf: cloneConfState(conf) }, data };
    this.conf = cloneConfState(conf);
    return this.snap;
  }

  /** Discards entries before `compactIndex` (which stays, as the dummy entry). */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw new CompactedError(compactIndex, offset + 1);
    if (compactIndex > this.lastIndex()) throw new UnavailableError(compactIndex, this.lastIndex());
    const k = compactIndex - offset;
    const ents = this.ents;
    const head: Entry = { index: compactIndex, term: ents[k]!.term, type: EntryType.Normal, data: EMPTY };
    // Shift the retained tail down in place (a plain loop: copyWithin is far slower on object arrays).
    const n = ents.length;
    for (let i = k + 1; i < n; i++) ents[i - k] = ents[i]!;
    ents.length = n - k;
    ents[0] = head;
  }
}

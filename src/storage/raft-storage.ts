import { codeOf } from '../errors.js';
import { silentLogger, type Logger } from '../logger.js';
import { CompactedError, EntriesPendingError, UnavailableError } from '../raft/errors.js';
import { EntryType, MAX_INDEX, MAX_TERM, type ConfState, type Entry, type HardState, type Ready, type Snapshot, type Storage } from '../raft/types.js';
import { CatchUpReads } from './catch-up-reads.js';
import { CatchUpWindow } from './catch-up-window.js';
import { StateCorruptError } from './errors.js';
import type { LogStore } from './log-store.js';
import type { HeldSnapshot, SnapshotStore } from './snapshot-store.js';

/**
 * The catch-up window holds at most this much entry data, whatever its entry count: it is
 * read before the snapshot's marker makes those entries unreadable in the WAL, and kept in
 * memory. A follower further behind gets a snapshot.
 */
const WINDOW_MAX_BYTES = 8 * 1024 * 1024;

/** The catch-up window is read and copied this much at a time, one slice a turn. */
const WINDOW_SLICE_BYTES = 1024 * 1024;

/**
 * Raft appends an entry only in a term at least its predecessor's, from the snapshot's on,
 * so a log whose terms fall somewhere was damaged (its checksums recomputed, or written by
 * something else): read as state, the lower term could make this node match a leader's log
 * it does not hold. Only the last term is checked against MAX_TERM, which this bounds the
 * rest by. A walk over memory: replay has already read every one of these entries from disk.
 */
function checkTermsAscend(wal: StoredState): void {
  if (wal.lastIndex < wal.firstIndex) return;
  let prev = wal.term(wal.firstIndex - 1);
  for (let i = wal.firstIndex; i <= wal.lastIndex; i++) {
    const t = wal.term(i);
    if (t < prev) throw new StateCorruptError(`entry ${i} has term ${t}, below the term ${prev} of the entry before it`);
    prev = t;
  }
}

/** What checkStoredState reads of a log store. */
export type StoredState = Pick<LogStore, 'hardState' | 'snapshot' | 'firstIndex' | 'lastIndex' | 'term' | 'conflict'>;

/**
 * Throws STATE_CORRUPT for a stored state no node writes, before any of it is used: what
 * RaftStorage.open refuses, and what `raftlog inspect` reports. `held`: the snapshot files.
 */
export function checkStoredState(wal: StoredState, held: readonly HeldSnapshot[]): void {
  // Records rewritten with valid checksums, or written by something else: used, a term that
  // fell or a second vote in a term could let this node vote twice in a term.
  const conflict = wal.conflict;
  if (conflict != null) throw new StateCorruptError(`${conflict.why} (${conflict.file}, at offset ${conflict.offset})`);
  // A term no node can advance past (see MAX_TERM) was written by no raftlog node: damage, not state.
  const hs = wal.hardState;
  if (hs.term > MAX_TERM || hs.commit > MAX_INDEX) throw new StateCorruptError(`hard state term ${hs.term} commit ${hs.commit} is above ${MAX_TERM}`);
  // A vote is a node id, a safe integer: one past 2^53 (a u64 on disk) names no node, and the
  // WAL refuses to write it back, so the node would stop at its first hard state write.
  if (!Number.isSafeInteger(hs.vote)) throw new StateCorruptError(`hard state vote ${hs.vote} is no node id (above 2^53 - 1)`);
  if (wal.lastIndex > MAX_INDEX || (wal.lastIndex > 0 && wal.lastIndex >= wal.firstIndex && wal.term(wal.lastIndex) > MAX_TERM)) {
    throw new StateCorruptError(`the last entry (index ${wal.lastIndex}) has an index or term above ${MAX_TERM}`);
  }
  const marker = wal.snapshot;
  if (marker !== null && (marker.index > MAX_INDEX || marker.term > MAX_TERM))
    throw new StateCorruptError(`snapshot marker ${marker.index}/${marker.term} is above ${MAX_TERM}`);
  checkTermsAscend(wal);
  // The hard state is written with (after) the entries it commits: one committing past the log
  // is damage, refused here with the rest rather than by the core (RAFT_CORRUPT_STATE).
  const last = Math.max(wal.lastIndex, marker?.index ?? 0);
  if (hs.commit > last) throw new StateCorruptError(`hard state commit ${hs.commit} is beyond the last entry ${last}`);
  // A snapshot this node took covers entries it had made durable, and the WAL records it before
  // any of them is released: one past the log's end that the WAL does not record says the WAL
  // lost its end (a segment cut short at a record boundary reads as whole), and the records
  // acknowledged there with it. Opened as it is, the node would serve the older log, and its
  // next snapshot would prune the newer one. Only a snapshot received from a peer, whose install
  // a crash interrupted before the WAL's marker, may lie there; the store says which (held()).
  const beyond = unrecordedBeyond(wal, held);
  if (beyond !== undefined) {
    // A WAL with nothing in it at all (no entry, marker or term) lost the term and vote too:
    // a new node there could vote again in a term it had voted in.
    if (last === 0 && hs.term === 0 && hs.vote === 0)
      throw new StateCorruptError(
        `the WAL holds no log and no hard state, but the snapshot at index ${beyond.index} term ${beyond.term} is held: ` +
          'the log and the term and vote that led to it were lost',
      );
    throw new StateCorruptError(
      `the snapshot at index ${beyond.index} term ${beyond.term} is beyond the log's last entry ${last}, and the WAL does not record it: ` +
        'the WAL lost its end, and the records acknowledged there',
    );
  }
}

/** The newest snapshot file past the log's end that the WAL does not record, and no peer sent. */
function unrecordedBeyond(wal: StoredState, held: readonly HeldSnapshot[]): HeldSnapshot | undefined {
  const last = Math.max(wal.lastIndex, wal.snapshot?.index ?? 0);
  return held.filter((h) => h.index > last && h.received !== true).at(-1);
}

function isWalClosed(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'WAL_CLOSED';
}

/**
 * Raft's stable storage over a write-ahead log and a snapshot store. The core reads
 * it synchronously; the driver writes it through persist(), which keeps writes in
 * Ready order while letting WAL appends pipeline (the WAL completes them in order).
 */
export class RaftStorage implements Storage {
  private snap: Snapshot | null;
  /** The last write handed out; everything before it completes first. */
  private tail: Promise<void> = Promise.resolve();
  /**
   * Writes chained behind a received snapshot and not yet handed to the WAL. While
   * any exist, a new write must queue too, or it could reach the WAL before them.
   */
  private blocked = 0;
  /** Snapshot saves and installs, one at a time. */
  private snapTail: Promise<void> = Promise.resolve();
  /** A commit-only HardState change waits for the next write: losing it in a crash only delays applying. */
  private deferredHardState: HardState | undefined;
  /**
   * The catch-up window: entries just below the latest local snapshot, kept readable after
   * the WAL released them, so that a follower a little behind still catches up from the log.
   * In memory only (as etcd keeps its own): after a restart the log starts at the snapshot.
   */
  private window = new CatchUpWindow();
  /** The next snapshot's window, filled while it is taken; the two swap when it is recorded. */
  private spare = new CatchUpWindow();
  /**
   * Called when entries raft was told to wait for (EntriesPendingError) have been read, or
   * the read failed (`err`; not for a range compacted meanwhile, which raft then finds).
   * Until it is set, every read is made at once on the calling thread.
   */
  onEntriesFetched: ((err?: unknown) => void) | null = null;
  /**
   * Called with a received snapshot, still in its spool, before it replaces anything: a
   * rejection leaves the log, the WAL's marker and the held snapshot as they were (the
   * install rejects with it). The driver loads the state machine from it here, so that a
   * snapshot the application cannot load is never the one a reopen restores from.
   */
  beforeInstall: ((snapshot: Snapshot) => Promise<void>) | null = null;
  private readonly reads = new CatchUpReads(
    (lo, hi, maxBytes) => this.wal.entries(lo, hi, maxBytes),
    // A read that failed because the WAL closed (the log stopped) is passed on as it is: the
    // closed WAL would refuse firstIndex too, and this runs in the read's promise handler.
    (lo, err) => this.onEntriesFetched?.(err !== undefined && (isWalClosed(err) || lo >= this.firstIndex()) ? err : undefined),
  );

  private constructor(
    readonly wal: LogStore,
    private readonly snapshots: SnapshotStore,
    private readonly bootstrap: ConfState,
    snap: Snapshot | null,
    private readonly logger: Logger,
  ) {
    this.snap = snap;
  }

  /** `bootstrap` is the membership of a brand-new node (no snapshot yet). `logger`: where a failed prune is said. */
  static async open(wal: LogStore, snapshots: SnapshotStore, bootstrap: ConfState, logger: Logger = silentLogger): Promise<RaftStorage> {
    const held = (await snapshots.held?.()) ?? [];
    // Only a whole snapshot there says the WAL lost its end: a damaged file under a snapshot's
    // name is refused as what it is (SNAPSHOT_CORRUPT, naming it), as `raftlog inspect` reports it.
    const beyond = unrecordedBeyond(wal, held);
    if (beyond !== undefined) await snapshots.load(beyond.index, beyond.term);
    checkStoredState(wal, held);
    const marker = wal.snapshot;
    const snap = marker === null ? null : await snapshots.load(marker.index, marker.term);
    return new RaftStorage(wal, snapshots, bootstrap, snap, logger);
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    const { term, vote, commit } = this.wal.hardState;
    return { hardState: { term, vote, commit }, confState: this.snap?.meta.conf ?? this.bootstrap };
  }

  firstIndex(): number {
    if (this.window.size > 0) return this.window.first;
    return Math.max(this.wal.firstIndex, this.snapIndex() + 1);
  }

  lastIndex(): number {
    return Math.max(this.wal.lastIndex, this.snapIndex());
  }

  term(i: number): number {
    if (i === this.snapIndex()) return this.snap?.meta.term ?? 0;
    if (this.window.size > 0 && i < this.snapIndex()) {
      if (i === this.window.first - 1) return this.window.prevTerm;
      if (this.window.has(i)) return this.window.term(i);
    }
    if (i < this.firstIndex()) throw new CompactedError(i, this.firstIndex());
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    return this.wal.term(i);
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    if (lo < this.firstIndex()) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (lo >= hi) return [];
    if (lo <= this.snapIndex() && this.window.size > 0) {
      // From the window only; the caller asks again for what follows.
      const end = Math.min(hi, this.snapIndex() + 1);
      const out: Entry[] = [];
      let bytes = 0;
      for (let i = lo; i < end; i++) {
        bytes += this.window.dataLength(i);
        if (out.length > 0 && bytes > maxSize) break;
        out.push(this.window.entry(i));
      }
      return out;
    }
    return this.wal.entriesSync(lo, hi, maxSize);
  }

  /**
   * As entries(), for raft's messages to followers: what the WAL must read from disk is
   * read off the calling thread (EntriesPendingError until then), and the next message's
   * entries are read ahead, so that a follower far behind is caught up at the disk's pace
   * without holding the event loop.
   */
  entriesToSend(lo: number, hi: number, maxSize: number): Entry[] {
    if (this.onEntriesFetched === null || !this.onDisk(lo, hi)) return this.entries(lo, hi, maxSize);
    const out = this.stillHeld(lo, this.reads.take(lo, hi, maxSize), hi, maxSize);
    if (out.length === 0) {
      // The log changed under the read (compacted, or replaced after a lost leadership).
      this.reads.start(lo, hi, maxSize);
      throw new EntriesPendingError(lo);
    }
    const next = lo + out.length;
    if (next < hi && next < this.wal.cachedFrom) this.reads.start(next, hi, maxSize);
    return out;
  }

  /** [lo, hi) is a readable range that starts where the WAL holds entries only on disk; entries() serves, or refuses, any other. */
  private onDisk(lo: number, hi: number): boolean {
    return lo < hi && lo < this.wal.cachedFrom && lo > this.snapIndex() && lo >= this.firstIndex() && hi <= this.lastIndex() + 1;
  }

  /** The leading entries of a finished read that the log still holds, from `lo`, below `hi`, within maxSize. */
  private stillHeld(lo: number, read: Entry[], hi: number, maxSize: number): Entry[] {
    const first = this.firstIndex();
    const last = Math.min(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let k = 0; k < read.length; k++) {
      const e = read[k]!;
      // Same index and term: the same entry (Raft's Log Matching property).
      if (e.index !== lo + k || e.index < first || e.index > last || this.term(e.index) !== e.term) break;
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxSize) break;
      out.push(e);
    }
    return out;
  }

  /** As entries(), reading what the WAL holds only on disk off the calling thread. */
  async read(lo: number, hi: number, maxSize: number): Promise<Entry[]> {
    if (!this.onDisk(lo, hi)) return this.entries(lo, hi, maxSize);
    try {
      return await this.wal.entries(lo, hi, maxSize);
    } catch (err) {
      if (lo < this.firstIndex()) throw new CompactedError(lo, this.firstIndex());
      throw err;
    }
  }

  /** Catch-up reads in flight or waiting to be sent. */
  get catchUpReads(): number {
    return this.reads.size;
  }

  /** The held snapshot; its `data` is the store's reference (read it through the store). */
  snapshot(): Snapshot {
    return this.snap ?? { meta: { index: 0, term: 0, conf: this.bootstrap }, data: new Uint8Array(0) };
  }

  /**
   * Makes a Ready's snapshot, entries and hard state durable, after every earlier persist's
   * (writes reach the WAL in Ready order). The promises may settle a few microtasks out of
   * that order (one chained behind a snapshot being installed settles through the chain, a
   * later one straight from the WAL), so a driver that must act in Ready order orders them.
   */
  persist(rd: Ready): Promise<void> {
    const { snapshot, entries } = rd;
    // Losing the commit of a membership change would take a node back to the configuration
    // before it, which may need members already stopped because they were reported removed:
    // that commit is written now (the driver applies the change once it is durable).
    const commitsConf = commitsConfChange(rd);
    let hardState = rd.hardState ?? (commitsConf ? this.deferredHardState : undefined);
    if (hardState !== undefined && entries.length === 0 && snapshot === undefined && !rd.mustSync && !commitsConf) {
      this.deferredHardState = hardState;
      hardState = undefined;
    } else if (hardState === undefined && this.deferredHardState !== undefined && entries.length > 0) {
      hardState = this.deferredHardState;
    }
    if (hardState !== undefined) this.deferredHardState = undefined;

    const write = entries.length > 0 || hardState !== undefined;
    let p = this.tail;
    if (snapshot !== undefined) {
      // A received snapshot replaces the log: nothing may reach the WAL until it is installed.
      this.blocked++;
      p = p.then(() => this.serialSnapshot(() => this.install(snapshot))).finally(() => this.blocked--);
    }
    if (write) {
      if (this.blocked > 0) {
        this.blocked++;
        p = p.then(() => {
          this.blocked--;
          return this.wal.append(entries, hardState);
        });
      } else {
        p = this.wal.append(entries, hardState); // the WAL completes appends in call order
      }
    }
    this.tail = p;
    return p;
  }

  /**
   * Records a local snapshot of the state machine at `index` (already applied) and
   * releases the log below it, keeping the last `keepEntries` entries up to `index`
   * readable in memory (the catch-up window). Appends go on meanwhile: every entry up
   * to `index` was handed to the WAL before this call, and the WAL keeps its own order.
   * `durable`: what must be on disk before a restart may open from this snapshot, and so
   * never apply again the entries it covers. The WAL's marker waits for it; a rejection
   * leaves the held snapshot and the marker as they were (compact rejects with it).
   */
  compact(
    index: number,
    term: number,
    conf: ConfState,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    keepEntries = 0,
    durable: Promise<unknown> = Promise.resolve(),
  ): Promise<void> {
    return this.serialSnapshot(async () => {
      if (index <= this.snapIndex()) return; // an older snapshot than the one held: nothing to gain
      // Read before the WAL's marker makes them unreadable there.
      await this.catchUpWindow(index, keepEntries);
      const saved = await this.snapshots.save({ meta: { index, term, conf }, data });
      // Waited for only now: the state machine's stream is written meanwhile, and closed whatever
      // comes of it. A file left unrecorded goes at the next prune.
      await durable;
      await this.record(saved, false);
    });
  }

  /**
   * Every write and snapshot handed out so far is durable, or has failed. A failed write does
   * not stop a snapshot being written: it is waited for too, or its file would still be open,
   * and written to, once the WAL is closed.
   */
  async flush(): Promise<void> {
    try {
      await this.tail;
    } finally {
      await this.snapTail;
    }
  }

  private serialSnapshot(op: () => Promise<void>): Promise<void> {
    const p = this.snapTail.then(op);
    this.snapTail = p.catch(() => undefined); // the failure reaches the caller through p
    return p;
  }

  /** A snapshot received from the leader: its spooled bytes become the held snapshot, and replace the log. */
  private async install(snapshot: Snapshot): Promise<void> {
    if (snapshot.meta.index <= this.snapIndex()) {
      await this.snapshots.discard(snapshot); // an older snapshot than the one held: nothing to gain
      return;
    }
    try {
      await this.beforeInstall?.(snapshot);
    } catch (err) {
      // The first failure is the one reported; a spool left behind is removed at the next open.
      await this.snapshots.discard(snapshot).catch(() => undefined);
      throw err;
    }
    this.spare.clear();
    await this.record(await this.snapshots.install(snapshot), true);
  }

  /** Makes `snapshot` the held one, with the spare window (filled for it, or empty) as its catch-up window. */
  private async record(snapshot: Snapshot, received: boolean): Promise<void> {
    const { index, term } = snapshot.meta;
    // Raft may hand this snapshot out as soon as its file is durable, and must see it
    // before the WAL's marker moves its first index past the entries the snapshot covers.
    this.snap = snapshot;
    [this.window, this.spare] = [this.spare, this.window];
    this.spare.clear();
    await this.wal.saveSnapshot({ index, term }, { discardLog: received });
    await this.wal.releaseTo(index);
    // The snapshot and the WAL's marker are durable: what prune removes is only older files,
    // which no open reads (it loads the snapshot the marker names). One left behind by a
    // failure goes at the next prune, which removes every snapshot but the one it keeps.
    await this.snapshots
      .prune(index)
      .catch((err: unknown) =>
        this.logger.warn(
          { err, code: codeOf(err) },
          `removing the snapshots older than the one at ${index} failed (the next snapshot tries again): ${(err as Error).message}`,
        ),
      );
  }

  /**
   * Fills the spare window with up to `keep` entries ending at `index`, at most
   * WINDOW_MAX_BYTES of data, read now (from disk off the event loop).
   */
  private async catchUpWindow(index: number, keep: number): Promise<void> {
    const spare = this.spare;
    spare.clear();
    // The newest entries that fit, sized from the WAL's index before anything is read.
    const floor = Math.max(this.firstIndex(), index - keep + 1);
    let lo = index + 1;
    for (let bytes = 0; lo > floor; lo--) {
      bytes += this.dataLength(lo - 1);
      if (bytes > WINDOW_MAX_BYTES) break;
    }
    if (lo > index) return;
    // Copied in as read, a slice a turn so that the event loop is not held for the whole
    // window. What the WAL holds in memory it passes without a copy of its own: the recent
    // entries are most of a window, and copies of them, made in one go, are megabytes of
    // buffers at once that V8 counts against its heap's limit.
    const push = (e: Entry): void => spare.push(e);
    for (let next = lo; next <= index; await new Promise(setImmediate)) {
      let end = next;
      for (let bytes = 0; end <= index && bytes < WINDOW_SLICE_BYTES; end++) bytes += this.dataLength(end);
      if (this.wal.copyCached !== undefined && next > this.snapIndex() && next >= this.wal.cachedFrom) {
        const after = this.wal.copyCached(next, end, push);
        if (after > next) {
          next = after;
          continue;
        }
      }
      const batch = await this.read(next, end, WINDOW_SLICE_BYTES);
      for (const e of batch) spare.push(e);
      next += batch.length;
    }
    spare.prevTerm = this.term(lo - 1);
  }

  /** Data length of a readable entry: from the window below the snapshot, else from the WAL's index. */
  private dataLength(i: number): number {
    if (this.window.size > 0 && i <= this.snapIndex()) return this.window.dataLength(i);
    return this.wal.dataLength(i);
  }

  private snapIndex(): number {
    return this.snap?.meta.index ?? 0;
  }
}

/** Whether the Ready hands a membership change to be applied. */
export function commitsConfChange(rd: Ready): boolean {
  // Indexed: an empty Ready array is a frozen constant, which for-of is not inlined over.
  const es = rd.committedEntries;
  for (let i = 0; i < es.length; i++) if (es[i]!.type === EntryType.ConfChange) return true;
  return false;
}

// A write-ahead log in memory, with the native Wal's contract and the faults a
// real disk has. A MemoryDisk is what survives a crash; a MemoryWal is one
// process's open handle on it. Writes are visible at once and become durable
// (and resolve) in call order after a simulated fsync delay. At a crash every
// acknowledged write survives; the unacknowledged ones survive as a prefix:
// whole writes, then possibly one torn write cut at an entry boundary (its
// hard state, written after its entries, lost), then nothing.
import type { Entry, HardState } from '../../src/raft/types.js';
import type { LogStore, SnapshotMarker } from '../../src/storage/log-store.js';
import { MemorySnapshotStore } from '../../src/storage/snapshot-store.js';
import {
  WalClosedError,
  WalCompactedError,
  WalGapError,
  WalInvalidArgumentError,
  WalIoError,
  WalLockedError,
  WalUnavailableError,
} from '../../src/wal/errors.js';
import type { Prng } from '../sim/prng.js';
import type { SimClock } from './scheduler.js';

export interface DiskFaults {
  /** Usual fsync latency in simulated ms, [min, max]. */
  syncMs: [number, number];
  /** Probability that one write's fsync is slow. */
  slowSync: number;
  slowSyncMs: [number, number];
  /** Probability that one write's fsync fails: that write and every later one of this handle reject. */
  failSync: number;
}

export const perfectDisk: DiskFaults = { syncMs: [0, 0], slowSync: 0, slowSyncMs: [0, 0], failSync: 0 };

/** The log as it stands: on the disk (what survives) or as the open handle sees it. */
interface Image {
  hardState: HardState;
  snapshot: SnapshotMarker | null;
  /** Index of entries[0]; snapshot index + 1 (or 1). */
  first: number;
  entries: Entry[];
}

type Write =
  | { kind: 'append'; entries: Entry[]; hardState: HardState | undefined }
  | { kind: 'snapshot'; marker: SnapshotMarker; discardLog: boolean }
  | { kind: 'barrier' };

interface PendingWrite {
  write: Write;
  resolve(): void;
  reject(err: Error): void;
  /** This write's fsync is the one that fails. */
  fails: boolean;
  /** Resolved or rejected (a rejected write stays unacknowledged: a crash decides what of it survives). */
  settled: boolean;
}

function emptyImage(): Image {
  return { hardState: { term: 0, vote: 0, commit: 0 }, snapshot: null, first: 1, entries: [] };
}

function cloneImage(img: Image): Image {
  return {
    hardState: { ...img.hardState },
    snapshot: img.snapshot === null ? null : { ...img.snapshot },
    first: img.first,
    entries: img.entries.slice(), // entries are frozen, so sharing them is safe
  };
}

function lastIndex(img: Image): number {
  return img.first + img.entries.length - 1;
}

function termAt(img: Image, index: number): number | undefined {
  if (index >= img.first && index <= lastIndex(img)) return img.entries[index - img.first]!.term;
  if (index === img.first - 1) return img.snapshot?.term ?? 0;
  return undefined;
}

/** Applies one (already validated) write: the same code updates the handle's view and the disk. */
function applyWrite(img: Image, w: Write, entryLimit = Infinity): void {
  if (w.kind === 'append') {
    const n = Math.min(w.entries.length, entryLimit);
    if (n > 0) {
      const from = w.entries[0]!.index;
      img.entries.length = from - img.first; // an existing index replaces it and everything after it
      for (let k = 0; k < n; k++) img.entries.push(w.entries[k]!);
    }
    if (w.hardState !== undefined && n === w.entries.length) img.hardState = { ...w.hardState };
  } else if (w.kind === 'snapshot') {
    const { index, term } = w.marker;
    // Like the native Wal: a local snapshot keeps the entries above it when the log agrees with it.
    if (w.discardLog || index > lastIndex(img) || termAt(img, index) !== term) {
      img.entries = [];
    } else {
      img.entries = img.entries.slice(index + 1 - img.first);
    }
    img.first = index + 1;
    img.snapshot = { ...w.marker };
  }
}

export interface CrashReport {
  /** Unacknowledged writes that survived whole. */
  survived: number;
  /** Entries kept of the one torn write (-1: no write was torn). */
  tornEntries: number;
  /** Unacknowledged writes lost entirely. */
  lost: number;
}

/**
 * What survives a crash: the durable log image and the snapshot files. A
 * MemoryDisk is opened by at most one MemoryWal at a time.
 */
export class MemoryDisk {
  private durable: Image = emptyImage();
  private handle: MemoryWal | null = null;
  /** Snapshot files: saved durably at once (the store renames a synced file into place). */
  readonly snapshots = new MemorySnapshotStore();
  faults: DiskFaults;
  /**
   * Like the native Wal, a handle keeps only its newest entries "in memory": older ones
   * are read through `entries()`, which answers after a simulated disk delay.
   */
  cacheEntries = 16;
  /** Reads of older entries through `entries()`, across this disk's handles. */
  diskReads = 0;
  /** Writes made durable so far (acknowledged). */
  durableWrites = 0;
  /**
   * A deliberately broken disk, to show the checker has teeth: it acknowledges
   * writes but really syncs only every `lieEvery`-th one, so a crash loses
   * acknowledged writes (like sync: 'none' and a power cut). 0: an honest disk.
   */
  lieEvery = 0;
  private synced: Image = emptyImage();
  /** Told of every call and completion, for a replay's trace. */
  trace: ((line: string) => void) | null = null;

  constructor(
    private readonly rng: Prng,
    faults: DiskFaults = perfectDisk,
  ) {
    this.faults = faults;
  }

  /** Opens the log as a process would after a restart: it sees only what is durable. */
  open(clock: SimClock): MemoryWal {
    if (this.handle !== null) throw new WalLockedError('the memory disk is already open');
    const wal = new MemoryWal(this, cloneImage(this.durable), clock, this.rng);
    this.handle = wal;
    return wal;
  }

  /** The durable state, for tests: a copy. */
  image(): { hardState: HardState; snapshot: SnapshotMarker | null; firstIndex: number; lastIndex: number; entries: Entry[] } {
    const img = cloneImage(this.durable);
    return { hardState: img.hardState, snapshot: img.snapshot, firstIndex: img.first, lastIndex: lastIndex(img), entries: img.entries };
  }

  /** Whether the disk durably holds the entry at `index` with `term`, or a snapshot covering it. */
  durablyHolds(index: number, term: number): boolean {
    const img = this.durable;
    if (img.snapshot !== null && index <= img.snapshot.index) return true;
    return termAt(img, index) === term && index >= img.first;
  }

  /** The term of the durable hard state (what a restart would come back with). */
  get durableTerm(): number {
    return this.durable.hardState.term;
  }

  /**
   * The process dies: the open handle stops dead (its promises never settle)
   * and a random prefix of its unacknowledged writes reaches the disk.
   */
  crash(): CrashReport {
    const wal = this.handle;
    this.handle = null;
    if (wal === null) return { survived: 0, tornEntries: -1, lost: 0 };
    const unacked = wal.kill();
    if (this.lieEvery > 0) {
      // Everything since the last real sync is gone, acknowledged or not.
      this.durable = cloneImage(this.synced);
      return { survived: 0, tornEntries: -1, lost: unacked.length };
    }
    const whole = this.rng.int(unacked.length + 1);
    for (let i = 0; i < whole; i++) applyWrite(this.durable, unacked[i]!);
    let tornEntries = -1;
    if (whole < unacked.length) {
      const w = unacked[whole]!;
      if (w.kind === 'append' && w.entries.length > 0) {
        // Cut at an entry boundary: anywhere from none of its entries to all of them without the hard state.
        tornEntries = this.rng.int(w.entries.length + 1);
        applyWrite(this.durable, { kind: 'append', entries: w.entries, hardState: undefined }, tornEntries);
      }
    }
    return { survived: whole, tornEntries, lost: unacked.length - whole - (tornEntries >= 0 ? 1 : 0) };
  }

  /** @internal The handle's write reached the disk. */
  persist(w: Write): void {
    applyWrite(this.durable, w);
    this.durableWrites++;
    if (this.lieEvery > 0 && this.durableWrites % this.lieEvery === 0) this.synced = cloneImage(this.durable);
  }

  /** @internal The handle closed cleanly. */
  release(wal: MemoryWal): void {
    if (this.handle === wal) this.handle = null;
  }
}

/** One open handle on a MemoryDisk, implementing the storage layer's LogStore. */
export class MemoryWal implements LogStore {
  /** Writes not yet acknowledged, in call order (kept after a failure: the crash decides what of them survives). */
  private readonly unacked: PendingWrite[] = [];
  /** When the last write handed out completes: writes complete in call order. */
  private lastDoneAt = 0;
  private failure: Error | null = null;
  private closing = false;
  private dead = false;
  /** True once an injected fsync failure has happened on this handle. */
  injectedFailure = false;

  /** @internal Use MemoryDisk.open. */
  constructor(
    private readonly disk: MemoryDisk,
    private readonly view: Image,
    private readonly clock: SimClock,
    private readonly rng: Prng,
  ) {}

  /** Writes handed out and not yet acknowledged: what a crash now could tear or lose. */
  get pendingWrites(): number {
    return this.unacked.length;
  }

  /** As the native Wal's: close() was called, and every read of the log throws WAL_CLOSED. */
  get closed(): boolean {
    return this.closing;
  }

  get hardState(): HardState {
    this.checkOpen();
    return { ...this.view.hardState };
  }

  get snapshot(): SnapshotMarker | null {
    this.checkOpen();
    return this.view.snapshot === null ? null : { ...this.view.snapshot };
  }

  get firstIndex(): number {
    this.checkOpen();
    return this.view.first;
  }

  get lastIndex(): number {
    this.checkOpen();
    return lastIndex(this.view);
  }

  append(entries: Entry[], hardState?: HardState): Promise<void> {
    const err = this.unusable();
    if (err !== null) return Promise.reject(err);
    let stored: Entry[];
    try {
      stored = this.checkEntries(entries);
      if (hardState !== undefined) checkHardState(hardState);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (stored.length === 0 && hardState === undefined) return this.submit({ kind: 'barrier' });
    return this.submit({ kind: 'append', entries: stored, hardState: hardState === undefined ? undefined : { ...hardState } });
  }

  entriesSync(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const err = this.unusable();
    if (err !== null) throw err;
    if (!isIndex(lo) || !isIndex(hi) || lo > hi) throw new WalInvalidArgumentError(`entries(${lo}, ${hi}): bad range`);
    if (lo < this.firstIndex) throw new WalCompactedError(`entries(${lo}, ${hi}): index ${lo} is compacted (firstIndex ${this.firstIndex})`);
    if (hi > this.lastIndex + 1) throw new WalUnavailableError(`entries(${lo}, ${hi}): lastIndex is ${this.lastIndex}`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.view.entries[i - this.view.first]!;
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /**
   * As entriesSync, answered after a simulated read delay. What it returns was read at the
   * call: a log compacted or rewritten meanwhile shows as stale entries, which the caller must
   * notice, as it must after a real read that completed just before such a change.
   */
  entries(lo: number, hi: number, maxBytes = Infinity): Promise<Entry[]> {
    let read: Entry[];
    try {
      read = this.entriesSync(lo, hi, maxBytes);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (lo < this.cachedFrom) this.disk.diskReads++;
    const [min, max] = this.disk.faults.syncMs;
    return new Promise<Entry[]>((resolve) => {
      this.clock.hardwareTimeout(
        () => {
          if (!this.dead) resolve(read);
        },
        this.rng.range(min, max),
      );
    });
  }

  get cachedFrom(): number {
    this.checkOpen();
    return Math.max(this.view.first, this.lastIndex + 1 - this.disk.cacheEntries);
  }

  dataLength(index: number): number {
    return this.entriesSync(index, index + 1)[0]!.data.length;
  }

  term(index: number): number {
    const err = this.unusable();
    if (err !== null) throw err;
    if (index < this.firstIndex - 1) throw new WalCompactedError(`term(${index}): compacted (firstIndex ${this.firstIndex})`);
    const t = termAt(this.view, index);
    if (t === undefined) throw new WalUnavailableError(`term(${index}): lastIndex is ${this.lastIndex}`);
    return t;
  }

  saveSnapshot(marker: SnapshotMarker, options?: { discardLog?: boolean }): Promise<void> {
    const err = this.unusable();
    if (err !== null) return Promise.reject(err);
    if (!isIndex(marker.index) || !isIndex(marker.term)) return Promise.reject(new WalInvalidArgumentError('snapshot must be { index, term, meta? }'));
    if (marker.index < this.firstIndex - 1) {
      return Promise.reject(new WalInvalidArgumentError(`snapshot at ${marker.index} is older than the log's start (firstIndex ${this.firstIndex})`));
    }
    const m: SnapshotMarker = { index: marker.index, term: marker.term };
    if (marker.meta !== undefined) m.meta = marker.meta.slice();
    return this.submit({ kind: 'snapshot', marker: m, discardLog: options?.discardLog === true });
  }

  releaseTo(index: number): Promise<void> {
    const err = this.unusable();
    if (err !== null) return Promise.reject(err);
    const snap = this.view.snapshot;
    if (!isIndex(index) || snap === null || index > snap.index) {
      return Promise.reject(new WalInvalidArgumentError(`releaseTo(${index}) needs a snapshot marker at or above ${index} (have ${snap?.index ?? 'none'})`));
    }
    // Released segments hold only entries below firstIndex: nothing readable changes.
    return this.submit({ kind: 'barrier' });
  }

  /** Resolves once every write handed out has completed (or failed); later calls reject. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const last = this.unacked.findLast((p) => !p.settled);
    if (last !== undefined) {
      await new Promise<void>((resolve) => {
        const { resolve: r, reject: j } = last;
        last.resolve = () => {
          r();
          resolve();
        };
        last.reject = (e) => {
          j(e);
          resolve();
        };
      });
    }
    this.disk.release(this);
  }

  /** @internal The process died: nothing settles any more. Returns the unacknowledged writes, in order. */
  kill(): Write[] {
    this.dead = true;
    return this.unacked.map((p) => p.write);
  }

  private submit(write: Write): Promise<void> {
    if (write.kind !== 'barrier') applyWrite(this.view, write);
    this.disk.trace?.(`wal ${describeWrite(write)} -> first ${this.firstIndex} last ${this.lastIndex}`);
    const f = this.disk.faults;
    const slow = this.rng.chance(f.slowSync);
    const [lo, hi] = slow ? f.slowSyncMs : f.syncMs;
    const delay = this.rng.range(lo, hi);
    const fails = this.rng.chance(f.failSync);
    const now = this.clock.now();
    const doneAt = Math.max(now + delay, this.lastDoneAt);
    this.lastDoneAt = doneAt;
    return new Promise<void>((resolve, reject) => {
      const p: PendingWrite = { write, resolve, reject, fails, settled: false };
      this.unacked.push(p);
      this.clock.hardwareTimeout(() => this.complete(p), doneAt - now);
    });
  }

  /** The fsync of the oldest write finished: same-time completions keep call order, since the scheduler does. */
  private complete(p: PendingWrite): void {
    if (this.dead) return;
    p.settled = true;
    if (this.failure !== null) {
      p.reject(this.failure);
      return;
    }
    if (p.fails) {
      this.injectedFailure = true;
      this.failure = new WalIoError('WAL (simulated) failed and must be reopened: injected fsync failure');
      p.reject(this.failure);
      return;
    }
    if (this.unacked[0] !== p) throw new Error('MemoryWal: writes completed out of order'); // the simulator's own bug
    this.unacked.shift();
    this.disk.persist(p.write);
    this.disk.trace?.(`wal durable: ${describeWrite(p.write)}`);
    p.resolve();
  }

  /** The native Wal's getters refuse a closed WAL, not a failed one (a failed one still answers its in-memory state). */
  private checkOpen(): void {
    if (this.closing) throw new WalClosedError('WAL (simulated) is closed');
  }

  private unusable(): Error | null {
    if (this.dead) return new WalClosedError('the process that opened this WAL has crashed');
    if (this.closing) return new WalClosedError('WAL (simulated) is closed');
    return this.failure;
  }

  /** Validates like the native Wal, then copies and freezes: a caller that mutates an entry later throws. */
  private checkEntries(entries: Entry[]): Entry[] {
    if (!Array.isArray(entries)) throw new WalInvalidArgumentError('entries must be an array');
    if (entries.length === 0) return [];
    const first = entries[0]!.index;
    if (!isIndex(first) || first < 1) throw new WalInvalidArgumentError(`entry index must be a positive safe integer, got ${String(first)}`);
    if (first < this.firstIndex) throw new WalGapError(`entry ${first} is below firstIndex ${this.firstIndex}: compacted entries cannot be rewritten`);
    if (first > this.lastIndex + 1) throw new WalGapError(`entry ${first} would leave a gap after lastIndex ${this.lastIndex}`);
    return entries.map((e, k) => {
      if (e.index !== first + k) throw new WalGapError(`entries must be contiguous: entries[${k}].index is ${e.index}, expected ${first + k}`);
      if (!isIndex(e.term)) throw new WalInvalidArgumentError(`entries[${k}].term must be a non-negative safe integer`);
      if (!(e.data instanceof Uint8Array)) throw new WalInvalidArgumentError(`entries[${k}].data must be a Uint8Array`);
      return Object.freeze({ index: e.index, term: e.term, type: e.type, data: e.data.slice() });
    });
  }
}

function describeWrite(w: Write): string {
  if (w.kind === 'barrier') return 'barrier';
  if (w.kind === 'snapshot') return `snapshot ${w.marker.index}/${w.marker.term}${w.discardLog ? ' discardLog' : ''}`;
  const e = w.entries;
  const hs = w.hardState === undefined ? '' : ` hs ${w.hardState.term}/${w.hardState.vote}/${w.hardState.commit}`;
  return `append ${e.length === 0 ? '-' : `${e[0]!.index}..${e[e.length - 1]!.index}`}${hs}`;
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function checkHardState(hs: HardState): void {
  if (!isIndex(hs.term) || !isIndex(hs.vote) || !isIndex(hs.commit)) throw new WalInvalidArgumentError('hardState must be { term, vote, commit }');
}

// The write-ahead log's TypeScript face. It owns the log's shape (which index
// lives where, the hard state, the snapshot marker) and decides where every
// record goes; the native writer thread only fills in checksums, writes and
// syncs. Every mutating call updates the in-memory state at once, in call
// order, and hands one job to the native queue; jobs become durable, and
// their promises resolve, in the same order.
import { resolve as resolvePath } from 'node:path';
import { addon, type NativeHandle, type NativeScan } from './addon.js';
import { EntryCache } from './cache.js';
import { crc32c } from './crc32c.js';
import { JobQueue } from './job-queue.js';
import { WAL_DEFAULTS } from './defaults.js';
import { usableDir } from './usable-dir.js';
import { checkTail, type Tail, tailSegmentName, writeTail } from './tail.js';
import { guardedCall } from '../logger.js';
import {
  fromNative,
  WalClosedError,
  WalCompactedError,
  WalCorruptError,
  WalGapError,
  WalInvalidArgumentError,
  WalIoError,
  WalUnavailableError,
} from './errors.js';
import type { Positions } from './positions.js';
import { type Replayed, replayYielding } from './replay.js';
import { type Segment, Segments } from './segments.js';
import {
  ENTRY_PREFIX,
  ENTRY_DATA_AT,
  entryRecordBytes,
  getU64,
  HARD_STATE_RECORD_BYTES,
  Kind,
  MARKER_RECORD_BYTES,
  MAX_PAYLOAD,
  SEGMENT_RECORD_BYTES,
  newStamp,
  segmentName,
  SNAPSHOT_DISCARD_LOG,
  snapshotRecordBytes,
  writeEntry,
  writeHardState,
  writeSegmentHeader,
  writeSnapshot,
} from './record.js';
import type { WalConflict, WalEntry, WalHardState, WalLogger, WalOptions, WalRepair, WalSnapshot, WalStats } from './types.js';

const WAL_OPTIONS = new Set<string>(['segmentBytes', 'sync', 'preallocate', 'cacheBytes', 'logger'] satisfies Array<keyof WalOptions>);

const SILENT: WalLogger = { warn: () => undefined };
const PREALLOC = { zeros: 0, fallocate: 1, none: 2 } as const;
/** Largest single pread when serving old entries. */
const READ_SPAN = 4 * 1024 * 1024;

interface ReadPlan {
  lo: number;
  seq: number;
  name: string;
  begin: number;
  end: number;
  offsets: number[];
  terms: number[];
  lengths: number[];
}

function isIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

const NO_BYTES = new Uint8Array(0);

/** A view of a transferred buffer reads as empty; only copying from it tells it from an empty one. */
function detached(data: Uint8Array): boolean {
  try {
    NO_BYTES.set(data);
    return false;
  } catch {
    return true;
  }
}

function requireIndex(what: string, n: unknown): number {
  if (!isIndex(n)) throw new WalInvalidArgumentError(`${what} must be a non-negative safe integer, got ${String(n)}`);
  return n;
}

function checkHardState(hs: unknown): WalHardState {
  if (hs === null || typeof hs !== 'object') throw new WalInvalidArgumentError('hardState must be { term, vote, commit }');
  const { term, vote, commit } = hs as WalHardState;
  return Object.freeze({
    term: requireIndex('hardState.term', term),
    vote: requireIndex('hardState.vote', vote),
    commit: requireIndex('hardState.commit', commit),
  });
}

/** The name and header record (stamped, checksummed) of segment 1, for the native side to write if it makes a new WAL. */
function firstSegment(): [name: string, header: Uint8Array] {
  const stamp = newStamp();
  const header = new Uint8Array(SEGMENT_RECORD_BYTES);
  const dv = new DataView(header.buffer);
  writeSegmentHeader(header, dv, 0, 1, 1, stamp);
  dv.setUint32(0, crc32c(header.subarray(4)), true);
  return [segmentName(1, 1, stamp), header];
}

/** One record to place: an entry (by position in the call), or the call's hard state / snapshot marker. */
type RecordRef = number;
const HARD_STATE_REF = -1;
const SNAPSHOT_REF = -2;

export class Wal {
  /**
   * A write of at most 512 KiB that finds the writer thread idle may be written and synced
   * at once on the event loop, when recent commits (write and fdatasync) averaged at most
   * 1 ms and the last few writes found the thread idle too: a caller that waits for each
   * write then pays one fdatasync and no thread hand-off. Set false when the event loop has
   * other work to do while a write syncs that the WAL cannot see.
   */
  get inlineWrites(): boolean {
    return this.#jobs.inline;
  }
  set inlineWrites(on: boolean) {
    this.#jobs.inline = on;
  }
  /**
   * Called just before a write that may be synced inline is handed over: the last chance
   * to start what should run while it syncs, such as a leader writing the same entries
   * to its followers' sockets. Anything it appends joins that write. It must not throw.
   */
  get beforeInlineWrite(): (() => void) | null {
    return this.#jobs.beforeInline;
  }
  set beforeInlineWrite(hook: (() => void) | null) {
    this.#jobs.beforeInline = hook;
  }
  readonly #handle: NativeHandle;
  readonly #jobs: JobQueue;
  readonly #segmentBytes: number;
  readonly #cacheBytes: number;
  readonly #positions: Positions;
  readonly #cache = new EntryCache();
  /** entries() calls awaiting a read, each with the lowest index replaced since it last looked. */
  readonly #reads = new Set<{ replaced: number }>();
  readonly #segments: Segments;
  /** Write cursor in the last segment. */
  #offset = 0;
  /** Where the last segment's own records begin: a record that does not fit rotates only if the segment holds more. */
  #contentStart = 0;
  #hs: WalHardState;
  #snap: WalSnapshot | null;
  #closing: Promise<void> | null = null;
  #appends = 0;
  #records = 0;
  #logger: WalLogger = SILENT;
  /**
   * The last segment's records all lie before an intact seal of a group with none (a marker of
   * an empty group, written after a sync), and nothing was written since open: a close has
   * nothing to seal, and a seal at each such close would grow the segment without bound.
   */
  #sealed = false;
  /** Whether writes are synced: TAIL claims only what a sync made durable. */
  #syncs = true;
  /** The segment TAIL names (0: none): it is rewritten once for each later segment. */
  #tailSeq = 0;
  /** TAIL's writes, one after another; close() waits for them. */
  #tailWrites: Promise<void> = Promise.resolve();
  /** The newest claim not yet written, and whether a write is under way. */
  #tailNext: Tail | null = null;
  #tailBusy = false;
  #tailFailure: Error | null = null;

  /** Set when open() cut off a torn record at the end of the last segment (never acknowledged). */
  readonly repair: WalRepair | null;
  /** Set when replay met a record Raft storage never writes where it lies (see WalConflict). */
  readonly conflict: WalConflict | null;

  /**
   * Opens (creating if needed) the WAL in `dir`, takes the directory lock and
   * replays it: every segment is read once, on the libuv thread pool, and
   * every CRC verified; the replay of what it read lets the event loop turn
   * every few thousand records. A new directory (and any missing parent) is created
   * durably before open resolves, with segment 1 in it: a crash cannot lose it
   * once an append has been acknowledged, and a WAL directory without a
   * segment is refused (WAL_CORRUPT) as one that lost its log. An existing
   * empty directory is made a WAL in place. The WAL is for local file
   * systems: its lock (flock) and fsync mean nothing reliable on network file
   * systems.
   */
  static async open(dir: string, options: WalOptions = {}): Promise<Wal> {
    // '' would resolve to the working directory, and a misspelt option would silently take its default.
    if (typeof dir !== 'string' || dir === '') throw new WalInvalidArgumentError(`dir must be a directory's path, got ${JSON.stringify(dir)}`);
    if (typeof options !== 'object' || options === null) throw new WalInvalidArgumentError(`options must be an object, got ${String(options)}`);
    for (const k of Object.keys(options)) if (!WAL_OPTIONS.has(k)) throw new WalInvalidArgumentError(`unknown option '${k}'`);
    const segmentBytes = options.segmentBytes ?? WAL_DEFAULTS.segmentBytes;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes < 4096 || segmentBytes > 2 ** 30)
      throw new WalInvalidArgumentError(`segmentBytes must be an integer in [4096, 2^30], got ${String(segmentBytes)}`);
    const sync = options.sync ?? 'always';
    if (sync !== 'always' && sync !== 'none') throw new WalInvalidArgumentError(`sync must be 'always' or 'none', got ${String(sync)}`);
    const prealloc = options.preallocate ?? WAL_DEFAULTS.preallocate;
    // `in` also finds Object.prototype's keys ('constructor'), which reached the addon as a raw TypeError.
    if (typeof prealloc !== 'string' || !Object.hasOwn(PREALLOC, prealloc))
      throw new WalInvalidArgumentError(`preallocate must be 'zeros', 'fallocate' or 'none', got ${String(prealloc)}`);
    const cacheBytes = options.cacheBytes ?? WAL_DEFAULTS.cacheBytes;
    if (!isIndex(cacheBytes)) throw new WalInvalidArgumentError(`cacheBytes must be a non-negative integer, got ${String(cacheBytes)}`);
    const given = options.logger ?? SILENT;
    if (typeof given !== 'object' || given === null || typeof given.warn !== 'function')
      throw new WalInvalidArgumentError('logger must have a warn(obj, msg) method');
    // Called inside open() and from the native writer's callback: a throw there failed the open of
    // a log it had just repaired, or was loose in the process.
    const logger: WalLogger = { warn: (fields, message) => guardedCall(() => given.warn(fields, message)) };
    const native = addon();
    const path = resolvePath(dir);
    await usableDir(path, (why) => new WalIoError(`WAL directory ${why}`));
    let handle: NativeHandle;
    try {
      handle = new native.WalHandle(path, ...firstSegment(), PREALLOC[prealloc], segmentBytes);
    } catch (err) {
      throw fromNative(err);
    }
    try {
      // Before the scan, which changes the directory (a torn tail zeroed, leftovers removed).
      const { tail, keep } = await checkTail(path);
      const scan = await new Promise<NativeScan>((resolve, reject) => handle.scanAsync((err, s) => (err ? reject(err) : resolve(s!)), keep?.name, keep?.end));
      // The scan ran on the thread pool; its replay, seconds for millions of records, yields to the loop.
      const wal = new Wal(handle, path, segmentBytes, cacheBytes, scan.torn, await replayYielding(path, scan));
      wal.#logger = logger;
      wal.#syncs = sync === 'always';
      wal.#tailSeq = tail?.seq ?? 0;
      wal.#sealed = scan.segments.at(-1)?.mark.records === 0;
      // Cut off as a crash's torn write, which was never acknowledged; damage there (a segment cut
      // short) reads the same, and this line is all that says the log is shorter than it was.
      const torn = wal.repair;
      if (torn !== null)
        logger.warn(
          { code: 'WAL_TORN_WRITE', dir: path, ...torn },
          `WAL: cut off a torn write at the end of the log, in ${torn.file} at offset ${torn.offset} (${torn.droppedBytes} bytes dropped)`,
        );
      const last = wal.#segments.last;
      const scanned = scan.segments.at(-1);
      const mark = scanned?.mark;
      handle.start(
        segmentBytes,
        sync === 'always',
        PREALLOC[prealloc],
        last?.seq ?? 0,
        last?.name ?? '',
        wal.#jobs.onReport,
        wal.#onNotice,
        mark?.start ?? 0,
        mark?.records ?? 0,
        mark?.crc ?? 0,
        scanned?.end ?? 0,
        mark?.atMarker ?? false,
      );
      return wal;
    } catch (err) {
      handle.dispose();
      throw fromNative(err);
    }
  }

  private constructor(
    handle: NativeHandle,
    readonly dir: string,
    segmentBytes: number,
    cacheBytes: number,
    torn: WalRepair | null,
    log: Replayed,
  ) {
    this.#handle = handle;
    this.#jobs = new JobQueue(handle, dir, {
      placeMarker: () => {
        const seg = this.#segments.last!;
        const at = { seq: seg.seq, offset: this.#offset, firstIndex: seg.firstIndex };
        this.#offset += MARKER_RECORD_BYTES;
        return at;
      },
      durable: (lowest) => this.#cache.trim(this.#cacheBytes, Math.min(this.#last, lowest - 1)),
    });
    this.#segmentBytes = segmentBytes;
    this.#cacheBytes = cacheBytes;
    this.repair = torn;
    this.#segments = log.segments;
    this.#positions = log.positions;
    this.#hs = log.hardState;
    this.#snap = log.snapshot;
    this.conflict = log.conflict;
    this.#offset = log.offset;
    this.#cache.clear(this.#positions.last + 1);
  }

  /**
   * True once close() was called (also while it is still closing): from then on every
   * read of the log (the getters below, entries*, term, dataLength, copyCached, stats)
   * throws WAL_CLOSED and every write rejects with it. Readable at any time, as are
   * `dir`, `repair` and `conflict`.
   */
  get closed(): boolean {
    return this.#closing !== null;
  }
  /** The latest hard state ({ term: 0, vote: 0, commit: 0 } in a new WAL). */
  get hardState(): Readonly<WalHardState> {
    this.#checkOpen();
    return this.#hs;
  }
  /** The latest snapshot marker, or null. */
  get snapshot(): Readonly<WalSnapshot> | null {
    this.#checkOpen();
    return this.#snap;
  }
  /** First readable entry; firstIndex - 1 is the snapshot's index (or 0). A new WAL has firstIndex 1, lastIndex 0. */
  get firstIndex(): number {
    this.#checkOpen();
    return this.#first;
  }
  /** Last entry; firstIndex - 1 when the log is empty. */
  get lastIndex(): number {
    this.#checkOpen();
    return this.#last;
  }
  /** The first entry kept in memory (lastIndex + 1 if none): reads of older ones go to disk. */
  get cachedFrom(): number {
    this.#checkOpen();
    return this.#cachedFrom;
  }
  get #first(): number {
    return this.#positions.base + 1;
  }
  get #last(): number {
    return this.#positions.last;
  }
  get #cachedFrom(): number {
    return this.#cache.size > 0 ? this.#cache.lo : this.#last + 1;
  }

  /**
   * Appends entries (contiguous; the first at most lastIndex + 1, at least
   * firstIndex: an existing index replaces it and everything after it) and/or
   * a hard state. Resolves once all of it is durable. Calls may be pipelined;
   * they become durable and resolve in call order. The new entries are
   * visible to reads at once (served from memory until they are on disk).
   *
   * The WAL's cache of recent entries holds the data of the newest entries and
   * of entries over 64 KiB as given (no copy): do not mutate an entry's data
   * after passing it.
   */
  append(entries: readonly WalEntry[], hardState?: WalHardState): Promise<void> {
    const unusable = this.#unusable();
    if (unusable !== null) return Promise.reject(unusable);
    let hs: WalHardState | null = null;
    let bytes = 0;
    try {
      if (!Array.isArray(entries)) throw new WalInvalidArgumentError('entries must be an array');
      if (hardState !== undefined) hs = checkHardState(hardState);
      bytes = this.#checkEntries(entries);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (entries.length === 0 && hs === null) return this.#jobs.release([]);
    const n = entries.length;
    const refs: RecordRef[] = [];
    for (let k = 0; k < n; k++) refs.push(k);
    if (hs !== null) refs.push(HARD_STATE_REF);
    return this.#write(refs, bytes + (hs !== null ? HARD_STATE_RECORD_BYTES : 0), entries, hs, null, false);
  }

  /**
   * Records a snapshot marker; resolves when durable. Entries at and below
   * `index` are no longer readable: firstIndex becomes index + 1 and
   * term(index) answers `term`. If the log holds the entry at `index` with
   * the same term, the entries above it stay readable (a local snapshot).
   * Otherwise, or with `discardLog` (a snapshot received from a leader:
   * Raft's InstallSnapshot), the whole log is discarded: lastIndex becomes
   * `index` and the next append must be at index + 1. Both hold across reopen.
   * Visible to reads at once, like append().
   */
  saveSnapshot(snapshot: { index: number; term: number; meta?: Uint8Array }, options?: { discardLog?: boolean }): Promise<void> {
    const unusable = this.#unusable();
    if (unusable !== null) return Promise.reject(unusable);
    let marker: WalSnapshot;
    try {
      if (snapshot === null || typeof snapshot !== 'object') throw new WalInvalidArgumentError('snapshot must be { index, term, meta? }');
      const index = requireIndex('snapshot.index', snapshot.index);
      const term = requireIndex('snapshot.term', snapshot.term);
      const meta = snapshot.meta ?? new Uint8Array(0);
      if (!(meta instanceof Uint8Array)) throw new WalInvalidArgumentError('snapshot.meta must be a Uint8Array');
      if (meta.length > MAX_PAYLOAD - 64) throw new WalInvalidArgumentError(`snapshot.meta is too large (${meta.length} bytes)`);
      if (index < this.#positions.base) throw new WalInvalidArgumentError(`snapshot at ${index} is older than the log's start (firstIndex ${this.#first})`);
      marker = { index, term, meta: meta.slice() };
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.#write([SNAPSHOT_REF], snapshotRecordBytes(marker.meta.length), [], null, marker, options?.discardLog === true);
  }

  /**
   * Takes out of the log the segment files that hold only entries at or below
   * `index` (which must not be above the snapshot marker). Up to four of them
   * (as many as fit in 256 MiB, at least one; none with preallocate 'none')
   * are kept to become the next segments; the others are renamed and deleted
   * in the background, a few MiB at a time. Resolves once they are out of the
   * log and the directory is synced, not once their blocks are freed.
   */
  releaseTo(index: number): Promise<void> {
    const unusable = this.#unusable();
    if (unusable !== null) return Promise.reject(unusable);
    if (!isIndex(index)) return Promise.reject(new WalInvalidArgumentError(`releaseTo index must be a non-negative safe integer, got ${String(index)}`));
    if (this.#snap === null || index > this.#snap.index)
      return Promise.reject(
        new WalInvalidArgumentError(`releaseTo(${index}) needs a snapshot marker at or above ${index} (have ${this.#snap?.index ?? 'none'})`),
      );
    return this.#jobs.release(this.#segments.releaseTo(index));
  }

  /**
   * Entries in [lo, hi), at most maxBytes of data (the sum of data lengths)
   * but always at least one if lo < hi. Older entries are read on the libuv
   * thread pool, every CRC checked; recent ones come from memory.
   */
  async entries(lo: number, hi: number, maxBytes = Infinity): Promise<WalEntry[]> {
    this.#checkRange(lo, hi, maxBytes);
    const out: WalEntry[] = [];
    let bytes = 0;
    let i = lo;
    const p = this.#positions;
    const read = { replaced: Infinity };
    this.#reads.add(read);
    try {
      for (;;) {
        // The log may change while a read is in flight: every round re-plans
        // from the current state, and an entry read from the file is used only
        // if the index still points at that very record.
        this.#checkRange(i, hi, maxBytes);
        const cacheLo = this.#cachedFrom;
        if (i >= hi || i >= cacheLo) break;
        const plan = this.#planRun(i, Math.min(hi, cacheLo), maxBytes - bytes);
        const buf = await new Promise<Buffer>((resolve, reject) =>
          this.#handle.readAsync(plan.name, plan.begin, plan.end - plan.begin, (err, b) => (err ? reject(fromNative(err)) : resolve(b!))),
        ).catch((err: unknown) => {
          // Released while the read was in flight, its segment may be gone or already being
          // recycled (zeroed, then rewritten): what failed is compacted data, so say that.
          this.#checkRange(i, hi, maxBytes);
          throw err;
        });
        this.#checkReadable();
        if (read.replaced < i) {
          // Entries collected in earlier rounds were replaced meanwhile (an append that
          // truncated the log, a snapshot that discarded it): keep those below and read
          // the rest again, so that the result is a slice of one log.
          out.length = Math.max(0, read.replaced - lo);
          bytes = 0;
          for (const e of out) bytes += e.data.length;
          i = lo + out.length;
          read.replaced = Infinity;
          continue;
        }
        read.replaced = Infinity; // this round's entries are checked against the positions below
        for (const e of this.#parseRun(plan, buf)) {
          const k = e.index - plan.lo;
          if (e.index !== i || e.index < this.#first || e.index > this.#last || p.seq(i) !== plan.seq || p.offset(i) !== plan.offsets[k]) break;
          bytes += e.data.length;
          if (out.length > 0 && bytes > maxBytes) return out;
          out.push(e);
          i++;
        }
      }
      return this.#fromCache(out, bytes, i, hi, maxBytes);
    } finally {
      this.#reads.delete(read);
    }
  }

  /**
   * Synchronous read for Raft's Storage interface. Recent entries come from
   * memory; older ones with a pread on the calling thread (catch-up reads
   * usually hit the page cache), every CRC checked.
   */
  entriesSync(lo: number, hi: number, maxBytes = Infinity): WalEntry[] {
    this.#checkRange(lo, hi, maxBytes);
    const out: WalEntry[] = [];
    let bytes = 0;
    const cacheLo = this.#cachedFrom;
    let i = lo;
    while (i < hi && i < cacheLo) {
      const stop = Math.min(hi, cacheLo);
      const run = this.#readRun(i, stop, maxBytes - bytes);
      for (const e of run) {
        bytes += e.data.length;
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(e);
      }
      i += run.length;
    }
    return this.#fromCache(out, bytes, i, hi, maxBytes);
  }

  /**
   * Passes the entries from `lo` below `hi` to `copy`, in order, if they are held in
   * memory: each entry's `data` is a view valid only during the call, so this reads them
   * without making a copy of its own. Returns `hi`, or `lo` if entry `lo` is only on
   * disk (the cache holds every entry from `cachedFrom` on). `copy` must not call into
   * the WAL: a write or release during the walk would change what it walks.
   */
  copyCached(lo: number, hi: number, copy: (e: WalEntry) => void): number {
    this.#checkRange(lo, hi, 0);
    if (lo < this.#cachedFrom || lo >= hi) return lo;
    this.#cache.visit(lo, hi, (index, term, type, data) => copy({ index, term, type, data }));
    return hi;
  }

  /** Appends cached entries [i, hi) to `out` within maxBytes (data already counted: `bytes`). */
  #fromCache(out: WalEntry[], bytes: number, i: number, hi: number, maxBytes: number): WalEntry[] {
    for (; i < hi; i++) {
      const e = this.#cache.get(i);
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) return out;
      out.push(e);
    }
    return out;
  }

  #checkRange(lo: number, hi: number, maxBytes: number): void {
    this.#checkReadable();
    requireIndex('lo', lo);
    requireIndex('hi', hi);
    if (typeof maxBytes !== 'number' || Number.isNaN(maxBytes) || maxBytes < 0)
      throw new WalInvalidArgumentError(`maxBytes must be a non-negative number, got ${String(maxBytes)}`);
    if (lo > hi) throw new WalInvalidArgumentError(`entries(${lo}, ${hi}): lo is above hi`);
    if (lo < this.#first) throw new WalCompactedError(`entries(${lo}, ${hi}): index ${lo} is compacted (firstIndex ${this.#first})`);
    if (hi > this.#last + 1) throw new WalUnavailableError(`entries(${lo}, ${hi}): lastIndex is ${this.#last}`);
  }

  /** Term of entry `index`, valid from firstIndex - 1 (the snapshot's term) to lastIndex. */
  term(index: number): number {
    this.#checkReadable();
    requireIndex('index', index);
    if (index < this.#positions.base) throw new WalCompactedError(`term(${index}): compacted (firstIndex ${this.#first})`);
    if (index > this.#positions.last) throw new WalUnavailableError(`term(${index}): lastIndex is ${this.#positions.last}`);
    return this.#positions.term(index);
  }

  /** Data length of entry `index` (firstIndex to lastIndex), from the position index: nothing is read. */
  dataLength(index: number): number {
    this.#checkReadable();
    requireIndex('index', index);
    if (index <= this.#positions.base) throw new WalCompactedError(`dataLength(${index}): compacted (firstIndex ${this.#first})`);
    if (index > this.#positions.last) throw new WalUnavailableError(`dataLength(${index}): lastIndex is ${this.#positions.last}`);
    return this.#positions.length(index);
  }

  stats(): WalStats {
    this.#checkOpen();
    const s = this.#handle.stats();
    return {
      appends: this.#appends,
      records: this.#records,
      bytes: s.bytes,
      writes: s.writes,
      fsyncs: s.fsyncs,
      groups: s.groups,
      inlineGroups: s.inlineGroups,
      segments: this.#segments.length,
      segmentsCreated: s.segmentsCreated,
      segmentsRemoved: s.segmentsRemoved,
      segmentsRecycled: s.segmentsRecycled,
      stagingBytes: s.stagingBytes,
      slabBytes: this.#jobs.slabBytes,
      fsyncBuckets: s.fsyncBuckets,
      fsyncSeconds: s.fsyncSeconds,
      cachedEntries: this.#cache.size,
      cachedBytes: this.#cache.bytes,
    };
  }

  /**
   * Waits for every pending write, checks that LOCK still names the file this instance
   * locked, seals the log (unless LOCK names another file: then nothing more is written),
   * stops the native threads and releases the fds and the lock. Rejects (WAL_IO), once all
   * of that is done, with a failure that arose while it closed (see JobQueue.close). From
   * the call on, `closed` is true and every read and write fails with WAL_CLOSED.
   * Idempotent: a second call returns the same promise.
   */
  close(): Promise<void> {
    if (this.#closing === null) {
      // Closed before the queue starts closing: the queue hands over the turn's writes at
      // once, which calls beforeInlineWrite, and a hook that calls close() (or reads
      // `closed`) must find this close under way, not start another one inside it.
      let adopt!: (closed: Promise<void>) => void;
      this.#closing = new Promise<void>((resolve) => (adopt = resolve));
      // TAIL is written before the lock is released: nothing touches the directory once another instance may hold it.
      adopt(this.#jobs.close(this.#segments.length > 0 && !this.#sealed, () => this.#tailSettled()));
    }
    return this.#closing;
  }

  // ---- writing ----

  #unusable(): Error | null {
    if (this.#closing !== null) return new WalClosedError(`WAL ${this.dir} is closed`);
    return this.#jobs.failure;
  }

  #checkReadable(): void {
    const err = this.#unusable();
    if (err !== null) throw err;
  }

  /** For what a failed WAL still answers (its in-memory state and counters): refused only once closed. */
  #checkOpen(): void {
    if (this.#closing !== null) throw new WalClosedError(`WAL ${this.dir} is closed`);
  }

  /** Validates entries; returns the bytes of their records. Throws before anything is changed. */
  #checkEntries(entries: readonly WalEntry[]): number {
    const n = entries.length;
    if (n === 0) return 0;
    const first = entries[0]?.index;
    if (!isIndex(first) || first < 1) throw new WalInvalidArgumentError(`entry index must be a positive safe integer, got ${String(first)}`);
    if (first < this.#first) throw new WalGapError(`entry ${first} is below firstIndex ${this.#first}: compacted entries cannot be rewritten`);
    if (first > this.#last + 1) throw new WalGapError(`entry ${first} would leave a gap after lastIndex ${this.#last}`);
    let bytes = 0;
    for (let k = 0; k < n; k++) {
      const e = entries[k];
      if (e === null || typeof e !== 'object') throw new WalInvalidArgumentError(`entries[${k}] is not an entry`);
      const { index, term, type, data } = e;
      if (index !== first + k) {
        if (!isIndex(index)) throw new WalInvalidArgumentError(`entries[${k}].index must be a non-negative safe integer, got ${String(index)}`);
        throw new WalGapError(`entries must be contiguous: entries[${k}].index is ${index}, expected ${first + k}`);
      }
      if (!isIndex(term)) throw new WalInvalidArgumentError(`entries[${k}].term must be a non-negative safe integer, got ${String(term)}`);
      if (typeof type !== 'number' || (type & 255) !== type)
        throw new WalInvalidArgumentError(`entries[${k}].type must be an integer in 0..255, got ${String(type)}`);
      if (!(data instanceof Uint8Array)) throw new WalInvalidArgumentError(`entries[${k}].data must be a Uint8Array`);
      // Packing it threw a raw TypeError out of append(), not a rejection.
      if (data.length === 0 && detached(data)) throw new WalInvalidArgumentError(`entries[${k}].data's buffer is detached (transferred)`);
      if (data.length > MAX_PAYLOAD - ENTRY_PREFIX) throw new WalInvalidArgumentError(`entries[${k}].data is too large (${data.length} bytes)`);
      bytes += entryRecordBytes(data.length);
    }
    return bytes;
  }

  #preludeBytes(): number {
    return SEGMENT_RECORD_BYTES + (this.#snap !== null ? snapshotRecordBytes(this.#snap.meta.length) : 0) + HARD_STATE_RECORD_BYTES;
  }

  #recordBytes(ref: RecordRef, entries: readonly WalEntry[], snap: WalSnapshot | null): number {
    if (ref >= 0) return entryRecordBytes(entries[ref]!.data.length);
    if (ref === HARD_STATE_REF) return HARD_STATE_RECORD_BYTES;
    return snapshotRecordBytes(snap!.meta.length);
  }

  /**
   * Places the records (rotating into new segments where the current one is
   * full), packs them into one buffer, applies them to the in-memory state
   * and submits one job.
   */
  #write(
    refs: RecordRef[],
    recordBytes: number,
    entries: readonly WalEntry[],
    hs: WalHardState | null,
    snap: WalSnapshot | null,
    discardLog: boolean,
  ): Promise<void> {
    // Pass 1: where do segment rotations fall? A new segment starts with a
    // prelude (segment header, then the snapshot marker and hard state as of
    // that moment) so that releasing older segments never loses them.
    this.#sealed = false;
    const prelude = this.#preludeBytes();
    let seq = this.#segments.last?.seq ?? 0;
    let off = this.#offset;
    let start = this.#contentStart;
    let total = recordBytes;
    let rotations: number[] | null = null;
    for (let r = 0; r < refs.length; r++) {
      const size = this.#recordBytes(refs[r]!, entries, snap);
      if (seq === 0 || (off + size > this.#segmentBytes && off > start)) {
        (rotations ??= []).push(r);
        seq++;
        total += prelude;
        off = start = prelude;
      }
      off += size;
    }

    // Pass 2: pack, and apply to the in-memory state in the same order.
    const jobs = this.#jobs;
    const base = jobs.allocate(total, rotations?.[0] === 0 ? 0 : this.#offset);
    const u8 = jobs.u8;
    const dv = jobs.dv;
    let pos = base;
    let chunkBegin = pos;
    let segment = this.#segments.last;
    off = this.#offset;
    let rot = 0;
    let lowest = Infinity;
    if (entries.length > 0) {
      const first = entries[0]!.index;
      lowest = first;
      if (first <= this.#last) {
        this.#positions.truncateAfter(first - 1);
        this.#cache.truncateAfter(first - 1);
        this.#replaced(first);
      }
    }
    for (let r = 0; r < refs.length; r++) {
      const ref = refs[r]!;
      if (rotations !== null && rotations[rot] === r) {
        rot++;
        if (pos > chunkBegin || segment === undefined) {
          // Close the chunk that went to the previous segment (empty only for the very first segment).
          if (segment !== undefined) jobs.chunk(chunkBegin, pos, segment.seq, this.#offset, segment.firstIndex);
        }
        const first = ref >= 0 ? entries[ref]!.index : this.#last + 1;
        const seq = (segment?.seq ?? 0) + 1;
        const stamp = newStamp();
        const s: Segment = { seq, firstIndex: first, name: segmentName(seq, first, stamp), maxIndex: first - 1, stamp };
        this.#segments.push(s);
        segment = s;
        chunkBegin = pos;
        this.#offset = 0;
        pos += writeSegmentHeader(u8, dv, pos, s.seq, s.firstIndex, stamp);
        // The carried marker never has the discard flag: replaying it must not
        // discard entries appended after the original.
        if (this.#snap !== null) pos += writeSnapshot(u8, dv, pos, this.#snap.index, this.#snap.term, this.#snap.meta);
        pos += writeHardState(u8, dv, pos, this.#hs.term, this.#hs.vote, this.#hs.commit);
        off = pos - chunkBegin;
        this.#contentStart = off;
      }
      const seg = segment!;
      if (ref >= 0) {
        const e = entries[ref]!;
        const len = e.data.length;
        const size = writeEntry(u8, dv, pos, e.index, e.term, e.type, e.data);
        this.#positions.push(e.term, seg.seq, off, len);
        this.#cache.push(e, jobs.slab, pos + ENTRY_DATA_AT);
        if (e.index > seg.maxIndex) seg.maxIndex = e.index;
        pos += size;
        off += size;
      } else if (ref === HARD_STATE_REF) {
        const h = hs!;
        pos += writeHardState(u8, dv, pos, h.term, h.vote, h.commit);
        off += HARD_STATE_RECORD_BYTES;
        this.#hs = h;
      } else {
        const m = snap!;
        const size = writeSnapshot(u8, dv, pos, m.index, m.term, m.meta, discardLog ? SNAPSHOT_DISCARD_LOG : 0);
        pos += size;
        off += size;
        this.#applySnapshot(m, discardLog);
      }
    }
    // The views span the whole slab: a pass that disagreed would write into the next append's bytes.
    if (pos - base !== total) throw new Error(`internal error: ${total} bytes planned for a write, ${pos - base} packed`);
    const seg = segment!;
    jobs.chunk(chunkBegin, pos, seg.seq, this.#offset, seg.firstIndex);
    this.#offset = off;
    this.#appends++;
    this.#records += entries.length;
    const durable = jobs.write(lowest);
    // Segment 1 is made with its directory, and a WAL that never rotated makes no claim.
    if (this.#syncs && rotations !== null && seg.seq > this.#tailSeq) this.#claimTail(durable, seg, off);
    return durable;
  }

  /** Once the write is durable, names its segment in TAIL with the write's end: the segment's header and records up to there are synced. */
  #claimTail(durable: Promise<void>, seg: Segment, end: number): void {
    this.#tailSeq = seg.seq;
    // Only a write that began segments gets here, and its last segment is one of them.
    const claim = { seq: seg.seq, firstIndex: seg.firstIndex, stamp: seg.stamp!, end };
    durable.then(
      () => {
        // Writes settle in order, so this claim is the newest: one not yet written is superseded.
        this.#tailNext = claim;
        if (!this.#tailBusy) this.#tailWrites = this.#writeTails();
      },
      () => undefined, // the write failed, and the WAL with it: nothing to claim
    );
  }

  /** Writes the newest claim until none is left: rotations faster than TAIL's syncs skip the claims between. */
  async #writeTails(): Promise<void> {
    this.#tailBusy = true;
    try {
      for (let claim = this.#tailNext; claim !== null && this.#tailFailure === null; claim = this.#tailNext) {
        this.#tailNext = null;
        const name = tailSegmentName(claim);
        await writeTail(this.dir, claim).catch((err: unknown) => {
          this.#tailFailure = new WalIoError(`WAL ${this.dir} could not write TAIL naming ${name}: ${(err as Error).message}`, { cause: err });
          this.#logger.warn({ code: 'WAL_IO', dir: this.dir, err: (err as Error).message }, `WAL: could not write TAIL naming ${name}`);
        });
      }
    } finally {
      this.#tailBusy = false;
    }
  }

  /** Waits for TAIL's writes; rejects with the first one's failure. */
  async #tailSettled(): Promise<void> {
    await this.#tailWrites;
    if (this.#tailFailure !== null) throw this.#tailFailure;
  }

  #applySnapshot(m: WalSnapshot, discardLog: boolean): void {
    if (this.#positions.applySnapshot(m.index, m.term, discardLog)) {
      this.#cache.clear(m.index + 1);
      this.#replaced(0);
    } else this.#cache.dropBefore(m.index + 1);
    this.#snap = m;
  }

  /** Entries from `index` on are no longer the ones a read in flight may have collected. */
  #replaced(index: number): void {
    for (const r of this.#reads) r.replaced = Math.min(r.replaced, index);
  }

  /** The native writer worked around a failure (nothing was lost): tell the operator. */
  readonly #onNotice = (message: string, attempt: number, delayMs: number): void => {
    this.#logger.warn({ code: 'WAL_WORKED_AROUND', dir: this.dir, attempt, delayMs, err: message }, 'WAL: worked around a failure that lost nothing');
  };

  // ---- reading ----

  /**
   * Plans one pread: entries from lo (below stop) that lie in one segment in
   * increasing file order, up to READ_SPAN bytes and about `budget` data bytes.
   */
  #planRun(lo: number, stop: number, budget: number): ReadPlan {
    const p = this.#positions;
    const seq = p.seq(lo);
    const segment = this.#segments.bySeq(seq);
    if (segment === undefined) throw new WalCorruptError(`entry ${lo} points at segment ${seq}, which is gone`, '', -1);
    const begin = p.offset(lo);
    const plan: ReadPlan = {
      lo,
      seq,
      name: segment.name,
      begin,
      end: begin + entryRecordBytes(p.length(lo)),
      offsets: [begin],
      terms: [p.term(lo)],
      lengths: [p.length(lo)],
    };
    let data = p.length(lo);
    for (let j = lo + 1; j < stop && p.seq(j) === seq && p.offset(j) >= plan.end; j++) {
      const next = p.offset(j) + entryRecordBytes(p.length(j));
      if (next - begin > READ_SPAN || data >= budget) break;
      data += p.length(j);
      plan.end = next;
      plan.offsets.push(p.offset(j));
      plan.terms.push(p.term(j));
      plan.lengths.push(p.length(j));
    }
    return plan;
  }

  /** The entries of a planned read, each checked against what the position index expected. */
  #parseRun(plan: ReadPlan, buf: Buffer): WalEntry[] {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const out: WalEntry[] = [];
    for (let k = 0; k < plan.offsets.length; k++) {
      const at = plan.offsets[k]! - plan.begin;
      const len = plan.lengths[k]!;
      const index = getU64(dv, at + 16);
      const term = getU64(dv, at + 24);
      if (buf[at + 8] !== Kind.Entry || dv.getUint32(at + 4, true) !== ENTRY_PREFIX + len || index !== plan.lo + k || term !== plan.terms[k])
        throw new WalCorruptError(
          `record at offset ${plan.offsets[k]} of ${plan.name} is not entry ${plan.lo + k}`,
          `${this.dir}/${plan.name}`,
          plan.offsets[k]!,
        );
      out.push({ index, term, type: buf[at + 9]!, data: buf.subarray(at + ENTRY_DATA_AT, at + ENTRY_DATA_AT + len) });
    }
    return out;
  }

  #readRun(lo: number, stop: number, budget: number): WalEntry[] {
    const plan = this.#planRun(lo, stop, budget);
    let buf: Buffer;
    try {
      buf = this.#handle.read(plan.name, plan.begin, plan.end - plan.begin);
    } catch (err) {
      throw fromNative(err);
    }
    return this.#parseRun(plan, buf);
  }
}

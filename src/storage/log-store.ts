import type { Entry, HardState } from '../raft/types.js';

/** The WAL's snapshot marker: where the log was cut, plus small opaque bytes. */
export interface SnapshotMarker {
  index: number;
  term: number;
  meta?: Uint8Array;
}

/**
 * What the storage layer needs from a write-ahead log. The native `Wal` has this
 * shape; the simulator's fault-injecting memory log has it too, so the real
 * driver runs unchanged on both.
 */
export interface LogStore {
  readonly hardState: HardState;
  readonly snapshot: SnapshotMarker | null;
  readonly firstIndex: number;
  readonly lastIndex: number;
  /**
   * Where a store replays records from disk: the first one that Raft storage never writes
   * where it lies (a term that falls, a second vote in a term, a marker that disagrees with
   * the log; see `WalConflict`), or null.
   */
  readonly conflict?: { file: string; offset: number; why: string } | null;
  /** Resolves once the entries and the hard state are durable; calls complete in order. */
  append(entries: Entry[], hardState?: HardState): Promise<void>;
  /** Entries in [lo, hi), at most maxBytes of data but at least one; below cachedFrom read from disk on the calling thread. */
  entriesSync(lo: number, hi: number, maxBytes?: number): Entry[];
  /** As entriesSync, reading the disk off the calling thread. */
  entries(lo: number, hi: number, maxBytes?: number): Promise<Entry[]>;
  /** The first entry held in memory (lastIndex + 1 if none). */
  readonly cachedFrom: number;
  /**
   * Where a store has it: entries from `lo` below `hi`, all held in memory, passed to
   * `copy` with data valid only during the call; returns the index after the last one
   * passed (`lo` if the first is not in memory).
   */
  copyCached?(lo: number, hi: number, copy: (e: Entry) => void): number;
  term(index: number): number;
  /** Data length of entry `index` (firstIndex to lastIndex), without reading it. */
  dataLength(index: number): number;
  /** `discardLog`: a snapshot received from the leader replaces the whole log (Raft's InstallSnapshot). */
  saveSnapshot(marker: SnapshotMarker, options?: { discardLog?: boolean }): Promise<void>;
  releaseTo(index: number): Promise<void>;
  close(): Promise<void>;
  /** Called before a write that may hold the calling thread while it syncs (see `Wal`). */
  beforeInlineWrite?: (() => void) | null;
}

// The WAL's vocabulary. The shapes match src/raft/types.ts (Entry, HardState)
// structurally, without importing it: the WAL sits below Raft.
import type { Logger } from '../logger.js';

export interface WalEntry {
  index: number;
  term: number;
  /** Entry type, 0..255 (Raft's EntryType). */
  type: number;
  data: Uint8Array;
}

export interface WalHardState {
  term: number;
  vote: number;
  commit: number;
}

/** The latest snapshot marker: where the log was compacted, plus small opaque bytes (e.g. membership). */
export interface WalSnapshot {
  index: number;
  term: number;
  meta: Uint8Array;
}

/**
 * Where the WAL reports what it worked around (pino-compatible: a pino
 * logger fits as is). The WAL never logs to the console; by default it is silent.
 */
/** The WAL reports only warnings: any logger of the library's shape will do. */
export type WalLogger = Pick<Logger, 'warn'>;

export interface WalOptions {
  /**
   * Target size of a segment file in bytes, 4 KiB to 1 GiB (default `WAL_DEFAULTS.segmentBytes`,
   * 64 MiB). A single larger record gets a segment of its own. It bounds what a snapshot can release at
   * once; a small log takes far less than a segment (see `preallocate`).
   */
  segmentBytes?: number;
  /**
   * 'always' (default): an append resolves only after write + fdatasync.
   * 'none' is for tests and benchmarks ONLY: nothing is fsynced, so an acknowledged
   * append can be lost in a power failure or kernel crash.
   */
  sync?: 'always' | 'none';
  /**
   * How segments are prepared ahead of need. 'none': every file grows with the appends, so
   * the WAL takes what it holds. 'zeros' (default, `WAL_DEFAULTS.preallocate`): a new segment
   * starts with 1 MiB of zeros, and the writer thread zeroes further ahead of the write
   * position while it is idle: 1 MiB at a time as soon as it is idle while recent groups
   * average at most 128 KiB, and after 2 ms of idle time, in steps doubling up to 8 MiB, for
   * larger ones, so that commits at low rates fdatasync into blocks already initialized (a
   * fresh WAL takes about 2 MiB). 'fallocate'
   * reserves each whole segment (two on disk from the first append). README.md has the
   * measurements behind the default.
   */
  preallocate?: 'zeros' | 'fallocate' | 'none';
  /**
   * Memory budget of the cache of recent entries (default `WAL_DEFAULTS.cacheBytes`, 16 MiB).
   * The cache reads entries where the WAL packed them for the writer, so each slab an entry
   * lies in counts whole while the cache holds an entry there (1 MiB, shared by writes of up
   * to 256 KiB, or a larger write's own, up to twice its size); an entry kept as given (empty,
   * or over 64 KiB) counts its data; and every entry 48 bytes for its place.
   */
  cacheBytes?: number;
  /** Receives warnings about conditions the WAL retried or repaired (default: none). */
  logger?: WalLogger;
}

/**
 * The first record replay met that Raft storage never writes after the records before it: a
 * hard state whose term is below the one before it, or whose vote differs from the one cast
 * before it in the same term, or a snapshot marker without the discard flag whose term
 * disagrees with the entry at its index. The WAL replays it as written (its API allows it);
 * RaftStorage refuses to open on it (STATE_CORRUPT).
 */
export interface WalConflict {
  file: string;
  offset: number;
  why: string;
}

/** What open() had to cut off: a record torn by a crash at the end of the last segment (it was never acknowledged). */
export interface WalRepair {
  file: string;
  offset: number;
  droppedBytes: number;
}

export interface WalStats {
  /** append() and saveSnapshot() calls accepted. */
  appends: number;
  /** Entry records written. */
  records: number;
  /** Bytes written to segment files (framing included). */
  bytes: number;
  /** pwritev calls. */
  writes: number;
  /** fdatasync calls on segment files. */
  fsyncs: number;
  /** Group commits: each is one batch of jobs made durable together. */
  groups: number;
  /**
   * Of those, the ones made durable on the appending thread: a write of up to 512 KiB
   * submitted while the writer thread was idle and recent commits averaged at most 1 ms.
   */
  inlineGroups: number;
  /** Segment files that exist now. */
  segments: number;
  /** Segments this instance started (segment 1 of a new WAL comes with its directory, and is not one of them). */
  segmentsCreated: number;
  /** Segments released, recycled ones included. */
  segmentsRemoved: number;
  /**
   * Released segments kept for later segments instead of deleted (up to four at a time; not with
   * `preallocate: 'none'`): the WAL then writes into blocks the disk has already written.
   */
  segmentsRecycled: number;
  /**
   * Bytes of the buffer the writer assembles blocks in to write them past the page cache (0
   * where segments go through the page cache): the blocks where a group and the slabs it was
   * packed in start and end, its other blocks being written from the slabs. At most 8 MiB, a
   * write out of phase with its slab (past a rotation) being written in pieces.
   */
  stagingBytes: number;
  /**
   * Memory of the slabs writes are packed into, held now: by writes not yet durable, by the
   * cache (see cacheBytes), or kept free for reuse (at most 64 MiB while writes are in
   * flight, 16 MiB once idle).
   */
  slabBytes: number;
  /**
   * fdatasync durations (on the writer thread, or inline): counts per bucket (not cumulative), the
   * bucket bounds being FSYNC_BUCKETS seconds and a last one for anything longer.
   */
  fsyncBuckets: number[];
  /** Total seconds spent in those fdatasyncs. */
  fsyncSeconds: number;
  cachedEntries: number;
  /** The memory the cached entries hold, as counted against `cacheBytes`. */
  cachedBytes: number;
}

/** Upper bounds (seconds) of WalStats.fsyncBuckets, as the native writer counts them: 1 ms doubling to 8.192 s. */
export const FSYNC_BUCKETS: readonly number[] = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

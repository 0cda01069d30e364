// A leader catching up a follower from entries the WAL no longer holds in memory reads
// them off the event loop: raft is told to wait (EntriesPendingError) and is called back
// when the read is done. Read on the loop, each message's entries held it for
// milliseconds (a read past the page cache), delaying the leader's clients and heartbeats.
import { EntriesPendingError } from '../raft/errors.js';
import type { Entry } from '../raft/types.js';

/**
 * Reads held at once, in flight or waiting to be taken, each at most one message's bytes:
 * one and the next for each of a few followers behind.
 */
export const MAX_CATCH_UP_READS = 8;

interface Read {
  /** null while in flight. */
  entries: Entry[] | null;
}

export class CatchUpReads {
  private readonly reads = new Map<number, Read>();

  /**
   * @param read reads entries [lo, hi), at most maxBytes of data but at least one
   * @param done a read has ended (`err`: it failed): whoever waits may ask again
   */
  constructor(
    private readonly read: (lo: number, hi: number, maxBytes: number) => Promise<Entry[]>,
    private readonly done: (lo: number, err?: unknown) => void,
  ) {}

  /** Reads in flight or waiting to be taken. */
  get size(): number {
    return this.reads.size;
  }

  /**
   * The entries read from `lo`, taken out, if that read is done. Otherwise it starts
   * (unless it is running) and this throws EntriesPendingError; `done` is called when
   * a read ends, so the caller can ask again.
   */
  take(lo: number, hi: number, maxBytes: number): Entry[] {
    const r = this.reads.get(lo);
    if (r !== undefined && r.entries !== null) {
      this.reads.delete(lo);
      return r.entries;
    }
    if (r === undefined) this.start(lo, hi, maxBytes);
    throw new EntriesPendingError(lo);
  }

  /** Starts reading from `lo` now (unless it is read already), so that a later take() finds it. */
  start(lo: number, hi: number, maxBytes: number): void {
    if (this.reads.has(lo)) return;
    if (this.reads.size >= MAX_CATCH_UP_READS) {
      // A finished read nobody took (its follower moved on, or this node stopped leading) gives way.
      for (const [k, r] of this.reads) {
        if (r.entries === null) continue;
        this.reads.delete(k);
        break;
      }
      // All in flight: each calls `done` when it ends, and the caller asks again then.
      if (this.reads.size >= MAX_CATCH_UP_READS) return;
    }
    const r: Read = { entries: null };
    this.reads.set(lo, r);
    this.read(lo, hi, maxBytes).then(
      (entries) => {
        if (this.reads.get(lo) === r) r.entries = entries;
        this.done(lo);
      },
      (err: unknown) => {
        if (this.reads.get(lo) === r) this.reads.delete(lo);
        this.done(lo, err);
      },
    );
  }
}

// The jobs between the event loop and the native writer thread. Every write made
// before the current microtasks run out goes into one job (up to about a megabyte):
// the writer then sees a whole round of pipelined appends at once instead of
// catching the first of them alone, and a turn costs one native call. Jobs become
// durable, and their promises settle, in the order they were submitted; after a
// failure every later one fails.
import { performance } from 'node:perf_hooks';
import { defer } from '../defer.js';
import { addon, type NativeHandle } from './addon.js';
import { WalIoError } from './errors.js';
import { MARKER_RECORD_BYTES, writeMarker } from './record.js';
import { type Slab, SlabPool } from './slab-pool.js';

/** Where the marker that ends a job goes. */
export interface MarkerPlace {
  seq: number;
  offset: number;
  firstIndex: number;
}

/** What the queue needs from the log that owns it. */
export interface JobQueueHost {
  /** Places the marker that ends the job being submitted and moves the write cursor past it. */
  placeMarker(): MarkerPlace;
  /** Jobs were reported done: the entries from `lowest` on (the lowest a job still pending writes) must stay cached. */
  durable(lowest: number): void;
}

/**
 * A turn that packs more than this hands it over at once, and the rest in later jobs: the
 * writer thread writes the first while the event loop packs the next, where one job for the
 * whole turn would leave each waiting for the other (16 MiB in one turn: 0.6x the MB/s).
 */
const JOB_BYTES_AT_ONCE = 1024 * 1024;

/**
 * An inline job holds the event loop for its write and sync, and a caller that awaits
 * each append in a loop submits the next from a microtask: the loop would not turn
 * until a job went to the writer thread. After this long of inline jobs with no turn
 * of the loop, the next job is handed over in the loop's next turn instead.
 */
const INLINE_RUN_MS = 1;

/** The id of a write whose job is still being collected in this turn. */
const UNASSIGNED = Infinity;

interface Batch {
  buffers: Uint8Array[];
  /** Bytes the batch's chunks write. */
  bytes: number;
}

interface Pending {
  id: number;
  resolve: () => void;
  reject: (err: Error) => void;
  /** Keeps the job's buffers alive until the native thread is done with them. */
  buffers: Uint8Array[] | null;
  /** Lowest entry index the job writes (Infinity if none): the cache keeps it until durable. */
  lowest: number;
  /** The close job: it resolves even on a failed WAL. */
  close: boolean;
}

export class JobQueue {
  /** Lets a small job that finds the writer idle run at once on the calling thread (see Wal.inlineWrites). */
  inline = true;
  /** Called before a job that may run on the calling thread is submitted (see Wal.beforeInlineWrite). */
  beforeInline: (() => void) | null = null;
  /** Set once a job failed: the WAL must be reopened. */
  failure: Error | null = null;
  #pending: Pending[] = [];
  #pendingHead = 0;
  #batch: Batch | null = null;
  /**
   * The open batch's plan, six numbers per chunk: buffer, begin, end, seq, offset,
   * firstIndex. Reused: the native side copies it during submit, and a fresh typed
   * array per job would be an ArrayBuffer per commit for the collector to track.
   */
  #plan = new Float64Array(6 * 16);
  #chunks = 0;
  /** The largest job the native writer runs on the submitting thread (read here: the addon loads on first use). */
  readonly #inlineMaxBytes = addon().inlineMaxBytes;
  /** When the first inline job since the event loop last turned was done (-1: none since). */
  #inlineRunStart = -1;
  #closing = false;

  constructor(
    private readonly handle: NativeHandle,
    private readonly dir: string,
    private readonly host: JobQueueHost,
    private readonly slabs = new SlabPool(addon().blockPhase),
  ) {}

  /**
   * Reserves `n` bytes (not zeroed) in the job being collected, bound for `fileOffset` in a
   * segment, and returns where they start in `u8`. Fill them, say with chunk() where their
   * parts go, and take the write's promise with write().
   */
  allocate(n: number, fileOffset: number): number {
    const b = this.#open();
    return this.#take(b, n, fileOffset);
  }

  /** The slab of the last allocate(), and a view of it: read them after each allocate(). */
  get u8(): Uint8Array {
    return this.slabs.u8;
  }
  get dv(): DataView {
    return this.slabs.dv;
  }
  /** Memory of the slabs this queue holds (WalStats.slabBytes). */
  get slabBytes(): number {
    return this.slabs.heldBytes;
  }
  /** The slab of the last allocate(), which a cache holding entries packed there must count in its `refs`. */
  get slab(): Slab {
    return this.slabs.slab!;
  }

  /** Bytes [begin, end) of `u8` as of the last allocate() go to segment `seq` at `offset`. */
  chunk(begin: number, end: number, seq: number, offset: number, firstIndex: number): void {
    const b = this.#batch!;
    b.bytes += end - begin;
    this.#chunk(b.buffers.length - 1, begin, end, seq, offset, firstIndex);
  }

  /** Allocates from the pool; the job lists each slab it packs into once. */
  #take(b: Batch, n: number, fileOffset: number): number {
    const at = this.slabs.allocate(n, fileOffset);
    const u8 = this.slabs.u8;
    if (b.buffers.length === 0 || b.buffers[b.buffers.length - 1] !== u8) b.buffers.push(u8);
    return at;
  }

  #chunk(buffer: number, begin: number, end: number, seq: number, offset: number, firstIndex: number): void {
    const k = this.#chunks * 6;
    if (k + 6 > this.#plan.length) {
      const grown = new Float64Array(this.#plan.length * 2);
      grown.set(this.#plan);
      this.#plan = grown;
    }
    const p = this.#plan;
    p[k] = buffer;
    p[k + 1] = begin;
    p[k + 2] = end;
    p[k + 3] = seq;
    p[k + 4] = offset;
    p[k + 5] = firstIndex;
    this.#chunks++;
  }

  /** Resolves when the job being collected is durable. `lowest`: the lowest entry index the write holds (Infinity if none). */
  write(lowest: number): Promise<void> {
    const durable = this.#enqueue(UNASSIGNED, lowest, false);
    if (this.#batch!.bytes >= JOB_BYTES_AT_ONCE) this.flush();
    return durable;
  }

  /** Deletes `names` once everything before is durable (none: a barrier); resolves when they are gone and the directory synced. */
  release(names: string[]): Promise<void> {
    this.flush();
    return this.#enqueue(this.handle.release(names), Infinity, false);
  }

  /**
   * Waits for every job, then checks that LOCK still names the file this instance locked,
   * seals the log if `sealable` and the check passed, stops the native threads and releases
   * the lock. Rejects with a failure that arose while it closed: the seal's (WAL_IO), the
   * check's (LOCK names another file: nothing was sealed, nothing of the check's group was
   * written), or one of a write still in flight. A failure known before it was called was
   * reported already; it resolves then. `settle`, awaited once everything is durable and
   * before the lock is released, finishes the owner's own writes to the directory; its
   * failure is reported after the seal's.
   */
  async close(sealable: boolean, settle: () => Promise<void> = async () => undefined): Promise<void> {
    const failedBefore = this.failure;
    this.#closing = true;
    const sealFailure = await this.#seal(sealable); // it flushes first
    const settleFailure = await settle().then(
      () => null,
      (err: unknown) => err,
    );
    await this.#enqueue(this.handle.close(), Infinity, true);
    this.handle.dispose();
    if (sealFailure !== null)
      throw new WalIoError(`WAL ${this.dir} could not be sealed at close (every append it acknowledged was durable before): ${sealFailure.message}`, {
        cause: sealFailure,
      });
    if (settleFailure !== null) throw settleFailure;
    if (failedBefore === null && this.failure !== null) throw this.failure;
  }

  /**
   * After everything written is durable, and only if LOCK still names the file this
   * instance locked (the fence: a directory taken over must not be written into), one
   * more marker, in a group of its own: it shows the next open that the last group was
   * synced, so damage to it is corruption, not a write cut short by a crash
   * (docs/wal-format.md). Returns its failure.
   */
  async #seal(sealable: boolean): Promise<Error | null> {
    this.flush();
    try {
      await this.#enqueue(this.handle.fence(), Infinity, false);
    } catch {
      return null; // a failed WAL (before, or at the fence): close() reports a failure it did not know, and nothing more is written
    }
    if (this.failure !== null || !sealable) return null;
    this.#open();
    const sealed = this.#enqueue(UNASSIGNED, Infinity, false);
    this.flush();
    return sealed.then(
      () => null,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    );
  }

  #open(): Batch {
    if (this.#batch === null) {
      this.#batch = { buffers: [], bytes: 0 };
      if (this.#inlineRunStart >= 0 && performance.now() - this.#inlineRunStart >= INLINE_RUN_MS) setImmediate(this.flush);
      else defer(this.flush);
    }
    return this.#batch;
  }

  /** Hands the collected job to the writer thread; runs before anything else is queued natively. */
  readonly flush = (): void => {
    if (this.#batch === null) return;
    // Before the batch is taken: whatever the hook writes joins it.
    if (this.inline && this.#batch.bytes + MARKER_RECORD_BYTES <= this.#inlineMaxBytes) this.beforeInline?.();
    const b = this.#batch as Batch | null;
    if (b === null) return; // the hook flushed it (a close, say)
    this.#batch = null;
    // Every job ends with a marker: replay tells a write cut short by a crash from
    // damaged data by whether an intact marker follows the damage.
    const at = this.host.placeMarker();
    const m = this.#take(b, MARKER_RECORD_BYTES, at.offset);
    writeMarker(this.slabs.u8, this.slabs.dv, m);
    this.#chunk(b.buffers.length - 1, m, m + MARKER_RECORD_BYTES, at.seq, at.offset, at.firstIndex);
    const chunks = this.#chunks;
    this.#chunks = 0;
    let id: number;
    try {
      id = this.handle.submit(b.buffers, this.#plan, chunks, this.inline);
      this.slabs.seal(Math.abs(id));
    } catch (err) {
      // The in-memory state already moved: this instance can no longer be trusted.
      this.failure = new WalIoError(`WAL ${this.dir} failed to queue a write; reopen it: ${(err as Error).message}`);
      this.#failAll();
      return;
    }
    // The batch's writes are the queue's tail: a release or close hands the batch over
    // before it queues. Found from the end, not by a position taken when the batch opened:
    // a report in between may have dropped the settled front of the queue.
    const job = Math.abs(id);
    for (let k = this.#pending.length - 1; k >= this.#pendingHead && this.#pending[k]!.id === UNASSIGNED; k--) {
      const p = this.#pending[k]!;
      p.id = job;
      p.buffers = b.buffers;
    }
    // Negative: the writer was idle and the job ran during submit; it is durable already.
    if (id < 0) {
      if (this.#inlineRunStart < 0) {
        this.#inlineRunStart = performance.now();
        setImmediate(this.#loopTurned);
      }
      this.onReport(job);
    }
  };

  readonly #loopTurned = (): void => {
    this.#inlineRunStart = -1;
  };

  /** The native writer reports after each group commit: every job up to lastId is durable, or failed. */
  readonly onReport = (lastId: number, error?: string): void => {
    if (error !== undefined && this.failure === null) this.failure = new WalIoError(`WAL ${this.dir} failed and must be reopened: ${error}`);
    const pending = this.#pending;
    while (this.#pendingHead < pending.length && pending[this.#pendingHead]!.id <= lastId) {
      const p = pending[this.#pendingHead]!;
      pending[this.#pendingHead++] = undefined as unknown as Pending;
      if (this.failure !== null && !p.close) p.reject(this.failure);
      else p.resolve();
    }
    if (this.failure === null) this.slabs.done(lastId);
    let lowest = Infinity;
    for (let k = this.#pendingHead; k < pending.length; k++) lowest = Math.min(lowest, pending[k]!.lowest);
    if (this.#pendingHead === pending.length) {
      this.#pending = []; // not length = 0: truncating through length is a call into the engine
      this.#pendingHead = 0;
      this.slabs.shrink();
      if (!this.#closing) this.handle.unref();
    } else if (this.#pendingHead > 1024) {
      pending.splice(0, this.#pendingHead);
      this.#pendingHead = 0;
    }
    this.host.durable(lowest);
  };

  #failAll(): void {
    for (let k = this.#pendingHead; k < this.#pending.length; k++) this.#pending[k]!.reject(this.failure!);
    this.#pending = [];
    this.#pendingHead = 0;
    this.handle.unref();
  }

  #enqueue(id: number, lowest: number, close: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#pendingHead === this.#pending.length) this.handle.ref();
      this.#pending.push({ id, resolve, reject, buffers: null, lowest, close });
    });
  }
}

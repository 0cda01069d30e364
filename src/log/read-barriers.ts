// Linearizable read points. A barrier waits for the leader to confirm, through a
// ReadIndex round, that it still leads at some commit index, then for this node to
// apply up to that index. Barriers of one event-loop turn share one round: a burst
// of reads costs one heartbeat exchange, not one each.
import { ReadIndexDroppedError } from '../raft/errors.js';
import { readContextKey } from '../raft/read-only.js';
import type { ReadState } from '../raft/types.js';
import type { Clock } from './clock.js';
import { OverloadedError } from './errors.js';

/** What the barriers need from the driver and its raft node. */
export interface ReadBarrierHost {
  /** Asks the leader for a ReadIndex round; throws ReadIndexDroppedError when the node cannot ask now. */
  readIndex(ctx: Uint8Array): void;
  /** The leader this node knows, 0 for none. */
  leader(): number;
  /** The index this node has applied up to. */
  applied(): number;
  /** The log stopped: nothing is asked any more. */
  stopped(): boolean;
  /** A request was handed to the node: run the driver loop so that it leaves. */
  schedulePump(): void;
  /** A barrier was refused at once, with this code (counted for the metrics). */
  refused(code: string): void;
}

/** The barriers of one turn share one ReadIndex request. */
interface ReadBatch {
  ctx: Uint8Array;
  /** resolve -> reject of each barrier waiting on this request. */
  waiters: Map<() => void, (e: Error) => void>;
}

export class ReadBarriers {
  /** ReadIndex requests made and not yet answered, by context. */
  private readonly reads = new Map<string, ReadBatch>();
  /** The batch this turn's barriers join. */
  private batch: ReadBatch | null = null;
  private seq = 0;
  private ticks = 0;
  /**
   * Answered barriers waiting for this node to apply up to the index the leader confirmed: resolve
   * -> that index. One that gives up leaves at once: a node that stops applying (a stalled disk)
   * would otherwise hold every barrier that timed out meanwhile.
   */
  private readonly appliedWaiters = new Map<() => void, number>();

  /**
   * `origin`: this session's unique prefix, so that a context never matches another
   * node's or an earlier session's answer. `clock.defer` closes a turn's batch.
   */
  constructor(
    private readonly host: ReadBarrierHost,
    private readonly origin: Uint8Array,
    private readonly clock: Pick<Clock, 'defer'>,
    private readonly electionTicks: number,
  ) {}

  /** Enrols one barrier in this turn's batch; returns its cleanup for when it gives up. */
  wait(resolve: () => void, reject: (e: Error) => void): () => void {
    let batch = this.batch;
    if (batch === null) {
      const ctx = new Uint8Array(this.origin.byteLength + 8);
      ctx.set(this.origin);
      new DataView(ctx.buffer).setFloat64(this.origin.byteLength, ++this.seq);
      const key = readContextKey(ctx);
      batch = this.batch = { ctx, waiters: new Map() };
      this.reads.set(key, batch);
      const opened = batch;
      this.clock.defer(() => {
        if (this.batch === opened) this.batch = null;
        this.request(key);
      });
    }
    const mine = batch;
    mine.waiters.set(resolve, reject);
    return () => {
      this.appliedWaiters.delete(resolve);
      mine.waiters.delete(resolve);
      if (mine.waiters.size === 0) this.reads.delete(readContextKey(mine.ctx));
    };
  }

  /** A ReadIndex request or its answer may have been lost: ask again now and then. */
  onTick(): void {
    if (++this.ticks % this.electionTicks === 0) this.requestAll();
  }

  /** Requests that found no leader (or were lost with the old one) go to the new one. */
  onNewLeader(): void {
    this.requestAll();
  }

  onReadStates(readStates: readonly ReadState[]): void {
    // Indexed, as over every Ready array: an empty one is a frozen constant, and for-of
    // over arrays of two elements kinds is a call into the engine per commit.
    for (let i = 0; i < readStates.length; i++) this.onReadState(readStates[i]!);
  }

  /**
   * The leader holds as many reads as it may, unconfirmed by a quorum, and refused these: asking
   * again would only add to them, so their barriers fail now rather than at their deadline.
   */
  onReadsRefused(contexts: readonly Uint8Array[]): void {
    for (let i = 0; i < contexts.length; i++) {
      const key = readContextKey(contexts[i]!);
      const b = this.reads.get(key);
      if (b !== undefined) this.refuse(key, b);
    }
  }

  /** Releases the answered barriers whose read index is now applied. */
  onApplied(applied: number): void {
    for (const [resolve, index] of this.appliedWaiters) {
      if (index <= applied) {
        this.appliedWaiters.delete(resolve);
        resolve();
      }
    }
  }

  /** Rejects every barrier still waiting for an answer, each with an error of its own. */
  rejectUnanswered(error: () => Error): void {
    const batches = [...this.reads.values()];
    this.reads.clear();
    this.batch = null;
    for (const b of batches) for (const reject of b.waiters.values()) reject(error());
  }

  /** The log stopped: its close hooks settle the barriers, nothing is asked again. */
  clear(): void {
    this.reads.clear();
  }

  private requestAll(): void {
    for (const key of this.reads.keys()) this.request(key);
  }

  private request(key: string): void {
    const b = this.reads.get(key);
    if (b === undefined || this.host.leader() === 0 || this.host.stopped()) return; // asked again when a leader appears
    try {
      this.host.readIndex(b.ctx);
    } catch (err) {
      if (!(err instanceof ReadIndexDroppedError)) throw err;
      // This node leads and refused it, as onReadsRefused's leader did.
      if (err.reason === 'too-many-pending') this.refuse(key, b, err);
      return;
    }
    // Asked before its turn ended (a re-ask, a new leader): the leader may fix the read index on
    // receipt, so a barrier that joined from now on could be answered with a point older than a
    // write that completed before it began. Later barriers make a batch of their own.
    if (this.batch === b) this.batch = null;
    this.host.schedulePump();
  }

  private refuse(key: string, b: ReadBatch, cause?: ReadIndexDroppedError): void {
    this.reads.delete(key);
    if (this.batch === b) this.batch = null;
    for (const reject of b.waiters.values()) {
      const err = new OverloadedError('the leader holds too many reads a quorum has not confirmed', { cause });
      this.host.refused(err.code);
      reject(err);
    }
  }

  private onReadState(rs: ReadState): void {
    const key = readContextKey(rs.context);
    const b = this.reads.get(key);
    if (b === undefined) return;
    this.reads.delete(key); // an answered batch is closed already: its request went out
    for (const resolve of b.waiters.keys()) {
      if (this.host.applied() >= rs.index) resolve();
      else this.appliedWaiters.set(resolve, rs.index);
    }
  }
}

// Appends wait here from the call to the end of the event-loop turn, when all of them
// become one proposal: a Raft entry per MAX_BATCH_BYTES of records, one WAL write,
// one fdatasync. With no leader to take them they wait for one, for at most the
// append timeout. On a node that commits alone, appends made by callers continuing
// from a commit are proposed as soon as those callers have run (afterSettle).
//
// A proposed batch that has not settled within the timeout fails as unknown. The
// deadlines are checked at each of the log's ticks, not by a timer per batch: a timer
// and the seqs it holds would live for the whole timeout, long enough to be promoted,
// and at thousands of batches a second the old generation would fill with them.
import { defer } from '../defer.js';
import { ProposalDroppedError } from '../raft/errors.js';
import type { RawNode } from '../raft/raw-node.js';
import type { Clock } from './clock.js';
import { InvalidArgumentError, NotCommittedError } from './errors.js';
import type { Proposals } from './proposals.js';
import { compactQueue } from './flat-queue.js';
import { encodeBatches, unreadable } from './record-batch.js';

/**
 * The records packed into one entry, at most (a larger record goes alone). Past a few
 * hundred small records an entry's own cost is lost in theirs, and a bound keeps one
 * turn's burst from becoming one huge message to every follower.
 */
const MAX_BATCH_BYTES = 64 * 1024;

/**
 * Proposals made early, as callers continue from a commit, before the event loop must
 * turn. A store that settles writes at once (an in-memory one) commits within the same
 * pass of microtasks, so a caller's loop would otherwise never let timers, sockets or
 * the log's own ticks run; 64 such commits take well under a millisecond. The native
 * WAL yields first, after a millisecond of writes on the event loop.
 */
export const EARLY_PROPOSALS_PER_TURN = 64;

/** What the queue needs from the node that owns it. */
export interface AppendQueueHost {
  lead(): number;
  node: Pick<RawNode, 'propose'>;
  /** An unexpected core error: the node must stop. */
  fail(err: unknown): void;
  /** Hands what the proposal produced to the driver loop. */
  pump(): void;
}

export class AppendQueue {
  // Two arrays, not an object per append: they are exactly what encodeBatches takes.
  private seqs: number[] = [];
  private payloads: Uint8Array[] = [];
  private scheduled = false;
  /** Cancels the timeout of the appends waiting for a leader; null while none waits. */
  private cancelLeaderTimeout: (() => void) | null = null;
  private earlyArmed = false;
  /** Appends queued when committed ones were last settled. */
  private queuedAtSettle = 0;
  /** Early proposals since a turn's end last proposed. */
  private earlyRun = 0;
  /** Proposed batches by age, three numbers each: first seq, last seq, the tick it expires at. */
  private batches: number[] = [];
  private batchesHead = 0;
  private ticks = 0;
  private readonly expired: string;

  /** The append timeout in the log's ticks, rounded up. */
  private readonly timeoutTicks: number;

  constructor(
    private readonly proposals: Proposals<unknown>,
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    tickMs: number,
    private readonly host: AppendQueueHost,
  ) {
    this.timeoutTicks = Math.ceil(timeoutMs / tickMs);
    this.expired = `not committed within ${timeoutMs} ms`;
  }

  get length(): number {
    return this.seqs.length;
  }

  /** Appends wait for the end of this turn to be proposed. */
  get proposing(): boolean {
    return this.scheduled && this.seqs.length > 0;
  }

  /** Queues an append the proposals already track as `seq`; it is proposed at the end of this turn. */
  push(seq: number, payload: Uint8Array): void {
    this.seqs.push(seq);
    this.payloads.push(payload);
    if (!this.scheduled) {
      this.scheduled = true;
      this.clock.defer(this.proposeAtTurnEnd);
    }
  }

  /** The one callback armed for a turn's end: early proposals leave it armed, so that they arm no more. */
  private readonly proposeAtTurnEnd = (): void => {
    this.scheduled = false;
    this.earlyRun = 0;
    this.propose();
  };

  /**
   * Committed appends were just settled. Their callers continue in the microtasks that
   * follow (an `await log.append()` loop resumes in the next one), and what they append
   * then is proposed once they have run, in this same pass, instead of after a turn of
   * the event loop: a caller that waits for each commit saves a turn per commit. Not if
   * other appends already waited: they belong to this turn's proposal, and proposing part
   * of it now would cost a second write. Nor past EARLY_PROPOSALS_PER_TURN in a row: the
   * event loop must turn.
   */
  afterSettle(): void {
    if (this.earlyArmed) return;
    this.earlyArmed = true;
    this.queuedAtSettle = this.seqs.length;
    defer(this.proposeEarly);
  }

  private readonly proposeEarly = (): void => {
    this.earlyArmed = false;
    if (this.queuedAtSettle > 0 || this.seqs.length === 0 || this.earlyRun >= EARLY_PROPOSALS_PER_TURN) return;
    this.earlyRun++;
    this.propose();
  };

  /** Turns every queued append into one proposal, or keeps them until a leader is known. */
  propose(): void {
    if (this.seqs.length === 0) return;
    if (this.host.lead() === 0) {
      this.armLeaderTimeout();
      return;
    }
    // Every queued append leaves now: a wait for a later leader is timed from its own start.
    this.disarmLeaderTimeout();
    const seqs = this.seqs;
    const ends: number[] = [];
    let datas;
    try {
      datas = encodeBatches(this.proposals.origin, seqs, this.payloads, MAX_BATCH_BYTES, ends);
    } catch (err) {
      // Runs from a deferred callback, where a throw would end the process and leave the
      // turn's appends queued to throw again at every later turn.
      if (this.dropUnreadable()) this.propose();
      else this.host.fail(err);
      return;
    }
    this.seqs = [];
    this.payloads = [];
    let pos;
    try {
      pos = this.host.node.propose(datas);
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) {
        // Runs from a deferred callback: an unexpected core error must stop the node, not the process.
        this.host.fail(err);
        return;
      }
      for (const seq of seqs) this.proposals.fail(seq, new NotCommittedError(err.message, { cause: err }));
      return;
    }
    for (let j = 0, from = 0; j < ends.length; from = ends[j]!, j++) {
      const first = seqs[from]!;
      const last = seqs[ends[j]! - 1]!;
      if (pos === null) this.proposals.markProposed(first, last);
      else this.proposals.markProposed(first, last, pos.index + j, pos.term);
    }
    // One tick more than the timeout: the next tick may come at once.
    this.batches.push(seqs[0]!, seqs[seqs.length - 1]!, this.ticks + this.timeoutTicks + 1);
    this.host.pump();
  }

  /**
   * One of the log's ticks passed: fails the proposed appends whose batch is past its
   * deadline and still unsettled. A batch's seqs are a contiguous range (every queued
   * append goes into the next proposal), so its first and last seq name it.
   */
  onTick(): void {
    this.ticks++;
    const b = this.batches;
    let h = this.batchesHead;
    while (h < b.length && b[h + 2]! <= this.ticks) {
      for (let seq = b[h]!; seq <= b[h + 1]!; seq++) this.proposals.expire(seq, this.expired);
      h += 3;
    }
    this.batchesHead = compactQueue(b, h);
  }

  /**
   * A record is read at the end of its turn, not copied by append(): a caller that
   * transferred its buffer since (to a worker, say) took its bytes away. That append
   * fails; the others of the turn are proposed without it. False if none was.
   */
  private dropUnreadable(): boolean {
    const seqs: number[] = [];
    const payloads: Uint8Array[] = [];
    const gone: number[] = [];
    for (let i = 0; i < this.seqs.length; i++) {
      const p = this.payloads[i]!;
      if (unreadable(p)) gone.push(this.seqs[i]!);
      else {
        seqs.push(this.seqs[i]!);
        payloads.push(p);
      }
    }
    if (gone.length === 0) return false;
    this.seqs = seqs;
    this.payloads = payloads;
    for (const seq of gone) {
      this.proposals.fail(
        seq,
        new InvalidArgumentError('append(data): the buffer of data was detached (transferred) before the end of the turn, when the record is read'),
      );
    }
    return true;
  }

  /** Rejects every append still queued. */
  failAll(err: () => Error): void {
    this.disarmLeaderTimeout();
    const seqs = this.seqs;
    this.seqs = [];
    this.payloads = [];
    for (const seq of seqs) this.proposals.fail(seq, err());
  }

  private armLeaderTimeout(): void {
    if (this.cancelLeaderTimeout !== null) return;
    this.cancelLeaderTimeout = this.clock.setTimeout(() => {
      this.cancelLeaderTimeout = null;
      this.failAll(() => new NotCommittedError(`no leader was elected within ${this.timeoutMs} ms`));
    }, this.timeoutMs);
  }

  private disarmLeaderTimeout(): void {
    this.cancelLeaderTimeout?.();
    this.cancelLeaderTimeout = null;
  }
}

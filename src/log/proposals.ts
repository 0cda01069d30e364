import { NotCommittedError, OutcomeUnknownError } from './errors.js';
import { compactQueue } from './flat-queue.js';

export interface AppendResult<R> {
  /** The Raft index of the entry that carries the record: the records of one turn share it. */
  index: number;
  term: number;
  /** The record's place among its entry's records, from 0: with `index`, its position in the log. */
  offset: number;
  result: R;
}

/** Told of every append as it settles: `err` is null for a committed one. */
export type SettleObserver = (err: Error | null, started: number) => void;

/**
 * An append's resolve function, declared as a method: TypeScript checks a method's
 * parameter bivariantly, so a log of a narrower result type stays assignable to a
 * ReplicatedLog<unknown>.
 */
type Resolve<R> = { settle(r: AppendResult<R>): void }['settle'];

/** A slot's state in the ring. */
const enum State {
  Free = 0,
  Waiting = 1,
  /** Handed to raft: from then on a failure means "unknown", not "not committed". */
  Proposed = 2,
}

/**
 * The appends this node made that are not settled yet. A record is recognised when
 * it is applied by its tag (origin, seq), on whatever path it reached the leader;
 * where the leader placed it is known only when this node was that leader.
 *
 * Sequence numbers are dense and almost always settle in order, so the pending
 * appends live in a ring indexed by seq, and the places this node assigned as
 * leader in a queue ordered by index: no hash table churns at every append. The
 * ring spans from the oldest unsettled seq to the newest, so one append left
 * waiting (say, a proposal a follower forwarded and the leader dropped) widens it
 * until that append settles, by its timeout at the latest.
 *
 * The ring is kept as columns, not an object per append: between an append and its
 * proposal the whole turn's garbage is allocated, and reaching back into an object
 * per append cost a cache miss each, a tenth of the append path's CPU at 256 clients.
 */
export class Proposals<R> {
  private mask = 1023;
  private resolves: Array<Resolve<R> | undefined> = new Array<undefined>(1024);
  private rejects: Array<((e: Error) => void) | undefined> = new Array<undefined>(1024);
  private state = new Uint8Array(1024);
  private sizes = new Float64Array(1024);
  /** When each append was made (turnNow()), for the duration histogram. */
  private started = new Float64Array(1024);
  /** The oldest seq that may be unsettled; every seq below it is settled. */
  private head = 1;
  private nextSeq = 1;
  private count = 0;
  /** Batches this node placed as leader, four numbers each (first seq, last seq, index, term), by ascending index; those before `placedHead` are done. */
  private placed: number[] = [];
  private placedHead = 0;
  /** Payload bytes of the appends not settled yet. */
  bytes = 0;

  /** `origin`: this session's batch prefix (see record-batch.ts). */
  constructor(
    readonly origin: Uint8Array,
    private readonly observe: SettleObserver = () => undefined,
  ) {}

  get size(): number {
    return this.count;
  }

  add(resolve: (r: AppendResult<R>) => void, reject: (e: Error) => void, bytes: number, started = 0): number {
    const seq = this.nextSeq;
    if (seq - this.head > this.mask) this.grow();
    const k = seq & this.mask;
    this.resolves[k] = resolve;
    this.rejects[k] = reject;
    this.state[k] = State.Waiting;
    this.sizes[k] = bytes;
    this.started[k] = started;
    this.nextSeq = seq + 1;
    this.count++;
    this.bytes += bytes;
    return seq;
  }

  /**
   * Raft took a batch, the appends `first` to `last`; `index` and `term` say where,
   * when this node placed it as leader.
   */
  markProposed(first: number, last: number, index?: number, term?: number): void {
    for (let seq = first; seq <= last; seq++) if (this.isPending(seq)) this.state[seq & this.mask] = State.Proposed;
    if (index !== undefined && term !== undefined) this.placed.push(first, last, index, term);
  }

  isPending(seq: number): boolean {
    return seq >= this.head && seq < this.nextSeq && this.state[seq & this.mask] !== State.Free;
  }

  /**
   * An entry is about to be applied at `index`, before its records are. `ownFirst` is
   * the first seq of the batch it carries if this session appended it, else -1.
   *
   * Applied entries arrive in index order, and this node placed its batches in index
   * order, so the place to check is always at the front of the queue. A place the
   * applied stream passed over (a snapshot installed past it) proves nothing either
   * way: its appends stay pending until their batch is applied or their timeout.
   */
  entryApplied(index: number, term: number, ownFirst: number): void {
    const placed = this.placed;
    let h = this.placedHead;
    while (h < placed.length && placed[h + 2]! < index) h += 4;
    if (h < placed.length && placed[h + 2]! === index) {
      const first = placed[h]!;
      const last = placed[h + 1]!;
      const placedTerm = placed[h + 3]!;
      h += 4;
      if (first !== ownFirst || placedTerm !== term)
        for (let seq = first; seq <= last; seq++) this.fail(seq, new NotCommittedError(`index ${index} was committed with another entry`));
    }
    this.placedHead = compactQueue(placed, h);
  }

  /** This session's record `seq` was applied at (`index`, `offset`) with `result`. */
  applied(seq: number, index: number, term: number, offset: number, result: R): void {
    if (!this.isPending(seq)) return; // already settled (e.g. given up as unknown, then committed after all)
    const k = seq & this.mask;
    const resolve = this.resolves[k]!;
    const started = this.started[k]!;
    this.remove(seq);
    this.observe(null, started);
    resolve({ index, term, offset, result });
  }

  fail(seq: number, err: Error): void {
    if (!this.isPending(seq)) return;
    const k = seq & this.mask;
    const reject = this.rejects[k]!;
    const started = this.started[k]!;
    this.remove(seq);
    this.observe(err, started);
    reject(err);
  }

  /** Settles every proposed append whose fate the lost leader took with it. */
  leaderLost(reason: string): void {
    const end = this.nextSeq;
    for (let seq = this.head; seq < end; seq++)
      if (this.isPending(seq) && this.state[seq & this.mask] === State.Proposed) this.fail(seq, new OutcomeUnknownError(reason));
    this.placed = [];
    this.placedHead = 0;
  }

  /** Fails one append with the error its state calls for: unknown once proposed, else not committed. */
  expire(seq: number, reason: string): void {
    if (!this.isPending(seq)) return;
    this.fail(seq, this.state[seq & this.mask] === State.Proposed ? new OutcomeUnknownError(reason) : new NotCommittedError(reason));
  }

  failAll(err: Error): void {
    const end = this.nextSeq;
    for (let seq = this.head; seq < end; seq++) this.fail(seq, err);
    this.placed = [];
    this.placedHead = 0;
  }

  private remove(seq: number): void {
    const k = seq & this.mask;
    this.resolves[k] = undefined;
    this.rejects[k] = undefined;
    this.state[k] = State.Free;
    this.count--;
    this.bytes -= this.sizes[k]!;
    while (this.head < this.nextSeq && this.state[this.head & this.mask] === State.Free) this.head++;
  }

  private grow(): void {
    const size = (this.mask + 1) * 2;
    const resolves = new Array<Resolve<R> | undefined>(size);
    const rejects = new Array<((e: Error) => void) | undefined>(size);
    const state = new Uint8Array(size);
    const sizes = new Float64Array(size);
    const started = new Float64Array(size);
    for (let s = this.head; s < this.nextSeq; s++) {
      const from = s & this.mask;
      const to = s & (size - 1);
      resolves[to] = this.resolves[from];
      rejects[to] = this.rejects[from];
      state[to] = this.state[from]!;
      sizes[to] = this.sizes[from]!;
      started[to] = this.started[from]!;
    }
    this.resolves = resolves;
    this.rejects = rejects;
    this.state = state;
    this.sizes = sizes;
    this.started = started;
    this.mask = size - 1;
  }
}

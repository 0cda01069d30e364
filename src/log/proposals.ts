import { NotCommittedError, OutcomeUnknownError } from './errors.js';

export interface AppendResult<R> {
  index: number;
  term: number;
  result: R;
}

interface Pending<R> {
  seq: number;
  resolve(r: AppendResult<R>): void;
  reject(e: Error): void;
  bytes: number;
  /** When the append was made (turnNow()), for the duration histogram. */
  started: number;
  /** Handed to raft: from then on a failure means "unknown", not "not committed". */
  proposed: boolean;
  /** Where this node, as leader, placed it (0: not placed by this node). */
  index: number;
  term: number;
}

/** Told of every append as it settles: `err` is null for a committed one. */
export type SettleObserver = (err: Error | null, started: number) => void;

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
 */
export class Proposals<R> {
  private slots: Array<Pending<R> | undefined> = new Array<Pending<R> | undefined>(1024);
  private mask = 1023;
  /** The oldest seq that may be unsettled; every seq below it is settled. */
  private head = 1;
  private nextSeq = 1;
  private count = 0;
  /** Appends this node placed as leader, by ascending index; those before `placedHead` are done. */
  private placed: Array<Pending<R>> = [];
  private placedHead = 0;
  /** Payload bytes of the appends not settled yet. */
  bytes = 0;

  /** `origin`: this session's record prefix (see record-tag.ts). */
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
    this.slots[seq & this.mask] = { seq, resolve, reject, bytes, started, proposed: false, index: 0, term: 0 };
    this.nextSeq = seq + 1;
    this.count++;
    this.bytes += bytes;
    return seq;
  }

  /** Raft took the append; `index` and `term` say where, when this node placed it as leader. */
  markProposed(seq: number, index?: number, term?: number): void {
    const p = this.get(seq);
    if (p === undefined) return;
    p.proposed = true;
    if (index !== undefined && term !== undefined) {
      p.index = index;
      p.term = term;
      this.placed.push(p);
    }
  }

  isPending(seq: number): boolean {
    return this.get(seq) !== undefined;
  }

  /**
   * An entry was applied at `index`. `ownSeq` is the seq of the record it carried if
   * this session appended it, else -1.
   */
  applied(index: number, term: number, ownSeq: number, result: R): void {
    this.checkPlaced(index, term, ownSeq);
    if (ownSeq < 0) return;
    const p = this.get(ownSeq);
    if (p === undefined) return; // already settled (e.g. given up as unknown, then committed after all)
    this.remove(p);
    this.observe(null, p.started);
    p.resolve({ index, term, result });
  }

  fail(seq: number, err: Error): void {
    const p = this.get(seq);
    if (p === undefined) return;
    this.remove(p);
    this.observe(err, p.started);
    p.reject(err);
  }

  /** Settles every proposed append whose fate the lost leader took with it. */
  leaderLost(reason: string): void {
    for (const p of this.pending()) if (p.proposed) this.fail(p.seq, new OutcomeUnknownError(reason));
    this.placed = [];
    this.placedHead = 0;
  }

  /** Fails one append with the error its state calls for: unknown once proposed, else not committed. */
  expire(seq: number, reason: string): void {
    const p = this.get(seq);
    if (p === undefined) return;
    this.fail(seq, p.proposed ? new OutcomeUnknownError(reason) : new NotCommittedError(reason));
  }

  failAll(err: Error): void {
    for (const p of this.pending()) this.fail(p.seq, err);
    this.placed = [];
    this.placedHead = 0;
  }

  /**
   * Applied entries arrive in index order, and this node placed its appends in index
   * order, so the place to check is always at the front of the queue. A place the
   * applied stream passed over (a snapshot installed past it) proves nothing either
   * way: the append stays pending until its tag is applied or its timeout.
   */
  private checkPlaced(index: number, term: number, ownSeq: number): void {
    const placed = this.placed;
    let h = this.placedHead;
    while (h < placed.length && placed[h]!.index < index) h++;
    if (h < placed.length && placed[h]!.index === index) {
      const p = placed[h++]!;
      if (p.seq !== ownSeq || p.term !== term) this.fail(p.seq, new NotCommittedError(`index ${index} was committed with another entry`));
    }
    if (h === placed.length) {
      this.placed = [];
      h = 0;
    } else if (h > 1024 && h * 2 > placed.length) {
      this.placed = placed.slice(h);
      h = 0;
    }
    this.placedHead = h;
  }

  private get(seq: number): Pending<R> | undefined {
    if (seq < this.head || seq >= this.nextSeq) return undefined;
    return this.slots[seq & this.mask];
  }

  private remove(p: Pending<R>): void {
    this.slots[p.seq & this.mask] = undefined;
    this.count--;
    this.bytes -= p.bytes;
    while (this.head < this.nextSeq && this.slots[this.head & this.mask] === undefined) this.head++;
  }

  private grow(): void {
    const size = (this.mask + 1) * 2;
    const slots = new Array<Pending<R> | undefined>(size);
    for (let s = this.head; s < this.nextSeq; s++) slots[s & (size - 1)] = this.slots[s & this.mask];
    this.slots = slots;
    this.mask = size - 1;
  }

  /** A copy of the pending appends, oldest first: settling them changes the ring. */
  private pending(): Array<Pending<R>> {
    const out: Array<Pending<R>> = [];
    for (let s = this.head; s < this.nextSeq; s++) {
      const p = this.slots[s & this.mask];
      if (p !== undefined) out.push(p);
    }
    return out;
  }
}

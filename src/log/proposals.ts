import { NotCommittedError, OutcomeUnknownError } from './errors.js';
import { sameOrigin, type RecordTag } from './record-tag.js';

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
  /** Handed to raft: from then on a failure means "unknown", not "not committed". */
  proposed: boolean;
}

/**
 * The appends this node made that are not settled yet. A record is recognised when
 * it is applied by its tag (origin, seq), on whatever path it reached the leader;
 * where the leader placed it is known only when this node was that leader.
 */
export class Proposals<R> {
  private readonly bySeq = new Map<number, Pending<R>>();
  /** Positions this node assigned as leader: index -> term, to see when another entry took the slot. */
  private readonly byIndex = new Map<number, { seq: number; term: number }>();
  private nextSeq = 1;
  /** Payload bytes of the appends not settled yet. */
  bytes = 0;

  /** `origin`: this session's record prefix (see record-tag.ts). */
  constructor(readonly origin: Uint8Array) {}

  get size(): number {
    return this.bySeq.size;
  }

  add(resolve: (r: AppendResult<R>) => void, reject: (e: Error) => void, bytes: number): number {
    const seq = this.nextSeq++;
    this.bySeq.set(seq, { seq, resolve, reject, bytes, proposed: false });
    this.bytes += bytes;
    return seq;
  }

  markProposed(seq: number, index?: number, term?: number): void {
    const p = this.bySeq.get(seq);
    if (p === undefined) return;
    p.proposed = true;
    if (index !== undefined && term !== undefined) this.byIndex.set(index, { seq, term });
  }

  isPending(seq: number): boolean {
    return this.bySeq.has(seq);
  }

  /** An entry was applied at `index`; `tag` names the record it carried, if any. */
  applied(index: number, term: number, tag: RecordTag | null, result: R): void {
    const slot = this.byIndex.get(index);
    if (slot !== undefined) {
      this.byIndex.delete(index);
      const mine = tag !== null && tag.seq === slot.seq && sameOrigin(tag.origin, this.origin);
      if (!mine || slot.term !== term) this.fail(slot.seq, new NotCommittedError(`index ${index} was committed with another entry`));
    }
    if (tag === null || !sameOrigin(tag.origin, this.origin)) return;
    const p = this.bySeq.get(tag.seq);
    if (p === undefined) return; // already settled (e.g. given up as unknown, then committed after all)
    this.bySeq.delete(tag.seq);
    this.bytes -= p.bytes;
    p.resolve({ index, term, result });
  }

  fail(seq: number, err: Error): void {
    const p = this.bySeq.get(seq);
    if (p === undefined) return;
    this.bySeq.delete(seq);
    this.bytes -= p.bytes;
    p.reject(err);
  }

  /** Settles every proposed append whose fate the lost leader took with it. */
  leaderLost(reason: string): void {
    for (const p of [...this.bySeq.values()]) {
      if (p.proposed) this.fail(p.seq, new OutcomeUnknownError(reason));
    }
    this.byIndex.clear();
  }

  /** Fails one append with the error its state calls for: unknown once proposed, else not committed. */
  expire(seq: number, reason: string): void {
    const p = this.bySeq.get(seq);
    if (p === undefined) return;
    this.fail(seq, p.proposed ? new OutcomeUnknownError(reason) : new NotCommittedError(reason));
  }

  failAll(err: Error): void {
    for (const seq of [...this.bySeq.keys()]) this.fail(seq, err);
    this.byIndex.clear();
  }
}

// What the leader knows about one follower's log, and the three ways it sends
// to it: probe (one message at a time until the match point is found),
// replicate (stream, bounded by the inflight window) and snapshot (wait).
import { ProgressStateType } from './types.js';
import { Inflights } from './inflights.js';

// Enum members as locals: under tsx and vitest each `Enum.Member` access is a module getter call on the hot path.
const { ProgressStateProbe, ProgressStateReplicate, ProgressStateSnapshot } = ProgressStateType;

export class Progress {
  /** Highest index known to be durably replicated on the follower. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressStateType = ProgressStateProbe;
  /** In snapshot state: index of the snapshot in flight. */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round (or since becoming leader). */
  recentActive = false;
  /** Probe: a message is out, wait for an answer or a heartbeat response. Replicate: window full. */
  msgAppFlowPaused = false;
  /** Probe: a periodic heartbeat went out since the last probe, so that its answer may resume probing. */
  probeDue = false;
  /** Highest commit index sent to the follower. */
  sentCommit = 0;
  /** Leader tick at which the latest heartbeat this follower answered was sent (the lease). */
  leaseAckTick = Number.NEGATIVE_INFINITY;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflightMsgs: number, maxInflightBytes: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
    this.isLearner = isLearner;
  }

  /** A fresh start under a new leader term. */
  reset(match: number, next: number): void {
    this.resetState(ProgressStateProbe);
    this.match = match;
    this.next = next;
    this.recentActive = false;
    this.sentCommit = 0;
    this.leaseAckTick = Number.NEGATIVE_INFINITY;
  }

  private resetState(state: ProgressStateType): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, resume right after it: the follower has at least that much.
    if (this.state === ProgressStateSnapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressStateProbe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressStateProbe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressStateReplicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressStateSnapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /** Bookkeeping after a MsgApp with `entries` entries (`bytes` in total) went out. */
  sentEntries(entries: number, bytes: number): void {
    if (this.state === ProgressStateReplicate) {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === ProgressStateProbe) {
      this.msgAppFlowPaused = true;
      this.probeDue = false;
    }
  }

  /** An acknowledgement up to `n`; false when it was stale. */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    if (n + 1 > this.next) this.next = n + 1;
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * A rejection of the MsgApp whose previous index was `rejected`; the follower
   * suggests `matchHint` as the highest index that may match. False when stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressStateReplicate) {
      // In replicate state only a rejection above match is news; restart from match.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the answer to the message we are waiting for counts.
    if (this.next - 1 !== rejected) return false;
    const next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    // Refused at match, the entry it acknowledged: the follower lost its log, and probing again
    // at once would bring the same answer at once, again and again. The next heartbeat's answer
    // retries it.
    if (next === this.next) return false;
    this.next = next;
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    if (this.state === ProgressStateSnapshot) return true;
    return this.msgAppFlowPaused;
  }
}

// The configuration (voters, possibly joint, and learners) and the leader's
// progress per peer. In a joint configuration every decision (commit, vote,
// quorum of active peers, read acknowledgements) needs a majority of the
// incoming voters AND a majority of the outgoing voters.
import { type ConfState } from './types.js';
import { Progress } from './progress.js';
import { jointVoteResult, majorityIndex, VoteResult } from './quorum.js';
import { cloneConfState } from './changer.js';

export class ProgressTracker {
  /** Sorted ids, so that every iteration order is deterministic. */
  /** The incoming (or only) voters. */
  incoming: number[] = [];
  /** The outgoing voters while joint; empty otherwise. */
  outgoing: number[] = [];
  /** Voters of either half. */
  voters: number[] = [];
  learners: number[] = [];
  /** Outgoing voters that become learners when the joint state is left (they vote until then). */
  learnersNext: number[] = [];
  autoLeave = false;
  /** Voters and learners, sorted. */
  peers: number[] = [];
  readonly progress = new Map<number, Progress>();
  readonly votes = new Map<number, boolean>();
  private scratch: number[] = [];

  constructor(
    readonly maxInflightMsgs: number,
    readonly maxInflightBytes: number,
  ) {}

  confState(): ConfState {
    const cs: ConfState = { voters: this.incoming.slice(), learners: this.learners.slice() };
    if (this.outgoing.length > 0) cs.votersOutgoing = this.outgoing.slice();
    if (this.learnersNext.length > 0) cs.learnersNext = this.learnersNext.slice();
    if (this.autoLeave) cs.autoLeave = true;
    return cs;
  }

  isJoint(): boolean {
    return this.outgoing.length > 0;
  }

  isVoter(id: number): boolean {
    return this.voters.includes(id);
  }

  /** Replaces the configuration; progress of kept peers survives, new peers start probing at `next`. */
  setConf(conf: ConfState, next: number): void {
    const cs = cloneConfState(conf);
    this.incoming = [...new Set(cs.voters)];
    this.outgoing = [...new Set(cs.votersOutgoing ?? [])];
    this.voters = [...new Set([...this.incoming, ...this.outgoing])].sort((a, b) => a - b);
    this.learners = [...new Set(cs.learners)];
    this.learnersNext = [...new Set(cs.learnersNext ?? [])];
    this.autoLeave = cs.autoLeave === true;
    this.peers = [...new Set([...this.voters, ...this.learners])].sort((a, b) => a - b);
    const keep = new Set(this.peers);
    for (const id of [...this.progress.keys()]) if (!keep.has(id)) this.progress.delete(id);
    for (const id of this.voters) this.ensure(id, next, false);
    for (const id of this.learners) this.ensure(id, next, true);
  }

  private ensure(id: number, next: number, isLearner: boolean): void {
    const pr = this.progress.get(id);
    if (pr !== undefined) {
      pr.isLearner = isLearner;
      return;
    }
    const fresh = new Progress(next, this.maxInflightMsgs, this.maxInflightBytes, isLearner);
    // A newly added peer counts as active, or CheckQuorum could depose the leader before it answers.
    fresh.recentActive = true;
    this.progress.set(id, fresh);
  }

  /**
   * The value a majority of each half reached, given each voter's value:
   * the smaller of the two halves' majority values.
   */
  private jointMajority(value: (id: number) => number): number {
    const a = this.majority(this.incoming, value);
    if (this.outgoing.length === 0) return a;
    return Math.min(a, this.majority(this.outgoing, value));
  }

  private majority(ids: readonly number[], value: (id: number) => number): number {
    const s = this.scratch;
    const n = ids.length;
    for (let i = 0; i < n; i++) s[i] = value(ids[i]!);
    return majorityIndex(s, n);
  }

  /** The largest index replicated on a majority of voters (of both halves while joint). */
  committed(): number {
    return this.jointMajority((id) => this.progress.get(id)!.match);
  }

  /** The largest `value` a majority of voters (of both halves while joint) reached. */
  quorumValue(value: (id: number) => number): number {
    return this.jointMajority(value);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: number, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: jointVoteResult(this.incoming, this.outgoing, this.votes) };
  }

  /** Whether the ids in `acks` form a majority of the voters (of both halves while joint). */
  hasQuorum(acks: ReadonlySet<number>): boolean {
    const votes = new Map<number, boolean>();
    for (const id of this.voters) votes.set(id, acks.has(id));
    return jointVoteResult(this.incoming, this.outgoing, votes) === VoteResult.VoteWon;
  }

  /** Whether a majority of voters (counting `self`) were recently active; then clears the flags. */
  quorumActiveAndReset(self: number): boolean {
    const active = new Map<number, boolean>();
    for (const id of this.voters) active.set(id, id === self || this.progress.get(id)!.recentActive);
    for (const [id, pr] of this.progress) if (id !== self) pr.recentActive = false;
    return jointVoteResult(this.incoming, this.outgoing, active) === VoteResult.VoteWon;
  }

  isSingleton(): boolean {
    return this.voters.length === 1 && this.learners.length === 0 && this.learnersNext.length === 0;
  }
}

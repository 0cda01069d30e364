// The configuration (voters and learners) and the leader's progress per peer.
import { type ConfState } from './types.js';
import { Progress } from './progress.js';
import { majorityIndex, voteResult, VoteResult } from './quorum.js';

export class ProgressTracker {
  /** Sorted ids, so that every iteration order is deterministic. */
  voters: number[] = [];
  learners: number[] = [];
  /** Voters and learners, sorted. */
  peers: number[] = [];
  readonly progress = new Map<number, Progress>();
  readonly votes = new Map<number, boolean>();
  private scratch: number[] = [];

  constructor(readonly maxInflightMsgs: number, readonly maxInflightBytes: number) {}

  confState(): ConfState {
    return { voters: this.voters.slice(), learners: this.learners.slice() };
  }

  isVoter(id: number): boolean {
    return this.voters.includes(id);
  }

  /** Replaces the configuration; progress of kept peers survives, new peers start probing at `next`. */
  setConf(cs: ConfState, next: number): void {
    const keep = new Set<number>([...cs.voters, ...cs.learners]);
    for (const id of [...this.progress.keys()]) if (!keep.has(id)) this.progress.delete(id);
    this.voters = [...new Set(cs.voters)].sort((a, b) => a - b);
    this.learners = [...new Set(cs.learners)].sort((a, b) => a - b);
    this.peers = this.voters.concat(this.learners).sort((a, b) => a - b);
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

  /** The largest index replicated on a majority of voters. */
  committed(): number {
    const n = this.voters.length;
    const s = this.scratch;
    for (let i = 0; i < n; i++) s[i] = this.progress.get(this.voters[i]!)!.match;
    return majorityIndex(s, n);
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
    return { granted, rejected, result: voteResult(this.voters, this.votes) };
  }

  /** Whether a majority of voters (counting `self`) were recently active; then clears the flags. */
  quorumActiveAndReset(self: number): boolean {
    const active = new Map<number, boolean>();
    for (const id of this.voters) active.set(id, id === self || this.progress.get(id)!.recentActive);
    for (const [id, pr] of this.progress) if (id !== self) pr.recentActive = false;
    return voteResult(this.voters, active) === VoteResult.VoteWon;
  }

  isSingleton(): boolean {
    return this.voters.length === 1 && this.learners.length === 0;
  }
}

// Majority arithmetic over the voters (one half of a joint configuration at a
// time, and their combination). Learners never appear here.

export enum VoteResult {
  VotePending = 0,
  VoteLost = 1,
  VoteWon = 2,
}

/**
 * The highest index that a majority has reached, given each voter's match
 * index in `scratch[0..n)` (reordered in place). Insertion sort: clusters are
 * small, and it needs no comparator closure. An empty set commits nothing.
 */
export function majorityIndex(scratch: number[], n: number): number {
  if (n === 0) return 0;
  for (let i = 1; i < n; i++) {
    const v = scratch[i]!;
    let j = i - 1;
    while (j >= 0 && scratch[j]! > v) {
      scratch[j + 1] = scratch[j]!;
      j--;
    }
    scratch[j + 1] = v;
  }
  // Ascending order: the element with a majority at or above it.
  return scratch[n - (Math.floor(n / 2) + 1)]!;
}

/** Whether the nodes in `acks` hold a majority of `voters` (acks from non-voters do not count). */
export function hasQuorum(voters: readonly number[], acks: ReadonlySet<number>): boolean {
  let n = 0;
  for (const id of voters) if (acks.has(id)) n++;
  return n >= Math.floor(voters.length / 2) + 1;
}

/** The outcome of an election among `voters`, given the votes received so far. */
export function voteResult(voters: readonly number[], votes: ReadonlyMap<number, boolean>): VoteResult {
  if (voters.length === 0) return VoteResult.VoteWon;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.length / 2) + 1;
  if (granted >= q) return VoteResult.VoteWon;
  if (granted + missing >= q) return VoteResult.VotePending;
  return VoteResult.VoteLost;
}

/**
 * The outcome of an election in a joint configuration: won only when won in
 * both halves, lost as soon as it is lost in either. An empty outgoing half
 * (not joint) leaves the incoming result as it is.
 */
export function jointVoteResult(incoming: readonly number[], outgoing: readonly number[], votes: ReadonlyMap<number, boolean>): VoteResult {
  const a = voteResult(incoming, votes);
  if (outgoing.length === 0) return a;
  const b = voteResult(outgoing, votes);
  if (a === b) return a;
  if (a === VoteResult.VoteLost || b === VoteResult.VoteLost) return VoteResult.VoteLost;
  return VoteResult.VotePending;
}

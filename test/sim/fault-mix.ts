// Swarm testing: rather than every seed running the same blend of faults, each
// seed draws its own: some kinds of trouble switched off entirely, others turned
// up, at its own pace. A bug that needs one fault often and another never (a
// Figure-8 needs term churn, not a quiet network) is then some seed's common case.
import type { Prng } from './prng.js';

export const FAULT_KINDS = [
  /** One direction of one link cut. */
  'cut',
  /** The cluster split in two. */
  'partition',
  /** A node crashes (losing unsynced writes) and restarts later. */
  'crash',
  /** A process stall. */
  'pause',
  /** Drops, duplicates and delays on every link. */
  'links',
  /** Everything heals. */
  'heal',
  /** Term churn: the leader is cut off alone for a short while, so another term starts and it returns. */
  'isolate-leader',
  /**
   * A follower is cut off for a short while, often between receiving entries and learning they committed;
   * the leader compacts meanwhile and catches it up by snapshot over a log that already holds the snapshot's entry.
   */
  'isolate-follower',
  /** Term churn: the leader crashes right after appending, its newest entries on few nodes (Figure 8). */
  'crash-leader',
  /** Term churn: a random node starts an election. */
  'campaign',
  /** Leadership is handed to the voter that lags most. */
  'transfer-lagging',
  /**
   * The leader's transport wrongly reports a follower unreachable: the leader probes again from what the
   * follower acknowledged, and may send a snapshot to a follower whose appends are still on their way.
   */
  'false-unreachable',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export class FaultMix {
  /** Relative weight of each kind (0: never on this seed). */
  readonly weights: Record<FaultKind, number>;
  /** Range of virtual time between two faults. */
  readonly interval: [number, number];
  /** Probability that a leader sending a snapshot loses leadership (crash or isolation) while it is in flight. */
  readonly snapshotInterrupt: number;
  /** Extra probability that a client turn is a membership change (adds and removals, so nodes join late). */
  readonly membershipChurn: number;
  /**
   * Probability that a follower is cut off the moment its disk made new entries durable, before its
   * acknowledgements leave: the leader commits and compacts without it, then catches it up by a snapshot
   * whose last entry it already holds.
   */
  readonly cutAfterPersist: number;

  constructor(rng: Prng) {
    const w = {} as Record<FaultKind, number>;
    for (const k of FAULT_KINDS) w[k] = rng.chance(0.3) ? 0 : rng.pick([1, 2, 4, 8]);
    // A mix with nothing left (rare) falls back to crashes, the fault every safety property must survive.
    if (FAULT_KINDS.every((k) => w[k] === 0)) w.crash = 1;
    this.weights = w;
    const fast = rng.pick([20, 50, 100, 200]);
    this.interval = [fast, fast * rng.pick([2, 5, 10])];
    this.snapshotInterrupt = rng.pick([0, 0.1, 0.5]);
    this.membershipChurn = rng.pick([0, 0.05, 0.15]);
    this.cutAfterPersist = rng.pick([0, 0.02, 0.1]);
  }

  draw(rng: Prng): FaultKind {
    let total = 0;
    for (const k of FAULT_KINDS) total += this.weights[k];
    let r = rng.next() * total;
    for (const k of FAULT_KINDS) {
      r -= this.weights[k];
      if (r < 0) return k;
    }
    return 'crash';
  }

  describe(): string {
    const on = FAULT_KINDS.filter((k) => this.weights[k] > 0).map((k) => `${k}:${this.weights[k]}`);
    return `${on.join(' ')} every ${this.interval[0]}-${this.interval[1]} snapshotInterrupt=${this.snapshotInterrupt} membershipChurn=${this.membershipChurn} cutAfterPersist=${this.cutAfterPersist}`;
  }
}

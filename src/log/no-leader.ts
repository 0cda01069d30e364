// Cut off from any leader for two base election timeouts (longer than an ordinary
// election takes), a node stops holding requests for the full timeout: clients move
// to a node that can serve them.
import { StateType } from '../raft/types.js';
import { NoLeaderError } from './errors.js';

export class NoLeaderTimer {
  /** Ticks since this node last knew a leader (counted once it has known one, or campaigned). */
  private ticks = 0;
  private hadLeader = false;
  private readonly limit: number;

  constructor(
    electionTicks: number,
    private readonly tickMs: number,
  ) {
    this.limit = 2 * electionTicks;
  }

  /** Counts one tick; true on the tick the node turns leaderless, when what waits for a leader must be answered. */
  onTick(lead: number, role: StateType): boolean {
    // The clock starts once this node has known a leader or has campaigned itself: a
    // cluster that is starting up is holding an ordinary election, not cut off.
    if (lead !== 0) this.ticks = 0;
    else if ((this.hadLeader || role !== StateType.StateFollower) && ++this.ticks === this.limit) return true;
    return false;
  }

  onLeader(lead: number): void {
    if (lead !== 0) this.hadLeader = true;
  }

  /** New requests are refused at once. */
  expired(lead: number): boolean {
    return lead === 0 && this.ticks >= this.limit;
  }

  error(what: string): NoLeaderError {
    return new NoLeaderError(what, this.limit * this.tickMs);
  }
}

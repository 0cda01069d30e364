// What the log counts about itself, for an operator's dashboards. The hot path only
// bumps numbers (a counter, or a histogram bucket found by a scan of ~15 bounds);
// gauges (term, indexes, lag, WAL and transport figures) are read when asked for,
// so an unscraped log pays nothing for them. No dependency: the admin layer turns
// this into Prometheus text.
import { defer } from '../defer.js';
import { ProgressStateType } from '../raft/types.js';
import { CodeCounts } from '../transport/errors.js';

/** A histogram as Prometheus models it: per-bucket counts (the last bucket is +Inf), their sum and count. */
export interface HistogramData {
  /** Upper bounds, ascending, in seconds; counts has one more entry, for +Inf. */
  bounds: readonly number[];
  /** Observations per bucket, not cumulative. */
  counts: number[];
  sum: number;
  count: number;
}

export interface LogMetrics {
  term: number;
  commitIndex: number;
  appliedIndex: number;
  isLeader: boolean;
  hasLeader: boolean;
  /**
   * The node stopped after a failure (status().role 'fatal', which says why): it serves nothing
   * until it is closed and reopened; isLeader and hasLeader alone read as a follower's between leaders.
   */
  fatal: boolean;
  /** Times this node came to know a leader it had not announced: a new leader, or the same one at a new term. */
  leaderChanges: number;
  /** append() calls that resolved (committed, durable, applied here). */
  proposalsCommitted: number;
  /** append() calls that rejected, by error code. */
  proposalsFailed: Record<string, number>;
  /**
   * Proposals peers forwarded that this node refused (PROPOSAL_REFUSED) before its raft core saw
   * them, by fault: NO_ENTRY, MEMBERSHIP_CHANGE, EMPTY_ENTRY, UNDECODABLE (records that do not
   * decode), FOREIGN_ORIGIN (another node's records).
   */
  proposalsRefused: Record<string, number>;
  /** barrier() calls refused at once, by code (OVERLOADED: the leader holds too many reads a quorum has not confirmed). */
  readsRefused: Record<string, number>;
  /**
   * Connections and frames the TCP transport refused or closed for a peer's fault, by TransportErrorCode
   * (TcpTransportStats.refused): inbound ones, and dials it gave up on its own check of the peer. Empty without it.
   */
  transportRefused: Record<string, number>;
  /** Dials of this node a peer refused, by the code the peer gave, any code not the transport's counted as 'OTHER' (TcpTransportStats.refusedByPeers). */
  transportRefusedByPeers: Record<string, number>;
  /** From append() to its result, committed or failed. */
  appendDuration: HistogramData;
  /** fdatasync durations of the WAL's segments, timed where they run (its writer thread, or inline); null without the native WAL. */
  walFsyncDuration: HistogramData | null;
  walBytesWritten: number;
  walSegments: number;
  /** Memory the WAL's cache of recent entries holds, as counted against its budget (WalStats.cachedBytes). */
  walCachedBytes: number;
  /** Memory of the slabs the WAL packs writes into: in flight, cached, or kept for reuse (WalStats.slabBytes). */
  walSlabBytes: number;
  /** Snapshots this node took of its state machine. */
  snapshots: number;
  /** The index of the latest snapshot (taken here or installed from the leader); status().snapshotIndex. */
  snapshotIndex: number;
  /** Peers this node has an open, authenticated connection to (0 without the TCP transport). */
  peersConnected: number;
  /** From asking the state machine for a snapshot to the snapshot file being durable. */
  snapshotDuration: HistogramData;
  /** On the leader: entries each other member is behind the leader's last index. Empty elsewhere. */
  peerLag: Record<number, number>;
  transportBytesSent: Record<number, number>;
  transportBytesReceived: Record<number, number>;
}

/** 0.5 ms doubling to ~16 s: appends range from sub-millisecond (no fsync) to the timeout. */
export const APPEND_BUCKETS: readonly number[] = Array.from({ length: 16 }, (_, i) => 0.0005 * 2 ** i);
/** 1 ms doubling to ~65 s. */
export const SNAPSHOT_BUCKETS: readonly number[] = Array.from({ length: 17 }, (_, i) => 0.001 * 2 ** i);

let turnTime = -1;
const endTurn = (): void => {
  turnTime = -1;
};

/**
 * performance.now(), read once per synchronous turn: the appends of one turn (and the
 * results of one applied batch) share a reading, so timing every append costs a clock
 * read per batch, not two per append. Durations are off by at most the turn's length.
 */
export function turnNow(): number {
  if (turnTime < 0) {
    turnTime = performance.now();
    defer(endTurn);
  }
  return turnTime;
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(seconds: number): void {
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }

  data(): HistogramData {
    return { bounds: this.bounds, counts: [...this.counts], sum: this.sum, count: this.count };
  }
}

/** The counters and histograms the log bumps as it works. */
export class MetricCounters {
  leaderChanges = 0;
  proposalsCommitted = 0;
  /** By code: always one of the log's own codes, never a peer's words, so the labels stay few. */
  readonly proposalsFailed = new CodeCounts();
  /** Proposals peers forwarded that this node refused, by fault. */
  readonly proposalsRefused = new CodeCounts();
  /** barrier() calls refused at once, by code. */
  readonly readsRefused = new CodeCounts();
  readonly appendDuration = new Histogram(APPEND_BUCKETS);
  snapshots = 0;
  readonly snapshotDuration = new Histogram(SNAPSHOT_BUCKETS);

  appendFailed(code: string): void {
    this.proposalsFailed.add(code);
  }
}

/** Entries each member is behind `lastIndex`, from the leader's progress table (not counting the leader). */
export function peerLag(
  self: number,
  lastIndex: number,
  progress: Record<number, { match: number; state: ProgressStateType }> | undefined,
): Record<number, number> {
  const out: Record<number, number> = {};
  if (progress === undefined) return out;
  for (const [id, p] of Object.entries(progress)) if (Number(id) !== self) out[Number(id)] = Math.max(0, lastIndex - p.match);
  return out;
}

// What an operator reads of a node: the answers of status() and metrics(), computed
// when asked so that a log nobody watches pays nothing for them.
import { StateType, type Status } from '../raft/types.js';
import type { LogStore } from '../storage/log-store.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import type { Transport } from '../transport/transport.js';
import { FSYNC_BUCKETS, Wal, type WalStats } from '../wal/index.js';
import type { FatalError, FatalErrorCode, LogCorruptError } from './errors.js';
import { peerLag, type LogMetrics, type MetricCounters } from './metrics.js';

export interface LogStatus extends Status {
  /**
   * 'fatal': the node stopped after a storage or transport failure, a state machine's error, or on a corrupt entry (see `fatal`); close and reopen it.
   * 'closed': close() was called; the figures are those of the moment it stopped.
   */
  role: 'follower' | 'pre-candidate' | 'candidate' | 'leader' | 'fatal' | 'closed';
  /** Why the node stopped, once it has. */
  fatal?: { code: FatalErrorCode; message: string };
  members: Record<number, string>;
  lastIndex: number;
  firstIndex: number;
  /** The latest snapshot, taken here or received from the leader: above `applied` while a received one is restored into the state machine. */
  snapshotIndex: number;
  /**
   * A member that applied this node's removal refused it, though this node has not applied the
   * change (cut off when it committed): the id of that member. Appends and barriers are refused
   * NOT_MEMBER meanwhile. Not durable; gone once a leader is heard (this node added back).
   */
  removedBy?: number;
}

export const ROLE: Record<StateType, LogStatus['role']> = {
  [StateType.StateFollower]: 'follower',
  [StateType.StatePreCandidate]: 'pre-candidate',
  [StateType.StateCandidate]: 'candidate',
  [StateType.StateLeader]: 'leader',
};

/** The driver's state at the moment of asking. */
export interface NodeView {
  id: number;
  status: Status;
  applied: number;
  /** Why the node stopped, if it has. */
  fatal: FatalError | LogCorruptError | undefined;
  /** close() was called. */
  closed: boolean;
  members: ReadonlyMap<number, string>;
  lastIndex: number;
  firstIndex: number;
  snapshotIndex: number;
  /** 0 unless a member refused this node as removed (LogStatus.removedBy). */
  removedBy: number;
}

export function logStatus(v: NodeView): LogStatus {
  const f = v.fatal;
  return {
    ...v.status,
    applied: v.applied,
    role: f !== undefined ? 'fatal' : v.closed ? 'closed' : ROLE[v.status.state],
    ...(f !== undefined ? { fatal: { code: f.code, message: f.message } } : {}),
    members: Object.fromEntries(v.members),
    lastIndex: v.lastIndex,
    firstIndex: v.firstIndex,
    snapshotIndex: v.snapshotIndex,
    ...(v.removedBy !== 0 ? { removedBy: v.removedBy } : {}),
  };
}

/** The WAL's figures, when the log runs on a Wal (not in the simulator). */
export function walStats(store: LogStore): WalStats | null {
  return store instanceof Wal ? store.stats() : null;
}

/** The WAL's (`wal`, see walStats) and the TCP transport's figures are there only when the log runs on them. */
export function logMetrics(v: NodeView, c: MetricCounters, wal: WalStats | null, transport: Transport | null): LogMetrics {
  const s = v.status;
  const t = transport instanceof TcpTransport ? transport.stats() : null;
  return {
    term: s.term,
    commitIndex: s.commit,
    appliedIndex: v.applied,
    isLeader: v.fatal === undefined && !v.closed && s.state === StateType.StateLeader,
    hasLeader: v.fatal === undefined && !v.closed && s.lead !== 0,
    fatal: v.fatal !== undefined,
    leaderChanges: c.leaderChanges,
    proposalsCommitted: c.proposalsCommitted,
    proposalsFailed: c.proposalsFailed.toRecord(),
    proposalsRefused: c.proposalsRefused.toRecord(),
    readsRefused: c.readsRefused.toRecord(),
    transportRefused: t?.refused ?? {},
    transportRefusedByPeers: t?.refusedByPeers ?? {},
    appendDuration: c.appendDuration.data(),
    walFsyncDuration:
      wal === null ? null : { bounds: FSYNC_BUCKETS, counts: wal.fsyncBuckets, sum: wal.fsyncSeconds, count: wal.fsyncBuckets.reduce((a, b) => a + b, 0) },
    walBytesWritten: wal?.bytes ?? 0,
    walSegments: wal?.segments ?? 0,
    walCachedBytes: wal?.cachedBytes ?? 0,
    walSlabBytes: wal?.slabBytes ?? 0,
    snapshots: c.snapshots,
    snapshotIndex: v.snapshotIndex,
    peersConnected: t === null ? 0 : Object.values(t.peers).filter((p) => p.connected).length,
    snapshotDuration: c.snapshotDuration.data(),
    peerLag: s.state === StateType.StateLeader ? peerLag(v.id, v.lastIndex, s.progress) : {},
    transportBytesSent: t === null ? {} : Object.fromEntries(Object.entries(t.peers).map(([id, p]) => [Number(id), p.bytesSent])),
    transportBytesReceived: t?.bytesReceived ?? {},
  };
}

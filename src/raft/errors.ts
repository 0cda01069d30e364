// Every error the core throws is a RaftError with a stable `code`, so callers
// branch on the code and never on the message text.
import { CodedError } from '../errors.js';

export type RaftErrorCode =
  | 'RAFT_PROPOSAL_DROPPED'
  | 'RAFT_READ_INDEX_DROPPED'
  | 'RAFT_COMPACTED'
  | 'RAFT_UNAVAILABLE'
  | 'RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE'
  | 'RAFT_ENTRIES_PENDING'
  | 'RAFT_SNAP_OUT_OF_DATE'
  | 'RAFT_INVALID_MESSAGE'
  | 'RAFT_STEP_LOCAL_MSG'
  | 'RAFT_STEP_PEER_NOT_FOUND'
  | 'RAFT_SNAPSHOT_REFUSED'
  | 'RAFT_INVALID_CONFIG'
  | 'RAFT_INVALID_CONF_CHANGE'
  | 'RAFT_NO_LEADER'
  | 'RAFT_LEADER_TRANSFER'
  | 'RAFT_READY_PROTOCOL'
  | 'RAFT_CORRUPT_STATE'
  | 'RAFT_LOG_LOST';

export class RaftError extends CodedError<RaftErrorCode> {}

export type ProposalDropReason =
  'no-leader' | 'transfer-pending' | 'uncommitted-size' | 'forwarding-disabled' | 'not-member' | 'conf-change-pending' | 'not-originator';

/** The proposal was not appended anywhere; the caller may retry later. */
export class ProposalDroppedError extends RaftError {
  readonly reason: ProposalDropReason;
  constructor(reason: ProposalDropReason, detail = '') {
    super('RAFT_PROPOSAL_DROPPED', `raft proposal dropped: ${reason}${detail ? ` (${detail})` : ''}`);
    this.reason = reason;
  }
}

/**
 * Why a read was refused. 'no-leader': none to serve or forward it, ask again when one is known.
 * 'too-many-pending': the leader holds as many reads as it may (MAX_PENDING_READS) waiting for a
 * quorum's answer; asking again soon only adds to them. 'not-originator': a follower was sent another
 * node's read to relay; a read goes only from the node that asks it to the leader.
 */
export type ReadIndexDropReason = 'no-leader' | 'too-many-pending' | 'not-originator';

/** A read request could not be served or forwarded. Nothing changed. */
export class ReadIndexDroppedError extends RaftError {
  readonly reason: ReadIndexDropReason;
  constructor(reason: ReadIndexDropReason, detail: string) {
    super('RAFT_READ_INDEX_DROPPED', `raft read index dropped: ${reason} (${detail})`);
    this.reason = reason;
  }
}

/** Storage: the requested index is below the first index (compacted into a snapshot). */
export class CompactedError extends RaftError {
  constructor(index: number, firstIndex: number) {
    super('RAFT_COMPACTED', `requested index ${index} is unavailable due to compaction (first index ${firstIndex})`);
  }
}

/** Storage: the requested index is above the last index. */
export class UnavailableError extends RaftError {
  constructor(index: number, lastIndex: number) {
    super('RAFT_UNAVAILABLE', `requested entry at index ${index} is unavailable (last index ${lastIndex})`);
  }
}

/** Storage: a snapshot is being prepared; the leader retries later. */
export class SnapshotTemporarilyUnavailableError extends RaftError {
  constructor() {
    super('RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE', 'snapshot is temporarily unavailable');
  }
}

/**
 * Storage: the entries a message to a follower needs are being read off the caller's thread.
 * The leader sends nothing to that follower now; the application calls
 * RawNode.entriesFetched() once they can be served.
 */
export class EntriesPendingError extends RaftError {
  constructor(index: number) {
    super('RAFT_ENTRIES_PENDING', `entries from index ${index} are being read`);
  }
}

/** Storage: applying or creating a snapshot older than the one already held. */
export class SnapOutOfDateError extends RaftError {
  constructor(index: number, current: number) {
    super('RAFT_SNAP_OUT_OF_DATE', `snapshot at index ${index} is older than the current one at ${current}`);
  }
}

/** A message failed validation (unknown type, missing or wrong-typed field, impossible values). Nothing changed. */
export class InvalidMessageError extends RaftError {
  constructor(detail: string) {
    super('RAFT_INVALID_MESSAGE', `invalid raft message: ${detail}`);
  }
}

/** A message type that only the node itself may generate arrived through step(). */
export class StepLocalMsgError extends RaftError {
  constructor(type: number) {
    super('RAFT_STEP_LOCAL_MSG', `message type ${type} is local to a node and cannot be stepped from the network`);
  }
}

/** A response arrived from a peer that is not in the configuration. Nothing changed. */
export class StepPeerNotFoundError extends RaftError {
  constructor(from: number) {
    super('RAFT_STEP_PEER_NOT_FOUND', `raft: message from unknown peer ${from}`);
  }
}

/** A MsgSnap from a node this one does not know as the leader of the message's term. Nothing changed. */
export class SnapshotRefusedError extends RaftError {
  constructor(from: number, term: number) {
    super('RAFT_SNAPSHOT_REFUSED', `raft: snapshot from ${from} at term ${term}, which this node does not know as that term's leader`);
  }
}

export class InvalidConfigError extends RaftError {
  constructor(detail: string) {
    super('RAFT_INVALID_CONFIG', `invalid raft config: ${detail}`);
  }
}

export class InvalidConfChangeError extends RaftError {
  constructor(detail: string) {
    super('RAFT_INVALID_CONF_CHANGE', `invalid conf change: ${detail}`);
  }
}

/** The operation needs a leader (this node, or one it knows to forward to) and there is none. */
export class NoLeaderError extends RaftError {
  constructor(detail: string) {
    super('RAFT_NO_LEADER', `raft: no leader: ${detail}`);
  }
}

export class LeaderTransferError extends RaftError {
  constructor(detail: string) {
    super('RAFT_LEADER_TRANSFER', `leader transfer refused: ${detail}`);
  }
}

/** The caller broke the Ready protocol (unknown Ready, advance out of order, ...). */
export class ReadyProtocolError extends RaftError {
  constructor(detail: string) {
    super('RAFT_READY_PROTOCOL', `ready protocol violated: ${detail}`);
  }
}

/**
 * The leader holds this node to have acknowledged entries its log no longer has: its data
 * directory was wiped, replaced or restored from an old copy. A node that forgot what it
 * acknowledged may help elect a leader without the entries it helped commit, so it must stop.
 */
export class LogLostError extends RaftError {
  readonly leader: number;
  readonly acknowledged: number;
  readonly lastIndex: number;
  constructor(leader: number, acknowledged: number, lastIndex: number) {
    super(
      'RAFT_LOG_LOST',
      `leader ${leader} holds this node to have acknowledged entries up to ${acknowledged}, but its log ends at ${lastIndex}: ` +
        'its stored log was lost (a wiped, replaced or restored data directory). Remove this node from the cluster and add it back with an empty data directory',
    );
    this.leader = leader;
    this.acknowledged = acknowledged;
    this.lastIndex = lastIndex;
  }
}

/** Durable state contradicts itself (e.g. commit beyond the last index). */
export class CorruptStateError extends RaftError {
  constructor(detail: string) {
    super('RAFT_CORRUPT_STATE', `raft state is inconsistent: ${detail}`);
  }
}

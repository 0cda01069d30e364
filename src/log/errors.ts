// The replicated log's errors, each with a stable code.
import { CodedError, type CodedErrorOptions } from '../errors.js';

export type LogErrorCode =
  | 'APPEND_NOT_COMMITTED'
  | 'APPEND_OUTCOME_UNKNOWN'
  | 'LOG_CLOSED'
  | 'NOT_LEADER'
  | 'TIMEOUT'
  | 'INVALID_ARGUMENT'
  | 'LOG_FATAL'
  | 'LOG_COMPACTED'
  | 'LOG_CORRUPT'
  | 'LOG_OPEN_FAILED'
  | 'LOG_OPEN_ABORTED'
  | 'NO_LEADER'
  | 'RECORD_TOO_LARGE'
  | 'OVERLOADED'
  | 'NOT_CAUGHT_UP'
  | 'NOT_MEMBER'
  | 'ALREADY_MEMBER'
  | 'MAJORITY_UNAVAILABLE'
  | 'SNAPSHOT_TOO_LARGE';

export class LogError extends CodedError<LogErrorCode> {}

/** The codes a stopped node gives (the `'fatal'` event, `status().fatal`): `LOG_CORRUPT` for an entry it cannot decode, `LOG_FATAL` for any other failure. */
export type FatalErrorCode = 'LOG_FATAL' | 'LOG_CORRUPT';

/** The record was certainly not committed: it is safe to append it again. */
export class NotCommittedError extends LogError {
  constructor(reason: string, options?: CodedErrorOptions) {
    super('APPEND_NOT_COMMITTED', `the record was not committed: ${reason}`, options);
  }
}

/** The record may or may not be committed (the leader was lost before it knew): check before appending again. */
export class OutcomeUnknownError extends LogError {
  constructor(reason: string) {
    super('APPEND_OUTCOME_UNKNOWN', `the record's fate is unknown: ${reason}`);
  }
}

export class ClosedError extends LogError {
  constructor() {
    super('LOG_CLOSED', 'the replicated log is closed');
  }
}

export class NotLeaderError extends LogError {
  readonly leader: number;
  constructor(leader: number, what: string) {
    super('NOT_LEADER', `${what} must be made on the leader${leader ? ` (node ${leader})` : ' (no leader is known)'}`);
    this.leader = leader;
  }
}

export class TimeoutError extends LogError {
  constructor(what: string, ms: number) {
    super('TIMEOUT', `${what} did not complete within ${ms} ms`);
  }
}

export class InvalidArgumentError extends LogError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** The node stopped because its storage (or, rarely, its transport) failed; reopen it. */
export class FatalError extends LogError {
  declare readonly code: 'LOG_FATAL';
  /** `after` names what failed, for operators: a storage failure unless said. */
  constructor(cause: unknown, after = 'a storage failure') {
    super('LOG_FATAL', `the node stopped after ${after}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export class CompactedRangeError extends LogError {
  constructor(index: number, first: number) {
    super('LOG_COMPACTED', `entries below ${first} were compacted into a snapshot (asked for ${index})`);
  }
}

/** A committed entry could not be decoded: the log holds data this node cannot trust. The node stops. */
export class LogCorruptError extends LogError {
  declare readonly code: 'LOG_CORRUPT';
  readonly index: number;
  constructor(index: number, why: string) {
    super('LOG_CORRUPT', `entry ${index} cannot be decoded: ${why}`);
    this.index = index;
  }
}

/** open() failed for a reason outside raftlog's own codes (a socket error, say): see `cause`. */
export class OpenFailedError extends LogError {
  constructor(cause: unknown) {
    super('LOG_OPEN_FAILED', `the log could not be opened: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/**
 * The `signal` given to open() aborted before the log was open (`cause`: its reason);
 * everything the open took was released. A state machine's restore() still running was
 * abandoned, its snapshot stream closed: give the next open a new state machine.
 */
export class OpenAbortedError extends LogError {
  constructor(reason: unknown) {
    super('LOG_OPEN_ABORTED', `the open was aborted: ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
  }
}

/**
 * This node has known no leader for two election timeouts (it is cut off, or the
 * cluster has lost its majority): the request was certainly not committed. Retry on
 * another node. etcd's ErrNoLeader.
 */
export class NoLeaderError extends LogError {
  constructor(what: string, ms: number) {
    super('NO_LEADER', `${what}: this node has known no leader for ${ms} ms; try another node`);
  }
}

/** append() got a record larger than `maxRecordBytes`; nothing was appended. */
export class RecordTooLargeError extends LogError {
  constructor(size: number, limit: number) {
    super('RECORD_TOO_LARGE', `the record is ${size} bytes, over maxRecordBytes ${limit}`);
  }
}

/** readAll() met a snapshot over the `maxBytes` its caller gave. */
export class SnapshotLimitError extends LogError {
  constructor(limit: number) {
    super('SNAPSHOT_TOO_LARGE', `the snapshot is over ${limit} bytes, the most readAll() was told to gather`);
  }
}

/** Too many appends (or bytes) are in flight on this node, or reads wait on the leader for a quorum; nothing was done. Retry later. */
export class OverloadedError extends LogError {
  constructor(detail: string, options?: CodedErrorOptions) {
    super('OVERLOADED', `too much in flight: ${detail}`, options);
  }
}

/**
 * A learner was to become a voter while its log is still more than `promoteMaxLag`
 * entries behind the leader's: as a voter it would hold up every commit until it
 * caught up. Nothing was proposed; retry once it has caught up (see status().progress).
 */
export class NotCaughtUpError extends LogError {
  readonly nodeId: number;
  readonly lag: number;
  constructor(nodeId: number, lag: number, limit: number) {
    super('NOT_CAUGHT_UP', `node ${nodeId} is ${lag} entries behind the leader (promoteMaxLag ${limit}); promote it once it has caught up`);
    this.nodeId = nodeId;
    this.lag = lag;
  }
}

/**
 * A change that takes voters out would leave a configuration whose majority the leader has not
 * heard from within an election timeout: made, it committed and then left the cluster without a
 * leader until the silent voters came back. Nothing was proposed; `down` names those voters.
 */
export class MajorityUnavailableError extends LogError {
  readonly down: readonly number[];
  constructor(where: string, voters: readonly number[], down: readonly number[]) {
    super(
      'MAJORITY_UNAVAILABLE',
      `${where}: the voters it leaves (${voters.join(', ')}) would need node${down.length === 1 ? '' : 's'} ${down.join(', ')} for a majority, which the leader has not heard from within an election timeout; bring ${down.length === 1 ? 'it' : 'them'} back first, or remove ${down.length === 1 ? 'it' : 'them'} instead`,
    );
    this.down = down;
  }
}

/**
 * A membership call (or a leadership transfer) named a node the configuration does not hold:
 * a mistyped id, or a removal already made. Nothing was proposed.
 */
export class NotMemberError extends LogError {
  readonly nodeId: number;
  constructor(nodeId: number, where: string, conf: { voters: readonly number[]; learners: readonly number[] }) {
    const list = (ids: readonly number[]): string => (ids.length === 0 ? 'none' : ids.join(', '));
    super('NOT_MEMBER', `${where}: node ${nodeId} is not a member (voters: ${list(conf.voters)}; learners: ${list(conf.learners)})`);
    this.nodeId = nodeId;
  }
}

/**
 * A membership call would make a node what it already is (a change already made), or move a
 * member to another address. Nothing was proposed; `role` is what the node is.
 */
export class AlreadyMemberError extends LogError {
  readonly nodeId: number;
  readonly role: 'voter' | 'learner';
  constructor(nodeId: number, role: 'voter' | 'learner', where: string, detail = '') {
    super('ALREADY_MEMBER', `${where}: node ${nodeId} is already a ${role}${detail}`);
    this.nodeId = nodeId;
    this.role = role;
  }
}

// The product: the replicated log applications embed.
export { ReplicatedLog, type LogEvents, type ReplicatedLogDeps } from './replicated-log.js';
export type { MembershipChange } from './membership.js';
export type { LogStatus } from './status.js';
export type { HistogramData, LogMetrics } from './metrics.js';
export { DEFAULTS, type ReplicatedLogOptions } from './options.js';
export type { AppendResult } from './proposals.js';
export { NullStateMachine, readAll, type LogEntry, type SnapshotSource, type StateMachine } from './state-machine.js';
export type { Clock } from './clock.js';
export {
  AlreadyMemberError,
  ClosedError,
  CompactedRangeError,
  FatalError,
  InvalidArgumentError,
  LogCorruptError,
  LogError,
  MajorityUnavailableError,
  type LogErrorCode,
  type FatalErrorCode,
  NoLeaderError,
  NotCaughtUpError,
  NotCommittedError,
  NotLeaderError,
  NotMemberError,
  OpenAbortedError,
  OpenFailedError,
  OutcomeUnknownError,
  OverloadedError,
  RecordTooLargeError,
  SnapshotLimitError,
  TimeoutError,
} from './errors.js';

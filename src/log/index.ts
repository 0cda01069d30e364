// The product: the replicated log applications embed.
export { ReplicatedLog, type LogEvents, type LogStatus, type ReplicatedLogDeps } from './replicated-log.js';
export type { HistogramData, LogMetrics } from './metrics.js';
export { DEFAULTS, type ReplicatedLogOptions } from './options.js';
export type { AppendResult } from './proposals.js';
export { NullStateMachine, type LogEntry, type StateMachine } from './state-machine.js';
export type { Clock } from './clock.js';
export {
  ClosedError,
  CompactedRangeError,
  FatalError,
  InvalidArgumentError,
  LogCorruptError,
  LogError,
  NoLeaderError,
  NotCommittedError,
  NotLeaderError,
  OpenFailedError,
  OutcomeUnknownError,
  OverloadedError,
  RecordTooLargeError,
  TimeoutError,
} from './errors.js';

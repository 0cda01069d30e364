// The product: the replicated log applications embed.
export { ReplicatedLog, type LogStatus, type ReplicatedLogDeps, type ReplicatedLogOptions } from './replicated-log.js';
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
  NotCommittedError,
  NotLeaderError,
  OpenFailedError,
  OutcomeUnknownError,
  TimeoutError,
} from './errors.js';

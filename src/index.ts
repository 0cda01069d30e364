// The public face of raftlog: the replicated log, the write-ahead log under it,
// their options, types and errors. The Raft core, the transports, the storage
// layer, the admin endpoint and the key-value example have subpaths of their own:
// raftlog/raft, raftlog/transport, raftlog/storage, raftlog/admin and raftlog/kv.
export * from './log/index.js';
export * from './wal/index.js';
export { CodedError, type CodedErrorOptions } from './errors.js';
export type { Logger, LogMethod } from './logger.js';
export type { RefusalLogClock } from './refusal-log.js';
export type { AuthThrottleOptions } from './auth-throttle.js';
export type { LogStore, SnapshotMarker, SnapshotStore } from './storage/index.js';
export {
  RecoverIncompleteError,
  RestoreIncompleteError,
  SnapshotCorruptError,
  SnapshotMissingError,
  StateCorruptError,
  StorageError,
  type StorageErrorCode,
} from './storage/index.js';
export type { Secret, TlsOptions, Transport, TransportErrorCode, TransportHandlers } from './transport/index.js';
export { TransportError } from './transport/index.js';
export type { Entry, HardState, Message, Snapshot, SnapshotMeta, ConfState, Status } from './raft/types.js';

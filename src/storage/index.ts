// Raft's stable storage over the WAL, and where snapshots live.
export type { LogStore, SnapshotMarker } from './log-store.js';
export { RaftStorage } from './raft-storage.js';
export {
  FileSnapshotStore,
  MemorySnapshotStore,
  readSnapshotFile,
  readSnapshotFileData,
  type HeldSnapshot,
  type SnapshotByteStream,
  type SnapshotFileOptions,
  type SnapshotSpool,
  type SnapshotStore,
} from './snapshot-store.js';
export {
  RecoverIncompleteError,
  RestoreIncompleteError,
  SnapshotCorruptError,
  SnapshotDirError,
  DataDirError,
  SnapshotMissingError,
  SnapshotVersionError,
  SnapshotDataVersionError,
  StateCorruptError,
  StorageError,
  StorageInvalidArgumentError,
  type StorageErrorCode,
} from './errors.js';

// The storage layer's own errors (the WAL's are WalErrors), each with a stable code.
import { CodedError } from '../errors.js';

export type StorageErrorCode =
  | 'SNAPSHOT_CORRUPT'
  | 'SNAPSHOT_MISSING'
  | 'SNAPSHOT_VERSION'
  | 'SNAPSHOT_DATA_VERSION'
  | 'SNAPSHOT_DIR_UNUSABLE'
  | 'DATA_DIR_UNUSABLE'
  | 'STATE_CORRUPT'
  | 'RESTORE_INCOMPLETE'
  | 'RECOVER_INCOMPLETE'
  | 'STORAGE_INVALID_ARGUMENT';

export class StorageError extends CodedError<StorageErrorCode> {}

/** A bad argument to the storage API: nothing was opened or written. */
export class StorageInvalidArgumentError extends StorageError {
  constructor(message: string) {
    super('STORAGE_INVALID_ARGUMENT', message);
  }
}

/** A snapshot file failed its checksum or is malformed: never used. */
export class SnapshotCorruptError extends StorageError {
  readonly file: string;
  constructor(file: string, detail: string) {
    super('SNAPSHOT_CORRUPT', `snapshot file ${file} is corrupt: ${detail}`);
    this.file = file;
  }
}

/** The WAL names a snapshot whose file is missing. */
export class SnapshotMissingError extends StorageError {
  constructor(index: number, term: number, where: string) {
    super('SNAPSHOT_MISSING', `the WAL records a snapshot at index ${index} term ${term}, but ${where} has no such file`);
  }
}

/** A snapshot file of a format this version does not read. */
export class SnapshotVersionError extends StorageError {
  readonly file: string;
  constructor(file: string, version: number) {
    super('SNAPSHOT_VERSION', `snapshot file ${file} is in format ${version}, which this version does not read`);
    this.file = file;
  }
}

/**
 * Snapshot data (what a snapshot file holds after its meta, or a backup) of a later format than
 * this version reads: written by a later release, not damaged.
 */
export class SnapshotDataVersionError extends StorageError {
  readonly file: string;
  constructor(file: string, version: number) {
    super('SNAPSHOT_DATA_VERSION', `snapshot ${file} holds data in format ${version}, which this version does not read (a later release wrote it)`);
    this.file = file;
  }
}

/** The snapshot directory is not a directory, or not one this process can read and write: found at open, before any snapshot is due. */
export class SnapshotDirError extends StorageError {
  constructor(why: string) {
    super('SNAPSHOT_DIR_UNUSABLE', `snapshot directory ${why}`);
  }
}

/**
 * The data directory is not a directory this process can read, write and search, or holds a
 * file of the node's (its instance id, its record of the peers') it may not read: found at open.
 */
export class DataDirError extends StorageError {
  constructor(why: string) {
    super('DATA_DIR_UNUSABLE', `data directory ${why}`);
  }
}

/** The WAL holds raft state no node can reach (a term or index above MAX_TERM, terms that fall along the log): damage. */
export class StateCorruptError extends StorageError {
  constructor(detail: string) {
    super('STATE_CORRUPT', `the data directory's raft state is corrupt: ${detail}`);
  }
}

/** `raftlog snapshot restore` was stopped before the directory it seeds was whole: it is no node's yet. */
export class RestoreIncompleteError extends StorageError {
  constructor(dataDir: string) {
    super(
      'RESTORE_INCOMPLETE',
      `a restore did not finish in ${dataDir}: run it again (raftlog snapshot restore, the same backup and flags); until it finishes the directory is no node's`,
    );
  }
}

/** `raftlog recover --force-new-cluster` was stopped before the directory it rewrites was the new cluster's node. */
export class RecoverIncompleteError extends StorageError {
  constructor(dataDir: string) {
    super(
      'RECOVER_INCOMPLETE',
      `a recover did not finish in ${dataDir}: run it again (raftlog recover --force-new-cluster, the same flags); until it finishes the directory is neither the old node nor the new cluster's`,
    );
  }
}

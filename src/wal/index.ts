// The WAL layer: the native write-ahead log's TypeScript face.
export { Wal } from './wal.js';
export { WAL_DEFAULTS } from './defaults.js';
export { crc32c } from './crc32c.js';
export type { WalConflict, WalEntry, WalHardState, WalLogger, WalOptions, WalRepair, WalSnapshot, WalStats } from './types.js';
export { FSYNC_BUCKETS } from './types.js';
export {
  WalError,
  WalCorruptError,
  WalLockedError,
  WalLockMissingError,
  WalIoError,
  WalClosedError,
  WalInvalidArgumentError,
  WalGapError,
  WalCompactedError,
  WalUnavailableError,
  WalNotBuiltError,
  WalVersionError,
  WalForeignError,
  type WalErrorCode,
} from './errors.js';

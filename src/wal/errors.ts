// Every failure of the WAL is one of these classes, each with a stable `code`
// string that callers may switch on.
import { CodedError, type CodedErrorOptions } from '../errors.js';

export type WalErrorCode =
  | 'WAL_CORRUPT'
  | 'WAL_LOCKED'
  | 'WAL_LOCK_MISSING'
  | 'WAL_IO'
  | 'WAL_CLOSED'
  | 'WAL_INVALID_ARGUMENT'
  | 'WAL_GAP'
  | 'WAL_COMPACTED'
  | 'WAL_UNAVAILABLE'
  | 'WAL_VERSION'
  | 'WAL_FOREIGN'
  | 'WAL_NOT_BUILT';

export abstract class WalError extends CodedError<WalErrorCode> {}

/** A record failed its checksum or framing somewhere other than a torn tail. Nothing is skipped: open fails. */
export class WalCorruptError extends WalError {
  constructor(
    message: string,
    /** The damaged segment file. */
    readonly file: string,
    /** Byte offset of the damaged record in `file`. */
    readonly offset: number,
  ) {
    super('WAL_CORRUPT', message);
  }
}

/** The directory is already open (in this process or another one). */
export class WalLockedError extends WalError {
  constructor(message: string, options?: CodedErrorOptions) {
    super('WAL_LOCKED', message, options);
  }
}

/**
 * The directory holds segments but no LOCK file. Someone removed it, maybe
 * while a process still has the WAL open, so opening could let two writers
 * share the directory. Make sure no process uses it, create an empty LOCK
 * file in it, and open again.
 */
export class WalLockMissingError extends WalError {
  constructor(message: string, options?: CodedErrorOptions) {
    super('WAL_LOCK_MISSING', message, options);
  }
}

/** A write or fsync failed. The instance is failed for good: reopen it (never retry an fsync). */
export class WalIoError extends WalError {
  constructor(message: string, options?: CodedErrorOptions) {
    super('WAL_IO', message, options);
  }
}

/** The WAL was closed (or is closing). */
export class WalClosedError extends WalError {
  constructor(message: string, options?: CodedErrorOptions) {
    super('WAL_CLOSED', message, options);
  }
}

/** A malformed argument: wrong type, negative or non-integer index, payload that is not a Uint8Array. */
export class WalInvalidArgumentError extends WalError {
  constructor(message: string, options?: CodedErrorOptions) {
    super('WAL_INVALID_ARGUMENT', message, options);
  }
}

/** Entries that would leave a hole in the log (or rewrite entries below the first index). */
export class WalGapError extends WalError {
  constructor(message: string, options?: CodedErrorOptions) {
    super('WAL_GAP', message, options);
  }
}

/** A read below firstIndex - 1: those entries were compacted into the snapshot. */
export class WalCompactedError extends WalError {
  constructor(message: string, options?: CodedErrorOptions) {
    super('WAL_COMPACTED', message, options);
  }
}

/** A read above lastIndex. */
export class WalUnavailableError extends WalError {
  constructor(message: string, options?: CodedErrorOptions) {
    super('WAL_UNAVAILABLE', message, options);
  }
}

/** A segment was written in a WAL format this version does not read. */
export class WalVersionError extends WalError {
  constructor(
    message: string,
    readonly file: string,
  ) {
    super('WAL_VERSION', message);
  }
}

/**
 * The WAL names another data directory's instance than the one it is in (OWNER), or names one
 * where the directory has none: a copy put in place of this directory's log. Nothing was changed.
 */
export class WalForeignError extends WalError {
  constructor(message: string) {
    super('WAL_FOREIGN', message);
  }
}

/** The native addon is missing: `npm rebuild raftlog` compiles it where raftlog is a dependency, `npm run build:native` in a clone. */
export class WalNotBuiltError extends WalError {
  constructor(message: string, options?: CodedErrorOptions) {
    super('WAL_NOT_BUILT', message, options);
  }
}

interface NativeErrorShape {
  message: string;
  code?: unknown;
  file?: unknown;
  offset?: unknown;
}

/** Turns an error thrown or reported by the addon into its class. */
export function fromNative(err: unknown): Error {
  if (!(err instanceof Error)) return new WalIoError(String(err));
  const e = err as NativeErrorShape & Error;
  switch (e.code) {
    case 'WAL_CORRUPT':
      return new WalCorruptError(e.message, String(e.file ?? ''), typeof e.offset === 'number' ? e.offset : -1);
    case 'WAL_LOCKED':
      return new WalLockedError(e.message);
    case 'WAL_LOCK_MISSING':
      return new WalLockMissingError(e.message);
    case 'WAL_IO':
      return new WalIoError(e.message);
    case 'WAL_CLOSED':
      return new WalClosedError(e.message);
    case 'WAL_VERSION':
      return new WalVersionError(e.message, String(e.file ?? ''));
    default:
      return err;
  }
}

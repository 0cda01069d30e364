// Which segments a WAL must have, judged from what replay read: at least one (a
// WAL directory is made with segment 1, and its last segment is never released),
// the sequence numbers contiguous (the scan checks that), and the first segment
// starting at or before the log's start (the entry after the latest snapshot
// marker, or 1 with no marker). A lost LAST segment leaves an older state of the
// log that is whole as far as it goes; no check on the files alone can tell.
import { WalCorruptError } from './errors.js';

export interface FirstSegment {
  seq: number;
  firstIndex: number;
  name: string;
}

/** Throws WAL_CORRUPT naming what is missing. `snapshotIndex`: the latest marker's, or null. */
export function checkNothingMissing(dir: string, first: FirstSegment | undefined, snapshotIndex: number | null): void {
  if (first === undefined)
    throw new WalCorruptError(
      `WAL directory ${dir} holds no segment, but a WAL holds one from its creation on: its log was lost, and the term and vote it held ` +
        '(a directory an earlier build made holds none until its first write: if nothing was ever written to it, remove it)',
      dir,
      -1,
    );
  const start = (snapshotIndex ?? 0) + 1;
  if (first.firstIndex <= start && (snapshotIndex !== null || first.seq === 1)) return;
  throw new WalCorruptError(
    `segments are missing from ${dir}: the first one, ${first.name}, starts at index ${first.firstIndex} (sequence ${first.seq}), ` +
      `but the log starts at ${start} (${snapshotIndex === null ? 'no snapshot marker' : `snapshot marker at ${snapshotIndex}`})`,
    `${dir}/${first.name}`,
    0,
  );
}

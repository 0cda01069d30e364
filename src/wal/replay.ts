// Rebuilds the log's shape from what the native scan read: which index lives
// where, the latest hard state and snapshot marker, and where the next write
// goes. Pure: the scan has already checked every CRC and cut off a torn tail, so
// what is left here is whether the records, each intact, make one consistent log,
// and whether they follow one another as Raft writes them (see WalConflict).
import type { NativeScan } from './addon.js';
import { WalCorruptError } from './errors.js';
import { checkNothingMissing } from './missing.js';
import { MAX_OFFSET, Positions } from './positions.js';
import { ENTRY_PREFIX, Kind, SNAPSHOT_DISCARD_LOG } from './record.js';
import { type Segment, Segments } from './segments.js';
import type { WalConflict, WalHardState, WalSnapshot } from './types.js';

export interface Replayed {
  segments: Segments;
  positions: Positions;
  hardState: WalHardState;
  snapshot: WalSnapshot | null;
  /** Write cursor in the last segment (0 with none). */
  offset: number;
  conflict: WalConflict | null;
}

/** The scan's fields replay reads. */
export type ScanRecords = Pick<NativeScan, 'segments' | 'records' | 'metas'>;

/**
 * Records replayed between two turns of the event loop in replayYielding: tens of
 * milliseconds of work. A WAL of 512 MiB of small records holds about four million, whose
 * replay in one piece held the loop for five seconds or more.
 */
export const REPLAY_SLICE = 16384;

/** Throws WAL_CORRUPT when the records do not form one log, or segments it needs are missing. `dir` names it in errors. */
export function replay(dir: string, scan: ScanRecords): Replayed {
  const steps = replaying(dir, scan);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/** replay(), letting the event loop turn after every REPLAY_SLICE records. */
export async function replayYielding(dir: string, scan: ScanRecords): Promise<Replayed> {
  const steps = replaying(dir, scan);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

// Out of the loop: closures made per record cost a tenth of the replay.
function corruptAt(dir: string, seg: Segment, offset: number, why: string): WalCorruptError {
  return new WalCorruptError(`corrupt WAL record in ${dir}/${seg.name} at offset ${offset}: ${why}`, `${dir}/${seg.name}`, offset);
}

function conflictAt(dir: string, seg: Segment, offset: number, why: string): WalConflict {
  return { file: `${dir}/${seg.name}`, offset, why };
}

/** The replay, pausing (a bare yield) after every REPLAY_SLICE records. */
function* replaying(dir: string, scan: ScanRecords): Generator<void, Replayed> {
  const segments = new Segments();
  for (const s of scan.segments) segments.push({ seq: s.seq, firstIndex: s.firstIndex, name: s.name, maxIndex: s.firstIndex - 1 });
  const p = new Positions();
  const first = segments.first;
  if (first !== undefined) p.reset(first.firstIndex - 1, 0);
  let hardState: WalHardState = Object.freeze({ term: 0, vote: 0, commit: 0 });
  let snapshot: WalSnapshot | null = null;
  let conflict: WalConflict | null = null;
  // When older segments were released, the log before the first surviving
  // one is unknown: that segment may hold overwrites of entries that lived
  // in released segments (below its name's first index). Until a snapshot
  // marker at or above the start anchors the log, such an entry restarts
  // the log at itself; the marker that allowed the release always follows
  // (releases need a marker at or above every released entry) and compacts
  // those entries away again. After the anchor, and in a log that still
  // has its first segment, every entry must extend or overwrite the log.
  let anchored = first === undefined || first.seq === 1;
  // Whether the term of the entry at p.base (firstIndex - 1) is known. It is
  // not while the start is inferred from a segment name or an overwrite:
  // a marker exactly there then supplies the term; it must not be taken
  // for a disagreeing snapshot, which would discard the entries after it.
  let baseTermKnown = anchored;
  // A segment is begun only once the one before it is synced whole, at the index the log
  // had reached or below it (an overwrite): one that starts further on says the segment
  // before it lost its end, which a scan of that segment alone cannot see (cut, or zeroed,
  // at a record boundary it reads as a clean end).
  let entered = 0;
  const enter = (upTo: number): void => {
    while (entered < upTo) {
      const s = segments.at(++entered)!;
      if (s.firstIndex > p.last + 1)
        throw new WalCorruptError(
          `segment ${dir}/${s.name} starts at entry ${s.firstIndex}, but the segments before it end at entry ${p.last}: entries are missing`,
          `${dir}/${segments.at(entered - 1)!.name}`,
          -1,
        );
    }
  };
  const r = scan.records;
  for (let k = 0, slice = REPLAY_SLICE; k < r.length; k += 8) {
    if (--slice === 0) {
      yield;
      slice = REPLAY_SLICE;
    }
    const kind = r[k]!;
    enter(r[k + 1]!);
    const seg = segments.at(r[k + 1]!)!;
    const offset = r[k + 2]!;
    const length = r[k + 3]!;
    const flags = r[k + 4]!;
    const a = r[k + 5]!;
    const b = r[k + 6]!;
    const c = r[k + 7]!;
    if (kind === Kind.Entry) {
      if (!anchored && (a <= p.base || a > p.last + 1)) {
        p.reset(a - 1, 0);
        baseTermKnown = false;
      }
      if (a <= p.base) throw corruptAt(dir, seg, offset, `entry ${a} is at or below the log's start ${p.base}`);
      if (a > p.last + 1) throw corruptAt(dir, seg, offset, `entry ${a} leaves a gap after ${p.last}`);
      if (offset > MAX_OFFSET) throw corruptAt(dir, seg, offset, `entry ${a} starts past any offset the WAL writes at`);
      if (a <= p.last) p.truncateAfter(a - 1);
      p.push(b, seg.seq, offset, length - ENTRY_PREFIX);
      if (a > seg.maxIndex) seg.maxIndex = a;
    } else if (kind === Kind.HardState) {
      // Raft's term never falls, and it votes once a term. A torn write cuts off a suffix, and a
      // segment's head carries a copy of the hard state before it: neither makes either happen.
      if (a < hardState.term) conflict ??= conflictAt(dir, seg, offset, `hard state term ${a} is below the term ${hardState.term} of the hard state before it`);
      else if (a === hardState.term && hardState.vote !== 0 && b !== hardState.vote)
        conflict ??= conflictAt(dir, seg, offset, `hard state votes for ${b} in term ${a}, in which the hard state before it voted for ${hardState.vote}`);
      hardState = Object.freeze({ term: a, vote: b, commit: c });
    } else if (kind === Kind.Snapshot) {
      // A marker below the start can only be the copy carried at the head of a
      // segment whose predecessors were released; a newer marker follows.
      snapshot = { index: a, term: b, meta: scan.metas[c]! };
      const discard = (flags & SNAPSHOT_DISCARD_LOG) !== 0;
      // A local snapshot is of applied entries, which its marker follows; only a received one
      // (flagged) replaces a log that disagrees. The WAL's API discards the log for either.
      if (!discard && a >= p.base && a <= p.last && (a > p.base || baseTermKnown) && p.term(a) !== b)
        conflict ??= conflictAt(dir, seg, offset, `snapshot marker at index ${a} has term ${b}, but the entry there has term ${p.term(a)}`);
      if (a === p.base && !baseTermKnown && !discard) {
        p.setBaseTerm(b);
        anchored = baseTermKnown = true;
      } else if (a >= p.base) {
        p.applySnapshot(a, b, discard);
        anchored = baseTermKnown = true;
      }
    }
  }
  enter(scan.segments.length - 1);
  checkNothingMissing(dir, segments.first, snapshot?.index ?? null);
  return { segments, positions: p, hardState, snapshot, offset: scan.segments.at(-1)?.end ?? 0, conflict };
}

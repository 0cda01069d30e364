// Replay over synthetic scans: the records the native scan hands over, each
// intact, and the log they must (or must not) make. The on-disk side (missing
// files, torn writes, markers) is in replay.test.ts.
import { describe, expect, it } from 'vitest';
import { ENTRY_PREFIX, Kind, SNAPSHOT_DISCARD_LOG, segmentName } from '../../src/wal/record.js';
import { replay, type Replayed, type ScanRecords } from '../../src/wal/replay.js';

type Rec =
  | { entry: number; term: number; seg?: number }
  | { hs: [term: number, vote: number, commit: number]; seg?: number }
  | { snap: number; term: number; discard?: boolean; seg?: number };

/** Segments as [seq, firstIndex]; records in file order, in the last segment unless `seg` (a position) says otherwise. */
function scanOf(segments: Array<[number, number]>, recs: Rec[]): ScanRecords {
  const ends = segments.map(() => 24);
  const out: number[] = [];
  const metas: Uint8Array[] = [];
  for (const r of recs) {
    const seg = r.seg ?? segments.length - 1;
    const offset = ends[seg]!;
    if ('entry' in r) out.push(Kind.Entry, seg, offset, ENTRY_PREFIX + 10, 0, r.entry, r.term, 0);
    else if ('hs' in r) out.push(Kind.HardState, seg, offset, 24, 0, ...r.hs);
    else {
      out.push(Kind.Snapshot, seg, offset, 24, r.discard === true ? SNAPSHOT_DISCARD_LOG : 0, r.snap, r.term, metas.length);
      metas.push(new Uint8Array([r.snap & 255]));
    }
    ends[seg] = offset + 48;
  }
  return {
    segments: segments.map(([seq, firstIndex], k) => ({
      seq,
      firstIndex,
      name: segmentName(seq, firstIndex, 1),
      size: 1 << 20,
      end: ends[k]!,
      mark: { start: 0, records: 0, crc: 0, atMarker: false },
    })),
    records: new Float64Array(out),
    metas,
  };
}

const entries = (lo: number, hi: number, term: number, seg?: number): Rec[] =>
  Array.from({ length: hi - lo + 1 }, (_, k) => (seg === undefined ? { entry: lo + k, term } : { entry: lo + k, term, seg }));

/** The log as [index, term] from firstIndex - 1 to lastIndex. */
function terms(log: Replayed): Array<[number, number]> {
  const p = log.positions;
  const out: Array<[number, number]> = [];
  for (let i = p.base; i <= p.last; i++) out.push([i, p.term(i)]);
  return out;
}

const pairs = (lo: number, hi: number, term: number): Array<[number, number]> => Array.from({ length: hi - lo + 1 }, (_, k) => [lo + k, term]);

describe('replay builds the log from intact records', () => {
  const cases: Array<{
    name: string;
    segments: Array<[number, number]>;
    recs: Rec[];
    log: Array<[number, number]>;
    snapshot?: number | null;
    hardState?: [number, number, number];
    /** Replayed as the WAL's API wrote it, and noted as a record Raft storage never writes (see below). */
    conflicts?: true;
  }> = [
    { name: 'a first segment with no record is an empty log', segments: [[1, 1]], recs: [], log: [[0, 0]], snapshot: null, hardState: [0, 0, 0] },
    {
      name: 'entries extend the log; the last hard state wins',
      segments: [[1, 1]],
      recs: [...entries(1, 2, 1), { hs: [1, 1, 2] }, { entry: 3, term: 2 }, { hs: [2, 1, 3] }],
      log: [...pairs(0, 0, 0), ...pairs(1, 2, 1), [3, 2]],
      hardState: [2, 1, 3],
    },
    {
      name: 'an entry at or below the last overwrites the log from there',
      segments: [[1, 1]],
      recs: [...entries(1, 5, 1), { entry: 3, term: 2 }],
      log: [[0, 0], ...pairs(1, 2, 1), [3, 2]],
    },
    {
      name: 'a local snapshot keeps the entries above it',
      segments: [[1, 1]],
      recs: [...entries(1, 6, 1), { snap: 4, term: 1 }],
      log: pairs(4, 6, 1),
      snapshot: 4,
    },
    {
      name: 'a snapshot whose term disagrees with the log discards the log',
      segments: [[1, 1]],
      recs: [...entries(1, 6, 1), { snap: 4, term: 2 }],
      log: [[4, 2]],
      snapshot: 4,
      conflicts: true,
    },
    {
      name: 'a snapshot flagged to discard the log does, even where the log agrees',
      segments: [[1, 1]],
      recs: [...entries(1, 6, 1), { snap: 4, term: 1, discard: true }],
      log: [[4, 1]],
      snapshot: 4,
    },
    {
      name: "a leader's snapshot at the log's start, with another term, discards the entries after it",
      segments: [[1, 1]],
      recs: [...entries(1, 6, 1), { snap: 4, term: 1 }, { snap: 4, term: 2, discard: true }],
      log: [[4, 2]],
      snapshot: 4,
    },
    {
      name: 'a snapshot beyond the last entry restarts the log after it',
      segments: [[1, 1]],
      recs: [...entries(1, 3, 1), { snap: 10, term: 3 }, { entry: 11, term: 3 }],
      log: pairs(10, 11, 3),
      snapshot: 10,
    },
    {
      name: 'entries spread over segments rotate with the carried marker and hard state',
      segments: [
        [1, 1],
        [2, 4],
      ],
      recs: [...entries(1, 3, 1, 0), { snap: 2, term: 1, seg: 0 }, { snap: 2, term: 1 }, { hs: [1, 1, 3] }, ...entries(4, 7, 1)],
      log: pairs(2, 7, 1),
      snapshot: 2,
      hardState: [1, 1, 3],
    },
    {
      // Segments 1 and 2 were released under a marker at 99; entries 95.. overwrote the
      // log after segment 3 began at 100, so they are below its name's first index.
      name: 'after a release, an overwrite below the first segment restarts the log until a marker anchors it',
      segments: [[3, 100]],
      recs: [{ snap: 90, term: 1 }, ...entries(100, 101, 2), ...entries(95, 101, 3), { snap: 99, term: 3 }],
      log: pairs(99, 101, 3),
      snapshot: 99,
    },
    {
      name: "a marker exactly at the inferred start supplies that entry's term and keeps the entries after it",
      segments: [[2, 11]],
      recs: [...entries(11, 12, 1), { snap: 10, term: 1 }],
      log: pairs(10, 12, 1),
      snapshot: 10,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const log = replay('/wal', scanOf(c.segments, c.recs));
      expect(terms(log)).toEqual(c.log);
      if (!c.conflicts) expect(log.conflict).toBeNull();
      if (c.snapshot !== undefined) expect(log.snapshot?.index ?? null).toBe(c.snapshot);
      if (c.hardState !== undefined) expect([log.hardState.term, log.hardState.vote, log.hardState.commit]).toEqual(c.hardState);
    });

  it('tracks the highest entry of each segment and continues writing where the last one ends', () => {
    const scan = scanOf(
      [
        [1, 1],
        [2, 5],
      ],
      [...entries(1, 6, 1, 0), ...entries(5, 8, 2)],
    );
    const log = replay('/wal', scan);
    expect([log.segments.at(0)!.maxIndex, log.segments.at(1)!.maxIndex]).toEqual([6, 8]);
    expect(log.offset).toBe(scan.segments[1]!.end);
    expect(log.segments.bySeq(2)?.firstIndex).toBe(5);
    // Entry 5 now lives in segment 2, at that segment's first record.
    expect([log.positions.seq(5), log.positions.offset(5), log.positions.term(5)]).toEqual([2, 24, 2]);
  });
});

describe('replay refuses records that do not make one log', () => {
  const cases: Array<{ name: string; segments: Array<[number, number]>; recs: Rec[]; error: RegExp }> = [
    {
      name: 'a gap',
      segments: [[1, 1]],
      recs: [
        { entry: 1, term: 1 },
        { entry: 3, term: 1 },
      ],
      error: /entry 3 leaves a gap after 1/,
    },
    {
      name: 'an entry at or below a snapshot marker',
      segments: [[1, 1]],
      recs: [...entries(1, 5, 1), { snap: 5, term: 1 }, { entry: 5, term: 1 }],
      error: /entry 5 is at or below the log's start 5/,
    },
    {
      name: 'a first entry other than 1 in the first segment',
      segments: [[1, 1]],
      recs: [{ entry: 2, term: 1 }],
      error: /entry 2 leaves a gap after 0/,
    },
    {
      name: 'an anchored log below the first segment of a released directory',
      segments: [[3, 100]],
      recs: [
        { snap: 99, term: 2 },
        { entry: 100, term: 2 },
        { entry: 98, term: 3 },
      ],
      error: /entry 98 is at or below the log's start 99/,
    },
    {
      name: 'segments missing before the only marker (a carried copy older than the first segment)',
      segments: [[2, 11]],
      recs: [{ snap: 5, term: 1 }, ...entries(11, 12, 1)],
      error: /segments are missing from \/wal.*starts at index 11 \(sequence 2\), but the log starts at 6/,
    },
    { name: 'a first segment that is not sequence 1, with no marker', segments: [[2, 1]], recs: entries(1, 3, 1), error: /segments are missing/ },
    { name: 'no segment at all: a WAL is made with segment 1, and keeps its last', segments: [], recs: [], error: /\/wal holds no segment/ },
  ];
  for (const c of cases)
    it(c.name, () => {
      let err: unknown;
      try {
        replay('/wal', scanOf(c.segments, c.recs));
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'WAL_CORRUPT', message: expect.stringMatching(c.error) });
    });

  it('an entry past the offsets the position index holds (a segment no WAL writes, over 4 GiB)', () => {
    const scan = scanOf([[1, 1]], entries(1, 2, 1));
    scan.records[8 + 2] = 2 ** 32;
    expect(() => replay('/wal', scan)).toThrow(
      expect.objectContaining({ code: 'WAL_CORRUPT', message: expect.stringMatching(/entry 2 starts past any offset/) }),
    );
  });
});

describe('replay notes the first record Raft storage never writes after the ones before it', () => {
  const cases: Array<{ name: string; segments: Array<[number, number]>; recs: Rec[]; conflict: RegExp | null; at?: number }> = [
    {
      name: 'a hard state whose term falls',
      segments: [[1, 1]],
      recs: [{ hs: [3, 1, 0] }, ...entries(1, 2, 3), { hs: [2, 1, 2] }, { hs: [1, 1, 2] }],
      conflict: /hard state term 2 is below the term 3 of the hard state before it/,
      at: 3,
    },
    {
      name: 'a vote changed within a term',
      segments: [[1, 1]],
      recs: [{ hs: [2, 0, 0] }, { hs: [2, 1, 0] }, { hs: [2, 3, 0] }],
      conflict: /hard state votes for 3 in term 2, in which the hard state before it voted for 1/,
      at: 2,
    },
    {
      name: 'a vote taken back within a term',
      segments: [[1, 1]],
      recs: [{ hs: [2, 1, 0] }, { hs: [2, 0, 0] }],
      conflict: /hard state votes for 0 in term 2, in which the hard state before it voted for 1/,
    },
    {
      name: 'a marker without the discard flag whose term disagrees with the entry at its index',
      segments: [[1, 1]],
      recs: [...entries(1, 6, 1), { snap: 6, term: 2 }, { entry: 7, term: 2 }],
      conflict: /snapshot marker at index 6 has term 2, but the entry there has term 1/,
      at: 6,
    },
    {
      name: 'a marker at the start of the log whose term disagrees with the marker that set it',
      segments: [[1, 1]],
      recs: [
        { snap: 5, term: 2, discard: true },
        { snap: 5, term: 3 },
      ],
      conflict: /snapshot marker at index 5 has term 3, but the entry there has term 2/,
    },
    {
      name: 'none: a vote cast in a term, a new term with another vote, a commit that falls',
      segments: [[1, 1]],
      recs: [{ hs: [1, 0, 0] }, { hs: [1, 1, 0] }, ...entries(1, 3, 1), { hs: [1, 1, 3] }, { hs: [2, 2, 3] }, { hs: [2, 2, 1] }],
      conflict: null,
    },
    {
      name: 'none: a hard state below the entries of a write cut short, then entries of the older term over them',
      segments: [[1, 1]],
      recs: [{ hs: [1, 1, 0] }, ...entries(1, 3, 2), ...entries(1, 3, 1), { hs: [1, 1, 2] }],
      conflict: null,
    },
    {
      name: "none: a received snapshot's marker (discard flag) with another term, and its copy at the next segment's head",
      segments: [
        [1, 1],
        [2, 5],
      ],
      recs: [
        ...entries(1, 6, 1, 0),
        { snap: 4, term: 3, discard: true, seg: 0 },
        { hs: [3, 0, 4], seg: 0 },
        { snap: 4, term: 3 },
        { hs: [3, 0, 4] },
        { entry: 5, term: 3 },
      ],
      conflict: null,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const scan = scanOf(c.segments, c.recs);
      const log = replay('/wal', scan);
      if (c.conflict === null) {
        expect(log.conflict).toBeNull();
        return;
      }
      expect(log.conflict).toMatchObject({ file: expect.stringMatching(/^\/wal\/0000000000000001-/), why: expect.stringMatching(c.conflict) });
      if (c.at !== undefined) expect(log.conflict!.offset).toBe(scan.records[c.at * 8 + 2]);
    });
});

// One row per way a data directory can be damaged that no other test covers: each copy of a
// real log (a snapshot, a restart, then more records) is damaged one way and opened. The open
// either keeps every acknowledged record, or refuses with a code and a message that names the
// file; a refusal leaves no descriptor under the directory and releases its lock, so a second
// open gives the same refusal, not WAL_LOCKED.
import { cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { RecordingMachine, enc, fdsUnder, tempDir, waitFor } from './helpers.js';

const RECORDS = 90;
const record = (i: number): string => `r${i}-${'x'.repeat(3000)}`;

/** A log over several segments of 64 KiB. */
const OPTIONS = { id: 1, snapshotEvery: 1000, snapshotCatchUpEntries: 0, segmentBytes: 64 * 1024 };

let pristine: { dir: string; cleanup(): void };
const made: Array<{ cleanup(): void }> = [];

beforeAll(async () => {
  pristine = tempDir('raftlog-table-');
  // Snapshots every 10 records (the segments before each released), then, after a restart, no
  // more: the records after the last snapshot fill three segments and more.
  const first = await ReplicatedLog.open({ ...OPTIONS, snapshotEvery: 10, dataDir: pristine.dir, stateMachine: new RecordingMachine() });
  for (let i = 0; i < 30; i++) await first.append(enc(record(i)));
  await waitFor('a snapshot', () => first.status().snapshotIndex >= 20);
  await first.close();
  const second = await ReplicatedLog.open({ ...OPTIONS, dataDir: pristine.dir, stateMachine: new RecordingMachine() });
  for (let i = 30; i < RECORDS; i++) await second.append(enc(record(i)));
  await second.close();
  expect(segments(pristine.dir).length).toBeGreaterThanOrEqual(3);
});
afterAll(() => {
  pristine.cleanup();
  for (const d of made) d.cleanup();
});

const segments = (dir: string): string[] =>
  readdirSync(join(dir, 'wal'))
    .filter((n) => n.endsWith('.wal'))
    .sort();
const snapshotFile = (dir: string): string => {
  const names = readdirSync(join(dir, 'snapshots')).filter((n) => n.endsWith('.snap'));
  expect(names).toHaveLength(1);
  return join(dir, 'snapshots', names[0]!);
};
/** The segment name `name` with its sequence number moved by `by`. */
const renumbered = (name: string, by: number): string => {
  const [seq, ...rest] = name.split('-');
  return [(parseInt(seq!, 16) + by).toString(16).padStart(16, '0'), ...rest].join('-');
};

/** What an open of a damaged directory must do: keep every record, or refuse with `code`, its message matching `names` (`$D`: the directory). */
type Outcome = { whole: true } | { code: string; names: string };

interface Row {
  what: string;
  damage(dir: string): void;
  expect: Outcome;
}

const whole: Outcome = { whole: true };

const rows: Row[] = [
  // The snapshot files
  {
    what: 'a file that is no snapshot, named as one past the log: SNAPSHOT_CORRUPT naming it, not the WAL said to have lost its end',
    damage: (d) => writeFileSync(join(d, 'snapshots', 'snap-0000000000000999-1.snap'), 'not a snapshot'),
    expect: { code: 'SNAPSHOT_CORRUPT', names: '$D/snapshots/snap-0000000000000999-1.snap is corrupt' },
  },
  {
    what: 'a snapshot file cut short, named as one past the log',
    damage: (d) => writeFileSync(join(d, 'snapshots', 'snap-0000000000000999-1.snap'), readFileSync(snapshotFile(d)).subarray(0, 100)),
    expect: { code: 'SNAPSHOT_CORRUPT', names: '$D/snapshots/snap-0000000000000999-1.snap is corrupt' },
  },
  {
    what: 'a copy of the snapshot file under an index past the log: SNAPSHOT_CORRUPT naming it (it holds another index)',
    damage: (d) => cpSync(snapshotFile(d), join(d, 'snapshots', 'snap-0000000000000999-1.snap')),
    expect: { code: 'SNAPSHOT_CORRUPT', names: '$D/snapshots/snap-0000000000000999-1.snap is corrupt: holds \\d+/1' },
  },
  {
    what: 'an older file that is no snapshot: never read, the newer one is',
    damage: (d) => writeFileSync(join(d, 'snapshots', 'snap-0000000000000005-1.snap'), 'junk'),
    expect: whole,
  },
  {
    what: 'a file that is no snapshot past the log, marked as received from a peer: not used',
    damage: (d) => {
      writeFileSync(join(d, 'snapshots', 'snap-0000000000000999-1.snap'), 'junk');
      writeFileSync(join(d, 'snapshots', 'snap-0000000000000999-1.snap.recv'), '');
    },
    expect: whole,
  },
  {
    what: 'a mark of a received snapshot with no snapshot',
    damage: (d) => writeFileSync(join(d, 'snapshots', 'snap-0000000000000999-1.snap.recv'), ''),
    expect: whole,
  },
  {
    what: 'the snapshot file as a symbolic link',
    damage: (d) => {
      const file = snapshotFile(d);
      renameSync(file, join(d, 'elsewhere.snap'));
      symlinkSync(join(d, 'elsewhere.snap'), file);
    },
    expect: { code: 'SNAPSHOT_CORRUPT', names: '$D/snapshots/snap-\\d+-1.snap is corrupt' },
  },
  { what: 'a stray file in snapshots/', damage: (d) => writeFileSync(join(d, 'snapshots', 'x.tmp'), 'junk'), expect: whole },
  { what: 'a stray directory in snapshots/', damage: (d) => mkdirSync(join(d, 'snapshots', 'junk')), expect: whole },

  // The WAL's segments
  {
    what: 'the first segment deleted',
    damage: (d) => rmSync(join(d, 'wal', segments(d)[0]!)),
    expect: { code: 'WAL_CORRUPT', names: 'segments are missing from $D/wal' },
  },
  {
    what: 'a middle segment deleted: a gap in the numbering',
    damage: (d) => rmSync(join(d, 'wal', segments(d)[1]!)),
    expect: { code: 'WAL_CORRUPT', names: 'segment sequence has a gap' },
  },
  {
    what: 'a segment that is not the last cut to its header',
    damage: (d) => truncateSync(join(d, 'wal', segments(d)[1]!), 40),
    expect: { code: 'WAL_CORRUPT', names: 'segment $D/wal/\\w+-\\w+-\\w+.wal starts at entry \\d+, but the segments before it end at entry \\d+' },
  },
  {
    what: 'a segment that is not the last cut within a record',
    damage: (d) => truncateSync(join(d, 'wal', segments(d)[1]!), 32768),
    expect: { code: 'WAL_CORRUPT', names: 'corrupt WAL record in $D/wal/\\w+-\\w+-\\w+.wal at offset \\d+' },
  },
  {
    what: 'a byte flipped in the middle of a segment that is not the last',
    damage: (d) => {
      const file = join(d, 'wal', segments(d)[1]!);
      const b = readFileSync(file);
      b[32768]! ^= 0x10;
      writeFileSync(file, b);
    },
    expect: { code: 'WAL_CORRUPT', names: 'corrupt WAL record in $D/wal/\\w+-\\w+-\\w+.wal at offset \\d+: checksum mismatch' },
  },
  {
    what: 'the last segment deleted: TAIL names it',
    damage: (d) => rmSync(join(d, 'wal', segments(d).at(-1)!)),
    expect: { code: 'WAL_CORRUPT', names: 'segment $D/wal/\\w+-\\w+-\\w+.wal is missing, but $D/wal/TAIL records entries synced in it' },
  },
  {
    what: 'the last segment emptied',
    damage: (d) => truncateSync(join(d, 'wal', segments(d).at(-1)!), 0),
    expect: { code: 'WAL_CORRUPT', names: 'segment $D/wal/\\w+-\\w+-\\w+.wal is 0 bytes long, but $D/wal/TAIL records' },
  },
  {
    what: 'TAIL with a byte flipped',
    damage: (d) => {
      const tail = readFileSync(join(d, 'wal', 'TAIL'));
      tail[12] ^= 1;
      writeFileSync(join(d, 'wal', 'TAIL'), tail);
    },
    expect: { code: 'WAL_CORRUPT', names: '$D/wal/TAIL is damaged \\(checksum mismatch\\)' },
  },
  { what: 'TAIL deleted: no claim, as from an earlier build', damage: (d) => rmSync(join(d, 'wal', 'TAIL')), expect: whole },
  { what: 'a TAIL.tmp left by a crash', damage: (d) => writeFileSync(join(d, 'wal', 'TAIL.tmp'), 'junk'), expect: whole },
  {
    what: 'the last segment renumbered past a gap',
    damage: (d) => {
      const last = segments(d).at(-1)!;
      renameSync(join(d, 'wal', last), join(d, 'wal', renumbered(last, 2)));
    },
    expect: { code: 'WAL_CORRUPT', names: 'segment sequence has a gap' },
  },
  {
    what: 'a copy of the last segment under the next number',
    damage: (d) => {
      const last = segments(d).at(-1)!;
      cpSync(join(d, 'wal', last), join(d, 'wal', renumbered(last, 1)));
    },
    expect: { code: 'WAL_CORRUPT', names: 'segment header does not match the file name' },
  },
  {
    what: "another WAL's segment under the first segment's name",
    damage: (d) => writeFileSync(join(d, 'wal', segments(d)[0]!), readFileSync(join(other.dir, 'wal', segments(other.dir)[0]!))),
    expect: { code: 'WAL_CORRUPT', names: 'corrupt WAL record in $D/wal/\\w+-\\w+-\\w+.wal at offset 0: record of an earlier use of this file' },
  },

  {
    what: 'a directory in the place of the last segment: WAL_CORRUPT, as anywhere else, not WAL_IO',
    damage: (d) => {
      const last = join(d, 'wal', segments(d).at(-1)!);
      rmSync(last);
      mkdirSync(last);
    },
    expect: { code: 'WAL_CORRUPT', names: '$D/wal/\\w+-\\w+-\\w+.wal is not a regular file, so not a segment file' },
  },

  // The WAL's other files
  { what: 'next.prealloc deleted', damage: (d) => rmSync(join(d, 'wal', 'next.prealloc')), expect: whole },
  { what: 'next.prealloc cut short', damage: (d) => truncateSync(join(d, 'wal', 'next.prealloc'), 20), expect: whole },
  { what: 'next.prealloc holding junk', damage: (d) => writeFileSync(join(d, 'wal', 'next.prealloc'), 'junk'), expect: whole },
  {
    what: 'a directory in the place of next.prealloc',
    damage: (d) => {
      rmSync(join(d, 'wal', 'next.prealloc'));
      mkdirSync(join(d, 'wal', 'next.prealloc'));
    },
    expect: { code: 'WAL_CORRUPT', names: '$D/wal/next.prealloc is not a regular file' },
  },
  { what: 'a recycled segment holding junk', damage: (d) => writeFileSync(join(d, 'wal', 'recycled.prealloc'), 'junk'), expect: whole },
  { what: 'a released segment holding junk', damage: (d) => writeFileSync(join(d, 'wal', `${segments(d)[0]!}.released`), 'junk'), expect: whole },
  { what: 'LOCK holding bytes', damage: (d) => writeFileSync(join(d, 'wal', 'LOCK'), 'junk'), expect: whole },
  {
    what: 'a directory in the place of LOCK',
    damage: (d) => {
      rmSync(join(d, 'wal', 'LOCK'));
      mkdirSync(join(d, 'wal', 'LOCK'));
    },
    expect: { code: 'WAL_IO', names: 'lock file $D/wal/LOCK: Is a directory' },
  },
  {
    what: 'a stray file in wal/',
    damage: (d) => writeFileSync(join(d, 'wal', 'x.tmp'), 'junk'),
    expect: { code: 'WAL_CORRUPT', names: 'unexpected file x.tmp in WAL directory $D/wal' },
  },
  {
    what: 'a stray directory in wal/',
    damage: (d) => mkdirSync(join(d, 'wal', 'junk')),
    expect: { code: 'WAL_CORRUPT', names: 'unexpected file junk in WAL directory $D/wal' },
  },

  // The files beside them
  { what: 'a stray file in the data directory', damage: (d) => writeFileSync(join(d, 'x.tmp'), 'junk'), expect: whole },
  { what: 'the instance id without its newline', damage: (d) => truncateSync(join(d, 'instance'), 32), expect: whole },
  { what: 'an empty record of the peers instances', damage: (d) => writeFileSync(join(d, 'peer-instances'), ''), expect: whole },
  { what: 'a stray temporary file of the peers instances', damage: (d) => writeFileSync(join(d, 'peer-instances.tmp'), 'junk'), expect: whole },
];

let other: { dir: string; cleanup(): void };
beforeAll(async () => {
  other = tempDir('raftlog-table-');
  made.push(other);
  const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: other.dir, stateMachine: new RecordingMachine() });
  await log.append(enc('another'));
  await log.close();
});

/** Opens `dir`: what it applied, or the refusal. */
async function open(dir: string): Promise<{ applied: string[] } | { err: Error & { code?: string } }> {
  const machine = new RecordingMachine();
  try {
    const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: dir, stateMachine: machine });
    try {
      await log.barrier();
      return { applied: machine.applied.map((a) => a.data) };
    } finally {
      await log.close();
    }
  } catch (err) {
    return { err: err as Error };
  }
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, (c) => (c === '$' ? '\\$' : `\\${c}`));

describe('a data directory damaged one way at a time', () => {
  it.each(rows)('$what', async (row) => {
    const d = tempDir('raftlog-table-');
    made.push(d);
    cpSync(pristine.dir, d.dir, { recursive: true });
    row.damage(d.dir);
    const first = await open(d.dir);
    if ('whole' in row.expect) {
      expect(first).toEqual({ applied: Array.from({ length: RECORDS }, (_, i) => record(i)) });
      return;
    }
    expect(first).toHaveProperty('err');
    const err = (first as { err: Error & { code?: string } }).err;
    expect({ code: err.code, message: err.message }).toMatchObject({
      code: row.expect.code,
      message: expect.stringMatching(new RegExp(row.expect.names.split('$D').join(escape(d.dir)))),
    });
    expect(fdsUnder(d.dir)).toEqual([]);
    // The lock was released: the same refusal again, not WAL_LOCKED.
    const again = await open(d.dir);
    expect(again).toMatchObject({ err: { code: row.expect.code } });
  });
});

// `raftlog inspect` says what the log's open would: for each way a copy of a real data directory
// is damaged, inspect's first damage line carries the code the open refuses with, or, where the
// open keeps every record, inspect exits 0. A refusal of the snapshot's data comes before the WAL
// opens, so that the directory is left as it was written.
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { main as inspect } from '../../src/cli/inspect.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { FileSnapshotStore, readSnapshotFile } from '../../src/storage/snapshot-store.js';
import { addon } from '../../src/wal/addon.js';
import { writeTail } from '../../src/wal/tail.js';
import { RecordingMachine, enc, tempDir, tornTail, waitFor } from '../log/helpers.js';

/** A log in one segment, which the WAL never releases: every entry and marker stays in it. */
const OPTIONS = { id: 1, snapshotEvery: 10, snapshotCatchUpEntries: 0 };

const made: Array<{ cleanup(): void }> = [];
let pristine: string;
/** Another directory made the same way: the same log and snapshot, under another instance id. */
let other: string;

async function made30(): Promise<string> {
  const t = tempDir('raftlog-agree-');
  made.push(t);
  const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: t.dir, stateMachine: new RecordingMachine() });
  for (let i = 0; i < 30; i++) {
    await log.append(enc(`r${i}`));
    // Each snapshot taken, its marker written, before the next record: the layout is the same each run.
    const applied = log.status().applied;
    if (applied % 10 === 1) await waitFor('a snapshot', () => log.status().snapshotIndex === applied);
  }
  await log.close();
  expect(addon().scan(join(t.dir, 'wal')).segments).toHaveLength(1);
  expect(snapshotFiles(t.dir)).toHaveLength(1);
  return t.dir;
}

beforeAll(async () => {
  pristine = await made30();
  other = await made30();
});
afterAll(() => {
  for (const m of made) m.cleanup();
});
afterEach(() => vi.restoreAllMocks());

const snapshotFiles = (dir: string): string[] => readdirSync(join(dir, 'snapshots')).filter((n) => n.endsWith('.snap'));

/** The held snapshot's file rewritten, its meta kept, with data that is not the log's (a valid checksum over it). */
async function undecodableData(dir: string): Promise<void> {
  const file = join(dir, 'snapshots', snapshotFiles(dir)[0]!);
  const { meta } = await readSnapshotFile(file, false);
  const store = await FileSnapshotStore.open(join(dir, 'snapshots'));
  await store.save({ meta, data: enc('bytes that are no snapshot data of the log') });
}

interface Row {
  what: string;
  damage(dir: string): void | Promise<void>;
  /** The code both refuse with, `$D` in `names` the directory; undefined: the open keeps every record. */
  code?: string;
  names?: string;
  /** The open's refusal leaves every file as it was. */
  untouched?: true;
}

const rows: Row[] = [
  {
    what: 'wal a regular file: WAL_IO, the WAL directory not a directory',
    damage: (d) => {
      rmSync(join(d, 'wal'), { recursive: true });
      writeFileSync(join(d, 'wal'), 'not a directory');
    },
    code: 'WAL_IO',
    names: 'WAL directory $D/wal is not a directory',
  },
  {
    what: 'the WAL cut short before the marker of the snapshot held: STATE_CORRUPT, not the older marker’s file missing',
    damage: (d) => {
      const walDir = join(d, 'wal');
      const scan = addon().scan(walDir);
      const held = Number(/^snap-(\d+)-/.exec(snapshotFiles(d)[0]!)![1]);
      // Records are [kind, segment, offset, length, type, a, b, c]; an entry is kind 2, its index a.
      // Cut at the entry the held snapshot ends at: the log then ends before it, and the marker
      // left last is the one before, whose file the held snapshot's pruned.
      let cut: { segment: number; offset: number } | undefined;
      for (let k = 0; k < scan.records.length && cut === undefined; k += 8)
        if (scan.records[k] === 2 && scan.records[k + 5] === held) cut = { segment: scan.records[k + 1]!, offset: scan.records[k + 2]! };
      expect(cut).toBeDefined();
      truncateSync(join(walDir, scan.segments[cut!.segment]!.name), cut!.offset);
      for (const later of scan.segments.slice(cut!.segment + 1)) rmSync(join(walDir, later.name));
    },
    code: 'STATE_CORRUPT',
    names: 'the snapshot at index \\d+ term 1 is beyond the log',
  },
  {
    what: 'wal/ holding only TAIL: WAL_CORRUPT naming the segment TAIL records, not the log lost',
    damage: async (d) => {
      const walDir = join(d, 'wal');
      for (const n of readdirSync(walDir)) rmSync(join(walDir, n));
      await writeTail(walDir, { seq: 2, firstIndex: 20, stamp: 7, end: 4096 });
    },
    code: 'WAL_CORRUPT',
    names: 'segment $D/wal/0000000000000002-\\S+\\.wal is missing \\(the directory holds no segment\\)',
    untouched: true,
  },
  {
    what: 'an older snapshot file holding junk, which the open never reads',
    damage: (d) => writeFileSync(join(d, 'snapshots', 'snap-0000000000000005-1.snap'), 'junk'),
  },
  {
    what: 'the snapshot’s data not the log’s, and a torn tail: SNAPSHOT_CORRUPT naming the file, before the WAL cuts the tail',
    damage: async (d) => {
      await undecodableData(d);
      tornTail(d);
    },
    code: 'SNAPSHOT_CORRUPT',
    names: 'snapshot file $D/snapshots/snap-\\d+-1.snap is corrupt: its data is not in the raftlog snapshot format',
    untouched: true,
  },
  {
    what: 'another directory’s wal/ in place of this one’s: WAL_FOREIGN naming both instance ids, before the WAL cuts its torn tail',
    damage: (d) => {
      rmSync(join(d, 'wal'), { recursive: true });
      cpSync(join(other, 'wal'), join(d, 'wal'), { recursive: true });
      tornTail(d);
    },
    code: 'WAL_FOREIGN',
    names: 'the WAL $D/wal belongs to instance [0-9a-f]{32} \\($D/wal/OWNER\\), not to $D, whose instance is [0-9a-f]{32}',
    untouched: true,
  },
  {
    what: 'the WAL’s OWNER damaged: WAL_CORRUPT naming it',
    damage: (d) => writeFileSync(join(d, 'wal', 'OWNER'), 'junk'),
    code: 'WAL_CORRUPT',
    names: '$D/wal/OWNER is damaged \\(4 bytes, not 28\\)',
    untouched: true,
  },
  {
    what: 'the WAL without OWNER, as an earlier build wrote it: opened, and given it',
    damage: (d) => rmSync(join(d, 'wal', 'OWNER')),
  },
];

async function runInspect(dir: string): Promise<{ exit: number; damage: string[] }> {
  const damage: string[] = [];
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void damage.push(a.join(' ')));
  const exit = await inspect([dir]);
  vi.restoreAllMocks();
  return { exit, damage };
}

async function open(dir: string): Promise<{ applied: number } | { code?: string; message: string }> {
  const machine = new RecordingMachine();
  try {
    const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: dir, stateMachine: machine });
    try {
      await log.barrier();
      return { applied: machine.applied.length };
    } finally {
      await log.close();
    }
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  }
}

/** Every file under `dir` with a digest of its bytes and its modification time. */
function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const sub of ['', 'wal', 'snapshots'])
    for (const e of readdirSync(join(dir, sub), { withFileTypes: true }))
      if (e.isFile())
        out[join(sub, e.name)] = createHash('sha256')
          .update(readFileSync(join(dir, sub, e.name)))
          .digest('hex');
  return out;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, (c) => `\\${c}`);

it.each(rows)('$what', async (row) => {
  const t = tempDir('raftlog-agree-');
  made.push(t);
  const d = t.dir;
  cpSync(pristine, d, { recursive: true });
  await row.damage(d);
  const looked = await runInspect(d);
  const before = row.untouched === true ? files(d) : undefined;
  const opened = await open(d);
  if (row.code === undefined) {
    expect(looked).toEqual({ exit: 0, damage: [] });
    expect(opened).toEqual({ applied: expect.any(Number) });
    return;
  }
  const names = new RegExp(row.names!.split('$D').join(escape(d)));
  expect(opened).toMatchObject({ code: row.code, message: expect.stringMatching(names) });
  expect(looked.exit).toBe(1);
  expect(looked.damage).toEqual([expect.stringMatching(new RegExp(`^raftlog inspect: (snap-\\S+: )?${row.code}: `))]);
  expect(looked.damage[0]).toMatch(names);
  if (before !== undefined) expect(files(d)).toEqual(before);
});

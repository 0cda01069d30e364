// A data directory is disk input like any other. Each test takes a real log written by
// ReplicatedLog (a snapshot, entries after it, a clean close), damages it as a disk, a crash
// or an operator might, and opens it again: the open either keeps every acknowledged record
// or refuses with a code, and a refusal leaves no file descriptor and no lock behind, so
// that the same process opens the directory once it is repaired.
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { encodeSnapshotData } from '../../src/log/snapshot-data.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { Wal } from '../../src/wal/index.js';
import { readOwner } from '../../src/wal/owner.js';
import { RecordingMachine, enc, fdsUnder, tempDir, waitFor } from './helpers.js';

const crc32c = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };

const RECORDS = 25;
const OPTIONS = { id: 1, snapshotEvery: 10, snapshotCatchUpEntries: 0, segmentBytes: 64 * 1024 };

let pristine: { dir: string; cleanup(): void };
const dirs: Array<{ cleanup(): void }> = [];

beforeAll(async () => {
  pristine = tempDir('raftlog-damage-');
  const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: pristine.dir, stateMachine: new RecordingMachine() });
  for (let i = 0; i < RECORDS; i++) {
    await log.append(enc(`r${i}`));
    await new Promise((r) => setImmediate(r));
  }
  await waitFor('a snapshot', () => log.status().snapshotIndex >= 20);
  await log.close();
});
afterAll(() => pristine.cleanup());
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

/** A copy of the written log to damage. */
function copy(): string {
  const d = tempDir('raftlog-damage-');
  dirs.push(d);
  cpSync(pristine.dir, d.dir, { recursive: true });
  return d.dir;
}

const snapDir = (dir: string): string => join(dir, 'snapshots');
const snapFile = (dir: string): string => {
  const names = readdirSync(snapDir(dir)).filter((n) => n.endsWith('.snap'));
  expect(names).toHaveLength(1);
  return join(snapDir(dir), names[0]!);
};

/** Opens `dir` and checks that every acknowledged record is there, in order. */
async function opensWhole(dir: string): Promise<void> {
  const machine = new RecordingMachine();
  const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: dir, stateMachine: machine });
  try {
    await log.barrier();
    expect(machine.applied.map((a) => a.data)).toEqual(Array.from({ length: RECORDS }, (_, i) => `r${i}`));
  } finally {
    await log.close();
  }
}

/** Every file under `dir`, by its path and bytes. */
function contents(dir: string): string[] {
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(join(dir, f)).isFile());
  return files.sort().map((f) => `${f} ${readFileSync(join(dir, f)).toString('base64')}`);
}

/** Opens `dir`, expects the refusal `code` (and `message`), and checks nothing under `dir` is left open. */
async function refused(dir: string, code: string, message?: RegExp): Promise<Error> {
  const err = await ReplicatedLog.open({ ...OPTIONS, dataDir: dir, stateMachine: new RecordingMachine() }).then(
    async (log) => {
      const applied = log.status().applied;
      await log.close();
      throw new Error(`opened (applied ${applied}), expected ${code}`);
    },
    (e: unknown) => e as Error,
  );
  expect(err).toMatchObject({ code });
  if (message !== undefined) expect(err.message).toMatch(message);
  expect(fdsUnder(dir)).toEqual([]);
  return err;
}

describe('a damaged snapshot file is refused at open, and the directory opens once it is repaired', () => {
  it('truncated anywhere, or emptied', async () => {
    const size = readFileSync(snapFile(pristine.dir)).length;
    for (const n of [0, 10, 20, 24, size - 5, size - 1]) {
      const dir = copy();
      const file = snapFile(dir);
      const good = readFileSync(file);
      truncateSync(file, n);
      await refused(dir, 'SNAPSHOT_CORRUPT', /snap-\d+-1\.snap is corrupt/);
      writeFileSync(file, good);
      await opensWhole(dir);
    }
  });

  it('a bit flipped in the header, the meta, the data or the checksum', async () => {
    const size = readFileSync(snapFile(pristine.dir)).length;
    for (const at of [0, 7, 8, 11, 12, 19, 25, 60, size - 20, size - 1]) {
      const dir = copy();
      const file = snapFile(dir);
      const good = readFileSync(file);
      const bad = Buffer.from(good);
      bad[at]! ^= 0x10;
      writeFileSync(file, bad);
      await refused(dir, 'SNAPSHOT_CORRUPT');
      writeFileSync(file, good);
      await opensWhole(dir);
    }
  });

  it('of a later format: SNAPSHOT_VERSION (opened with the release that wrote it), not SNAPSHOT_CORRUPT, and the directory left as it was', async () => {
    const dir = copy();
    const file = snapFile(dir);
    const good = readFileSync(file);
    const later = Buffer.from(good);
    later.write('RLSNAP03', 0, 'latin1');
    writeFileSync(file, later);
    // What a WAL's open removes, as an unused prepared segment and a released one: the release that
    // wrote the directory finds them as it left them.
    const wal = join(dir, 'wal');
    const segment = readdirSync(wal).find((f) => f.endsWith('.wal'))!;
    writeFileSync(join(wal, 'next.prealloc'), Buffer.alloc(64, 7));
    writeFileSync(join(wal, `${segment}.released`), Buffer.alloc(64, 9));
    const before = contents(dir);
    await refused(dir, 'SNAPSHOT_VERSION', /in format 3,/);
    expect(contents(dir)).toEqual(before);
    writeFileSync(file, good);
    await opensWhole(dir);
  });

  it('renamed to another term, or gone: SNAPSHOT_MISSING names the snapshot the WAL records', async () => {
    const dir = copy();
    const file = snapFile(dir);
    renameSync(file, file.replace(/-1\.snap$/, '-2.snap'));
    await refused(dir, 'SNAPSHOT_MISSING', /records a snapshot at index \d+ term 1/);
    renameSync(file.replace(/-1\.snap$/, '-2.snap'), file);
    await opensWhole(dir);
  });

  it('replaced by a directory', async () => {
    const dir = copy();
    const file = snapFile(dir);
    const good = readFileSync(file);
    rmSync(file);
    mkdirSync(file);
    await refused(dir, 'SNAPSHOT_CORRUPT', /not a regular file/);
    rmSync(file, { recursive: true });
    writeFileSync(file, good);
    await opensWhole(dir);
  });
});

describe('what a crash or an operator leaves beside the snapshot', () => {
  it('a temporary file of a save that never finished is removed, and the log opens whole', async () => {
    const dir = copy();
    const file = snapFile(dir);
    writeFileSync(join(snapDir(dir), 'snap-0000000000000030-1.snap.tmp'), readFileSync(file).subarray(0, 40));
    await opensWhole(dir);
    expect(readdirSync(snapDir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('an older snapshot file than the one the WAL records is not used', async () => {
    const dir = copy();
    cpSync(snapFile(dir), join(snapDir(dir), 'snap-0000000000000005-1.snap'));
    await opensWhole(dir);
  });

  it('a snapshot received past the end of the log, whose install a crash cut short before the WAL recorded it, is not used, and goes at the next snapshot', async () => {
    const dir = copy();
    // A whole snapshot file at index 99, as a leader would send it, spooled and installed as the node does.
    const elsewhere = tempDir('raftlog-damage-');
    dirs.push(elsewhere);
    const meta = { index: 99, term: 1, conf: { voters: [1], learners: [] } };
    const data = encodeSnapshotData(
      [[1, 'embedded']],
      (async function* () {
        yield Buffer.from('state at 99');
      })(),
    );
    await (await FileSnapshotStore.open(elsewhere.dir)).save({ meta, data });
    const bytes = readFileSync(join(elsewhere.dir, readdirSync(elsewhere.dir)[0]!));
    const store = await FileSnapshotStore.open(snapDir(dir));
    const spool = await store.spool(meta, bytes.length);
    await spool.write(bytes);
    await store.install({ meta, data: await spool.finish() });
    expect(readdirSync(snapDir(dir)).sort()).toEqual([basename(snapFile(pristine.dir)), 'snap-0000000000000099-1.snap', 'snap-0000000000000099-1.snap.recv']);
    await opensWhole(dir);
    // Without the mark of a received snapshot, the same file says the WAL lost its end.
    const marked = copy();
    cpSync(snapDir(dir), snapDir(marked), { recursive: true });
    rmSync(join(snapDir(marked), 'snap-0000000000000099-1.snap.recv'));
    await refused(marked, 'STATE_CORRUPT', /snapshot at index 99 term 1 is beyond the log's last entry/);
    // The node's next snapshot prunes it, with its mark.
    const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: dir, stateMachine: new RecordingMachine() });
    const before = log.status().snapshotIndex;
    for (let i = 0; i < 10; i++) await log.append(enc(`more${i}`));
    await waitFor('the next snapshot', () => log.status().snapshotIndex > before);
    await log.close();
    expect(readdirSync(snapDir(dir))).toEqual([expect.stringMatching(/^snap-\d+-\d+\.snap$/)]);
  });
});

/** The WAL's only segment (the written log fits in one). */
function onlySegment(dir: string): string {
  const names = readdirSync(join(dir, 'wal')).filter((n) => n.endsWith('.wal'));
  expect(names).toHaveLength(1);
  return join(dir, 'wal', names[0]!);
}

/** A segment's records (docs/wal-format.md): offset, payload length and kind of each, up to the zero header after the last group. */
function walRecords(b: Buffer): Array<{ at: number; length: number; kind: number }> {
  const records: Array<{ at: number; length: number; kind: number }> = [];
  for (let at = 0; at + 16 <= b.length;) {
    const length = b.readUInt32LE(at + 4);
    if (length === 0 && b[at + 8] === 0) break;
    records.push({ at, length, kind: b[at + 8]! });
    at += Math.ceil((16 + length) / 8) * 8;
  }
  return records;
}

describe('a damaged WAL is refused at open, and the directory opens once it is repaired', () => {
  const segment = onlySegment;

  it('a bit flipped in a record that later groups follow: WAL_CORRUPT naming the file', async () => {
    const dir = copy();
    const file = segment(dir);
    const good = readFileSync(file);
    for (const at of [0, 20, 60, 200]) {
      const bad = Buffer.from(good);
      bad[at]! ^= 0x01;
      writeFileSync(file, bad);
      const err = await refused(dir, 'WAL_CORRUPT', / at offset \d+/);
      expect(err.message).toContain(file);
    }
    writeFileSync(file, good);
    await opensWhole(dir);
  });

  it('a segment header of a later format, whole: WAL_VERSION', async () => {
    const dir = copy();
    const file = segment(dir);
    const good = readFileSync(file);
    const later = Buffer.from(good);
    later.write('raftwal9', 16, 'latin1');
    later.writeUInt32LE(crc32c.buf(later.subarray(4, 40)) >>> 0, 0);
    writeFileSync(file, later);
    await refused(dir, 'WAL_VERSION', /format 9/);
    writeFileSync(file, good);
    await opensWhole(dir);
  });

  it('a LOCK file deleted under it: WAL_LOCK_MISSING, until an empty one is made', async () => {
    const dir = copy();
    rmSync(join(dir, 'wal', 'LOCK'));
    await refused(dir, 'WAL_LOCK_MISSING');
    writeFileSync(join(dir, 'wal', 'LOCK'), '');
    await opensWhole(dir);
  });
});

describe('a snapshot beyond the end of the log', () => {
  it('with no marker for it, from a WAL cut short at a record boundary (no torn write to see), is STATE_CORRUPT, not a node that forgot it and then pruned it', async () => {
    const dir = copy();
    const file = onlySegment(dir);
    const good = readFileSync(file);
    const records = walRecords(good);
    // The end of the last group before the first snapshot marker and before the entry at the held
    // snapshot's index: there the log reads as whole, with no marker, and ends below the snapshot.
    // (When the first snapshot is taken is up to the scheduler: its marker may follow that entry.)
    const held = Number(/^snap-(\d+)-/.exec(basename(snapFile(dir)))![1]);
    const cut = records.find((r) => r.kind === 4 || (r.kind === 2 && Number(good.readBigUInt64LE(r.at + 16)) >= held))!;
    const end = records.filter((r) => r.kind === 5 && r.at < cut.at).at(-1)!;
    truncateSync(file, end.at + 32);
    await refused(dir, 'STATE_CORRUPT', /snapshot at index \d+ term 1 is beyond the log's last entry \d+/);
    writeFileSync(file, good);
    await opensWhole(dir);
  });
});

describe('the hard state against the log', () => {
  const rewriteHardState = async (dir: string, hs: (old: { term: number; vote: number; commit: number }) => { term: number; vote: number; commit: number }) => {
    const wal = await Wal.open(join(dir, 'wal'));
    try {
      await wal.append([], hs(wal.hardState));
    } finally {
      await wal.close();
    }
  };

  /**
   * Rewrites the latest hard state record (or the first record of `kind`) of a WAL's only segment as
   * `patch` says, with its checksum and those of the job markers after it recomputed
   * (docs/wal-format.md): what a disk cannot do, and a program that writes the format can, so only
   * the checks above the WAL's framing can refuse it.
   */
  function forgeHardState(dir: string, patch: (b: Buffer, payload: number) => unknown, kind?: number): void {
    const file = onlySegment(dir);
    const b = readFileSync(file);
    const records = walRecords(b);
    const crc = (r: { at: number; length: number }): number => b.writeUInt32LE(crc32c.buf(b.subarray(r.at + 4, r.at + 16 + r.length)) >>> 0, r.at);
    const hs = kind === undefined ? records.filter((r) => r.kind === 3).at(-1)! : records.find((r) => r.kind === kind)!;
    patch(b, hs.at + 16);
    crc(hs);
    for (const m of records.filter((r) => r.kind === 5)) {
      // A job marker: the CRC32C of the CRC fields of the records from its start offset up to it.
      const start = Number(b.readBigUInt64LE(m.at + 16));
      const group = records.filter((r) => r.kind !== 5 && r.at >= start && r.at < m.at);
      b.writeUInt32LE(crc32c.buf(Buffer.concat(group.map((r) => b.subarray(r.at, r.at + 4)))) >>> 0, m.at + 28);
      crc(m);
    }
    writeFileSync(file, b);
  }

  it('a vote past 2^53, no node id, is STATE_CORRUPT: the WAL would refuse the next hard state that carries it, stopping the node', async () => {
    const dir = copy();
    forgeHardState(dir, (b, at) => b.writeBigUInt64LE(2n ** 60n, at + 8));
    await refused(dir, 'STATE_CORRUPT', /vote/);
    const same = copy();
    forgeHardState(same, () => {}); // the forging alone is no damage
    await opensWhole(same);
  });

  it('a hard state whose term falls below an earlier one, or whose vote changes within its term, is STATE_CORRUPT: no node writes either', async () => {
    const fell = copy();
    forgeHardState(fell, (b, at) => b.writeBigUInt64LE(0n, at)); // term 1, vote 1 before it
    await refused(fell, 'STATE_CORRUPT', /hard state term 0 is below the term 1 of the hard state before it/);
    const revoted = copy();
    forgeHardState(revoted, (b, at) => b.writeBigUInt64LE(2n, at + 8));
    await refused(revoted, 'STATE_CORRUPT', /hard state votes for 2 in term 1, in which the hard state before it voted for 1/);
  });

  it('a snapshot marker whose term disagrees with the entry at its index, without the flag of a received snapshot, is STATE_CORRUPT', async () => {
    const dir = copy();
    // The first marker (a local snapshot), moved to the last entry written before it, so that the
    // entries after it still extend the log, and given another term.
    const b = readFileSync(onlySegment(dir));
    const records = walRecords(b);
    const marker = records.find((r) => r.kind === 4)!;
    const index = b.readBigUInt64LE(records.filter((r) => r.kind === 2 && r.at < marker.at).at(-1)!.at + 16);
    forgeHardState(
      dir,
      (f, at) => {
        f.writeBigUInt64LE(index, at);
        f.writeBigUInt64LE(7n, at + 8);
      },
      4,
    );
    await refused(dir, 'STATE_CORRUPT', new RegExp(`snapshot marker at index ${index} has term 7, but the entry there has term 1`));
  });

  it('a commit index beyond the last entry is STATE_CORRUPT, a damaged directory as the README lists them', async () => {
    const dir = copy();
    await rewriteHardState(dir, (hs) => ({ ...hs, commit: 1000 }));
    await refused(dir, 'STATE_CORRUPT', /commit 1000 is beyond the last entry \d+/);
  });

  it('a commit index below the snapshot is raised to it: the snapshot is committed state', async () => {
    const dir = copy();
    await rewriteHardState(dir, (hs) => ({ ...hs, commit: 1 }));
    await opensWhole(dir);
  });
});

describe('the WAL and the snapshots without each other', () => {
  it('a missing wal/ beside the snapshots is STATE_CORRUPT, and nothing is created: a new node there could vote twice in a term', async () => {
    const dir = copy();
    renameSync(join(dir, 'wal'), join(dir, 'wal.saved'));
    await refused(dir, 'STATE_CORRUPT', /no wal\/ directory.*snap-\d+-1\.snap/);
    expect(existsSync(join(dir, 'wal'))).toBe(false);
    renameSync(join(dir, 'wal.saved'), join(dir, 'wal'));
    await opensWhole(dir);
  });

  it("a WAL emptied of its segments, or of its only segment's bytes, beside the snapshots is WAL_CORRUPT, and nothing is made in their place", async () => {
    const segments = (dir: string): string[] => readdirSync(join(dir, 'wal')).filter((n) => n.endsWith('.wal'));
    expect(segments(pristine.dir)).toHaveLength(1);
    const emptied = copy();
    const saved = readFileSync(join(emptied, 'wal', segments(emptied)[0]!));
    rmSync(join(emptied, 'wal', segments(emptied)[0]!));
    await refused(emptied, 'WAL_CORRUPT', /holds no segment/);
    expect(segments(emptied)).toEqual([]);
    writeFileSync(join(emptied, 'wal', segments(pristine.dir)[0]!), saved);
    await opensWhole(emptied);

    const zeroed = copy();
    truncateSync(join(zeroed, 'wal', segments(zeroed)[0]!), 0);
    await refused(zeroed, 'WAL_CORRUPT', /at offset 0: missing segment header/);
  });

  it('a missing snapshots/ is SNAPSHOT_MISSING, and nothing is created', async () => {
    const dir = copy();
    renameSync(snapDir(dir), `${snapDir(dir)}.saved`);
    await refused(dir, 'SNAPSHOT_MISSING', /snapshots has no such file/);
    expect(existsSync(snapDir(dir))).toBe(false);
    renameSync(`${snapDir(dir)}.saved`, snapDir(dir));
    await opensWhole(dir);
  });
});

describe('wal/ or snapshots/ that cannot hold their files', () => {
  /**
   * Puts `put` in the place of `name` in a copy of the log, expects the open refused with `code`
   * saying `why` (and nothing made in the data directory), then puts the directory back and opens it whole.
   */
  async function refusedInPlace(name: 'wal' | 'snapshots', code: string, put: (at: string) => void, why: (at: string) => string): Promise<void> {
    const dir = copy();
    const at = join(dir, name);
    renameSync(at, `${at}.saved`);
    put(at);
    const err = await refused(dir, code, new RegExp(`directory ${why(at)}`));
    expect(err.message).not.toMatch(/EEXIST|ENOENT|rename/);
    expect(readdirSync(dir).sort()).toEqual(['instance', 'snapshots', 'wal', `${name}.saved`].sort());
    rmSync(at);
    renameSync(`${at}.saved`, at);
    await opensWhole(dir);
  }

  it('a file in the place of snapshots/ or wal/ is refused at open with a code naming it, and the directory opens once it is put back', async () => {
    const file = (at: string): void => writeFileSync(at, 'not a directory');
    await refusedInPlace('snapshots', 'SNAPSHOT_DIR_UNUSABLE', file, (at) => `${at} is not a directory`);
    await refusedInPlace('wal', 'WAL_IO', file, (at) => `${at} is not a directory`);
  });

  it('a symbolic link to nothing in the place of snapshots/ or wal/ (a volume not mounted) is refused at open, and nothing is made', async () => {
    const link = (at: string): void => symlinkSync(`${at}.unmounted`, at);
    const why = (at: string): string => `${at} is a symbolic link to ${at}.unmounted, which does not exist`;
    await refusedInPlace('snapshots', 'SNAPSHOT_DIR_UNUSABLE', link, why);
    await refusedInPlace('wal', 'WAL_IO', link, why);
    // Where a new node would make snapshots/ (the WAL records no snapshot): not made through the link either.
    const fresh = tempDir('raftlog-damage-');
    dirs.push(fresh);
    link(join(fresh.dir, 'snapshots'));
    await refused(fresh.dir, 'SNAPSHOT_DIR_UNUSABLE', new RegExp(why(join(fresh.dir, 'snapshots'))));
    expect(existsSync(join(fresh.dir, 'snapshots.unmounted'))).toBe(false);
  });
});

describe('a data directory that cannot be looked up', () => {
  it('a loop of symbolic links is refused at open with a code that names it, not as a failure outside raftlog codes', async () => {
    const t = tempDir('raftlog-damage-');
    dirs.push(t);
    const [a, b] = [join(t.dir, 'a'), join(t.dir, 'b')];
    symlinkSync(b, a);
    symlinkSync(a, b);
    await refused(a, 'DATA_DIR_UNUSABLE', new RegExp(`data directory ${a} cannot be looked up \\(ELOOP\\)`));
  });
});

describe('a log that never took a snapshot', () => {
  let young: { dir: string; cleanup(): void };
  beforeAll(async () => {
    young = tempDir('raftlog-damage-');
    const log = await ReplicatedLog.open({ ...OPTIONS, snapshotEvery: 1000, dataDir: young.dir, stateMachine: new RecordingMachine() });
    for (let i = 0; i < 5; i++) await log.append(enc(`r${i}`));
    await log.close();
  });
  afterAll(() => young.cleanup());

  const copyYoung = (): string => {
    const d = tempDir('raftlog-damage-');
    dirs.push(d);
    cpSync(young.dir, d.dir, { recursive: true });
    return d.dir;
  };
  /** Opens `dir`, a copy put back as it was, with its five records. */
  const opensYoung = async (dir: string): Promise<void> => {
    const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: dir, stateMachine: new RecordingMachine() });
    expect(log.status().lastIndex).toBeGreaterThanOrEqual(5);
    await log.close();
  };

  it('with its only segment emptied or deleted is WAL_CORRUPT, not a new node that could vote again in a term it voted in', async () => {
    const emptied = copyYoung();
    const file = onlySegment(emptied);
    const good = readFileSync(file);
    truncateSync(file, 0);
    await refused(emptied, 'WAL_CORRUPT', /at offset 0: missing segment header/);
    writeFileSync(file, good);
    await opensYoung(emptied);

    const deleted = copyYoung();
    rmSync(onlySegment(deleted));
    await refused(deleted, 'WAL_CORRUPT', /holds no segment/);
    expect(readdirSync(join(deleted, 'wal')).filter((n) => n.endsWith('.wal'))).toEqual([]);
  });

  it('with wal/ missing beside its instance file is STATE_CORRUPT, and nothing is created: peers would take a new node there, with no vote, for the instance they knew', async () => {
    const dir = copyYoung();
    renameSync(join(dir, 'wal'), join(dir, 'wal.saved'));
    await refused(dir, 'STATE_CORRUPT', /no wal\/ directory.*instance/);
    expect(existsSync(join(dir, 'wal'))).toBe(false);
    renameSync(join(dir, 'wal.saved'), join(dir, 'wal'));
    await opensYoung(dir);
  });

  it('with wal/ emptied of every file (LOCK too) beside its instance file is STATE_CORRUPT, and nothing is made there: it is no empty directory to make a WAL in', async () => {
    const dir = copyYoung();
    renameSync(join(dir, 'wal'), join(dir, 'wal.saved'));
    mkdirSync(join(dir, 'wal'));
    await refused(dir, 'STATE_CORRUPT', /wal\/ directory .* is empty.*instance/);
    expect(readdirSync(join(dir, 'wal'))).toEqual([]);
    rmSync(join(dir, 'wal'), { recursive: true });
    renameSync(join(dir, 'wal.saved'), join(dir, 'wal'));
    await opensYoung(dir);
  });

  it('with wal/ holding no file of a WAL, only what a volume formatted again holds (lost+found), beside its instance file is STATE_CORRUPT, and nothing is made there', async () => {
    const dir = copyYoung();
    renameSync(join(dir, 'wal'), join(dir, 'wal.saved'));
    mkdirSync(join(dir, 'wal', 'lost+found'), { recursive: true });
    await refused(dir, 'STATE_CORRUPT', /wal\/ directory .* holds no WAL.*instance/);
    expect(readdirSync(join(dir, 'wal'))).toEqual(['lost+found']);
    // Nor once the stray directory is gone: no new WAL was left there by the refusal to open as one.
    rmSync(join(dir, 'wal', 'lost+found'), { recursive: true });
    await refused(dir, 'STATE_CORRUPT', /wal\/ directory .* is empty.*instance/);
  });
});

describe("the directory's instance id and its record of the peers' instances", () => {
  const ID = /^[0-9a-f]{32}\n$/;

  // Lost where the WAL names the id (its OWNER), the file is refused instead: see foreign-wal.test.ts.
  it('a directory with a log but no instance file, whose WAL names none (an older version made both), gets a new id, kept after, which the WAL is given', async () => {
    const dir = copy();
    rmSync(join(dir, 'instance'));
    rmSync(join(dir, 'wal', 'OWNER'));
    await opensWhole(dir);
    const made = readFileSync(join(dir, 'instance'), 'utf8');
    expect(made).toMatch(ID);
    expect(made).not.toBe(readFileSync(join(pristine.dir, 'instance'), 'utf8'));
    expect(await readOwner(join(dir, 'wal'))).toBe(made.trim());
    await opensWhole(dir);
    expect(readFileSync(join(dir, 'instance'), 'utf8')).toBe(made);
  });

  it('a damaged instance file is refused with STATE_CORRUPT, and kept as it is', async () => {
    for (const bad of ['', '0123', 'g'.repeat(32), 'A'.repeat(32), `${'a'.repeat(32)}\n\n`, 'a'.repeat(33), 'a'.repeat(4096)]) {
      const dir = copy();
      writeFileSync(join(dir, 'instance'), bad);
      await refused(dir, 'STATE_CORRUPT', /instance.* is not an instance id/);
      expect(readFileSync(join(dir, 'instance'), 'utf8')).toBe(bad);
    }
  });

  it('a damaged or oversized peer-instances file is refused with STATE_CORRUPT; a whole one opens', async () => {
    const good = `2 ${'a'.repeat(32)} 0\n3 ${'b'.repeat(32)} 9007199254740991\n`;
    const whole = copy();
    writeFileSync(join(whole, 'peer-instances'), good);
    await opensWhole(whole);
    expect(readFileSync(join(whole, 'peer-instances'), 'utf8')).toBe(good);
    const bad: Array<[string, RegExp]> = [
      [`2 ${'a'.repeat(32)} 1`, /ends within a line/],
      [`2 ${'a'.repeat(31)} 1\n`, /line 1 is not/],
      [`0 ${'a'.repeat(32)} 1\n`, /line 1 is not/],
      [`99999999999999999 ${'a'.repeat(32)} 1\n`, /line 1 is not/],
      [`2 ${'a'.repeat(32)} \n`, /line 1 is not/],
      [`2 ${'a'.repeat(32)}\n`, /line 1 is not/],
      [`2 ${'a'.repeat(32)} 01\n`, /line 1 is not/],
      [`2 ${'a'.repeat(32)} -1\n`, /line 1 is not/],
      [`2 ${'a'.repeat(32)} 9007199254740992\n`, /line 1 is not/],
      [`2 ${'a'.repeat(32)} 1 1\n`, /line 1 is not/],
      [`2 ${'a'.repeat(32)} 1\n2 ${'b'.repeat(32)} 2\n`, /names node 2 twice/],
      [`2 ${'a'.repeat(32)} 1\n\n`, /line 2 is not/],
      [`2 ${'a'.repeat(32)} 1\n`.repeat(2000), /is over 65536 bytes/],
    ];
    for (const [text, why] of bad) {
      const dir = copy();
      writeFileSync(join(dir, 'peer-instances'), text);
      await refused(dir, 'STATE_CORRUPT', why);
    }
  });

  it('a directory in the place of either file is refused with STATE_CORRUPT, and left as it is', async () => {
    for (const name of ['instance', 'peer-instances']) {
      const dir = copy();
      rmSync(join(dir, name), { force: true });
      mkdirSync(join(dir, name));
      await refused(dir, 'STATE_CORRUPT', new RegExp(`${name} is not a file`));
      expect(statSync(join(dir, name)).isDirectory()).toBe(true);
    }
  });

  it('a FIFO in the place of either file is refused with STATE_CORRUPT, not waited on for a writer', async () => {
    for (const name of ['instance', 'peer-instances']) {
      const dir = copy();
      rmSync(join(dir, name), { force: true });
      execFileSync('mkfifo', [join(dir, name)]);
      await refused(dir, 'STATE_CORRUPT', new RegExp(`${name} is not a file`));
      expect(statSync(join(dir, name)).isFIFO()).toBe(true);
    }
  });
});

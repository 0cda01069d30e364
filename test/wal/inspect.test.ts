import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/inspect.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { StateMachine } from '../../src/log/state-machine.js';
import { Wal } from '../../src/wal/index.js';
import { addon } from '../../src/wal/addon.js';
import { cleanTempDirs, range, tempDir } from './helpers.js';

afterEach(() => {
  cleanTempDirs();
  vi.restoreAllMocks();
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const code = await main(args);
  vi.restoreAllMocks();
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/**
 * A node's data directory after `appends` records, with a snapshot every 50. `holdSnapshot`:
 * the state machine's snapshot stream yields only once the last record is acknowledged, as on
 * a loaded disk, where the first snapshot is still being written when the log closes, and so
 * is the only one (the next comes due only after it is written).
 */
async function nodeDir(appends: number, { holdSnapshot = false } = {}): Promise<string> {
  const dataDir = tempDir();
  let release = (): void => undefined;
  const released = new Promise<void>((r) => (release = r));
  const held: StateMachine = {
    apply: () => undefined,
    snapshot: () =>
      (async function* () {
        await released;
        yield new Uint8Array(0);
      })(),
    restore: async (data) => {
      for await (const _ of data);
    },
  };
  const log = await ReplicatedLog.open({ dataDir, snapshotEvery: 50, ...(holdSnapshot ? { stateMachine: held } : {}) });
  for (let i = 0; i < appends; i++) await log.append(Uint8Array.of(i));
  release();
  await log.close();
  return dataDir;
}

describe('raftlog inspect', () => {
  it('lists segments and records of a healthy WAL and exits 0', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { segmentBytes: 8192 });
    await wal.append(range(1, 201, 2), { term: 2, vote: 1, commit: 150 });
    await wal.saveSnapshot({ index: 100, term: 2 });
    await wal.close();
    const r = await run([dir, '--records']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/segment\(s\), every checksum verified/);
    expect(r.out).toMatch(/0000000000000001-0000000000000001-[0-9a-f]{12}\.wal/);
    expect(r.out).toContain('latest hard state: term 2, vote 1, commit 150');
    expect(r.out).toContain('latest snapshot marker: index 100, term 2');
    expect(r.out).toMatch(/entry {2}index 200 term 2/);
  });

  it('exits 1 on corruption, naming the file and offset', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { segmentBytes: 8192 });
    await wal.append(range(1, 201, 1));
    await wal.close();
    const file = join(
      dir,
      readdirSync(dir)
        .filter((f) => f.endsWith('.wal'))
        .sort()[0]!,
    );
    const buf = readFileSync(file);
    buf[40 + 20] ^= 0xff; // inside the first entry, just after the segment header record
    writeFileSync(file, buf);
    const r = await run([dir]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(file);
    expect(r.err).toContain('offset 40');
  });

  it('exits 1 with NO_WAL, one line and no usage, when the path does not exist, is a file, or holds no WAL', async () => {
    // It was a usage error, exit 2, the usage printed after the line that said what was wrong.
    const missing = join(tempDir(), 'missing');
    const gone = await run([missing]);
    expect(gone.code).toBe(1);
    expect(gone.err).toBe(`raftlog inspect: NO_WAL: ${missing} does not exist (give a node's data directory (it holds wal/))`);
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'not a directory');
    const onPlainFile = await run([file]);
    expect(onPlainFile.code).toBe(1);
    expect(onPlainFile.err).toBe(`raftlog inspect: NO_WAL: ${file} is not a directory (give a node's data directory (it holds wal/))`);
    const empty = await run([tempDir()]);
    expect(empty.code).toBe(1);
    expect(empty.err).toMatch(/^raftlog inspect: NO_WAL: there is no WAL in/);
    // A wal/ that is no directory is what the WAL's open refuses it as: one line, not a stack trace.
    const walFile = tempDir();
    writeFileSync(join(walFile, 'wal'), 'not a directory');
    const onFile = await run([walFile]);
    expect(onFile.code).toBe(1);
    expect(onFile.err).toBe(`raftlog inspect: WAL_IO: WAL directory ${join(walFile, 'wal')} is not a directory`);
    // --debug, which every command takes, is no unknown option here either.
    const debug = await run([tempDir(), '--debug']);
    expect(debug.code).toBe(1);
    expect(debug.err).toMatch(/there is no WAL in/);
  });

  it('reports a missing first segment, which every checksum alone would not show', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { segmentBytes: 8192 });
    await wal.append(range(1, 201, 1));
    await wal.close();
    unlinkSync(
      join(
        dir,
        readdirSync(dir)
          .filter((f) => f.endsWith('.wal'))
          .sort()[0]!,
      ),
    );
    const r = await run([dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/segments are missing/);
  });

  it('reports a last segment deleted or cut to its header, and a damaged TAIL, as the WAL refuses to open them', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { segmentBytes: 8192 });
    await wal.append(range(1, 201, 1));
    await wal.close();
    const last = join(
      dir,
      readdirSync(dir)
        .filter((f) => f.endsWith('.wal'))
        .sort()
        .at(-1)!,
    );
    const bytes = readFileSync(last);
    truncateSync(last, 40);
    const cut = await run([dir]);
    expect(cut.code).toBe(1);
    expect(cut.err).toContain(`WAL_CORRUPT`);
    expect(cut.err).toContain(`segment ${last} is 40 bytes long, but ${join(dir, 'TAIL')} records entries synced in it`);
    unlinkSync(last);
    const gone = await run([dir]);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain(`segment ${last} is missing`);
    writeFileSync(last, bytes);
    writeFileSync(join(dir, 'TAIL'), 'junk');
    const damaged = await run([dir]);
    expect(damaged.code).toBe(1);
    expect(damaged.err).toContain(`${join(dir, 'TAIL')} is damaged`);
  });

  it('exits 1 on what the WAL refuses to open though every record is intact: a segment that lost its last entries at a record boundary', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { segmentBytes: 8192 });
    await wal.append(range(1, 201, 1, 0, 100));
    await wal.close();
    // The first segment's last record zeroed: that segment reads as cleanly ended, the next one
    // starts after a gap.
    const scan = addon().scan(dir);
    let last = -1;
    for (let k = 0; k < scan.records.length; k += 8) if (scan.records[k + 1] === 0) last = scan.records[k + 2]!;
    const file = join(dir, scan.segments[0]!.name);
    const bytes = readFileSync(file);
    bytes.fill(0, last, scan.segments[0]!.end);
    writeFileSync(file, bytes);
    await expect(Wal.open(dir)).rejects.toMatchObject({ code: 'WAL_CORRUPT' });
    const r = await run([dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^raftlog inspect: WAL_CORRUPT: segment .* starts at entry \d+, but the segments before it end at entry \d+: entries are missing$/);
  });

  it('exits 1 on a data directory the log refuses to open as STATE_CORRUPT: a snapshot past the end of a WAL that lost its end', async () => {
    // Which snapshots a directory holds depends on how long the first took to write: the second
    // (due 50 records later) is taken only once the first is written, never after the close.
    for (const holdSnapshot of [false, true]) {
      const dataDir = await nodeDir(120, { holdSnapshot });
      const walDir = join(dataDir, 'wal');
      const scan = addon().scan(walDir);
      // The snapshot held is the one the WAL recorded last.
      let snapshot = 0;
      for (let k = 0; k < scan.records.length; k += 8) if (scan.records[k] === 4) snapshot = Math.max(snapshot, scan.records[k + 5]!);
      // The segment cut at the snapshot's own entry: whole as far as it goes, with that entry,
      // those after it and the snapshot's marker (written after them) gone.
      let cut: { segment: number; offset: number } | undefined;
      for (let k = 0; k < scan.records.length && cut === undefined; k += 8)
        if (scan.records[k] === 2 && scan.records[k + 5] === snapshot) cut = { segment: scan.records[k + 1]!, offset: scan.records[k + 2]! };
      expect(cut, `entry ${snapshot}, where the snapshot is, in the WAL (holdSnapshot ${holdSnapshot})`).toBeDefined();
      truncateSync(join(walDir, scan.segments[cut!.segment]!.name), cut!.offset);
      await expect(ReplicatedLog.open({ dataDir }), `holdSnapshot ${holdSnapshot}`).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
      const r = await run([dataDir]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        new RegExp(`^raftlog inspect: STATE_CORRUPT: .*the snapshot at index ${snapshot} term \\d+ is beyond the log's last entry ${snapshot - 1}`, 'm'),
      );
    }
  });

  it('exits 1 on a directory a restore did not finish, which the log refuses to open as RESTORE_INCOMPLETE, with or without its WAL', async () => {
    const dir = await nodeDir(10);
    writeFileSync(join(dir, 'restore-incomplete'), '');
    const r = await run([dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^raftlog inspect: RESTORE_INCOMPLETE: a restore did not finish in .*: run it again/);
    expect(r.out).toMatch(/every checksum verified/); // and the rest is looked at
    // Stopped before it made the WAL: what is wrong is the restore, not a missing WAL.
    rmSync(join(dir, 'wal'), { recursive: true });
    const bare = await run([dir]);
    expect(bare.code).toBe(1);
    expect(bare.err).toMatch(/^raftlog inspect: RESTORE_INCOMPLETE: /);
  });

  it('exits 1 on a directory a recover did not finish, which the log refuses to open as RECOVER_INCOMPLETE', async () => {
    const dir = await nodeDir(10);
    writeFileSync(join(dir, 'recover-incomplete'), '');
    await expect(ReplicatedLog.open({ dataDir: dir })).rejects.toMatchObject({ code: 'RECOVER_INCOMPLETE' });
    const r = await run([dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^raftlog inspect: RECOVER_INCOMPLETE: a recover did not finish in .*: run it again/);
    expect(r.out).toMatch(/every checksum verified/); // and the rest is looked at
  });

  it('exits 1, with the code the WAL refuses to open it with, on a LOCK that is a directory or is missing beside segments', async () => {
    const dir = await nodeDir(10);
    const lock = join(dir, 'wal', 'LOCK');
    rmSync(lock);
    await expect(ReplicatedLog.open({ dataDir: dir })).rejects.toMatchObject({ code: 'WAL_LOCK_MISSING' });
    const missing = await run([dir]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^raftlog inspect: WAL_LOCK_MISSING: WAL directory .* holds segments but no LOCK file/);
    expect(missing.out).toMatch(/every checksum verified/); // and the rest is looked at
    mkdirSync(lock);
    await expect(ReplicatedLog.open({ dataDir: dir })).rejects.toMatchObject({ code: 'WAL_IO', message: `open lock file ${lock}: Is a directory` });
    for (const target of [dir, join(dir, 'wal')]) {
      const r = await run([target]);
      expect(r.code).toBe(1);
      expect(r.err).toBe(`raftlog inspect: WAL_IO: open lock file ${lock}: Is a directory`);
    }
  });

  it('exits 1 on a directory in the place of the prepared segment, which the WAL refuses to open (WAL_CORRUPT)', async () => {
    const dir = await nodeDir(10);
    const prealloc = join(dir, 'wal', 'next.prealloc');
    rmSync(prealloc, { force: true });
    mkdirSync(prealloc);
    await expect(ReplicatedLog.open({ dataDir: dir })).rejects.toMatchObject({ code: 'WAL_CORRUPT' });
    const r = await run([dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^raftlog inspect: WAL_CORRUPT: .*next\.prealloc is not a regular file/);
  });

  it("checks a node's data directory: the WAL and every snapshot file, the current one included", async () => {
    const dataDir = await nodeDir(120);
    const ok = await run([dataDir]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/every checksum verified/);
    expect(ok.out).toMatch(/snapshots .*: 1 file\(s\)/);
    expect(ok.out).toMatch(/snap-\d+-\d+\.snap {2}index \d+, term \d+, \d+ bytes, voters 1, checksum verified/);
    // A damaged snapshot file, then a missing one: both are damage.
    const snaps = join(dataDir, 'snapshots');
    const file = join(snaps, readdirSync(snaps)[0]!);
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(file, bytes);
    const damaged = await run([dataDir]);
    expect(damaged.code).toBe(1);
    expect(damaged.err).toMatch(/^raftlog inspect: snap-\d+-\d+\.snap: SNAPSHOT_CORRUPT: .*checksum mismatch$/);
    unlinkSync(file);
    const missing = await run([dataDir]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^raftlog inspect: SNAPSHOT_MISSING: the WAL.s snapshot marker .* which is missing$/);
  });

  it('reports what is named like a snapshot file but is no file (a directory, a FIFO) and exits 1, looking at the rest', async () => {
    const dataDir = await nodeDir(60);
    mkdirSync(join(dataDir, 'snapshots', 'snap-0000000000000001-1.snap'));
    const fifo = join(dataDir, 'snapshots', 'snap-0000000000000002-1.snap');
    execFileSync('mkfifo', [fifo]);
    try {
      // A FIFO once held inspect in open() until a writer came: it must answer by itself.
      const r = await Promise.race([
        run([dataDir]),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('inspect still waiting after 3 s')), 3000)),
      ]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/snap-0000000000000001-1\.snap: .*not a regular file/);
      expect(r.err).toMatch(/snap-0000000000000002-1\.snap: .*not a regular file/);
      expect(r.out).toMatch(/index \d+, term \d+, \d+ bytes, voters 1, checksum verified/); // the other one still checked
    } finally {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)); // frees a reader blocked on it, if any
      } catch {
        // no reader: nothing is blocked
      }
    }
  });

  it('exits 1 with one coded line on a snapshots/ that is no directory (no stack trace), and on a stray file in wal/', async () => {
    const dataDir = await nodeDir(60);
    const snaps = join(dataDir, 'snapshots');
    rmSync(snaps, { recursive: true });
    writeFileSync(snaps, 'not a directory');
    const notDir = await run([dataDir]);
    expect(notDir.code).toBe(1);
    expect(notDir.err).toMatch(/^raftlog inspect: ENOTDIR: /m);
    expect(notDir.err).not.toMatch(/\n\s+at /);
    writeFileSync(join(dataDir, 'wal', 'stray.txt'), 'x');
    const stray = await run([dataDir]);
    expect(stray.code).toBe(1);
    expect(stray.err).toMatch(/^raftlog inspect: WAL_CORRUPT: unexpected file stray\.txt/);
  });

  it("writes out the control characters of the names it prints: a file's name is the directory's, not the terminal's", async () => {
    const dataDir = await nodeDir(60);
    const snaps = join(dataDir, 'snapshots');
    const snap = readdirSync(snaps)[0]!;
    writeFileSync(join(snaps, 'a\x1b]0;owned\x07.snap'), readFileSync(join(snaps, snap)));
    const listed = await run([dataDir]);
    expect(listed.out).toContain('a\\x1b]0;owned\\x07.snap');
    writeFileSync(join(dataDir, 'wal', 'x\x1b[2J\n.txt'), '');
    const stray = await run([dataDir]);
    expect(stray.code).toBe(1);
    expect(stray.err).toMatch(/^raftlog inspect: WAL_CORRUPT: unexpected file x\\x1b\[2J\\x0a\.txt/);
    for (const text of [listed.out, listed.err, stray.out, stray.err]) expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  });
});

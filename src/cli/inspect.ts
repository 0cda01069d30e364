// `raftlog inspect <dir> [--records]`: checks a node's data directory (its `wal/`
// and `snapshots/`) or a bare WAL directory. Lists the WAL's segments (with
// --records every record), verifying every CRC and that the records make one log
// as the WAL's open checks it (no segment or entry missing), and verifies every
// snapshot file, the one the WAL points at included.
// Read-only: it takes no lock and repairs nothing. A directory a process holds open is
// refused (WAL_LOCKED): a running node changes it as it is read. Exits 1 on damage, naming the file and offset; a torn tail is
// reported but is not damage (the next open cuts it off).
import { constants, existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { access, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { refuseUndecodableSnapshot } from '../log/data-dir.js';
import { checkStoredState } from '../storage/raft-storage.js';
import { heldSnapshots, readSnapshotFile } from '../storage/snapshot-store.js';
import { readInstanceId, refuseForeignWal } from '../storage/instance-id.js';
import { readPeerInstances } from '../storage/peer-instances.js';
import { DataDirError, SnapshotVersionError, StorageError } from '../storage/errors.js';
import { RECOVER, RESTORE, unfinished } from '../storage/unfinished.js';
import { addon, type NativeScan } from '../wal/addon.js';
import { WalIoError, WalLockMissingError, WalLockedError, fromNative, type WalError } from '../wal/errors.js';
import { lockHolder } from '../wal/lock-holder.js';
import { replay, type Replayed } from '../wal/replay.js';
import { TAIL_NAME, checkTail } from '../wal/tail.js';
import { usableDir } from '../wal/usable-dir.js';
import { UsageError } from './args.js';
import { CliError, EXIT, runCommand } from './failure.js';
import { printable } from '../printable.js';

const KINDS: Record<number, string> = { 2: 'entry', 3: 'hardstate', 4: 'snapshot' };
const USAGE = `usage: raftlog inspect <data dir | wal dir> [--records] [--debug]
Verifies every WAL record's checksum, that no segment is missing, and every snapshot
file, and what the node's open would refuse; prints the directory's instance id and
the instance it recorded for each peer. Each damage found is one line on stderr,
its code first (WAL_CORRUPT, WAL_LOCK_MISSING, WAL_IO, SNAPSHOT_CORRUPT, SNAPSHOT_MISSING,
STATE_CORRUPT, DATA_DIR_UNUSABLE, RESTORE_INCOMPLETE, RECOVER_INCOMPLETE, or the failed system
call's: ENOTDIR, EACCES), the code the node's open refuses with. A damaged snapshot file older
than the one the node starts from, which it never reads, is listed but is no damage.
A directory a running process holds open (a node's) is refused with WAL_LOCKED.
A path that does not exist or is no directory is refused with NO_WAL.
Exit status 0 when nothing is damaged (a torn tail is not damage), 1 when something is
or there is nothing to inspect, 2 for a usage error.`;

export async function main(args: string[]): Promise<number> {
  return runCommand('inspect', USAGE, args, async (a) => {
    const dirs = a.filter((x) => !x.startsWith('-'));
    const unknown = a.find((x) => x.startsWith('-') && x !== '--records');
    if (unknown !== undefined) throw new UsageError(`unknown option ${unknown}`);
    const dir = dirs[0];
    if (dir === undefined) throw new UsageError('which directory?');
    if (dirs.length > 1) throw new UsageError(`unexpected argument '${dirs[1]}' (one directory at a time)`);
    // A path with no WAL at it, as recover words it: a mistyped --data is no usage error, and the
    // usage it printed hid the one line that said what was wrong.
    const kind = pathKind(dir);
    if (kind !== 'directory') throw new CliError('NO_WAL', kind === 'missing' ? `${dir} does not exist` : `${dir} is not a directory`);
    // What the log's open refuses before it reads anything; the rest is looked at all the same.
    let bad = 0;
    // A data directory this process cannot write, checked as the open checks it (asking, not
    // writing). A bare WAL directory is the WAL's, whose open asks only for its own.
    if (!isWalDir(dir)) {
      try {
        await usableDir(dir, (why) => new DataDirError(why));
      } catch (err) {
        if (!isCoded(err)) throw err;
        damage(coded(err));
        bad++;
      }
    }
    for (const rewrite of [RESTORE, RECOVER]) {
      if (await unfinished(dir, rewrite)) {
        damage(coded(rewrite.refusal(dir)));
        bad++;
      }
    }
    // A node's data directory holds wal/ and snapshots/; a WAL directory holds segments or LOCK.
    // A wal/ that is there but no directory the WAL can open is refused as the WAL's open
    // refuses it, not taken for a directory with no WAL at all.
    let isDataDir: boolean;
    try {
      isDataDir = await usableDir(join(dir, 'wal'), (why) => new WalIoError(`WAL directory ${why}`), READ_ONLY_PROBE);
    } catch (err) {
      if (!isCoded(err)) throw err;
      damage(coded(err));
      return EXIT.failed;
    }
    const walDir = isDataDir ? join(dir, 'wal') : dir;
    const names = readdirSync(walDir);
    // A data directory's wal/ holding TAIL but no segment lost them: the log's open names the
    // segment TAIL records before it looks for LOCK.
    if (isDataDir && names.includes(TAIL_NAME) && !names.some((f) => f.endsWith('.wal'))) {
      try {
        await checkTail(walDir);
      } catch (err) {
        if (!isCoded(err)) throw err;
        damage(coded(err));
        return EXIT.failed;
      }
    }
    if (!names.some((f) => f.endsWith('.wal') || f === 'LOCK')) {
      if (bad > 0) return EXIT.failed; // a restore stopped before it made the WAL
      throw new CliError('NO_WAL', `there is no WAL in ${dir} (neither segments nor a wal/ directory)`);
    }
    // A running node changes the directory as it is read: a snapshot taken or pruned between
    // reading the WAL and the snapshots was reported as SNAPSHOT_MISSING or STATE_CORRUPT.
    const holder = lockHolder(walDir);
    if (holder !== null)
      throw new WalLockedError(
        `${walDir} is open in process ${holder} (its LOCK is held), which changes it as it would be read: stop the node, then inspect it`,
      );
    const refused = lockRefusal(walDir);
    if (refused !== undefined) {
      damage(coded(refused));
      bad++;
    }
    let marker: { index: number; term: number } | null;
    let log: Replayed;
    try {
      // TAIL's claim, checked as the WAL's open checks it.
      const { keep } = await checkTail(walDir);
      const scan = addon().scan(walDir, keep?.name, keep?.end);
      marker = reportWal(walDir, scan, a.includes('--records'));
      // Intact records may still not make one log (a segment that lost its end at a record
      // boundary reads as cleanly ended): what the WAL's open refuses, reported as it would be.
      log = replay(walDir, scan);
    } catch (err) {
      const e = fromNative(err);
      if (!isCoded(e)) throw e;
      damage(coded(e));
      return EXIT.failed;
    }
    const snapDir = join(dir, 'snapshots');
    // What the log's open refuses as STATE_CORRUPT (a snapshot past the WAL's end among it). A
    // snapshots/ that cannot be read is reported below, and holds nothing to check against.
    const held = isDataDir ? await heldSnapshots(snapDir).catch(() => []) : [];
    const { positions } = log;
    let state: (Error & { code: string }) | undefined;
    try {
      checkStoredState(
        { hardState: log.hardState, snapshot: log.snapshot, firstIndex: positions.base + 1, lastIndex: positions.last, term: (i) => positions.term(i) },
        held,
      );
    } catch (err) {
      if (!isCoded(err)) throw err;
      state = err;
    }
    // The open refuses such a state before it looks for the marker's file: a WAL that lost its
    // end may name a snapshot that the newer one past its end replaced, which is no file to put back.
    const last = Math.max(positions.last, marker?.index ?? 0);
    if (isDataDir) bad += await reportSnapshots(snapDir, state === undefined ? marker : null, last);
    if (isDataDir) bad += await reportInstances(dir);
    if (state !== undefined) {
      damage(coded(state));
      bad++;
    }
    return bad > 0 ? EXIT.failed : EXIT.ok;
  });
}

/**
 * What the WAL's open refuses about LOCK before it reads a segment, worded as it words it: a LOCK
 * it cannot open as a file, or none beside segments (whoever removed it may still be writing).
 * Looked at, not opened: inspect takes no lock. Called once the directory holds segments or LOCK.
 */
function lockRefusal(walDir: string): WalError | undefined {
  const path = join(walDir, 'LOCK');
  try {
    if (statSync(path).isDirectory()) return new WalIoError(`open lock file ${path}: Is a directory`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code !== 'ENOENT') return new WalIoError(`open lock file ${path}: ${code}`);
    return new WalLockMissingError(
      `WAL directory ${walDir} holds segments but no LOCK file, so it may still be open in a process whose lock file was removed. ` +
        `Make sure no process uses it, then create an empty file ${path} and open it again`,
    );
  }
  return undefined;
}

/** Whether `dir` holds a WAL's segments or LOCK itself, rather than a data directory's wal/. */
function isWalDir(dir: string): boolean {
  try {
    return readdirSync(dir).some((f) => f.endsWith('.wal') || f === 'LOCK');
  } catch {
    return false;
  }
}

/** Whether `path` is a directory; a failure other than its absence (EACCES, ELOOP) is thrown, coded. */
function pathKind(path: string): 'directory' | 'other' | 'missing' {
  try {
    return statSync(path).isDirectory() ? 'directory' : 'other';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
}

/** usableDir's look at a directory, asking only to read it: inspect writes nothing. */
const READ_ONLY_PROBE = { stat, readlink, access: (path: string) => access(path, constants.R_OK | constants.X_OK) };

/**
 * A line of the report. It names files, whose names are the directory's (a damaged or hostile
 * one's), so their control characters are written out rather than sent to the terminal.
 */
function say(line: string): void {
  console.log(printable(line));
}

/** What inspect found wrong: one line on stderr, its code first. */
function damage(line: string): void {
  console.error(printable(`raftlog inspect: ${line}`));
}

/** `CODE: message`, the code once (a failed system call's message begins with it). */
function coded(err: Error & { code: string }): string {
  return err.message.startsWith(`${err.code}: `) ? err.message : `${err.code}: ${err.message}`;
}

/** A raftlog error or a failed system call (a file that cannot be read, a directory that is a file): reported with its code. */
function isCoded(err: unknown): err is Error & { code: string } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

/** Prints the WAL's summary; returns its latest snapshot marker. */
function reportWal(dir: string, scan: NativeScan, records: boolean): { index: number; term: number } | null {
  const r = scan.records;
  const perSegment = scan.segments.map(() => ({ entries: 0, hardStates: 0, snapshots: 0, lo: Infinity, hi: -Infinity }));
  let hardState: string | null = null;
  let marker: { index: number; term: number; text: string } | null = null;
  for (let k = 0; k < r.length; k += 8) {
    const [kind, seg, offset, length, type, a, b, c] = [r[k]!, r[k + 1]!, r[k + 2]!, r[k + 3]!, r[k + 4]!, r[k + 5]!, r[k + 6]!, r[k + 7]!];
    const s = perSegment[seg]!;
    if (kind === 2) {
      s.entries++;
      s.lo = Math.min(s.lo, a);
      s.hi = Math.max(s.hi, a);
    } else if (kind === 3) {
      s.hardStates++;
      hardState = `term ${a}, vote ${b}, commit ${c}`;
    } else if (kind === 4) {
      s.snapshots++;
      marker = { index: a, term: b, text: `index ${a}, term ${b}, ${length - 16} bytes of meta${(type & 1) !== 0 ? ', discarded the log' : ''}` };
    }
    if (records) {
      const name = scan.segments[seg]!.name;
      const fields =
        kind === 2 ? `index ${a} term ${b} type ${type} data ${length - 16} B` : kind === 3 ? `term ${a} vote ${b} commit ${c}` : `index ${a} term ${b}`;
      say(`${name} @${offset}  ${KINDS[kind] ?? kind}  ${fields}`);
    }
  }
  say(`WAL ${dir}: ${scan.segments.length} segment(s), every checksum verified`);
  scan.segments.forEach((seg, i) => {
    const s = perSegment[i]!;
    const range = s.entries > 0 ? `entries ${s.lo}..${s.hi}` : 'no entries';
    say(`  ${seg.name}  ${seg.end} of ${seg.size} bytes used, ${s.entries} entries (${range}), ${s.hardStates} hard states, ${s.snapshots} snapshot markers`);
  });
  say(`  latest hard state: ${hardState ?? 'none'}`);
  say(`  latest snapshot marker: ${marker?.text ?? 'none'}`);
  if (scan.torn !== null)
    say(
      `  torn tail: ${scan.torn.droppedBytes} bytes at ${scan.torn.file} offset ${scan.torn.offset} (a write cut short by a crash, never acknowledged; the next open cuts it off)`,
    );
  return marker;
}

/** The directory's instance id and the peers' instances it recorded; returns how many of those files the log's open would refuse. */
async function reportInstances(dir: string): Promise<number> {
  const reports: Array<() => Promise<void>> = [
    async () => {
      say(`instance: ${(await readInstanceId(dir)) ?? 'none (the next open makes one)'}`);
      say(`WAL owner: ${(await refuseForeignWal(dir)) ?? "none (the next open writes this directory's instance)"}`);
    },
    async () => {
      const peers = await readPeerInstances(dir);
      say(`peer instances: ${peers.size}`);
      for (const [id, r] of peers) say(`  node ${id}: ${r.instance} (recorded at applied index ${r.applied})`);
    },
  ];
  let bad = 0;
  for (const report of reports) {
    try {
      await report();
    } catch (err) {
      if (!isCoded(err)) throw err;
      damage(coded(err));
      bad++;
    }
  }
  return bad;
}

function snapshotName(index: number, term: number): string {
  return `snap-${index.toString().padStart(16, '0')}-${term}.snap`;
}

/**
 * Verifies every snapshot file; the one the WAL's marker names must be there. Returns how many are
 * damaged or missing. A damaged one the open never reads (older than the marker's, at or below
 * `last`, the log's end) is reported but is not damage: the next snapshot's prune removes it.
 */
async function reportSnapshots(dir: string, marker: { index: number; term: number } | null, last: number): Promise<number> {
  let bad = 0;
  let files: string[] = [];
  try {
    if (existsSync(dir))
      files = readdirSync(dir)
        .filter((f) => f.endsWith('.snap'))
        .sort();
  } catch (err) {
    if (!isCoded(err)) throw err;
    damage(coded(err));
    bad++;
  }
  say(`snapshots ${dir}: ${files.length} file(s)`);
  const markerFile = marker === null ? undefined : snapshotName(marker.index, marker.term);
  const damaged = new Set<string>();
  for (const f of files) {
    try {
      const s = await readSnapshotFile(join(dir, f), false);
      say(`  ${f}  index ${s.meta.index}, term ${s.meta.term}, ${s.dataBytes} bytes, voters ${s.meta.conf.voters.join(',')}, checksum verified`);
    } catch (err) {
      // A damaged file, one that is no file at all (a directory, a FIFO, a link), or one that cannot
      // be read (no permission): reported, and the next one looked at. Anything else is a bug of this command's.
      const unreadable = isCoded(err) && (err as NodeJS.ErrnoException).syscall !== undefined;
      if (!(err instanceof StorageError) && !unreadable) throw err;
      // The open refuses anything but a regular file under a snapshot's name, and another
      // release's format, wherever it is; what an older file holds it never reads.
      const index = Number(/^snap-(\d+)-/.exec(f)?.[1] ?? NaN);
      const unused = f !== markerFile && index <= last && !(err instanceof SnapshotVersionError) && lstatSync(join(dir, f)).isFile();
      if (unused) {
        say(`  ${f}  not used (older than the snapshot the log starts from), removed by the next snapshot: ${coded(err)}`);
        continue;
      }
      damage(`${f}: ${coded(err)}`);
      damaged.add(f);
      bad++;
    }
  }
  // What the open decodes of the snapshot it restores, refused as it refuses it.
  const newest = (await heldSnapshots(dir).catch(() => [])).filter((h) => h.received !== true).at(-1);
  if (newest !== undefined && !damaged.has(newest.name)) {
    try {
      await refuseUndecodableSnapshot(dir);
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
      damage(`${newest.name}: ${coded(err)}`);
      bad++;
    }
  }
  if (marker !== null && marker.index > 0) {
    const want = markerFile!;
    if (!files.includes(want)) {
      damage(`SNAPSHOT_MISSING: the WAL's snapshot marker (index ${marker.index}, term ${marker.term}) names ${join(dir, want)}, which is missing`);
      bad++;
    }
  }
  return bad;
}

// `raftlog inspect <dir> [--records]`: checks a node's data directory (its `wal/`
// and `snapshots/`) or a bare WAL directory. Lists the WAL's segments (with
// --records every record), verifying every CRC and that no segment is missing,
// and verifies every snapshot file, the one the WAL points at included.
// Read-only: it takes no lock and repairs nothing, so it is safe next to a
// running node. Exits 1 on damage, naming the file and offset; a torn tail is
// reported but is not damage (the next open cuts it off).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readSnapshotFile } from '../storage/snapshot-store.js';
import { StorageError } from '../storage/errors.js';
import { addon, type NativeScan } from '../wal/addon.js';
import { fromNative, WalError } from '../wal/errors.js';
import { checkNothingMissing } from '../wal/missing.js';

const KINDS: Record<number, string> = { 2: 'entry', 3: 'hardstate', 4: 'snapshot' };
const USAGE = 'usage: raftlog inspect <data dir | wal dir> [--records] [--debug]';

export async function main(args: string[]): Promise<number> {
  const dirs = args.filter((a) => !a.startsWith('-'));
  const dir = dirs[0];
  const unknown = args.filter((a) => a.startsWith('-') && !['--records', '--debug', '--help', '-h'].includes(a));
  if (args.includes('--help') || args.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  if (dir === undefined || dirs.length > 1 || unknown.length > 0) {
    const why =
      unknown.length > 0
        ? `unknown option ${unknown[0]}`
        : dir === undefined
          ? 'which directory?'
          : `unexpected argument '${dirs[1]}' (one directory at a time)`;
    console.error(`raftlog inspect: ${why}\n${USAGE}`);
    return 2;
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    console.error(`raftlog inspect: ${dir} is not a directory`);
    return 2;
  }
  // A node's data directory holds wal/ and snapshots/; a WAL directory holds segments or LOCK.
  const isDataDir = existsSync(join(dir, 'wal')) && statSync(join(dir, 'wal')).isDirectory();
  const walDir = isDataDir ? join(dir, 'wal') : dir;
  if (!readdirSync(walDir).some((f) => f.endsWith('.wal') || f === 'LOCK')) {
    console.error(`raftlog inspect: NO_WAL: there is no WAL in ${dir} (neither segments nor a wal/ directory)`);
    return 1;
  }
  let scan: NativeScan;
  let marker: { index: number; term: number } | null;
  try {
    scan = addon().scan(walDir);
    marker = reportWal(walDir, scan, args.includes('--records'));
    checkNothingMissing(walDir, scan.segments[0], marker?.index ?? null);
  } catch (err) {
    const e = fromNative(err);
    if (args.includes('--debug') && e.stack !== undefined) console.error(e.stack);
    console.error(`raftlog inspect: ${e.message}`);
    return e instanceof WalError && (e.code === 'WAL_CORRUPT' || e.code === 'WAL_VERSION') ? 1 : 2;
  }
  return isDataDir ? reportSnapshots(join(dir, 'snapshots'), marker) : 0;
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
      console.log(`${name} @${offset}  ${KINDS[kind] ?? kind}  ${fields}`);
    }
  }
  console.log(`WAL ${dir}: ${scan.segments.length} segment(s), every checksum verified`);
  scan.segments.forEach((seg, i) => {
    const s = perSegment[i]!;
    const range = s.entries > 0 ? `entries ${s.lo}..${s.hi}` : 'no entries';
    console.log(
      `  ${seg.name}  ${seg.end} of ${seg.size} bytes used, ${s.entries} entries (${range}), ${s.hardStates} hard states, ${s.snapshots} snapshot markers`,
    );
  });
  console.log(`  latest hard state: ${hardState ?? 'none'}`);
  console.log(`  latest snapshot marker: ${marker?.text ?? 'none'}`);
  if (scan.torn !== null)
    console.log(
      `  torn tail: ${scan.torn.droppedBytes} bytes at ${scan.torn.file} offset ${scan.torn.offset} (a write cut short by a crash, never acknowledged; the next open cuts it off)`,
    );
  return marker;
}

/** Verifies every snapshot file; the one the WAL's marker names must be there. Returns the exit code. */
async function reportSnapshots(dir: string, marker: { index: number; term: number } | null): Promise<number> {
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.snap'))
        .sort()
    : [];
  console.log(`snapshots ${dir}: ${files.length} file(s)`);
  let bad = 0;
  for (const f of files) {
    try {
      const s = await readSnapshotFile(join(dir, f), false);
      console.log(`  ${f}  index ${s.meta.index}, term ${s.meta.term}, ${s.dataBytes} bytes, voters ${s.meta.conf.voters.join(',')}, checksum verified`);
    } catch (err) {
      // A damaged file, one that is no file at all (a directory, a FIFO, a link), or one that cannot
      // be read (no permission): reported, and the next one looked at. Anything else is a bug of this command's.
      const unreadable =
        err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).syscall !== undefined;
      if (!(err instanceof StorageError) && !unreadable) throw err;
      console.error(`raftlog inspect: ${f}: ${(err as Error).message}`);
      bad++;
    }
  }
  if (marker !== null && marker.index > 0) {
    const want = `snap-${marker.index.toString().padStart(16, '0')}-${marker.term}.snap`;
    if (!files.includes(want)) {
      console.error(`raftlog inspect: the WAL's snapshot marker (index ${marker.index}, term ${marker.term}) names ${join(dir, want)}, which is missing`);
      bad++;
    }
  }
  return bad > 0 ? 1 : 0;
}

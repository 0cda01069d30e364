// A data directory checked before the WAL opens on it, and made if missing: Wal.open
// would make a new, empty WAL wherever it finds none, so what only a lost or half-made
// node's directory holds is refused first, while it can still be put back.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDurableDir } from '../storage/durable-dir.js';
import { DataDirError, StateCorruptError } from '../storage/errors.js';
import { INSTANCE_FILE, refuseForeignWal } from '../storage/instance-id.js';
import { heldSnapshots, readSnapshotFileData, refuseOtherFormats } from '../storage/snapshot-store.js';
import { RECOVER, RESTORE, refuseUnfinished, type Rewrite } from '../storage/unfinished.js';
import { TAIL_NAME, checkTail } from '../wal/tail.js';
import { usableDir } from '../wal/usable-dir.js';
import { checkSnapshotData } from './snapshot-data.js';

/** Refuses a directory no node can run from, then makes it if it does not exist. */
export async function prepareDataDir(dataDir: string): Promise<void> {
  const present = await checkDataDir(dataDir);
  // Made here, not by the WAL, whose directories take the umask's mode (0755 with the usual 022).
  if (!present) await makeDurableDir(dataDir);
}

/**
 * Refuses a directory no node can run from, changing nothing: what the log's open refuses
 * before the WAL opens, and what an offline command that opens the WAL itself must refuse
 * alike (`unfinishedOk`: the rewrite the command is, which it runs again to finish). True if
 * the directory exists.
 */
export async function checkDataDir(dataDir: string, unfinishedOk?: Rewrite): Promise<boolean> {
  // The node writes its identity and its record of the peers' here, the latter only once it
  // meets a peer: a directory it cannot write would fail then, long after open() resolved.
  const present = await usableDir(dataDir, (why) => new DataDirError(why));
  // What a restore or a recover stopped halfway left is no node's state, whatever it holds.
  await refuseUnfinished(
    dataDir,
    [RESTORE, RECOVER].filter((r) => r !== unfinishedOk),
  );
  // Wal.open would make a new WAL where wal/ is missing or holds none: beside snapshots or the
  // instance id that is a lost log (see RaftStorage.open), refused before anything is
  // created, so that wal/ can be put back.
  await refuseLostWal(dataDir);
  // Another directory's WAL would vote with its log under this directory's instance id.
  await refuseForeignWal(dataDir);
  await refuseOtherFormats(join(dataDir, 'snapshots'));
  // The WAL's open cuts a torn tail and replaces its prepared segment: data the log cannot
  // decode (a later release's, say) is refused while the directory is as it was written.
  await refuseUndecodableSnapshot(join(dataDir, 'snapshots'));
  return present;
}

/**
 * Refuses with SNAPSHOT_CORRUPT (SNAPSHOT_DATA_VERSION for a later format) the snapshot the
 * open restores if its data is not the log's: the newest file not received from a peer, the
 * one the WAL records in a directory a node left (a newer one the WAL does not record is
 * refused all the same, and older ones are never read). A file that cannot be read, or is
 * damaged as a file, is left to the open that follows, which names what is wrong with it.
 */
export async function refuseUndecodableSnapshot(snapDir: string): Promise<void> {
  const newest = (await heldSnapshots(snapDir).catch(() => [])).filter((h) => h.received !== true).at(-1);
  if (newest === undefined) return;
  const file = join(snapDir, newest.name);
  let fileFailed = false;
  async function* data(): AsyncGenerator<Uint8Array> {
    try {
      yield* readSnapshotFileData(file);
    } catch (err) {
      fileFailed = true;
      throw err;
    }
  }
  await checkSnapshotData(data(), file).catch((err: unknown) => {
    if (!fileFailed) throw err;
  });
}

/** Whether anything is at `path` (a dangling link counts); false only for ENOENT. */
async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT'; // another failure: the open that follows reports it
  }
}

/**
 * Why `dir`, a directory, holds no WAL: it is empty, or holds neither LOCK nor a file the WAL
 * makes (what a volume formatted again holds, lost+found), which Wal.open refuses only as a
 * stray name (WAL_CORRUPT), not as the log lost. Undefined if it may hold one, or cannot be read
 * (the open that follows reports why).
 */
async function noWalIn(dir: string): Promise<string | undefined> {
  const names = await readdir(dir).catch(() => undefined);
  if (names === undefined) return undefined;
  if (names.length === 0) return `the wal/ directory ${dir} is empty`;
  const walFile = (n: string): boolean => n === 'LOCK' || n.endsWith('.wal') || n.endsWith('.prealloc') || n.endsWith('.released');
  if (names.some(walFile)) return undefined;
  // TAIL is written only once a WAL began its second segment: it names the segment lost, which
  // its check says (WAL_CORRUPT), where a lost wal/ would say only that the log was lost.
  if (names.includes(TAIL_NAME)) {
    await checkTail(dir);
    return undefined;
  }
  return `the wal/ directory ${dir} holds no WAL (no LOCK, no segment: only ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''})`;
}

/**
 * STATE_CORRUPT if `dataDir` has no WAL (no wal/, or one that Wal.open would make a new WAL in)
 * but holds what only a WAL leads to: snapshot files, or the instance id.
 */
async function refuseLostWal(dataDir: string): Promise<void> {
  const walDir = join(dataDir, 'wal');
  const lost = (await exists(walDir)) ? await noWalIn(walDir) : `there is no wal/ directory in ${dataDir}`;
  if (lost === undefined) return;
  const held = await heldSnapshots(join(dataDir, 'snapshots')).catch(() => []);
  const newest = held.at(-1);
  if (newest !== undefined)
    throw new StateCorruptError(
      `${lost}, but ${dataDir} holds the snapshot ${join(dataDir, 'snapshots', newest.name)}: ` +
        'the log and the term and vote that led to it were lost (put wal/ back, or restore the node from its peers)',
    );
  // The instance id is made only once the WAL beside it is durable. Kept, it would vouch to the
  // peers for a new WAL with no vote and no log as the instance that voted and acknowledged.
  const instance = join(dataDir, INSTANCE_FILE);
  if (await exists(instance))
    throw new StateCorruptError(
      `${lost}, but ${dataDir} holds the instance id ${instance} made beside its WAL: ` +
        'the log and the term and vote were lost (put wal/ back, or restore the node from its peers)',
    );
}

// A data directory that an operator command rewrites holds that command's marker from before the
// command changes anything there until everything it changes is durable, and the log's open
// refuses it meanwhile. Stopped halfway, `raftlog snapshot restore` leaves an empty WAL or a
// snapshot the WAL does not record, which opened would be a new member that votes and serves
// without the backup's state; `raftlog recover --force-new-cluster` leaves the old node without
// its record of its peers' instances (which would then trust a wiped copy of any of them), or
// the new cluster of one still holding that record (which would refuse the members added back).
// Run again, either command finishes what it began.
import { lstat, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDurableDir, syncDir } from './durable-dir.js';
import { RecoverIncompleteError, RestoreIncompleteError, type StorageError } from './errors.js';

/** An operator command that rewrites a data directory, as its marker names it. */
export interface Rewrite {
  /** The marker's name in the data directory. */
  readonly marker: string;
  /** What the marker says to whoever lists the directory. */
  readonly says: string;
  /** The open's refusal of a directory holding the marker. */
  refusal(dataDir: string): StorageError;
}

export const RESTORE: Rewrite = {
  marker: 'restore-incomplete',
  says: 'raftlog snapshot restore did not finish here: run it again\n',
  refusal: (dataDir) => new RestoreIncompleteError(dataDir),
};

export const RECOVER: Rewrite = {
  marker: 'recover-incomplete',
  says: 'raftlog recover --force-new-cluster did not finish here: run it again\n',
  refusal: (dataDir) => new RecoverIncompleteError(dataDir),
};

/** Whether `dataDir` holds the marker of `rewrite`. */
export async function unfinished(dataDir: string, rewrite: Rewrite): Promise<boolean> {
  try {
    await lstat(join(dataDir, rewrite.marker));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw err;
  }
}

/**
 * The refusal of the first of `rewrites` whose marker `dataDir` holds (RESTORE_INCOMPLETE,
 * RECOVER_INCOMPLETE). A directory that cannot be looked in (a loop of links, no permission) is
 * left to the open that follows, which refuses it with the code that names it (WAL_IO).
 */
export async function refuseUnfinished(dataDir: string, rewrites: readonly Rewrite[] = [RESTORE, RECOVER]): Promise<void> {
  for (const rewrite of rewrites) {
    if (await unfinished(dataDir, rewrite).catch(() => false)) throw rewrite.refusal(dataDir);
  }
}

/** Makes `dataDir` (durably, if missing) and the marker in it, durable before anything else is changed there. */
export async function markUnfinished(dataDir: string, rewrite: Rewrite): Promise<void> {
  await makeDurableDir(dataDir);
  const fh = await open(join(dataDir, rewrite.marker), 'w', 0o600);
  try {
    await fh.writeFile(rewrite.says);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await syncDir(dataDir);
}

/** Removes the marker, durably: the directory is a node's from then on. */
export async function unmarkUnfinished(dataDir: string, rewrite: Rewrite): Promise<void> {
  await unlink(join(dataDir, rewrite.marker));
  await syncDir(dataDir);
}

// A data directory that `raftlog snapshot restore` is seeding holds this file from before the
// restore makes anything there until everything it makes is durable. Whatever a restore stopped
// halfway leaves (an empty WAL, a snapshot the WAL does not record) is then told apart from a
// node's state: opened, an empty WAL would be a new member that votes and serves without the
// backup's state.
import { lstat, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDurableDir, syncDir } from './durable-dir.js';
import { RestoreIncompleteError } from './errors.js';

export const RESTORE_MARKER = 'restore-incomplete';

/** Whether `dataDir` holds a restore's marker. */
export async function restoreUnfinished(dataDir: string): Promise<boolean> {
  try {
    await lstat(join(dataDir, RESTORE_MARKER));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw err;
  }
}

/**
 * RESTORE_INCOMPLETE if `dataDir` holds a restore's marker. A directory that cannot be looked
 * in (a loop of links, no permission) is left to the open that follows, which refuses it with
 * the code that names it (WAL_IO).
 */
export async function refuseUnfinishedRestore(dataDir: string): Promise<void> {
  if (await restoreUnfinished(dataDir).catch(() => false)) throw new RestoreIncompleteError(dataDir);
}

/** Makes `dataDir` (durably, if missing) and the marker in it, durable before anything else is made there. */
export async function markRestore(dataDir: string): Promise<void> {
  await makeDurableDir(dataDir);
  const fh = await open(join(dataDir, RESTORE_MARKER), 'w');
  try {
    // For whoever lists the directory: what the file means, in its own words.
    await fh.writeFile('raftlog snapshot restore did not finish here: run it again\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await syncDir(dataDir);
}

/** Removes the marker, durably: the directory is a node's from then on. */
export async function unmarkRestore(dataDir: string): Promise<void> {
  await unlink(join(dataDir, RESTORE_MARKER));
  await syncDir(dataDir);
}

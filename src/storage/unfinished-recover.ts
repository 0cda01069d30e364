// A data directory that `raftlog recover --force-new-cluster` is rewriting holds this file from
// before the recover changes anything there until everything it changes is durable. Its steps
// (forgetting the peers' instances, the new snapshot, the WAL's record of it) cannot be made
// at once: stopped between them, the directory would be the old node without its record of its
// peers' instances, which would then trust a wiped copy of any of them, or the new cluster
// still holding that record, which would refuse the members added back.
import { lstat, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir } from './durable-dir.js';
import { RecoverIncompleteError } from './errors.js';

export const RECOVER_MARKER = 'recover-incomplete';

/**
 * RECOVER_INCOMPLETE if `dataDir` holds a recover's marker. A directory that cannot be looked
 * in is left to the open that follows, which refuses it with the code that names it.
 */
export async function refuseUnfinishedRecover(dataDir: string): Promise<void> {
  if (await recoverUnfinished(dataDir).catch(() => false)) throw new RecoverIncompleteError(dataDir);
}

/** Whether `dataDir` holds a recover's marker. */
export async function recoverUnfinished(dataDir: string): Promise<boolean> {
  try {
    await lstat(join(dataDir, RECOVER_MARKER));
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw err;
  }
}

/** Makes the marker in `dataDir`, durable before the recover changes anything there. */
export async function markRecover(dataDir: string): Promise<void> {
  const fh = await open(join(dataDir, RECOVER_MARKER), 'w');
  try {
    // For whoever lists the directory: what the file means, in its own words.
    await fh.writeFile('raftlog recover --force-new-cluster did not finish here: run it again\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await syncDir(dataDir);
}

/** Removes the marker, durably: the directory is the new cluster's node from then on. */
export async function unmarkRecover(dataDir: string): Promise<void> {
  await unlink(join(dataDir, RECOVER_MARKER));
  await syncDir(dataDir);
}

// OWNER: the instance id of the data directory this WAL belongs to. The WAL holds a node's
// votes and the log it acknowledged; a copy of another directory's, put in place of this
// one's, would answer the peers with a log and votes that are not this node's under an id
// they trust. The WAL only keeps the id: the data directory's layer decides whose it must be.
import { join } from 'node:path';
import { WalCorruptError } from './errors.js';
import { readSealed, seal, writeSealed } from './sealed-file.js';

export const OWNER_NAME = 'OWNER';
export const OWNER_TMP_NAME = 'OWNER.tmp';

/** "RLOWNR01": the file's magic and its format version. */
const MAGIC = [0x52, 0x4c, 0x4f, 0x57, 0x4e, 0x52, 0x30, 0x31];
const ID_BYTES = 16;
/** magic, the id's 16 bytes, then CRC32C u32 of the bytes before it. */
export const OWNER_BYTES = 28;

function damaged(path: string, why: string): WalCorruptError {
  return new WalCorruptError(
    `${path} is damaged (${why}): it cannot say which data directory's this WAL is (remove it only if you know this wal/ is this directory's own: the next open writes it again)`,
    path,
    -1,
  );
}

/** The id OWNER in WAL directory `dir` names, or null if there is none (a WAL an earlier build made, or not yet claimed). */
export async function readOwner(dir: string): Promise<string | null> {
  const path = join(dir, OWNER_NAME);
  // No wal/, or one that is no directory this process may search: the WAL's open says why.
  const u8 = await readSealed(path, OWNER_BYTES, MAGIC, (why) => damaged(path, why), ['ENOENT', 'ENOTDIR', 'EACCES']);
  return u8 === null ? null : Buffer.from(u8.subarray(MAGIC.length, MAGIC.length + ID_BYTES)).toString('hex');
}

/**
 * Writes OWNER naming `id` (32 lowercase hex digits) so that a crash leaves none or the whole
 * file. Only where there is none yet: an id, once written, is never replaced.
 */
export async function writeOwner(dir: string, id: string): Promise<void> {
  const u8 = new Uint8Array(OWNER_BYTES);
  u8.set(Buffer.from(id, 'hex'), MAGIC.length);
  await writeSealed(dir, OWNER_NAME, seal(MAGIC, u8));
}

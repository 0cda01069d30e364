// OWNER: the instance id of the data directory this WAL belongs to. The WAL holds a node's
// votes and the log it acknowledged; a copy of another directory's, put in place of this
// one's, would answer the peers with a log and votes that are not this node's under an id
// they trust. The WAL only keeps the id: the data directory's layer decides whose it must be.
import { constants } from 'node:fs';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from './crc32c.js';
import { WalCorruptError } from './errors.js';

export const OWNER_NAME = 'OWNER';
export const OWNER_TMP_NAME = 'OWNER.tmp';

/** "RLOWNR01": the file's magic and its format version. */
const MAGIC = [0x52, 0x4c, 0x4f, 0x57, 0x4e, 0x52, 0x30, 0x31];
const ID_BYTES = 16;
/** magic, the id's 16 bytes, then CRC32C u32 of the bytes before it. */
export const OWNER_BYTES = 28;
const CRC_AT = 24;
/** What an id is as the owner names it: 128 bits as lowercase hex. */
const ID = /^[0-9a-f]{32}$/;

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
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    // No wal/, or one that is no directory this process may search: the WAL's open says why.
    if (['ENOENT', 'ENOTDIR', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw err;
  }
  if (!st.isFile()) throw damaged(path, 'not a regular file');
  if (st.size !== OWNER_BYTES) throw damaged(path, `${st.size} bytes, not ${OWNER_BYTES}`);
  const u8 = new Uint8Array(OWNER_BYTES);
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const { bytesRead } = await fh.read(u8, 0, OWNER_BYTES, 0);
    if (bytesRead !== OWNER_BYTES) throw damaged(path, `${bytesRead} bytes read, not ${OWNER_BYTES}`);
  } finally {
    await fh.close();
  }
  if (MAGIC.some((b, k) => u8[k] !== b)) throw damaged(path, 'bad magic or version');
  if (new DataView(u8.buffer).getUint32(CRC_AT, true) !== crc32c(u8.subarray(0, CRC_AT))) throw damaged(path, 'checksum mismatch');
  return Buffer.from(u8.subarray(MAGIC.length, MAGIC.length + ID_BYTES)).toString('hex');
}

/**
 * Writes OWNER naming `id` (32 lowercase hex digits) so that a crash leaves none or the whole
 * file: to OWNER.tmp, synced, renamed, the directory synced. Only where there is none yet:
 * an id, once written, is never replaced.
 */
export async function writeOwner(dir: string, id: string): Promise<void> {
  if (!ID.test(id)) throw new TypeError(`an owner is 32 lowercase hex digits, not ${id}`);
  const u8 = new Uint8Array(OWNER_BYTES);
  u8.set(MAGIC, 0);
  u8.set(Buffer.from(id, 'hex'), MAGIC.length);
  new DataView(u8.buffer).setUint32(CRC_AT, crc32c(u8.subarray(0, CRC_AT)), true);
  const tmp = join(dir, OWNER_TMP_NAME);
  // One a crash left is made anew, never written through: a link under the name would be followed.
  await unlink(tmp).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.write(u8, 0, OWNER_BYTES, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, OWNER_NAME));
  const d = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

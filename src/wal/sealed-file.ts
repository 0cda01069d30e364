// The WAL directory's small files (TAIL, OWNER): a fixed number of bytes that begin with
// a magic and version and end with a CRC32C of the bytes before it. Each is replaced whole,
// so that a crash leaves the old file or the new one (and perhaps `<name>.tmp`, which the
// WAL's open removes), never a mix that could pass for either.
import { constants } from 'node:fs';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from './crc32c.js';
import type { WalCorruptError } from './errors.js';

/** `body` (with room for the magic before it and the CRC after it) sealed: magic written, CRC set. */
export function seal(magic: readonly number[], u8: Uint8Array): Uint8Array {
  u8.set(magic, 0);
  const crcAt = u8.length - 4;
  new DataView(u8.buffer, u8.byteOffset).setUint32(crcAt, crc32c(u8.subarray(0, crcAt)), true);
  return u8;
}

/**
 * The `size` bytes of the file at `path`, checked against `magic` and its CRC, or null if it
 * does not exist (or if lstat fails with one of `absent`). Anything else about it is
 * `damaged(why)`: a file another size, not a regular file, another magic, a checksum mismatch.
 */
export async function readSealed(
  path: string,
  size: number,
  magic: readonly number[],
  damaged: (why: string) => WalCorruptError,
  absent: readonly string[] = ['ENOENT'],
): Promise<Uint8Array | null> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (absent.includes((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw err;
  }
  if (!st.isFile()) throw damaged('not a regular file');
  if (st.size !== size) throw damaged(`${st.size} bytes, not ${size}`);
  const u8 = new Uint8Array(size);
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const { bytesRead } = await fh.read(u8, 0, size, 0);
    if (bytesRead !== size) throw damaged(`${bytesRead} bytes read, not ${size}`);
  } finally {
    await fh.close();
  }
  if (magic.some((b, k) => u8[k] !== b)) throw damaged('bad magic or version');
  const crcAt = size - 4;
  if (new DataView(u8.buffer).getUint32(crcAt, true) !== crc32c(u8.subarray(0, crcAt))) throw damaged('checksum mismatch');
  return u8;
}

/** Replaces `dir/name` with `bytes` atomically and durably: `name.tmp`, fdatasync, rename, directory fsync. */
export async function writeSealed(dir: string, name: string, bytes: Uint8Array): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  // One a crash left is made anew, never written through: a link under the name would be followed.
  await unlink(tmp).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  const d = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

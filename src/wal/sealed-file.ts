// The WAL directory's small files (TAIL, OWNER): a fixed number of bytes that begin with
// a magic and version and end with a CRC32C of the bytes before it. Each is replaced whole,
// so that a crash leaves the old file or the new one (and perhaps `<name>.tmp`, which is
// never read), never a mix that could pass for either.
//
// Through fs's callback functions, not fs/promises: TAIL is written while appends are in
// flight, and in a worker thread being terminated a call of Node 20's fs/promises can abort
// the whole process (its binding makes the promise natively, which fails once termination has
// begun, and an assertion then fails: seen as `OpenFileHandle ... (argc) == (5)`, SIGABRT).
import { close, constants, fdatasync, fsync, lstat, open, read, rename, unlink, write } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32c } from './crc32c.js';
import type { WalCorruptError } from './errors.js';

const lstatP = promisify(lstat);
const openP = promisify(open);
const readP = promisify(read);
const writeP = promisify(write);
const fdatasyncP = promisify(fdatasync);
const fsyncP = promisify(fsync);
const closeP = promisify(close);
const renameP = promisify(rename);
const unlinkP = promisify(unlink);

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
    st = await lstatP(path);
  } catch (err) {
    if (absent.includes((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw err;
  }
  if (!st.isFile()) throw damaged('not a regular file');
  if (st.size !== size) throw damaged(`${st.size} bytes, not ${size}`);
  const u8 = new Uint8Array(size);
  const fd = await openP(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const { bytesRead } = await readP(fd, u8, 0, size, 0);
    if (bytesRead !== size) throw damaged(`${bytesRead} bytes read, not ${size}`);
  } finally {
    await closeP(fd);
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
  await unlinkP(tmp).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const fd = await openP(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    for (let at = 0; at < bytes.length;) at += (await writeP(fd, bytes, at, bytes.length - at, at)).bytesWritten;
    await fdatasyncP(fd);
  } finally {
    await closeP(fd);
  }
  await renameP(tmp, join(dir, name));
  const d = await openP(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fsyncP(d);
  } finally {
    await closeP(d);
  }
}

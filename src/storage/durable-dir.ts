// Creating a directory, or replacing a small file, so that it survives a crash: mkdir
// and rename make an entry in the parent, and that entry is only durable once the parent
// is fsynced.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DataDirError, StateCorruptError } from './errors.js';

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * mkdir -p, then fsync every directory it created and the parent of each. Each is made 0700:
 * what a data directory holds (the log, snapshots) is the whole state, for its owner alone.
 */
export async function makeDurableDir(path: string): Promise<void> {
  const target = resolve(path);
  const first = await mkdir(target, { recursive: true, mode: 0o700 });
  if (first === undefined) return; // it was there already
  // Everything from the first created level down to the target is new: sync each, and its parent.
  const created: string[] = [];
  for (let d = target; ; d = dirname(d)) {
    created.push(d);
    if (d === resolve(first)) break;
  }
  for (const d of created.reverse()) {
    await syncDir(d);
    await syncDir(dirname(d));
  }
}

/**
 * Replaces `dir/name` with `data` so that a crash leaves the old file or the new one, whole:
 * written to a temporary name and fsynced, renamed over it, the directory fsynced.
 */
export async function writeFileDurably(dir: string, name: string, data: string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  // Made anew, never opened where it is: a link left or planted under the name would be written through.
  await unlink(tmp).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await syncDir(dir);
}

/**
 * Opens `path` for reading, refusing anything but a regular file with `notAFile()`. A FIFO in a
 * file's place would hold open() (and a thread of libuv's pool) until a writer came, and a
 * directory opens too and fails only at the read: O_NONBLOCK returns at once, and fstat then
 * tells either from a file (O_NONBLOCK does not change reads of a regular file).
 */
export async function openRegularFile(path: string, notAFile: () => Error, flags = 0): Promise<{ fh: FileHandle; size: number }> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | flags);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw notAFile();
    return { fh, size: st.size };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/**
 * The first `maxBytes` + 1 bytes of the regular file at `path` (one byte more than `maxBytes`
 * says it is larger, and no more is read or allocated, whatever it holds); `notAFile()` for
 * anything else (see openRegularFile). Synchronous, for the command line's flag files, which
 * SIGHUP re-reads: reloads that awaited could finish out of order.
 */
export function readSmallFileSync(path: string, maxBytes: number, notAFile: () => Error): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw notAFile();
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, n);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * The text of a file of the data directory, at most `maxBytes` of it (one more byte than that
 * says it is larger); undefined if it does not exist. One this process may not read is
 * DATA_DIR_UNUSABLE naming it: not damage, a mode or an owner for the operator to fix.
 */
export async function readSmallFile(path: string, maxBytes: number): Promise<string | undefined> {
  try {
    return readSmallFileSync(path, maxBytes, () => new StateCorruptError(`${path} is not a file`)).toString('latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EACCES' || code === 'EPERM') throw new DataDirError(`${dirname(path)} holds ${basename(path)}, which this process cannot read (${code})`);
    throw err;
  }
}

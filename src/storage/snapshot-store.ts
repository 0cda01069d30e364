import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MAX_INDEX, MAX_TERM, type ConfState, type Snapshot, type SnapshotMeta } from '../raft/types.js';
import { crc32c } from '../wal/index.js';
import { checkConfState } from '../raft/changer.js';
import { makeDurableDir, openRegularFile, syncDir } from './durable-dir.js';
import { usableDir } from '../wal/usable-dir.js';
import { SnapshotCorruptError, SnapshotDirError, SnapshotMissingError, SnapshotVersionError, StorageInvalidArgumentError } from './errors.js';

/** A snapshot's bytes on their way between nodes: how many, and the bytes themselves. */
export interface SnapshotByteStream {
  size: number;
  chunks: AsyncIterable<Uint8Array>;
}

/** Where a snapshot received from a peer is written while it arrives. */
export interface SnapshotSpool {
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Checks everything received (size, format, checksum, that it is the snapshot
   * announced) and resolves to the `data` raft carries for it until it is installed.
   * Rejects, having deleted it, when a check fails.
   */
  finish(): Promise<Uint8Array>;
  /** Deletes what was received. */
  abort(): Promise<void>;
}

/**
 * Where snapshot bytes live; the WAL only records which one is current. The
 * `data` of a Snapshot this store hands out is a small reference only the store
 * understands (the application's bytes are read with `read`), so raft never
 * holds a snapshot in memory.
 */
export interface SnapshotStore {
  /** Writes a snapshot of this node's own state; resolves once durable, with the snapshot raft holds for it. */
  save(snapshot: { meta: SnapshotMeta; data: Uint8Array | AsyncIterable<Uint8Array> }): Promise<Snapshot>;
  /** Makes a snapshot received through spool() durable under its own name. */
  install(snapshot: Snapshot): Promise<Snapshot>;
  /** The held snapshot at index/term, checked whole before it is returned. */
  load(index: number, term: number): Promise<Snapshot>;
  /** The application's bytes of a held snapshot, in chunks; checked again as read (a mismatch rejects at the end). */
  read(snapshot: Snapshot): AsyncIterable<Uint8Array>;
  /** A held snapshot as it travels to a peer. */
  open(snapshot: Snapshot): Promise<SnapshotByteStream>;
  /** Receives a snapshot of `size` bytes a peer announced for `meta`. */
  spool(meta: SnapshotMeta, size: number): Promise<SnapshotSpool>;
  /** Deletes a received snapshot raft did not take. */
  discard(snapshot: Snapshot): Promise<void>;
  /** Removes every snapshot but the one at `index`. */
  prune(index: number): Promise<void>;
  /**
   * Every snapshot held (by index, oldest first), the one the WAL records and any other.
   * `received`: installed from a peer, and no prune since, so the WAL may not record it yet
   * (a crash between the install and the WAL's marker leaves one past the log's end). Any
   * other past the log's end says the WAL lost its end. Optional: where it is missing, an
   * open cannot tell a WAL that lost its end, or was lost, from a crash.
   */
  held?(): Promise<HeldSnapshot[]>;
}

/** A snapshot file the store holds, by its name. */
export interface HeldSnapshot {
  index: number;
  term: number;
  received?: boolean;
}

// A snapshot file (format 2):
//
//   0  8  magic "RLSNAP02"
//   8  4  u32 meta length (at most MAX_META_BYTES)
//  12  8  u64 data length
//  20     meta: JSON { index, term, conf: { voters, learners } }; a snapshot taken while
//         the configuration is joint adds votersOutgoing, learnersNext and autoLeave to conf
//         (absent: not joint, as every file written before joint consensus)
//         data
//  end 4  u32 CRC32C of every byte before it
//
// It is written to a temporary name, fsynced, renamed and the directory fsynced,
// so a crash leaves either no file or a whole one. Nothing read from it is used
// before its lengths agree with the file's size, its meta has the right shape and
// names the snapshot asked for, and the checksum of the whole file matches.
const FORMAT = 2;
const MAGIC = Buffer.from(`RLSNAP${String(FORMAT).padStart(2, '0')}`);
const HEAD_BYTES = 20;
const MAX_META_BYTES = 1024 * 1024;
/** Reads and checksums go through a buffer this size: a snapshot is never held twice. */
const CHUNK_BYTES = 1024 * 1024;

/**
 * The bytes of the file save() writes for `meta` and `dataBytes` of data: what travels to a
 * peer, and what its maxSnapshotBytes is checked against.
 */
export function snapshotFileBytes(meta: SnapshotMeta, dataBytes: number): number {
  return HEAD_BYTES + Buffer.byteLength(JSON.stringify(meta)) + dataBytes + 4;
}

function fileName(index: number, term: number): string {
  return `snap-${index.toString().padStart(16, '0')}-${term}.snap`;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.every((id) => isCount(id) && id > 0);

/** The meta of a snapshot file, or why it is not one. */
function parseMeta(bytes: Buffer): SnapshotMeta | string {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'meta is not JSON';
  }
  if (typeof v !== 'object' || v === null) return 'meta is not an object';
  const { index, term, conf } = v as Record<string, unknown>;
  if (!isCount(index) || !isCount(term)) return 'meta index or term is not a non-negative integer';
  if (index > MAX_INDEX || term > MAX_TERM) return `meta index or term is above ${MAX_TERM}, beyond what any node can reach`;
  if (typeof conf !== 'object' || conf === null) return 'meta has no configuration';
  const { voters, learners, votersOutgoing, learnersNext, autoLeave } = conf as Record<string, unknown>;
  if (!isIds(voters) || !isIds(learners)) return 'meta configuration is not two lists of node ids';
  const cs: ConfState = { voters: [...voters], learners: [...learners] };
  if (votersOutgoing !== undefined) {
    if (!isIds(votersOutgoing)) return 'meta configuration votersOutgoing is not a list of node ids';
    if (votersOutgoing.length > 0) cs.votersOutgoing = [...votersOutgoing];
  }
  if (learnersNext !== undefined) {
    if (!isIds(learnersNext)) return 'meta configuration learnersNext is not a list of node ids';
    if (learnersNext.length > 0) cs.learnersNext = [...learnersNext];
  }
  if (autoLeave !== undefined) {
    if (typeof autoLeave !== 'boolean') return 'meta configuration autoLeave is not a boolean';
    if (autoLeave) cs.autoLeave = true;
  }
  try {
    checkConfState(cs);
  } catch (e) {
    return `meta configuration is inconsistent: ${(e as Error).message}`;
  }
  return { index, term, conf: cs };
}

const SPOOL = /^spool-[0-9a-f]{16}\.part$/;
const HELD = /^snap-(\d+)-(\d+)\.snap$/;
/** Beside a held snapshot's name: it was received, and the WAL's marker for it may not be durable yet (see install). */
const RECEIVED = '.recv';
const EMPTY = new Uint8Array(0);

const sameIds = (a: readonly number[] | undefined, b: readonly number[] | undefined): boolean =>
  (a?.length ?? 0) === (b?.length ?? 0) && (a ?? []).every((v, i) => v === b?.[i]);

// The joint parts count too: a received file whose configuration differs from the one
// announced would be installed under it, and the node would come back from a restart
// (which reads the file's) in another configuration than it ran in. Absent and empty
// are the same: a file leaves out what is empty.
const sameMeta = (a: SnapshotMeta, b: SnapshotMeta): boolean =>
  a.index === b.index &&
  a.term === b.term &&
  sameIds(a.conf.voters, b.conf.voters) &&
  sameIds(a.conf.learners, b.conf.learners) &&
  sameIds(a.conf.votersOutgoing, b.conf.votersOutgoing) &&
  sameIds(a.conf.learnersNext, b.conf.learnersNext) &&
  (a.conf.autoLeave === true) === (b.conf.autoLeave === true);

/**
 * Snapshot files in one directory. A held snapshot is `snap-<index>-<term>.snap`
 * and its `data` reference is empty; a received one is first a spool file
 * (`spool-*.part`) whose name is its reference, renamed into place on install.
 * Peers exchange the files themselves, so the receiver checks the sender's
 * checksum over every byte before anything is installed.
 */
export class FileSnapshotStore implements SnapshotStore {
  private constructor(private readonly dir: string) {}

  /**
   * Opens the store in `dir`, making it (and any missing parent) durably unless `create` is false:
   * then a missing directory stays missing, and the store holds nothing (a snapshot asked for is
   * SNAPSHOT_MISSING), so that no empty directory stands where a lost one is to be put back.
   */
  static async open(dir: string, options: { create?: boolean } = {}): Promise<FileSnapshotStore> {
    if (typeof dir !== 'string' || dir === '')
      throw new StorageInvalidArgumentError(`FileSnapshotStore.open: dir must be a non-empty string, got ${String(dir)}`);
    if (typeof options !== 'object' || options === null || !(options.create === undefined || typeof options.create === 'boolean'))
      throw new StorageInvalidArgumentError('FileSnapshotStore.open: options must be an object whose create, if given, is a boolean');
    if (!(await usableDir(dir, (why) => new SnapshotDirError(why)))) {
      if (options.create === false) return new FileSnapshotStore(dir);
      await makeDurableDir(dir);
    }
    const entries = await readdir(dir, { withFileTypes: true });
    const names = new Set(entries.map((e) => e.name));
    for (const e of entries) {
      // A mark whose snapshot never took its name (the install stopped between the two) would
      // mark a snapshot this node takes later at that index and term as received: one that the
      // WAL's marker must name, or the WAL lost its end, would pass as one it may not name yet.
      const orphan = e.name.endsWith(`.snap${RECEIVED}`) && !names.has(e.name.slice(0, -RECEIVED.length));
      const temporary = e.name.endsWith('.tmp') || SPOOL.test(e.name) || orphan;
      // The store writes only regular files under its names. Anything else (a directory, a
      // FIFO, a link) was put there: refused now, with its name, rather than when a read or a
      // prune of old snapshots stumbles on it in a running node.
      if ((temporary || HELD.test(e.name) || e.name.endsWith(`.snap${RECEIVED}`)) && !e.isFile())
        throw new SnapshotCorruptError(join(dir, e.name), 'it is not a regular file, so not a snapshot file');
      // A save that never finished, or a received snapshot that was never installed.
      if (temporary) await unlink(join(dir, e.name));
    }
    return new FileSnapshotStore(dir);
  }

  async save(snapshot: { meta: SnapshotMeta; data: Uint8Array | AsyncIterable<Uint8Array> }): Promise<Snapshot> {
    const meta = Buffer.from(JSON.stringify(snapshot.meta));
    if (meta.length > MAX_META_BYTES) throw new RangeError(`snapshot meta of ${meta.length} bytes is over ${MAX_META_BYTES}`);
    const name = fileName(snapshot.meta.index, snapshot.meta.term);
    const tmp = join(this.dir, `${name}.tmp`);
    const data = snapshot.data;
    const it = (
      data instanceof Uint8Array
        ? (async function* () {
            yield data;
          })()
        : data
    )[Symbol.asyncIterator]();
    const head = Buffer.alloc(HEAD_BYTES);
    MAGIC.copy(head, 0);
    head.writeUInt32LE(meta.length, 8);
    // Whatever fails (the stream, making the file, a write, its sync, the rename), the stream
    // is closed and nothing is left under the temporary name: a running node never opens the
    // directory again to clear it.
    let fh: FileHandle | undefined;
    try {
      // Up to a chunk is gathered first: a small snapshot (the usual case) is written in one go.
      const first: Uint8Array[] = [];
      let firstBytes = 0;
      let ended = false;
      while (firstBytes <= CHUNK_BYTES) {
        const r = await it.next();
        if (r.done === true) {
          ended = true;
          break;
        }
        first.push(r.value);
        firstBytes += r.value.byteLength;
      }
      // Owner-only: a snapshot is the whole state, and a backup saved from one keeps its mode.
      // A link planted under the temporary name is not written through.
      fh = await open(tmp, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
      if (ended) {
        head.writeBigUInt64LE(BigInt(firstBytes), 12);
        const body = [head, meta, ...first];
        let crc = 0;
        for (const part of body) crc = crc32c(part, crc);
        const tail = Buffer.alloc(4);
        tail.writeUInt32LE(crc, 0);
        await fh.writev([...body, tail]);
      } else {
        // The data length is in the header, and the checksum starts with the header, so a
        // stream of unknown length is written first and checksummed by reading it back.
        let at = HEAD_BYTES + meta.length;
        for (const chunk of first) {
          await writeAll(fh, chunk, at);
          at += chunk.byteLength;
        }
        for (let r = await it.next(); r.done !== true; r = await it.next()) {
          await writeAll(fh, r.value, at);
          at += r.value.byteLength;
        }
        head.writeBigUInt64LE(BigInt(at - HEAD_BYTES - meta.length), 12);
        await writeAll(fh, head, 0);
        await writeAll(fh, meta, HEAD_BYTES);
        let crc = 0;
        const scratch = Buffer.alloc(CHUNK_BYTES);
        for (let pos = 0; pos < at;) {
          const n = Math.min(scratch.length, at - pos);
          await readFully(fh, scratch.subarray(0, n), pos, () => new SnapshotCorruptError(tmp, 'shorter than written'));
          crc = crc32c(scratch.subarray(0, n), crc);
          pos += n;
        }
        const tail = Buffer.alloc(4);
        tail.writeUInt32LE(crc, 0);
        await writeAll(fh, tail, at);
      }
      await fh.sync();
      const written = fh;
      fh = undefined;
      await written.close();
      await rename(tmp, join(this.dir, name));
    } catch (err) {
      // The first failure is the one reported; the clean-up's own are secondary to it.
      await fh?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      await Promise.resolve(it.return?.()).catch(() => undefined);
      throw err;
    }
    await syncDir(this.dir);
    return { meta: snapshot.meta, data: EMPTY };
  }

  async install(snapshot: Snapshot): Promise<Snapshot> {
    const { index, term } = snapshot.meta;
    const spool = this.spoolName(snapshot);
    if (spool === undefined) {
      // Already under its own name (a peer in this process handed over a held snapshot).
      await this.load(index, term);
      return { meta: snapshot.meta, data: EMPTY };
    }
    // The WAL records this snapshot only after it is in place: a crash between leaves a held
    // snapshot the WAL does not know, past the log's end, as a WAL that lost its end would.
    // The empty file beside it, durable first, tells the two apart at open; prune removes it
    // once the marker is durable.
    const name = fileName(index, term);
    const mark = join(this.dir, name + RECEIVED);
    await (await open(mark, 'w')).close();
    await syncDir(this.dir);
    try {
      await rename(join(this.dir, spool), join(this.dir, name));
    } catch (err) {
      await unlink(mark).catch(() => undefined); // else removed at the next open
      throw err;
    }
    await syncDir(this.dir);
    return { meta: snapshot.meta, data: EMPTY };
  }

  async load(index: number, term: number): Promise<Snapshot> {
    const file = join(this.dir, fileName(index, term));
    const read = await readSnapshotFile(file, false).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SnapshotMissingError(index, term, this.dir);
      throw err;
    });
    if (read.meta.index !== index || read.meta.term !== term) throw new SnapshotCorruptError(file, `holds ${read.meta.index}/${read.meta.term}`);
    return { meta: read.meta, data: EMPTY };
  }

  async *read(snapshot: Snapshot): AsyncGenerator<Uint8Array> {
    if (snapshot.meta.index === 0) return; // a node that never took a snapshot: no state
    const file = join(this.dir, this.spoolName(snapshot) ?? fileName(snapshot.meta.index, snapshot.meta.term));
    yield* readSnapshotFileData(file, snapshot.meta);
  }

  async open(snapshot: Snapshot): Promise<SnapshotByteStream> {
    if (this.spoolName(snapshot) !== undefined)
      throw new StorageInvalidArgumentError(`a received snapshot (index ${snapshot.meta.index}, term ${snapshot.meta.term}) is sent on only once installed`);
    const file = join(this.dir, fileName(snapshot.meta.index, snapshot.meta.term));
    const { fh, size } = await openSnapshotFile(file, false).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SnapshotMissingError(snapshot.meta.index, snapshot.meta.term, this.dir);
      throw err;
    });
    // Checked again, as the file may have been damaged since it was loaded: a stream of no bytes
    // is never read, and a generator never started runs no finally, which closes the file.
    try {
      await readHeader(fh, file, size);
    } catch (err) {
      await fh.close();
      throw err;
    }
    async function* chunks(): AsyncGenerator<Uint8Array> {
      try {
        for (let at = 0; at < size;) {
          const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, size - at));
          await readFully(fh, chunk, at, () => new SnapshotCorruptError(file, 'shrank while being sent'));
          at += chunk.length;
          yield chunk;
        }
      } finally {
        await fh.close();
      }
    }
    return { size, chunks: chunks() };
  }

  async spool(meta: SnapshotMeta, size: number): Promise<SnapshotSpool> {
    const name = `spool-${randomBytes(8).toString('hex')}.part`;
    const file = join(this.dir, name);
    const fh = await open(file, 'wx', 0o600);
    let written = 0;
    let ended = false;
    const end = async (): Promise<void> => {
      if (ended) return;
      ended = true;
      await fh.close();
    };
    const remove = async (): Promise<void> => {
      await end().catch(() => undefined);
      await unlink(file).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      });
    };
    return {
      write: async (chunk) => {
        if (ended) throw new StorageInvalidArgumentError('write after the spool ended');
        if (written + chunk.byteLength > size) throw new SnapshotCorruptError(file, `more than the ${size} bytes announced`);
        await writeAll(fh, chunk, written);
        written += chunk.byteLength;
      },
      finish: async () => {
        try {
          if (written !== size) throw new SnapshotCorruptError(file, `${written} bytes received, ${size} announced`);
          await fh.sync();
          await end();
          const read = await readSnapshotFile(file, false);
          if (!sameMeta(read.meta, meta)) throw new SnapshotCorruptError(file, 'holds another snapshot than the one announced');
        } catch (err) {
          await remove();
          throw err;
        }
        return Buffer.from(name);
      },
      abort: remove,
    };
  }

  async discard(snapshot: Snapshot): Promise<void> {
    const spool = this.spoolName(snapshot);
    if (spool === undefined) return; // a held snapshot goes only through prune
    await unlink(join(this.dir, spool)).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
  }

  async prune(index: number): Promise<void> {
    const names = await readdir(this.dir);
    const snapshots = names.filter((name) => {
      const m = HELD.exec(name);
      return m !== null && Number(m[1]) !== index;
    });
    // The caller's marker is durable: no received snapshot waits for one any more. The marks go
    // last, once the snapshots' removal is durable: one removed before its snapshot, were the prune
    // stopped between, would leave a received snapshot past the log's end unmarked, which the next
    // open refuses as a WAL that lost its end.
    const marks = names.filter((name) => name.endsWith(`.snap${RECEIVED}`));
    for (const batch of [snapshots, marks]) {
      for (const name of batch) await unlink(join(this.dir, name));
      if (batch.length > 0) await syncDir(this.dir);
    }
  }

  async held(): Promise<HeldSnapshot[]> {
    return (await heldSnapshots(this.dir)).map(({ index, term, received }) => (received ? { index, term, received } : { index, term }));
  }

  /** The spool a reference names, or undefined for a held snapshot. */
  private spoolName(snapshot: Snapshot): string | undefined {
    if (snapshot.data.byteLength === 0) return undefined;
    const name = Buffer.from(snapshot.data).toString('latin1');
    if (!SPOOL.test(name)) throw new StorageInvalidArgumentError('snapshot data is not a reference this store made');
    return name;
  }
}

/** The snapshot files in `dir` by their names, oldest first; none if `dir` does not exist. */
export async function heldSnapshots(dir: string): Promise<Array<HeldSnapshot & { name: string }>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const all = new Set(names);
  const out: Array<HeldSnapshot & { name: string }> = [];
  for (const name of names) {
    const m = HELD.exec(name);
    if (m) out.push({ index: Number(m[1]), term: Number(m[2]), name, received: all.has(name + RECEIVED) });
  }
  return out.sort((a, b) => a.index - b.index || a.term - b.term);
}

async function writeAll(fh: FileHandle, buf: Uint8Array, at: number): Promise<void> {
  for (let done = 0; done < buf.byteLength;) {
    const { bytesWritten } = await fh.write(buf, done, buf.byteLength - done, at + done);
    done += bytesWritten;
  }
}

async function readFully(fh: FileHandle, buf: Uint8Array, at: number, short: () => Error): Promise<void> {
  for (let done = 0; done < buf.byteLength;) {
    const { bytesRead } = await fh.read(buf, done, buf.byteLength - done, at + done);
    if (bytesRead === 0) throw short();
    done += bytesRead;
  }
}

/** How a snapshot file outside the store (a backup named by an operator) may be opened. */
export interface SnapshotFileOptions {
  /**
   * Follow a symbolic link in the file's place. A snapshot directory holds none (the store
   * never writes one), so by default a link is refused there, as the WAL refuses one in a
   * segment's place: the node would otherwise use a file elsewhere as its own.
   */
  followLinks?: boolean;
}

/**
 * Opens a snapshot file for reading, refusing anything but a regular file (a FIFO in a
 * snapshot's place would hang the node's open and `raftlog inspect`: see openRegularFile).
 */
async function openSnapshotFile(file: string, followLinks: boolean): Promise<{ fh: FileHandle; size: number }> {
  const notAFile = (): Error => new SnapshotCorruptError(file, 'it is not a regular file, so not a snapshot file');
  return openRegularFile(file, notAFile, followLinks ? 0 : constants.O_NOFOLLOW).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (!followLinks && code === 'ELOOP') throw new SnapshotCorruptError(file, 'it is a symbolic link, not a snapshot file');
    // A file of the snapshot directory: not damage, and no failure outside raftlog's codes either,
    // the operator fixes a mode or an owner. A file the operator named (a backup) is theirs to
    // report, with the system's code.
    if (!followLinks && (code === 'EACCES' || code === 'EPERM'))
      throw new SnapshotDirError(`${dirname(file)} holds ${basename(file)}, which this process cannot read (${code})`);
    throw err;
  });
}

/**
 * The format a snapshot file's magic names, or undefined if it names none. Another release's
 * file (a later one's after a downgrade, say) is not damage: it is refused as a version, so that
 * it is not wiped as corrupt. Its layout past the magic is that release's to say.
 */
function formatOf(head: Buffer): number | undefined {
  const m = /^RLSNAP(\d\d)$/.exec(head.toString('latin1', 0, 8));
  return m !== null && Number(m[1]) > 0 ? Number(m[1]) : undefined;
}

/**
 * Refuses with SNAPSHOT_VERSION a snapshot directory holding a file of another release's
 * format. A node opens its WAL before it loads its snapshot, and the WAL's open replaces its
 * prepared segment; checked first, the directory is left as that release wrote it. Any other
 * failure is left to the open that follows.
 */
export async function refuseOtherFormats(dir: string): Promise<void> {
  for (const { name } of await heldSnapshots(dir).catch(() => [])) {
    const file = join(dir, name);
    const opened = await openSnapshotFile(file, false).catch(() => undefined);
    if (opened === undefined) continue;
    const head = Buffer.alloc(8);
    const { bytesRead } = await opened.fh.read(head, 0, 8, 0).finally(() => opened.fh.close());
    const format = bytesRead === 8 ? formatOf(head) : undefined;
    if (format !== undefined && format !== FORMAT) throw new SnapshotVersionError(file, format);
  }
}

/** The header and meta of a snapshot file, once its lengths agree with its size (meta not yet checksummed). */
async function readHeader(fh: FileHandle, file: string, size: number): Promise<{ head: Buffer; metaBuf: Buffer; dataBytes: number }> {
  const bad = (why: string): SnapshotCorruptError => new SnapshotCorruptError(file, why);
  if (size < HEAD_BYTES + 4) throw bad('too short for a header');
  const head = Buffer.alloc(HEAD_BYTES);
  await readFully(fh, head, 0, () => bad('shorter than it says'));
  const format = formatOf(head);
  if (format === undefined) throw bad('bad header');
  if (format !== FORMAT) throw new SnapshotVersionError(file, format);
  const metaBytes = head.readUInt32LE(8);
  const dataBytes = Number(head.readBigUInt64LE(12));
  if (metaBytes > MAX_META_BYTES) throw bad(`meta of ${metaBytes} bytes is over ${MAX_META_BYTES}`);
  if (!Number.isSafeInteger(dataBytes) || HEAD_BYTES + metaBytes + dataBytes + 4 !== size)
    throw bad(`lengths (meta ${metaBytes}, data ${dataBytes}) do not add up to the file's ${size} bytes`);
  const metaBuf = Buffer.alloc(metaBytes);
  await readFully(fh, metaBuf, HEAD_BYTES, () => bad('shorter than it says'));
  return { head, metaBuf, dataBytes };
}

/**
 * The data section of a snapshot file, in chunks of at most 1 MiB (fresh buffers: the
 * reader may keep them). The lengths are checked first, the meta (against `expect`,
 * if given) before any data, and the checksum at the end: a mismatch rejects there.
 */
export async function* readSnapshotFileData(file: string, expect?: SnapshotMeta, options: SnapshotFileOptions = {}): AsyncGenerator<Uint8Array> {
  const { fh, size } = await openSnapshotFile(file, options.followLinks === true);
  try {
    const { head, metaBuf, dataBytes } = await readHeader(fh, file, size);
    const meta = parseMeta(metaBuf);
    if (typeof meta === 'string') throw new SnapshotCorruptError(file, meta);
    if (expect !== undefined && !sameMeta(meta, expect)) throw new SnapshotCorruptError(file, 'not the snapshot asked for');
    let crc = crc32c(metaBuf, crc32c(head));
    const start = HEAD_BYTES + metaBuf.length;
    for (let at = 0; at < dataBytes;) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, dataBytes - at));
      await readFully(fh, chunk, start + at, () => new SnapshotCorruptError(file, 'shorter than it says'));
      crc = crc32c(chunk, crc);
      at += chunk.length;
      yield chunk;
    }
    const tail = Buffer.alloc(4);
    await readFully(fh, tail, size - 4, () => new SnapshotCorruptError(file, 'shorter than it says'));
    if (crc !== tail.readUInt32LE(0)) throw new SnapshotCorruptError(file, 'checksum mismatch');
  } finally {
    await fh.close();
  }
}

/**
 * Reads and checks a snapshot file in bounded chunks, holding none of its data
 * (`raftlog inspect` verifies a snapshot of any size this way).
 */
export async function readSnapshotFile(file: string, _keep?: false, options: SnapshotFileOptions = {}): Promise<{ meta: SnapshotMeta; dataBytes: number }> {
  const { fh, size } = await openSnapshotFile(file, options.followLinks === true);
  try {
    const { head, metaBuf, dataBytes } = await readHeader(fh, file, size);
    const bad = (why: string): SnapshotCorruptError => new SnapshotCorruptError(file, why);
    let crc = crc32c(metaBuf, crc32c(head));
    const scratch = Buffer.alloc(Math.min(CHUNK_BYTES, dataBytes));
    const start = HEAD_BYTES + metaBuf.length;
    for (let at = 0; at < dataBytes;) {
      const chunk = scratch.subarray(0, Math.min(CHUNK_BYTES, dataBytes - at));
      await readFully(fh, chunk, start + at, () => bad('shorter than it says'));
      crc = crc32c(chunk, crc);
      at += chunk.length;
    }
    const tail = Buffer.alloc(4);
    await readFully(fh, tail, size - 4, () => bad('shorter than it says'));
    if (crc !== tail.readUInt32LE(0)) throw bad('checksum mismatch');
    // Only a checksummed meta is parsed: its shape is checked before anything uses it.
    const meta = parseMeta(metaBuf);
    if (typeof meta === 'string') throw bad(meta);
    return { meta, dataBytes };
  } finally {
    await fh.close();
  }
}

/**
 * Snapshots kept in memory: for tests and the simulator, where "durable" is what
 * the simulated disk says. Its reference is the snapshot's bytes themselves, so a
 * snapshot also crosses an in-process transport that carries `data` as it is.
 */
export class MemorySnapshotStore implements SnapshotStore {
  private readonly snaps = new Map<string, Snapshot>();
  /** Installed from a peer, no prune since (see FileSnapshotStore.install). */
  private readonly received = new Set<string>();

  async save(snapshot: { meta: SnapshotMeta; data: Uint8Array | AsyncIterable<Uint8Array> }): Promise<Snapshot> {
    const data = snapshot.data instanceof Uint8Array ? snapshot.data.slice() : await gather(snapshot.data);
    const s: Snapshot = structuredClone({ meta: snapshot.meta, data });
    this.snaps.set(`${s.meta.index}/${s.meta.term}`, s);
    return structuredClone(s);
  }

  async install(snapshot: Snapshot): Promise<Snapshot> {
    this.received.add(`${snapshot.meta.index}/${snapshot.meta.term}`);
    return this.save(snapshot);
  }

  async load(index: number, term: number): Promise<Snapshot> {
    const s = this.snaps.get(`${index}/${term}`);
    if (s === undefined) throw new SnapshotMissingError(index, term, 'the memory store');
    return structuredClone(s);
  }

  async *read(snapshot: Snapshot): AsyncGenerator<Uint8Array> {
    if (snapshot.data.byteLength > 0) yield snapshot.data.slice();
  }

  async open(snapshot: Snapshot): Promise<SnapshotByteStream> {
    return { size: snapshot.data.byteLength, chunks: this.read(snapshot) };
  }

  async spool(meta: SnapshotMeta, size: number): Promise<SnapshotSpool> {
    const parts: Uint8Array[] = [];
    let written = 0;
    return {
      write: async (chunk) => {
        if (written + chunk.byteLength > size) throw new SnapshotCorruptError('(memory)', `more than the ${size} bytes announced`);
        parts.push(chunk.slice());
        written += chunk.byteLength;
      },
      finish: async () => {
        if (written !== size) throw new SnapshotCorruptError('(memory)', `${written} bytes received, ${size} announced for ${meta.index}/${meta.term}`);
        return Buffer.concat(parts, written);
      },
      abort: async () => {
        parts.length = 0;
      },
    };
  }

  async discard(): Promise<void> {}

  async prune(index: number): Promise<void> {
    for (const [key, s] of this.snaps) if (s.meta.index !== index) this.snaps.delete(key);
    this.received.clear();
  }

  async held(): Promise<HeldSnapshot[]> {
    return [...this.snaps.entries()]
      .map(([key, s]): HeldSnapshot =>
        this.received.has(key) ? { index: s.meta.index, term: s.meta.term, received: true } : { index: s.meta.index, term: s.meta.term },
      )
      .sort((a, b) => a.index - b.index || a.term - b.term);
  }
}

async function gather(data: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of data) parts.push(c);
  return Buffer.concat(parts);
}

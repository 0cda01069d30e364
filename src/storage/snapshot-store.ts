import { open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_INDEX, MAX_TERM, type ConfState, type Snapshot, type SnapshotMeta } from '../raft/types.js';
import { crc32c } from '../wal/index.js';
import { makeDurableDir, syncDir } from './durable-dir.js';
import { SnapshotCorruptError, SnapshotMissingError, SnapshotVersionError } from './errors.js';

/** Where snapshot bytes live; the WAL only records which one is current. */
export interface SnapshotStore {
  /** Resolves once the snapshot is durable. */
  save(snapshot: Snapshot): Promise<void>;
  load(index: number, term: number): Promise<Snapshot>;
  /** Removes every snapshot but the one at `index`. */
  prune(index: number): Promise<void>;
}

// A snapshot file (format 2):
//
//   0  8  magic "RLSNAP02"
//   8  4  u32 meta length (at most MAX_META_BYTES)
//  12  8  u64 data length
//  20     meta: JSON { index, term, conf: { voters, learners } }
//         data
//  end 4  u32 CRC32C of every byte before it
//
// It is written to a temporary name, fsynced, renamed and the directory fsynced,
// so a crash leaves either no file or a whole one. Nothing read from it is used
// before its lengths agree with the file's size, its meta has the right shape and
// names the snapshot asked for, and the checksum of the whole file matches.
const MAGIC = Buffer.from('RLSNAP02');
const MAGIC_V1 = Buffer.from('RLSNAP01');
const HEAD_BYTES = 20;
const MAX_META_BYTES = 1024 * 1024;
/** Reads and checksums go through a buffer this size: a snapshot is never held twice. */
const CHUNK_BYTES = 1024 * 1024;

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
  const { voters, learners } = conf as Record<string, unknown>;
  if (!isIds(voters) || !isIds(learners)) return 'meta configuration is not two lists of node ids';
  return { index, term, conf: { voters: [...voters], learners: [...learners] } satisfies ConfState };
}

export class FileSnapshotStore implements SnapshotStore {
  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<FileSnapshotStore> {
    await makeDurableDir(dir);
    for (const name of await readdir(dir)) {
      if (name.endsWith('.tmp')) await unlink(join(dir, name)); // a save that never finished
    }
    return new FileSnapshotStore(dir);
  }

  async save(snapshot: Snapshot): Promise<void> {
    const meta = Buffer.from(JSON.stringify(snapshot.meta));
    const head = Buffer.alloc(HEAD_BYTES);
    MAGIC.copy(head, 0);
    head.writeUInt32LE(meta.length, 8);
    head.writeBigUInt64LE(BigInt(snapshot.data.byteLength), 12);
    const body = [head, meta, snapshot.data];
    let crc = 0;
    for (const part of body) crc = crc32c(part, crc);
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(crc, 0);
    const name = fileName(snapshot.meta.index, snapshot.meta.term);
    const tmp = join(this.dir, `${name}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      await fh.writev([...body, tail]);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, name));
    await syncDir(this.dir);
  }

  async load(index: number, term: number): Promise<Snapshot> {
    const file = join(this.dir, fileName(index, term));
    const read = await readSnapshotFile(file, true).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SnapshotMissingError(index, term, this.dir);
      throw err;
    });
    if (read.meta.index !== index || read.meta.term !== term) throw new SnapshotCorruptError(file, `holds ${read.meta.index}/${read.meta.term}`);
    return { meta: read.meta, data: read.data! };
  }

  async prune(index: number): Promise<void> {
    let removed = false;
    for (const name of await readdir(this.dir)) {
      const m = /^snap-(\d+)-\d+\.snap$/.exec(name);
      if (m && Number(m[1]) !== index) {
        await unlink(join(this.dir, name));
        removed = true;
      }
    }
    if (removed) await syncDir(this.dir);
  }
}

/**
 * Reads and checks a snapshot file in bounded chunks. With `keep`, the data is
 * gathered into one buffer of exactly its size; without, it is only checksummed
 * (`raftlog inspect` verifies a snapshot of any size this way).
 */
export async function readSnapshotFile(file: string, keep: boolean): Promise<{ meta: SnapshotMeta; dataBytes: number; data?: Uint8Array }> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const bad = (why: string): SnapshotCorruptError => new SnapshotCorruptError(file, why);
    const readAt = async (buf: Buffer, at: number): Promise<void> => {
      for (let done = 0; done < buf.length; ) {
        const { bytesRead } = await fh.read(buf, done, buf.length - done, at + done);
        if (bytesRead === 0) throw bad('shorter than it says');
        done += bytesRead;
      }
    };
    if (size < HEAD_BYTES + 4) throw bad('too short for a header');
    const head = Buffer.alloc(HEAD_BYTES);
    await readAt(head, 0);
    if (head.subarray(0, 8).equals(MAGIC_V1)) throw new SnapshotVersionError(file, 1);
    if (!head.subarray(0, 8).equals(MAGIC)) throw bad('bad header');
    const metaBytes = head.readUInt32LE(8);
    const dataBytes = Number(head.readBigUInt64LE(12));
    if (metaBytes > MAX_META_BYTES) throw bad(`meta of ${metaBytes} bytes is over ${MAX_META_BYTES}`);
    if (!Number.isSafeInteger(dataBytes) || HEAD_BYTES + metaBytes + dataBytes + 4 !== size)
      throw bad(`lengths (meta ${metaBytes}, data ${dataBytes}) do not add up to the file's ${size} bytes`);
    const metaBuf = Buffer.alloc(metaBytes);
    await readAt(metaBuf, HEAD_BYTES);
    let crc = crc32c(metaBuf, crc32c(head));
    const data = keep ? Buffer.alloc(dataBytes) : undefined;
    const scratch = keep ? undefined : Buffer.alloc(Math.min(CHUNK_BYTES, dataBytes));
    for (let at = 0; at < dataBytes; ) {
      const n = Math.min(CHUNK_BYTES, dataBytes - at);
      const chunk = data !== undefined ? data.subarray(at, at + n) : scratch!.subarray(0, n);
      await readAt(chunk, HEAD_BYTES + metaBytes + at);
      crc = crc32c(chunk, crc);
      at += n;
    }
    const tail = Buffer.alloc(4);
    await readAt(tail, size - 4);
    if (crc !== tail.readUInt32LE(0)) throw bad('checksum mismatch');
    // Only a checksummed meta is parsed: its shape is checked before anything uses it.
    const meta = parseMeta(metaBuf);
    if (typeof meta === 'string') throw bad(meta);
    return { meta, dataBytes, data };
  } finally {
    await fh.close();
  }
}

/** Snapshots kept in memory: for tests and the simulator, where "durable" is what the simulated disk says. */
export class MemorySnapshotStore implements SnapshotStore {
  private readonly snaps = new Map<string, Snapshot>();

  async save(snapshot: Snapshot): Promise<void> {
    this.snaps.set(`${snapshot.meta.index}/${snapshot.meta.term}`, structuredClone(snapshot));
  }

  async load(index: number, term: number): Promise<Snapshot> {
    const s = this.snaps.get(`${index}/${term}`);
    if (s === undefined) throw new SnapshotMissingError(index, term, 'the memory store');
    return structuredClone(s);
  }

  async prune(index: number): Promise<void> {
    for (const [key, s] of this.snaps) if (s.meta.index !== index) this.snaps.delete(key);
  }
}

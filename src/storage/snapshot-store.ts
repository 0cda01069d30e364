import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Snapshot, SnapshotMeta } from '../raft/types.js';
import { SnapshotCorruptError, SnapshotMissingError } from './errors.js';

/** Where snapshot bytes live; the WAL only records which one is current. */
export interface SnapshotStore {
  /** Resolves once the snapshot is durable. */
  save(snapshot: Snapshot): Promise<void>;
  load(index: number, term: number): Promise<Snapshot>;
  /** Removes every snapshot but the one at `index`. */
  prune(index: number): Promise<void>;
}

const MAGIC = Buffer.from('RLSNAP01');

// A file is MAGIC, u32 meta length, meta (JSON), data, u32 CRC-32 of all before it.
// It is written to a temporary name, fsynced, renamed and the directory fsynced,
// so a crash leaves either no file or a whole one.
function fileName(index: number, term: number): string {
  return `snap-${index.toString().padStart(16, '0')}-${term}.snap`;
}

export class FileSnapshotStore implements SnapshotStore {
  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<FileSnapshotStore> {
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) {
      if (name.endsWith('.tmp')) await unlink(join(dir, name)); // a save that never finished
    }
    return new FileSnapshotStore(dir);
  }

  async save(snapshot: Snapshot): Promise<void> {
    const meta = Buffer.from(JSON.stringify(snapshot.meta));
    const head = Buffer.alloc(12);
    MAGIC.copy(head, 0);
    head.writeUInt32LE(meta.length, 8);
    const body = [head, meta, snapshot.data];
    let crc = 0;
    for (const part of body) crc = crc32(part, crc);
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(crc >>> 0, 0);
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
    syncDir(this.dir);
  }

  async load(index: number, term: number): Promise<Snapshot> {
    const name = fileName(index, term);
    let buf: Buffer;
    try {
      buf = await readFile(join(this.dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SnapshotMissingError(index, term, this.dir);
      throw err;
    }
    const file = join(this.dir, name);
    if (buf.length < 16 || !buf.subarray(0, 8).equals(MAGIC)) throw new SnapshotCorruptError(file, 'bad header');
    const stored = buf.readUInt32LE(buf.length - 4);
    if ((crc32(buf.subarray(0, buf.length - 4)) >>> 0) !== stored) throw new SnapshotCorruptError(file, 'checksum mismatch');
    const metaLen = buf.readUInt32LE(8);
    if (12 + metaLen > buf.length - 4) throw new SnapshotCorruptError(file, 'meta length beyond the file');
    const meta = JSON.parse(buf.subarray(12, 12 + metaLen).toString()) as SnapshotMeta;
    if (meta.index !== index || meta.term !== term) throw new SnapshotCorruptError(file, `holds ${meta.index}/${meta.term}`);
    return { meta, data: new Uint8Array(buf.buffer, buf.byteOffset + 12 + metaLen, buf.length - 16 - metaLen) };
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
    if (removed) syncDir(this.dir);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
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

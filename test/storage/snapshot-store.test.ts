// A snapshot file is disk input like any other: nothing in it is used before its
// lengths, its meta and its checksum say it is whole and is the snapshot asked for.
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileSnapshotStore, readSnapshotFile } from '../../src/storage/snapshot-store.js';

const crc32c = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };
const conf = { voters: [1, 2, 3], learners: [4] };
const temps: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

async function stored(data: Uint8Array = Buffer.from('the state machine')): Promise<{ store: FileSnapshotStore; file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-snap-'));
  temps.push(dir);
  const store = await FileSnapshotStore.open(join(dir, 'a', 'b'));
  await store.save({ meta: { index: 7, term: 3, conf }, data });
  const d = join(dir, 'a', 'b');
  return { store, file: join(d, readdirSync(d)[0]!), dir: d };
}

/** Rewrites a file's bytes and fixes its checksum, so only the check under test can refuse it. */
function rewrite(file: string, edit: (b: Buffer) => Buffer): void {
  const b = edit(readFileSync(file));
  b.writeUInt32LE(crc32c.buf(b.subarray(0, b.length - 4)) >>> 0, b.length - 4);
  writeFileSync(file, b);
}

describe('snapshot files', () => {
  it('round-trip, checksummed with CRC32C, in a directory created with its missing parents', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const { store, file } = await stored(data);
    const bytes = readFileSync(file);
    expect(bytes.subarray(0, 8).toString()).toBe('RLSNAP02');
    expect(bytes.readUInt32LE(bytes.length - 4)).toBe(crc32c.buf(bytes.subarray(0, bytes.length - 4)) >>> 0);
    const snap = await store.load(7, 3);
    expect(snap.meta).toEqual({ index: 7, term: 3, conf });
    expect(Buffer.from(snap.data).equals(data)).toBe(true);
  });

  it('refuses damage and malformed metadata with SNAPSHOT_CORRUPT, whatever its checksum says', async () => {
    const cases: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
      ['a truncated file', (b) => b.subarray(0, b.length - 9), /do not add up|checksum/],
      ['a huge meta length', (b) => (b.writeUInt32LE(0x7fff_ffff, 8), b), /meta of \d+ bytes is over/],
      ['a data length beyond the file', (b) => (b.writeBigUInt64LE(10n ** 12n, 12), b), /do not add up/],
      ['meta that is not JSON', (b) => (b.fill(0x7b, 20, 24), b), /not JSON/],
      ['meta with a string index', (b) => Buffer.from(b.toString('latin1').replace('"index":7', '"index":"7"'), 'latin1'), /do not add up|index or term/],
      ['meta with node id 0', (b) => Buffer.from(b.toString('latin1').replace('"voters":[1,', '"voters":[0,'), 'latin1'), /lists of node ids/],
    ];
    for (const [what, edit, why] of cases) {
      const { store, file } = await stored();
      rewrite(file, edit);
      await expect(store.load(7, 3), what).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT', message: expect.stringMatching(why) });
    }
    // Well formed and checksummed, but at a term no node can reach: written by no raftlog node.
    const highDir = mkdtempSync(join(tmpdir(), 'raftlog-snap-'));
    temps.push(highDir);
    const high = await FileSnapshotStore.open(highDir);
    await high.save({ meta: { index: 7, term: 2 ** 53 - 1, conf }, data: Buffer.from('x') });
    await expect(high.load(7, 2 ** 53 - 1)).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT', message: expect.stringMatching(/above/) });
    // Unchanged but for its checksum: the checksum alone refuses it.
    const { store, file } = await stored();
    const b = readFileSync(file);
    b[b.length - 1]! ^= 1;
    writeFileSync(file, b);
    await expect(store.load(7, 3)).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT', message: expect.stringMatching(/checksum/) });
    await expect(store.load(8, 3)).rejects.toMatchObject({ code: 'SNAPSHOT_MISSING' });
  });

  it('a file of the earlier format is refused with SNAPSHOT_VERSION', async () => {
    const { store, file } = await stored();
    rewrite(file, (b) => (b.write('RLSNAP01', 0, 'latin1'), b));
    await expect(store.load(7, 3)).rejects.toMatchObject({ code: 'SNAPSHOT_VERSION' });
  });

  it('is read in bounded chunks: never a whole-file buffer, and verification holds no data', async () => {
    const data = Buffer.alloc(5 * 1024 * 1024, 1);
    const { store, file } = await stored(data);
    const sizes: number[] = [];
    const alloc = Buffer.alloc;
    vi.spyOn(Buffer, 'alloc').mockImplementation(((n: number, fill?: number) => {
      sizes.push(n);
      return alloc(n, fill);
    }) as typeof Buffer.alloc);
    await store.load(7, 3);
    const fileSize = readFileSync(file).length;
    expect(Math.max(...sizes)).toBe(data.length); // the data, once, exactly its size
    expect(sizes).not.toContain(fileSize);
    sizes.length = 0;
    const checked = await readSnapshotFile(file, false);
    expect(checked.data).toBeUndefined();
    expect(checked.dataBytes).toBe(data.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024 * 1024);
  });

  it('a save that never finished is removed on open; the directory exists after open', async () => {
    const { dir } = await stored();
    writeFileSync(join(dir, 'snap-0000000000000009-3.snap.tmp'), 'half');
    await FileSnapshotStore.open(dir);
    expect(existsSync(join(dir, 'snap-0000000000000009-3.snap.tmp'))).toBe(false);
    expect(readdirSync(dir)).toHaveLength(1);
  });
});

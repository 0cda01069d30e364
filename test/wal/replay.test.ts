// What replay requires of a WAL directory before it trusts it: every segment that
// must be there, nothing that must not, and damage told apart by the markers that
// close every write job: damage with an intact marker after it hit data that was
// written (and synced) before that marker, so it is corruption; damage after the
// last intact marker is a write the crash interrupted, and is cut off.
import { readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addon } from '../../src/wal/addon.js';
import { Wal } from '../../src/wal/index.js';
import { cleanTempDirs, plain, range, tempDir } from './helpers.js';

const crc32c = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };
const SMALL = { segmentBytes: 16 * 1024 };
const MARKER = 5;

afterEach(cleanTempDirs);

function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.wal'))
    .sort()
    .map((f) => join(dir, f));
}

function records(buf: Buffer): Array<{ offset: number; bytes: number; kind: number }> {
  const out: Array<{ offset: number; bytes: number; kind: number }> = [];
  for (let off = 0; off + 16 <= buf.length && buf.readUInt32LE(off + 4) + buf[off + 8]! !== 0; ) {
    const bytes = Math.ceil((16 + buf.readUInt32LE(off + 4)) / 8) * 8;
    out.push({ offset: off, bytes, kind: buf[off + 8]! });
    off += bytes;
  }
  return out;
}

/** A WAL of `jobs` appends of 10 entries each (one job each), closed cleanly: every entry acknowledged. */
async function written(jobs: number, options = SMALL): Promise<string> {
  const dir = tempDir();
  const wal = await Wal.open(dir, options);
  for (let j = 0; j < jobs; j++) {
    const lo = j * 10 + 1;
    await wal.append(range(lo, lo + 10, 1), { term: 1, vote: 1, commit: lo + 9 });
  }
  await wal.close();
  return dir;
}

describe('replay knows what must be there', () => {
  it('a missing first segment is corruption, not a shorter log', async () => {
    const dir = await written(30);
    const files = segments(dir);
    expect(files.length).toBeGreaterThan(2);
    unlinkSync(files[0]!);
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', message: expect.stringMatching(/segments are missing/) });
  });

  it('a segment renamed (upper-case hex) or any stray file is refused by name', async () => {
    const dir = await written(5);
    const [first] = segments(dir);
    const upper = join(dir, first!.split('/').at(-1)!.toUpperCase()); // 0000000000000001-0000000000000001.WAL
    renameSync(first!, upper);
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: upper, message: expect.stringMatching(/unexpected file/) });
    renameSync(upper, first!);
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: join(dir, 'notes.txt') });
    unlinkSync(join(dir, 'notes.txt'));
    const wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(50);
    await wal.close();
  });

  it('with a snapshot, deleting the early segments that hold entries above it is corruption', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    for (let lo = 1; lo <= 600; lo += 20) await wal.append(range(lo, lo + 20, 1), { term: 1, vote: 1, commit: lo + 19 });
    await wal.saveSnapshot({ index: 100, term: 1 });
    await wal.releaseTo(100);
    await wal.close();
    const files = segments(dir);
    wal = await Wal.open(dir, SMALL);
    expect(wal.firstIndex).toBe(101);
    await wal.close();
    unlinkSync(files[0]!);
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', message: expect.stringMatching(/the log starts at 101 \(snapshot marker at 100\)/) });
  });

  it('a segment of format 1 is refused with WAL_VERSION', async () => {
    const dir = await written(2);
    const file = segments(dir)[0]!;
    const buf = readFileSync(file);
    buf.write('raftwal1', 16, 'latin1');
    buf.writeUInt32LE(crc32c.buf(buf.subarray(4, 16 + 24)) >>> 0, 0); // a whole header, of the old format
    writeFileSync(file, buf);
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_VERSION', file });
  });
});

describe('markers tell a torn write from damaged data', () => {
  it('a zeroed page in the last job, whose marker never reached the disk, is a torn write: cut there, nothing before it lost', async () => {
    const dir = await written(3, { segmentBytes: 1 << 20 });
    const file = segments(dir).at(-1)!;
    const buf = readFileSync(file);
    const recs = records(buf);
    const markers = recs.filter((r) => r.kind === MARKER);
    const last = markers.at(-1)!;
    const jobStart = markers.at(-2)!.offset + 32;
    const hit = recs.find((r) => r.offset > jobStart + 100)!;
    buf.fill(0, hit.offset + 4, hit.offset + 200); // the page of a record in the middle of the job
    buf.fill(0, last.offset, last.offset + 32); // and the marker: the pages of an unsynced write, persisted out of order
    writeFileSync(file, buf);
    const wal = await Wal.open(dir, { segmentBytes: 1 << 20 });
    expect(wal.repair).toMatchObject({ file, offset: hit.offset });
    // The first two jobs (entries 1..20) were synced before the third began: all there.
    expect(wal.lastIndex).toBeGreaterThanOrEqual(20);
    expect(plain(wal.entriesSync(1, wal.lastIndex + 1))).toEqual(plain(range(1, wal.lastIndex + 1, 1)));
    await wal.close();
  });

  it('the same damage with the marker intact after it is corruption: that job was written before its marker', async () => {
    const dir = await written(3, { segmentBytes: 1 << 20 });
    const file = segments(dir).at(-1)!;
    const buf = readFileSync(file);
    const markers = records(buf).filter((r) => r.kind === MARKER);
    const hit = records(buf).find((r) => r.offset > markers.at(-2)!.offset + 100)!;
    buf.fill(0, hit.offset + 4, hit.offset + 200);
    writeFileSync(file, buf);
    await expect(Wal.open(dir, { segmentBytes: 1 << 20 })).rejects.toMatchObject({
      code: 'WAL_CORRUPT',
      file,
      offset: hit.offset,
      message: expect.stringMatching(/an intact marker follows/),
    });
  });

  it('records whose marker was lost are kept, and the next job closes them with its own marker', async () => {
    const dir = await written(2, { segmentBytes: 1 << 20 });
    const file = segments(dir).at(-1)!;
    const buf = readFileSync(file);
    const last = records(buf).filter((r) => r.kind === MARKER).at(-1)!;
    buf.fill(0, last.offset, last.offset + 32); // the crash came between the records and the marker
    writeFileSync(file, buf);
    let wal = await Wal.open(dir, { segmentBytes: 1 << 20 });
    expect(wal.repair).toBeNull();
    expect(wal.lastIndex).toBe(20);
    await wal.append(range(21, 31, 1));
    await wal.close();
    wal = await Wal.open(dir, { segmentBytes: 1 << 20 });
    expect(wal.repair).toBeNull();
    expect(plain(wal.entriesSync(1, 31))).toEqual(plain(range(1, 31, 1)));
    await wal.close();
  });

  it('a crafted tail of marker look-alikes costs at most twice the file size in checksums', async () => {
    const dir = await written(1, { segmentBytes: 1 << 20 });
    const file = segments(dir).at(-1)!;
    const buf = readFileSync(file);
    const end = records(buf).at(-1)!.offset + 32;
    // Damage, then a marker header (bad checksum) at every place one can start.
    buf.fill(0xee, end, end + 8);
    for (let off = end + 8; off + 32 <= buf.length; off += 16) {
      buf.fill(0, off, off + 16);
      buf.writeUInt32LE(16, off + 4);
      buf[off + 8] = MARKER;
      buf.writeUInt32LE(0xdeadbeef, off);
    }
    writeFileSync(file, buf);
    const scan = addon().scan(dir);
    expect(scan.searchBytes).toBeGreaterThan(buf.length); // it did look...
    expect(scan.searchBytes).toBeLessThanOrEqual(2 * buf.length); // ...within its budget
    expect(scan.torn?.offset).toBe(end);
  });
});

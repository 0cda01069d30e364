// What replay requires of a WAL directory before it trusts it: every segment that
// must be there, nothing that must not, and damage told apart by the markers that
// close every write job: damage with an intact marker after it hit data that was
// written (and synced) before that marker, so it is corruption; damage after the
// last intact marker is a write the crash interrupted, and is cut off.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addon, type NativeHandle } from '../../src/wal/addon.js';
import { REPLAY_SLICE } from '../../src/wal/replay.js';
import { Wal, type WalOptions } from '../../src/wal/index.js';
import { cleanTempDirs, plain, range, tempDir } from './helpers.js';

const crc32c = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };
// Preallocated whole: several tests craft damage in the unwritten tail of a segment.

/**
 * The segment `bytes` with its header record edited, its checksum and the first group's
 * marker (which checks its records' checksums) made anew: a header written whole.
 */
function reheader(bytes: Buffer, edit: (b: Buffer) => void): Buffer {
  const crc = (at: number): void => {
    bytes.writeUInt32LE(addon().crc32c(bytes.subarray(at + 4, at + 16 + bytes.readUInt32LE(at + 4))), at);
  };
  edit(bytes);
  crc(0);
  let chain = 0;
  for (let at = 0; ; at += Math.ceil((16 + bytes.readUInt32LE(at + 4)) / 8) * 8) {
    if (bytes[at + 8] === 5) {
      bytes.writeUInt32LE(chain, at + 16 + 12);
      crc(at);
      return bytes;
    }
    chain = addon().crc32c(bytes.subarray(at, at + 4), false, chain);
  }
}

const SMALL: WalOptions = { segmentBytes: 16 * 1024, preallocate: 'fallocate' };
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
  for (let off = 0; off + 16 <= buf.length && buf.readUInt32LE(off + 4) + buf[off + 8]! !== 0;) {
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

  it('a new WAL holds segment 1, its header synced, from the moment its directory exists: made by the open, or found empty', async () => {
    for (const dir of [join(tempDir(), 'made'), tempDir()]) {
      const wal = await Wal.open(dir);
      expect(wal.lastIndex).toBe(0);
      const files = segments(dir);
      expect(files.map((f) => f.split('/').at(-1))).toEqual([expect.stringMatching(/^0000000000000001-0000000000000001-[0-9a-f]{12}\.wal$/)]);
      expect(records(readFileSync(files[0]!)).map((r) => r.kind)).toEqual([1]);
      await wal.append(range(1, 4, 1), { term: 1, vote: 1, commit: 3 });
      await wal.close();
      expect(segments(dir)).toEqual(files);
      const again = await Wal.open(dir);
      expect([again.lastIndex, again.hardState.term]).toEqual([3, 1]);
      await again.close();
    }
  });

  it('a WAL directory with no segment (its only one deleted, or a LOCK alone) is corruption, not a new log', async () => {
    const dir = await written(3, {});
    const [only] = segments(dir);
    unlinkSync(only!);
    await expect(Wal.open(dir)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: dir, message: expect.stringMatching(/holds no segment/) });
    expect(readdirSync(dir).filter((n) => n.endsWith('.wal'))).toEqual([]);
  });

  it('an only segment emptied, or with its header zeroed, is corruption and is left as it is', async () => {
    for (const damage of [(b: Buffer) => b.subarray(0, 0), (b: Buffer) => Buffer.concat([Buffer.alloc(40), b.subarray(40)])]) {
      const dir = await written(3, {});
      const [only] = segments(dir);
      const bad = damage(readFileSync(only!));
      writeFileSync(only!, bad);
      await expect(Wal.open(dir)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: only, offset: 0 });
      expect(readFileSync(only!).equals(bad)).toBe(true);
    }
  });

  it('a segment name with a number no WAL writes (above 2^53) is refused by name', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir);
    await wal.append(range(1, 6, 1));
    await wal.saveSnapshot({ index: 5, term: 1 }); // so that a first segment numbered above 1 may be whole
    await wal.close();
    const [first] = segments(dir); // the only one
    const name = first!.split('/').at(-1)!;
    const huge = join(dir, '0020000000000001' + name.slice(16)); // sequence 2^53 + 1, the stamp and content kept
    // Its header says so too, whole: only the number is wrong.
    writeFileSync(
      huge,
      reheader(readFileSync(first!), (b) => b.writeBigUInt64LE(2n ** 53n + 1n, 24)),
    );
    unlinkSync(first!);
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: huge, message: expect.stringMatching(/unexpected file/) });
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

  it('a directory that holds no WAL but a stray name (lost+found) is refused before a WAL is made in it, and left as it was', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'lost+found'));
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({
      code: 'WAL_CORRUPT',
      file: join(dir, 'lost+found'),
      message: expect.stringMatching(/unexpected file lost\+found/),
    });
    expect(readdirSync(dir)).toEqual(['lost+found']);
    // With the name removed it is the empty directory a new WAL is made in.
    rmSync(join(dir, 'lost+found'), { recursive: true });
    const wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(0);
    await wal.close();
  });

  it('a directory under the name of a prepared or a released segment is refused at open, not at the first new segment', async () => {
    for (const name of ['next.prealloc', `${'0'.repeat(15)}9-${'0'.repeat(16)}-00000000000a.wal.released`]) {
      const dir = await written(3, { segmentBytes: 4096 });
      rmSync(join(dir, 'next.prealloc'), { force: true });
      mkdirSync(join(dir, name));
      await expect(Wal.open(dir, { segmentBytes: 4096 })).rejects.toMatchObject({
        code: 'WAL_CORRUPT',
        file: join(dir, name),
        message: expect.stringMatching(/is not a regular file/),
      });
      rmSync(join(dir, name), { recursive: true });
      const wal = await Wal.open(dir, { segmentBytes: 4096 });
      await wal.append(range(31, 131, 1)); // into new segments
      await wal.close();
    }
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
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({
      code: 'WAL_CORRUPT',
      message: expect.stringMatching(/the log starts at 101 \(snapshot marker at 100\)/),
    });
  });

  it('a last segment of a newer format, left by a crash, is refused with WAL_VERSION and left as it is', async () => {
    // Copied while its WAL is open: one group, no seal, as a crash leaves it.
    const from = tempDir();
    const wal = await Wal.open(from);
    await wal.append(range(1, 4, 1));
    const name = readdirSync(from).find((f) => f.endsWith('.wal'))!;
    const dir = tempDir();
    const file = join(dir, name);
    writeFileSync(join(dir, 'LOCK'), '');
    writeFileSync(
      file,
      reheader(readFileSync(join(from, name)), (b) => b.write('raftwal4', 16, 'latin1')),
    );
    await wal.close();
    // Beside it, what that release's open would remove or take over: an unused prepared segment and
    // a released one. A refusal removes neither: the directory is left to the release that wrote it.
    writeFileSync(join(dir, 'next.prealloc'), Buffer.alloc(64, 7));
    writeFileSync(join(dir, `${name}.released`), Buffer.alloc(64, 9));
    const contents = (): string[] => readdirSync(dir).map((f) => `${f} ${readFileSync(join(dir, f)).toString('base64')}`);
    const before = readFileSync(file);
    const all = contents();
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_VERSION', file, message: expect.stringContaining('format 4') });
    expect(readFileSync(file).equals(before)).toBe(true); // not cut off as a torn write
    expect(contents()).toEqual(all);
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

describe('open lets the event loop turn', () => {
  it('while it replays what the scan found, with the same log', async () => {
    const dir = tempDir();
    const n = 3 * REPLAY_SLICE + 5;
    let wal = await Wal.open(dir, { sync: 'none' });
    const data = new Uint8Array([7]);
    for (let lo = 1; lo <= n; lo += 5000) {
      const batch = [];
      for (let i = lo; i < Math.min(lo + 5000, n + 1); i++) batch.push({ index: i, term: 1 + (i >> 14), type: 0, data });
      await wal.append(batch);
    }
    await wal.close();
    // Turns of the loop counted from the scan's callback (the scan itself runs on the thread pool).
    const native = addon();
    const Original = native.WalHandle;
    let scanned = false;
    let turns = 0;
    native.WalHandle = class extends Original {
      override scanAsync(cb: Parameters<NativeHandle['scanAsync']>[0]): void {
        super.scanAsync((err, scan) => {
          scanned = true;
          cb(err, scan);
        });
      }
    };
    let opening = true;
    const spin = (): void => {
      if (scanned) turns++;
      if (opening) setImmediate(spin);
    };
    setImmediate(spin);
    try {
      wal = await Wal.open(dir);
    } finally {
      opening = false;
      native.WalHandle = Original;
    }
    expect(scanned).toBe(true);
    expect(turns).toBeGreaterThan(0);
    expect(wal.lastIndex).toBe(n);
    for (const i of [1, REPLAY_SLICE, 2 * REPLAY_SLICE + 1, n]) expect(wal.term(i)).toBe(1 + (i >> 14));
    expect(plain(wal.entriesSync(n - 1, n + 1))).toEqual(plain([n - 1, n].map((index) => ({ index, term: 1 + (index >> 14), type: 0, data }))));
    await wal.close();
  });
});

describe('markers tell a torn write from damaged data', () => {
  // written(3): three jobs, each synced before the next began, then the seal a clean close writes.
  async function damaged(edit: (buf: Buffer, jobs: Array<{ start: number; marker: number }>, seal: number) => void): Promise<{ dir: string; file: string }> {
    const dir = await written(3, { segmentBytes: 1 << 20 });
    const file = segments(dir).at(-1)!;
    const buf = readFileSync(file);
    const markers = records(buf).filter((r) => r.kind === MARKER);
    expect(markers).toHaveLength(4);
    const jobs = markers.slice(0, 3).map((m, k) => ({ start: k === 0 ? 0 : markers[k - 1]!.offset + 32, marker: m.offset }));
    edit(buf, jobs, markers[3]!.offset);
    writeFileSync(file, buf);
    return { dir, file };
  }
  const recordAt = (buf: Buffer, from: number): number => records(buf).find((r) => r.offset > from)!.offset;
  let hit = 0;

  it('a crash in the middle of the last job: a zeroed page before its intact marker is a torn write, cut there, nothing synced lost', async () => {
    const { dir, file } = await damaged((buf, jobs, seal) => {
      hit = recordAt(buf, jobs[2]!.start + 100);
      buf.fill(0, hit + 4, hit + 200); // a page of the job never reached the disk...
      buf.fill(0, seal, seal + 32); // ...its marker did (pages persist in any order), and no close sealed it
    });
    const wal = await Wal.open(dir, { segmentBytes: 1 << 20 });
    expect(wal.repair).toMatchObject({ file, offset: hit });
    expect(wal.lastIndex).toBeGreaterThanOrEqual(20); // the first two jobs were synced before the third began
    expect(plain(wal.entriesSync(1, wal.lastIndex + 1))).toEqual(plain(range(1, wal.lastIndex + 1, 1)));
    await wal.close();
  });

  it('damage to a job that a later group shows was synced is corruption', async () => {
    const { dir, file } = await damaged((buf, jobs, seal) => {
      hit = recordAt(buf, jobs[1]!.start + 50);
      buf.fill(0, hit + 4, hit + 200);
      buf.fill(0, seal, seal + 32); // even with no seal: the third job's marker says its group began after
    });
    await expect(Wal.open(dir, { segmentBytes: 1 << 20 })).rejects.toMatchObject({
      code: 'WAL_CORRUPT',
      file,
      offset: hit,
      message: expect.stringMatching(/a later group follows/),
    });
  });

  it('after a clean close, damage to the last job is corruption: the seal shows it was synced', async () => {
    const { dir, file } = await damaged((buf, jobs) => {
      hit = recordAt(buf, jobs[2]!.start + 100);
      buf[hit + 20]! ^= 0x10;
    });
    await expect(Wal.open(dir, { segmentBytes: 1 << 20 })).rejects.toMatchObject({ code: 'WAL_CORRUPT', file, offset: hit });
  });

  it('records whose marker never reached the disk are kept, and the next job covers them with its own marker', async () => {
    const { dir } = await damaged((buf, jobs, seal) => {
      buf.fill(0, jobs[2]!.marker, seal + 32); // the crash came between the third job's records and its marker
    });
    let wal = await Wal.open(dir, { segmentBytes: 1 << 20 });
    expect(wal.repair).toBeNull();
    expect(wal.lastIndex).toBe(30);
    await wal.append(range(31, 41, 1));
    await wal.close();
    wal = await Wal.open(dir, { segmentBytes: 1 << 20 });
    expect(wal.repair).toBeNull();
    expect(plain(wal.entriesSync(1, 41))).toEqual(plain(range(1, 41, 1)));
    await wal.close();
  });

  describe('a close that wrote nothing adds a seal only while the last group has none', () => {
    // Without that, every clean restart that writes nothing grew the last segment by a seal.
    async function reopened(dir: string, times: number): Promise<number[]> {
      const markers: number[] = [];
      for (let k = 0; k < times; k++) {
        const wal = await Wal.open(dir, SMALL);
        expect(wal.repair).toBeNull();
        await wal.close();
        markers.push(records(readFileSync(segments(dir).at(-1)!)).filter((r) => r.kind === MARKER).length);
      }
      return markers;
    }

    it('after a close that wrote: none', async () => {
      const dir = await written(2);
      const before = records(readFileSync(segments(dir).at(-1)!)).filter((r) => r.kind === MARKER).length;
      expect(await reopened(dir, 3)).toEqual([before, before, before]);
    });

    it('in a WAL never written to: one, then one more after a sync, then none', async () => {
      const dir = tempDir();
      expect(await reopened(dir, 4)).toEqual([1, 2, 2, 2]);
    });

    it('after a crash: one, which a later damage to the records it follows shows as corruption', async () => {
      // Copied while its WAL is open: no seal, as a crash leaves it.
      const from = tempDir();
      const open = await Wal.open(from, SMALL);
      await open.append(range(1, 4, 1));
      const dir = tempDir();
      for (const f of readdirSync(from)) writeFileSync(join(dir, f), readFileSync(join(from, f)));
      await open.close();
      expect(await reopened(dir, 3)).toEqual([2, 2, 2]);
      const file = segments(dir).at(-1)!;
      const buf = readFileSync(file);
      const hit = records(buf).find((r) => r.kind === 2)!.offset;
      buf[hit + 20]! ^= 0x10;
      writeFileSync(file, buf);
      await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file, offset: hit });
    });
  });

  it.each([
    // Past a zero header lie zeros or an earlier life's records: the search finds no marker of this segment.
    ['the seal zeroed: the end of the records', (b: Buffer, at: number) => b.fill(0, at, at + 32), undefined],
    // No intact seal: the damage could be a torn write, unless a later group's marker follows.
    ['the seal damaged: a torn write', (b: Buffer, at: number) => (b[at + 20] ^= 1), 'seal'],
  ] as const)('a crafted tail of marker look-alikes costs at most twice the file size in checksums: %s', async (_, damage, torn) => {
    const dir = await written(1, { segmentBytes: 1 << 20, preallocate: 'fallocate' });
    const file = segments(dir).at(-1)!;
    const buf = readFileSync(file);
    const end = records(buf).at(-1)!.offset + 32;
    damage(buf, end - 32);
    // Garbage, then a marker header (bad checksum) at every place one can start.
    buf.fill(0xee, end, end + 8);
    for (let off = end + 8; off + 32 <= buf.length; off += 16) {
      buf.fill(0, off, off + 16);
      buf.writeUInt32LE(16, off + 4);
      buf[off + 8] = MARKER;
      buf.copy(buf, off + 10, 10, 16); // the segment's stamp, as its records carry it
      buf.writeUInt32LE(0xdeadbeef, off);
    }
    writeFileSync(file, buf);
    const scan = addon().scan(dir);
    expect(scan.searchBytes).toBeGreaterThan(buf.length); // it did look...
    expect(scan.searchBytes).toBeLessThanOrEqual(2 * buf.length); // ...within its budget
    expect(scan.torn?.offset).toBe(torn === undefined ? undefined : end - 32); // where the seal was: all after it is one torn write
  });
});

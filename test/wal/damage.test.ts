// What the WAL does with damaged files: a torn tail is cut off (it was never
// acknowledged), anything else is corruption that names the file and offset.
import { execFile, execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addon } from '../../src/wal/addon.js';
import { Wal, WalCorruptError } from '../../src/wal/index.js';
import { cleanTempDirs, entry, plain, range, tempDir } from './helpers.js';
import { seeded, testSeed } from '../seeded.js';
import { looseErrors } from '../broken-logger.js';

/**
 * Runs `script` (an ES module) in a child Node with `flags`. Asynchronous, so that the worker's
 * event loop turns while the child works (a synchronous spawn is a block the watch counts).
 */
function runChild(flags: string[], script: string): Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...flags, '--import', 'tsx', '--input-type=module', '-e', script],
      { encoding: 'utf8', maxBuffer: 16 * 2 ** 20 },
      (err, stdout, stderr) =>
        resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, signal: err?.signal ?? null, stdout, stderr }),
    );
  });
}

const crc32c = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };
const SMALL = { segmentBytes: 8192 };

afterEach(cleanTempDirs);

function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.wal'))
    .sort()
    .map((f) => join(dir, f));
}

const ENTRY = 2;
const MARKER = 5;

/** Offset, size, payload length and kind of every record in a segment file, walking the framing. */
function recordsOf(file: string): { offset: number; bytes: number; length: number; kind: number }[] {
  const buf = readFileSync(file);
  const out: { offset: number; bytes: number; length: number; kind: number }[] = [];
  for (let off = 0; off + 16 <= buf.length && buf.readUInt32LE(off + 4) + buf[off + 8]! !== 0;) {
    const length = buf.readUInt32LE(off + 4);
    const bytes = Math.ceil((16 + length) / 8) * 8;
    out.push({ offset: off, bytes, length, kind: buf[off + 8]! });
    off += bytes;
  }
  return out;
}

/** The last entry record of a segment (the job's marker follows it). */
function lastEntryOf(file: string): { offset: number; bytes: number; length: number; kind: number } {
  return recordsOf(file)
    .filter((r) => r.kind === ENTRY)
    .at(-1)!;
}

describe('CRC32C', () => {
  it('matches the crc-32 package (hardware and software paths, any alignment)', () => {
    const native = addon();
    const random = seeded(testSeed('CRC32C'));
    const data = Buffer.from(Uint8Array.from({ length: 70_000 }, () => Math.floor(random() * 256)));
    for (const [start, len] of [
      [0, 0],
      [0, 1],
      [1, 7],
      [3, 8],
      [5, 63],
      [0, 4096],
      [7, 65_537],
    ] as const) {
      const slice = data.subarray(start, start + len);
      const want = crc32c.buf(slice) >>> 0;
      expect(native.crc32c(slice)).toBe(want);
      expect(native.crc32c(slice, true)).toBe(want);
    }
    expect(native.crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('every record the writer framed carries the CRC the crc-32 package computes', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 300, 2), { term: 2, vote: 1, commit: 3 });
    await wal.saveSnapshot({ index: 100, term: 2, meta: new Uint8Array([9, 9]) });
    await wal.close();
    let checked = 0;
    for (const file of segments(dir)) {
      const buf = readFileSync(file);
      for (const r of recordsOf(file)) {
        expect(buf.readUInt32LE(r.offset)).toBe(crc32c.buf(buf.subarray(r.offset + 4, r.offset + 16 + r.length)) >>> 0);
        expect(r.offset % 8).toBe(0);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(300);
  });
});

describe('torn tail', () => {
  /** A closed WAL of entries 1 to n-1 in small segments: its last segment, its bytes and its last entry. */
  async function written(n: number) {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, n, 1));
    await wal.close();
    const file = segments(dir).at(-1)!;
    return { dir, file, bytes: readFileSync(file), last: lastEntryOf(file) };
  }

  it('cuts off a record truncated at every offset inside it, keeps every whole record, and appends cleanly after', async () => {
    const { dir, file, bytes: original, last } = await written(21);
    let wal: Wal;
    expect(recordsOf(file).at(-1)!.kind).toBe(MARKER);
    // Every cut inside the record, its zero padding included (a file whose size is not a
    // multiple of 8 is not one the writer left): the record is torn, cut at its start.
    for (let cut = last.offset + 1; cut < last.offset + last.bytes; cut++) {
      writeFileSync(file, original);
      truncateSync(file, cut);
      wal = await Wal.open(dir, SMALL);
      expect(wal.lastIndex, `cut at ${cut}`).toBe(19);
      if (original.subarray(last.offset, cut).every((b) => b === 0)) {
        // The checksum's first bytes can be zero (one segment in 256 for one byte): what
        // is left reads as the zeros past the end of the log, and nothing is torn.
        expect(wal.repair, `cut at ${cut}`).toBeNull();
      } else {
        expect(wal.repair?.file, `cut at ${cut}`).toBe(file);
        expect(wal.repair?.offset).toBe(last.offset);
        expect(wal.repair!.droppedBytes).toBeGreaterThan(0);
        expect(wal.repair!.droppedBytes).toBeLessThanOrEqual(cut - last.offset);
      }
      expect(plain(wal.entriesSync(1, 20))).toEqual(plain(range(1, 20, 1)));
      await wal.close();
    }
    // After the repair the log continues where the whole records end.
    wal = await Wal.open(dir, SMALL);
    await wal.append([entry(20, 2, 7), entry(21, 2, 7)]);
    await wal.close();
    wal = await Wal.open(dir, SMALL);
    expect(wal.repair).toBeNull();
    expect(plain(wal.entriesSync(1, 22))).toEqual(plain([...range(1, 20, 1), entry(20, 2, 7), entry(21, 2, 7)]));
    await wal.close();
  });

  it('tells its logger what it cut off: a warning naming the file, the offset and the bytes dropped', async () => {
    const { dir, file, bytes, last } = await written(21);
    truncateSync(file, last.offset + 9);
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const wal = await Wal.open(dir, { ...SMALL, logger: { warn: (fields, message) => warnings.push({ fields, message }) } });
    try {
      expect(wal.repair).toMatchObject({ file, offset: last.offset });
      expect(warnings).toEqual([
        { fields: { code: 'WAL_TORN_WRITE', dir, ...wal.repair }, message: expect.stringContaining(`${file} at offset ${last.offset}`) },
      ]);
      expect(warnings[0]!.message).toContain(`${wal.repair!.droppedBytes} bytes`);
    } finally {
      await wal.close();
    }
    writeFileSync(file, bytes); // whole again: nothing cut, nothing said
    warnings.length = 0;
    await (await Wal.open(dir, { ...SMALL, logger: { warn: (fields, message) => warnings.push({ fields, message }) } })).close();
    expect(warnings).toEqual([]);
  });

  it('opens a torn log whatever its logger does: a warn that throws or returns a rejected promise loses only its line', async () => {
    const loose = looseErrors();
    const { dir, file, bytes, last } = await written(21);
    const failing = [
      () => {
        throw new Error('logger broke');
      },
      () => Promise.reject(new Error('the log shipper is down')),
    ];
    for (const warn of failing) {
      writeFileSync(file, bytes);
      truncateSync(file, last.offset + 9);
      let calls = 0;
      const wal = await Wal.open(dir, {
        ...SMALL,
        logger: {
          warn: (() => {
            calls++;
            return warn();
          }) as () => void,
        },
      });
      try {
        expect(calls).toBe(1);
        expect(wal.repair).toMatchObject({ file, offset: last.offset });
        expect(wal.lastIndex).toBe(19);
      } finally {
        await wal.close();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(loose).toEqual([]);
  });

  it('reads a tail of zero bytes where a header began as the end of the log, and writes over it', async () => {
    const { dir, file, bytes: buf, last } = await written(21);
    // Three bytes of the last entry's header reached the disk, and they were zeros.
    buf.fill(0, last.offset, last.offset + 3);
    writeFileSync(file, buf.subarray(0, last.offset + 3));
    let wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(19);
    expect(wal.repair).toBeNull();
    await wal.append([entry(20, 2, 7)]);
    await wal.close();
    wal = await Wal.open(dir, SMALL);
    expect(wal.repair).toBeNull();
    expect(plain(wal.entriesSync(1, 21))).toEqual(plain([...range(1, 20, 1), entry(20, 2, 7)]));
    await wal.close();
  });

  it('cuts off a tail of garbage (a write torn in place) and zeroes it so that later records are clean', async () => {
    const { dir, file, bytes: buf, last } = await written(11);
    const random = seeded(testSeed('garbage tail'));
    buf.set(
      Uint8Array.from({ length: last.bytes + 40 }, () => Math.floor(random() * 256)),
      last.offset + 5,
    );
    writeFileSync(file, buf);
    let wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(9);
    expect(wal.repair?.offset).toBe(last.offset);
    await wal.append(range(10, 13, 3));
    await wal.close();
    wal = await Wal.open(dir, SMALL);
    expect(wal.repair).toBeNull();
    expect(plain(wal.entriesSync(1, 13))).toEqual(plain([...range(1, 10, 1), ...range(10, 13, 3)]));
    await wal.close();
  });
});

/**
 * Whether `file` holds only zeros from `offset` to its end. Read a MiB at a time, off the event
 * loop: read whole and compared in JavaScript, 128 MiB blocked the loop for seconds of CPU.
 */
async function zeroFrom(file: string, offset: number): Promise<boolean> {
  const zeros = Buffer.alloc(2 ** 20);
  const chunk = Buffer.alloc(2 ** 20);
  const fh = await open(file, 'r');
  try {
    for (let at = offset; ;) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, at);
      if (bytesRead === 0) return true;
      if (!chunk.subarray(0, bytesRead).equals(zeros.subarray(0, bytesRead))) return false;
      at += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

describe('torn tail of a large file', () => {
  it('zeroes a torn span to the end of a 128 MiB segment without allocating its size', async () => {
    const dir = tempDir();
    let wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 11, 1));
    await wal.close();
    const file = segments(dir).at(-1)!;
    const last = lastEntryOf(file);
    // The last entry and the seal torn, then a hole up to one byte at the end: the torn
    // span reaches the end of the file, as in a reused segment of the default size.
    const span = 128 * 1024 * 1024;
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(readFileSync(file).length - last.offset - 5, 0xee), 0, undefined, last.offset + 5);
    writeSync(fd, Buffer.from([0xee]), 0, 1, last.offset + span - 1);
    closeSync(fd);
    const r = await runChild(
      [],
      `const { Wal } = await import(${JSON.stringify(join(process.cwd(), 'src/wal/index.ts'))});
         const before = process.resourceUsage().maxRSS;
         const w = await Wal.open(${JSON.stringify(dir)}, { segmentBytes: 8192 });
         console.log(JSON.stringify({ grew: (process.resourceUsage().maxRSS - before) * 1024, last: w.lastIndex, dropped: w.repair?.droppedBytes }));
         await w.close();`,
    );
    expect(r.status, r.stderr.slice(-500)).toBe(0);
    const out = JSON.parse(r.stdout) as { grew: number; last: number; dropped: number };
    expect(out.last).toBe(9);
    expect(out.dropped).toBe(span);
    // The mapped file's pages read in the search for markers count once; a buffer of the
    // span's size, zeroed, would count them twice.
    expect(out.grew, `peak RSS grew ${(out.grew / 2 ** 20).toFixed(0)} MiB`).toBeLessThan(1.5 * span);
    wal = await Wal.open(dir, SMALL);
    expect(wal.repair).toBeNull();
    expect(plain(wal.entriesSync(1, 10))).toEqual(plain(range(1, 10, 1)));
    await wal.close();
    // Zeroed to the end: only the seals of the two closes were written there since.
    expect(await zeroFrom(file, last.offset + 4096)).toBe(true);
  });
});

describe('a segment file larger than the WAL writes', () => {
  // The largest the writer makes: a prelude (header, a snapshot marker of at most one
  // record, the hard state), one record of the largest size, its job's marker, a seal, in
  // whole blocks (native/record.h).
  const BOUND = 2 ** 31 + 4096;

  it('is refused by open and by the read-only scan before a byte of it is read', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await wal.append(range(1, 4, 1));
    await wal.close();
    const file = segments(dir).at(-1)!;
    const before = readFileSync(file);
    // Sparse: mapped and scanned, its holes cost seconds and their size in page cache.
    truncateSync(file, 2 ** 32);
    const expected = {
      code: 'WAL_CORRUPT',
      file,
      message: `${file} is ${2 ** 32} bytes, more than any segment file the WAL writes (at most ${BOUND} bytes)`,
    };
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject(expected);
    expect(() => addon().scan(dir)).toThrow(expect.objectContaining(expected));
    // Nothing was cut or zeroed: the file is as it was.
    truncateSync(file, before.length);
    expect(readFileSync(file).equals(before)).toBe(true);
  });
});

describe('corruption', () => {
  it('fails open naming the file and offset for a flipped byte in any record that is not the tail', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 400; i += 20) await wal.append(range(i, i + 20, 1));
    await wal.close();
    const files = segments(dir);
    expect(files.length).toBeGreaterThan(3);
    const seed = testSeed('corruption test');
    let x = seed;
    const rand = (n: number): number => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return x % n;
    };
    // In an older segment, and in the last segment with whole records after it.
    const targets = [files[1]!, files[files.length - 2]!, files.at(-1)!];
    for (const file of targets) {
      const original = readFileSync(file);
      const recs = recordsOf(file);
      const pick = recs[rand(recs.length - 1)]!; // never the very last record of the file
      const at = pick.offset + rand(16 + pick.length);
      const damaged = Buffer.from(original);
      damaged[at] = damaged[at]! ^ (1 << rand(8));
      writeFileSync(file, damaged);
      const err = await Wal.open(dir, SMALL).catch((e: unknown) => e);
      expect(err, `byte ${at} of ${file}`).toBeInstanceOf(WalCorruptError);
      expect((err as WalCorruptError).code).toBe('WAL_CORRUPT');
      expect((err as WalCorruptError).file).toBe(file);
      expect((err as WalCorruptError).offset).toBe(pick.offset);
      expect((err as Error).message).toContain(file);
      writeFileSync(file, original);
    }
    // Untouched again: opens, and nothing was dropped.
    const ok = await Wal.open(dir, SMALL);
    expect(ok.lastIndex).toBe(400);
    await ok.close();
  });

  it('reports an emptied or a missing middle segment as corruption', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 400; i += 20) await wal.append(range(i, i + 20, 1));
    await wal.close();
    const files = segments(dir);
    truncateSync(files[2]!, 0);
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: files[2], offset: 0 });
    unlinkSync(files[2]!);
    await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: files[3], offset: 0 });
  });

  it('refuses a segment that is a symbolic link, and writes nothing through it', async () => {
    const dir = join(tempDir(), 'wal');
    const wal = await Wal.open(dir);
    await wal.append(range(1, 3));
    await wal.close();
    const seg = segments(dir)[0]!;
    const outside = join(dirname(dir), 'outside.bin');
    renameSync(seg, outside);
    symlinkSync(outside, seg);
    const before = readFileSync(outside);
    await expect(Wal.open(dir)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: seg, message: expect.stringContaining('symbolic link') });
    expect(readFileSync(outside).equals(before)).toBe(true);
  });

  it("refuses a FIFO in a segment's place at once, instead of waiting on it", async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 200; i += 20) await wal.append(range(i, i + 20, 1));
    await wal.close();
    const middle = segments(dir)[1]!;
    unlinkSync(middle);
    execFileSync('mkfifo', [middle]);
    try {
      await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: middle, message: expect.stringContaining('not a regular file') });
    } finally {
      try {
        closeSync(openSync(middle, constants.O_WRONLY | constants.O_NONBLOCK)); // frees a reader blocked on it, if any
      } catch {
        // no reader: nothing is blocked
      }
    }
  });

  it("opens a segment of 200,000 snapshot markers in a small heap: only the last marker's meta is kept", async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir);
    await wal.saveSnapshot({ index: 0, term: 0 });
    await wal.close();
    // The snapshot marker repeated: every copy is intact (its checksum covers only itself),
    // and with no job marker after them they are the segment's last group, read as written.
    const seg = segments(dir)[0]!;
    const records = recordsOf(seg);
    const snap = records.find((r) => r.kind === 4)!;
    const bytes = readFileSync(seg);
    const copy = bytes.subarray(snap.offset, snap.offset + snap.bytes);
    writeFileSync(seg, Buffer.concat([bytes.subarray(0, snap.offset), Buffer.concat(Array.from({ length: 200_000 }, () => copy)), Buffer.alloc(16)]));
    const r = await runChild(
      ['--max-old-space-size=24'],
      `const { Wal } = await import(${JSON.stringify(join(process.cwd(), 'src/wal/index.ts'))}); const w = await Wal.open(${JSON.stringify(dir)}); console.log(w.snapshot.index); await w.close();`,
    );
    expect({ status: r.status, signal: r.signal, out: r.stdout.trim(), fatal: /FATAL|heap/i.test(r.stderr) }, r.stderr.slice(-500)).toEqual({
      status: 0,
      signal: null,
      out: '0',
      fatal: false,
    });
  });

  for (const damage of ['cut', 'zeroed'] as const)
    it(`reports a segment before the last ${damage} at a record boundary, which reads as a clean end, as corruption`, async () => {
      const dir = tempDir();
      const wal = await Wal.open(dir, SMALL);
      await wal.append(range(1, 21, 1));
      // Hard states until the WAL begins a segment: the next one starts with no entry.
      for (let t = 1; segments(dir).length < 2; t++) await wal.append([], { term: t, vote: 1, commit: 0 });
      await wal.close();
      const first = segments(dir)[0]!;
      const at = recordsOf(first).find((r) => r.kind === ENTRY)!.offset; // all 20 entries go
      if (damage === 'cut') truncateSync(first, at);
      else {
        const buf = readFileSync(first);
        writeFileSync(first, buf.fill(0, at));
      }
      await expect(Wal.open(dir, SMALL)).rejects.toMatchObject({ code: 'WAL_CORRUPT', file: first, message: expect.stringContaining('starts at entry 21') });
    });
});

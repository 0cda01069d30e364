// TAIL: a last segment deleted, emptied or cut short below the group TAIL says was synced
// in it is refused (WAL_CORRUPT naming it), not read as an older, whole log.
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal, WalCorruptError } from '../../src/wal/index.js';
import { checkTail, readTail, TAIL_NAME } from '../../src/wal/tail.js';
import { cleanTempDirs, range, tempDir } from './helpers.js';

afterEach(cleanTempDirs);

const SMALL = { segmentBytes: 8192 };

function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.wal'))
    .sort();
}

function fds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** 80 entries acknowledged one append at a time, over 4 or more small segments. */
async function fourSegments(): Promise<string> {
  const dir = tempDir();
  const wal = await Wal.open(dir, SMALL);
  for (let i = 1; i <= 80; i += 4) await wal.append(range(i, i + 4, 1, 0, 300));
  await wal.close();
  expect(segments(dir).length).toBeGreaterThanOrEqual(4);
  return dir;
}

/** Opens `dir` twice: both refuse with WAL_CORRUPT naming `file` (the lock released, no fd left open). */
async function refusedTwice(dir: string, file: string): Promise<WalCorruptError> {
  const before = fds();
  const err = await Wal.open(dir, SMALL).then(
    (w) => w.close().then(() => null),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WalCorruptError);
  expect((err as WalCorruptError).file).toBe(file);
  expect(fds()).toBe(before);
  const again = await Wal.open(dir, SMALL).then(
    (w) => w.close().then(() => null),
    (e: unknown) => e,
  );
  expect(again).toMatchObject({ code: 'WAL_CORRUPT', file });
  return err as WalCorruptError;
}

describe('TAIL', () => {
  it("is the owner's alone (0600) under the usual umask, as every file of a WAL", async () => {
    const before = process.umask(0o022);
    try {
      const dir = await fourSegments();
      expect((statSync(join(dir, TAIL_NAME)).mode & 0o777).toString(8)).toBe('600');
    } finally {
      process.umask(before);
    }
  });

  it('names the last segment once its first group is synced, and reopening keeps every entry', async () => {
    const dir = await fourSegments();
    const tail = await readTail(dir);
    const last = segments(dir).at(-1)!;
    expect(tail).not.toBeNull();
    expect(tail!.seq).toBe(parseInt(last.slice(0, 16), 16));
    const wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(80);
    expect(wal.repair).toBeNull();
    await wal.close();
  });

  it('a deleted last segment is WAL_CORRUPT naming it', async () => {
    const dir = await fourSegments();
    const last = join(dir, segments(dir).at(-1)!);
    rmSync(last);
    const err = await refusedTwice(dir, last);
    expect(err.message).toMatch(/is missing, but .*TAIL records entries synced in it/);
  });

  it('a last segment whose header is damaged, its length kept, is WAL_CORRUPT naming it (not removed as a header never synced)', async () => {
    const dir = await fourSegments();
    const name = segments(dir).at(-1)!;
    const last = join(dir, name);
    const bytes = readFileSync(last);
    bytes[20]! ^= 0xff; // in the magic
    writeFileSync(last, bytes);
    const err = await refusedTwice(dir, last);
    expect(err.message).toMatch(/without an intact header/);
    expect(segments(dir)).toContain(name);
  });

  it('an emptied last segment is WAL_CORRUPT naming it (not a torn write removed)', async () => {
    const dir = await fourSegments();
    const last = join(dir, segments(dir).at(-1)!);
    truncateSync(last, 0);
    await refusedTwice(dir, last);
    expect(readdirSync(dir)).toContain(segments(dir).at(-1)!);
  });

  it('a last segment cut to its header is WAL_CORRUPT naming it', async () => {
    const dir = await fourSegments();
    const last = join(dir, segments(dir).at(-1)!);
    truncateSync(last, 40);
    await refusedTwice(dir, last);
  });

  it("a last segment cut below TAIL's end is WAL_CORRUPT naming it", async () => {
    const dir = await fourSegments();
    const last = join(dir, segments(dir).at(-1)!);
    const { end } = (await readTail(dir))!;
    expect(end).toBeGreaterThan(40);
    truncateSync(last, end - 8);
    const err = await refusedTwice(dir, last);
    expect(err.message).toContain(`${end - 8} bytes long`);
  });

  it("damage below TAIL's end in a last segment a crash left unsealed is WAL_CORRUPT, never cut off as a torn write", async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    // Up to the first write into segment 2: that segment then holds one group alone, with no later marker.
    for (let i = 1; segments(dir).length < 2; i += 4) await wal.append(range(i, i + 4, 1, 0, 300));
    const lastName = segments(dir).at(-1)!;
    // Wait for TAIL to name the newest segment, then copy the directory as a crash would leave it (no seal).
    for (let k = 0; k < 500 && (await readTail(dir))?.seq !== parseInt(lastName.slice(0, 16), 16); k++) await new Promise((r) => setTimeout(r, 10));
    const { end } = (await readTail(dir))!;
    const crashed = tempDir();
    cpSync(dir, crashed, { recursive: true });
    await wal.close();
    // Zero the last 16 bytes of the segment's first group (its marker): a torn write, but for TAIL.
    const file = join(crashed, lastName);
    const bytes = readFileSync(file);
    bytes.fill(0, end - 16 < 40 ? 40 : end - 16, end);
    writeFileSync(file, bytes);
    const err = await refusedTwice(crashed, file);
    expect(err.message).toContain('TAIL records a group synced in this segment up to a later offset');
  });

  it('a damaged TAIL is WAL_CORRUPT naming it', async () => {
    const dir = await fourSegments();
    const path = join(dir, TAIL_NAME);
    const bytes = readFileSync(path);
    bytes[20] ^= 0x40;
    writeFileSync(path, bytes);
    const err = await refusedTwice(dir, path);
    expect(err.message).toContain('checksum mismatch');
    writeFileSync(path, bytes.subarray(0, 20));
    expect((await refusedTwice(dir, path)).message).toContain('20 bytes, not 44');
    writeFileSync(path, Buffer.concat([Buffer.from('XXXXXXXX'), bytes.subarray(8)]));
    expect((await refusedTwice(dir, path)).message).toContain('bad magic');
  });

  it('a TAIL naming a segment released since is no claim; a TAIL.tmp left by a crash is removed', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    for (let i = 1; i <= 40; i += 4) await wal.append(range(i, i + 4, 1, 0, 300));
    await wal.close();
    const old = readFileSync(join(dir, TAIL_NAME));
    const reopened = await Wal.open(dir, SMALL);
    for (let i = 41; i <= 80; i += 4) await reopened.append(range(i, i + 4, 1, 0, 300));
    await reopened.saveSnapshot({ index: 80, term: 1 });
    await reopened.releaseTo(80);
    await reopened.close();
    expect(parseInt(segments(dir)[0]!.slice(0, 16), 16)).toBeGreaterThan(old.readUInt32LE(8));
    writeFileSync(join(dir, TAIL_NAME), old);
    writeFileSync(join(dir, 'TAIL.tmp'), 'junk');
    expect((await checkTail(dir)).keep).toBeNull();
    const again = await Wal.open(dir, SMALL);
    expect(again.firstIndex).toBe(81);
    await again.close();
    expect(readdirSync(dir)).not.toContain('TAIL.tmp');
  });

  it("a WAL without TAIL (an earlier build's, or one that never began a second segment) opens as before, and gets one with its next segment", async () => {
    const dir = await fourSegments();
    rmSync(join(dir, TAIL_NAME));
    const wal = await Wal.open(dir, SMALL);
    expect(wal.lastIndex).toBe(80);
    await wal.append(range(81, 82));
    expect(await readTail(dir)).toBeNull();
    const before = segments(dir).length;
    for (let i = 82; segments(dir).length === before; i += 4) await wal.append(range(i, i + 4, 1, 0, 300));
    await wal.close();
    expect((await readTail(dir))?.seq).toBe(parseInt(segments(dir).at(-1)!.slice(0, 16), 16));
  });

  it('a TAIL that cannot be written makes close reject with WAL_IO, after every append was acknowledged', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    mkdirSync(join(dir, 'TAIL.tmp'));
    for (let i = 1; segments(dir).length < 2; i += 4) await wal.append(range(i, i + 4, 1, 0, 300));
    const closed = await wal.close().then(
      () => null,
      (e: unknown) => e,
    );
    expect(closed).toMatchObject({ code: 'WAL_IO', message: expect.stringMatching(/could not write TAIL naming 0000000000000002-/) });
    expect(await readTail(dir)).toBeNull();
  });

  it("sync: 'none' writes no TAIL", async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { ...SMALL, sync: 'none' });
    for (let i = 1; i <= 40; i += 4) await wal.append(range(i, i + 4, 1, 0, 300));
    await wal.close();
    expect(await readTail(dir)).toBeNull();
  });
});

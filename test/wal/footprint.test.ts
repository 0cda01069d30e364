// What the default preparation of segments costs on disk, and that segments
// zeroed ahead in steps still rotate, replay and take appends correctly.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/log/options.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { Wal, WAL_DEFAULTS } from '../../src/wal/index.js';
import { RecordingMachine, enc } from '../log/helpers.js';
import { cleanTempDirs, range, tempDir } from './helpers.js';
import { diskBytes } from '../../bench/disk-bytes.js';

afterEach(cleanTempDirs);

/** The footprint once the WAL's background preparation has settled: two readings 300 ms apart agree. */
async function settledDiskBytes(dir: string): Promise<number> {
  let last = -1;
  for (let i = 0; i < 40; i++) {
    const now = diskBytes(dir);
    if (now === last) return now;
    last = now;
    await sleep(300);
  }
  return last;
}

function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.wal'))
    .sort();
}

/** Offset just past the last nonzero byte: where the records end, the zeroed tail beyond. */
function dataEnd(path: string): number {
  const b = readFileSync(path);
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return end;
}

describe('disk footprint with the default options', () => {
  it('ReplicatedLog takes its preallocation default from the WAL', () => {
    expect(DEFAULTS.preallocate).toBe(WAL_DEFAULTS.preallocate);
  });

  it('a fresh ReplicatedLog takes at most 8 MiB after one append', async () => {
    const dir = tempDir();
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: new RecordingMachine() });
    await log.append(enc('one'));
    const bytes = await settledDiskBytes(dir);
    await log.close();
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(8 * 1024 * 1024);
  });
});

describe("segments zeroed ahead in steps (preallocate 'zeros')", () => {
  it('rotates under sustained appends, zeroes ahead when idle, and replays the zeroed tail as the end of the log', async () => {
    const dir = tempDir();
    const segmentBytes = 4 * 1024 * 1024;
    // 4 KiB records, 64 to an append (about 256 KiB), eight appends in flight.
    const size = 4096;
    const perAppend = 64;
    let wal = await Wal.open(dir, { segmentBytes, preallocate: 'zeros', cacheBytes: 0 });
    let next = 1;
    const burst = async (appends: number): Promise<void> => {
      const calls: Promise<void>[] = [];
      for (let k = 0; k < appends; k++) {
        calls.push(wal.append(range(next, next + perAppend, 1, 0, size)));
        next += perAppend;
        if (calls.length === 8) await Promise.all(calls.splice(0));
      }
      await Promise.all(calls);
    };
    // About 13 MiB in bursts with idle pauses between them, so that both paths run:
    // appends past the zeroed part (the file grows) and zeroing ahead while idle.
    for (let b = 0; b < 13; b++) {
      await burst(4);
      await sleep(20);
    }
    expect(wal.stats().segmentsCreated).toBeGreaterThanOrEqual(4);
    const segments = segmentFiles(dir);
    expect(segments.length).toBe(wal.stats().segments);
    for (const name of segments) expect(statSync(join(dir, name)).size).toBeLessThanOrEqual(segmentBytes);

    // Fill the last segment to about 700 KiB past its start, then let the writer idle: it
    // zeroes at least half a step (512 KiB) beyond the records.
    const last = join(dir, segmentFiles(dir).at(-1)!);
    while (dataEnd(last) < 700 * 1024) await burst(1);
    const end = dataEnd(last);
    expect(end).toBeLessThan(2 * 1024 * 1024);
    let ahead = 0;
    for (let i = 0; i < 100 && ahead < 512 * 1024; i++) {
      await sleep(20);
      ahead = statSync(last).size - end;
    }
    expect(ahead).toBeGreaterThanOrEqual(512 * 1024);
    expect(dataEnd(last)).toBe(end);
    const written = next - 1;
    await wal.close();

    // The zeroed tail is the end of the log, not data and not damage; appends go into it.
    wal = await Wal.open(dir, { segmentBytes, preallocate: 'zeros', cacheBytes: 0 });
    expect(wal.repair).toBeNull();
    expect(wal.lastIndex).toBe(written);
    await burst(2);
    await wal.close();
    wal = await Wal.open(dir, { segmentBytes, preallocate: 'zeros', cacheBytes: 0 });
    expect(wal.repair).toBeNull();
    expect(wal.lastIndex).toBe(next - 1);
    for (let lo = 1; lo < next; lo += 256) {
      const hi = Math.min(next, lo + 256);
      const got = wal.entriesSync(lo, hi);
      const want = range(lo, hi, 1, 0, size);
      expect(got.map((e) => [e.index, e.term, e.type])).toEqual(want.map((e) => [e.index, e.term, e.type]));
      const differ = got.findIndex((e, k) => !Buffer.from(e.data).equals(want[k]!.data));
      expect(differ).toBe(-1);
      await new Promise(setImmediate);
    }
    await wal.close();
  });
});

// Damaged copies of a real WAL (16 KiB segments, a snapshot marker, released
// segments, everything acknowledged by a clean close), for each way of preparing
// segments: preallocated whole ('fallocate'), zeroed ahead in steps ('zeros', the
// default) and ending at the data ('none'); but for 'none', one released segment
// is reused, its earlier records left past the new ones. Each copy either opens as
// a prefix of what was written that keeps every entry the damage did not touch,
// or fails with a coded WalError; nothing else is thrown, nothing crashes or
// hangs. The seed comes from test/seeded.ts (printed; TEST_SEED=N replays it);
// `FUZZ=long` tries every 8-aligned offset of the last segment for every kind
// of byte damage.
import { cpSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Wal, WalError, type WalEntry, type WalOptions } from '../../src/wal/index.js';
import { seeded, testSeed } from '../seeded.js';
import { cleanTempDirs, entry, plain, tempDir } from './helpers.js';

const STRATEGIES = ['fallocate', 'zeros', 'none'] as const;
const LONG = process.env['FUZZ'] === 'long';
const CASES = 300;

interface Placed {
  index: number;
  file: string;
  offset: number;
  bytes: number;
}

/** The undamaged WAL a strategy wrote, and where its entries are. */
interface Built {
  options: WalOptions;
  base: string;
  expected: Map<number, WalEntry>;
  placed: Placed[];
  files: string[];
  firstIndex: number;
  seed: number;
}

/** Entries as the framing places them in each segment file. */
function placements(dir: string): Placed[] {
  const out: Placed[] = [];
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.wal'))) {
    const buf = readFileSync(join(dir, name));
    for (let off = 0; off + 16 <= buf.length && buf.readUInt32LE(off + 4) + buf[off + 8]! !== 0;) {
      const bytes = Math.ceil((16 + buf.readUInt32LE(off + 4)) / 8) * 8;
      if (buf[off + 8] === 2) out.push({ index: Number(buf.readBigUInt64LE(off + 16)), file: name, offset: off, bytes });
      off += bytes;
    }
  }
  return out;
}

async function build(preallocate: (typeof STRATEGIES)[number]): Promise<Built> {
  const options: WalOptions = { segmentBytes: 16 * 1024, preallocate };
  const seed = testSeed(`WAL fuzz, preallocate '${preallocate}'`);
  const base = tempDir();
  const wal = await Wal.open(base, options);
  const random = seeded(seed ^ 0x5eed);
  const expected = new Map<number, WalEntry>();
  let next = 1;
  // 60 jobs, and more if the drawn sizes filled fewer than five segments: file damage needs several.
  const segments = (): number => readdirSync(base).filter((f) => f.endsWith('.wal')).length;
  for (let job = 0; job < 60 || segments() <= 4; job++) {
    const batch: WalEntry[] = [];
    for (let n = 1 + Math.floor(random() * 8); n > 0; n--) batch.push(entry(next++, 2, job, 1 + Math.floor(random() * 600)));
    await wal.append(batch, { term: 2, vote: 1, commit: next - 1 });
    for (const e of batch) expected.set(e.index, e);
    if (job === 30) {
      await wal.saveSnapshot({ index: next - 40, term: 2, meta: Uint8Array.of(1, 2, 3) });
      await wal.releaseTo(next - 40);
    }
  }
  const firstIndex = wal.firstIndex;
  // Released segments are reused as they are (not with 'none'): the damage falls on their old bytes too.
  if (preallocate === 'none') expect(wal.stats().segmentsRecycled).toBe(0);
  else expect(wal.stats().segmentsRecycled).toBeGreaterThanOrEqual(1);
  await wal.close();
  const files = readdirSync(base)
    .filter((f) => f.endsWith('.wal'))
    .sort();
  return { options, base, expected, placed: placements(base), files, firstIndex, seed };
}

afterAll(cleanTempDirs);

interface Damage {
  what: string;
  apply(dir: string): void;
  /** Is the entry's record bytes touched by the damage? */
  touches(p: Placed): boolean;
}

const within = (file: string, from: number, to: number) => (p: Placed) => p.file === file && p.offset < to && p.offset + p.bytes > from;
const wholeFile = (file: string) => (p: Placed) => p.file === file;

function byteDamage(kind: 'flip' | 'zero' | 'truncate' | 'length', file: string, at: number, len = 8): Damage {
  const path = (dir: string): string => join(dir, file);
  switch (kind) {
    case 'flip':
      return {
        what: `flip a bit of byte ${at} of ${file}`,
        apply: (dir) => {
          const b = readFileSync(path(dir));
          b[at] = b[at]! ^ (1 << (at % 8));
          writeFileSync(path(dir), b);
        },
        touches: within(file, at, at + 1),
      };
    case 'zero':
      return {
        what: `zero ${len} bytes at ${at} of ${file}`,
        apply: (dir) => {
          const b = readFileSync(path(dir));
          b.fill(0, Math.min(at, b.length), Math.min(at + len, b.length)); // a segment may end at its data
          writeFileSync(path(dir), b);
        },
        touches: within(file, at, at + len),
      };
    case 'truncate':
      return { what: `truncate ${file} at ${at}`, apply: (dir) => truncateSync(path(dir), at), touches: within(file, at, Infinity) };
    case 'length':
      return {
        what: `a huge length in the header at ${at} of ${file}`,
        apply: (dir) => {
          const b = readFileSync(path(dir));
          b.writeUInt32LE(0x3fff_fff0, at + 4);
          writeFileSync(path(dir), b);
        },
        touches: within(file, at, Infinity),
      };
  }
}

function fileDamage(files: string[], kind: number, random: () => number): Damage {
  const k = Math.floor(random() * files.length);
  const file = files[k]!;
  switch (kind) {
    case 0:
      return { what: `delete ${file}`, apply: (dir) => unlinkSync(join(dir, file)), touches: wholeFile(file) };
    case 1: {
      // A copy of a segment under the next sequence number: its header names another file.
      const seq = parseInt(files.at(-1)!.slice(0, 16), 16) + 1;
      const name = `${seq.toString(16).padStart(16, '0')}-${file.slice(17)}`;
      return { what: `duplicate ${file} as ${name}`, apply: (dir) => cpSync(join(dir, file), join(dir, name)), touches: () => false };
    }
    case 2:
      return { what: `rename ${file} upper-case`, apply: (dir) => renameSync(join(dir, file), join(dir, file.toUpperCase())), touches: wholeFile(file) };
    case 3:
      return { what: 'a stray file', apply: (dir) => writeFileSync(join(dir, 'segment.bak'), 'x'), touches: () => false };
    default: {
      const page = Math.floor(random() * 4) * 4096;
      return { ...byteDamage('zero', file, page, 4096), what: `zero the 4 KiB page at ${page} of ${file}` };
    }
  }
}

function sampled({ base, placed, files, seed }: Built): Damage[] {
  const random = seeded(seed);
  const last = files.at(-1)!;
  const size = readFileSync(join(base, last)).length;
  // A last segment may hold only its prelude (header, snapshot marker, hard state) when a seed's sizes end on a rotation.
  const ends = placed.filter((p) => p.file === last).map((p) => p.offset + p.bytes);
  const lastData = (ends.length > 0 ? Math.max(...ends) : 0) + 64;
  const aligned = (n: number): number => Math.floor(n / 8) * 8;
  const out: Damage[] = [];
  if (LONG) {
    for (let at = 0; at < lastData; at += 8) {
      out.push(byteDamage('truncate', last, at), byteDamage('zero', last, at, 8), byteDamage('flip', last, at + 3), byteDamage('length', last, at));
    }
    for (let k = 0; k < 5 * files.length; k++) out.push(fileDamage(files, k % 5, random));
    return out;
  }
  for (let c = 0; c < CASES; c++) {
    const r = random();
    const at = aligned(random() * Math.min(size, lastData));
    if (r < 0.2) out.push(byteDamage('truncate', last, at));
    else if (r < 0.4) out.push(byteDamage('zero', last, at, 8 * (1 + Math.floor(random() * 64))));
    else if (r < 0.6) out.push(byteDamage('flip', last, Math.floor(random() * lastData)));
    else if (r < 0.7) out.push(byteDamage('length', last, at));
    else if (r < 0.8) out.push(byteDamage('flip', files[Math.floor(random() * files.length)]!, Math.floor(random() * 16_384)));
    else out.push(fileDamage(files, Math.floor(random() * 5), random));
  }
  return out;
}

describe.each(STRATEGIES)(`WAL fuzz${LONG ? ' (FUZZ=long)' : ''}, preallocate '%s'`, (preallocate) => {
  it(
    'every damaged copy opens as an intact prefix or fails with a coded error',
    async () => {
      // Built inside the test, so that the seed's replay line names it.
      const built = await build(preallocate);
      const { options, base, expected, placed, firstIndex } = built;
      expect(built.files.length).toBeGreaterThan(4);
      expect(firstIndex).toBeGreaterThan(1);
      const work = tempDir();
      const outcomes = { opened: 0, refused: new Map<string, number>() };
      for (const d of sampled(built)) {
        rmSync(work, { recursive: true, force: true });
        cpSync(base, work, { recursive: true });
        d.apply(work);
        let wal: Wal | undefined;
        try {
          wal = await Wal.open(work, options);
        } catch (err) {
          expect(err, d.what).toBeInstanceOf(WalError);
          const code = (err as WalError).code;
          outcomes.refused.set(code, (outcomes.refused.get(code) ?? 0) + 1);
          continue;
        }
        try {
          outcomes.opened++;
          expect(wal.firstIndex, d.what).toBe(firstIndex);
          const last = wal.lastIndex;
          // What it kept is exactly what was written...
          const kept = last >= wal.firstIndex ? wal.entriesSync(wal.firstIndex, last + 1) : [];
          expect(plain(kept), d.what).toEqual(plain([...Array(kept.length).keys()].map((k) => expected.get(wal!.firstIndex + k)!)));
          // ...and it lost nothing the damage did not touch.
          for (const p of placed) if (p.index >= firstIndex && !d.touches(p)) expect(p.index, `${d.what}: entry ${p.index} lost`).toBeLessThanOrEqual(last);
        } finally {
          await wal.close();
        }
        await new Promise<void>((r) => setImmediate(r));
      }
      // The sample must exercise both outcomes, or it proves little.
      expect(outcomes.opened).toBeGreaterThan(10);
      expect(outcomes.refused.get('WAL_CORRUPT') ?? 0).toBeGreaterThan(10);
    },
    LONG ? 3_600_000 : 120_000,
  );
});

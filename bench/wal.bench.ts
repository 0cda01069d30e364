// The native WAL against a plain Node group-commit writer and the raw disk,
// all in one run on the same disk. `npm run bench -- wal [--quick] [--profile]
// [--cases all|prealloc] [--rounds N]`.
//
// Each case keeps `inflight` appends of `batch` records outstanding for a
// fixed time after a warm-up under the same load, counted in 250 ms windows;
// a case's figure is its median window, and the table shows the median of
// the rounds, each round running every case in turn.
// Event-loop delay comes from perf_hooks.monitorEventLoopDelay while the case
// is measured.
import { spawnSync } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { machineAtStart } from '../src/cli/machine.js';
import { onInterrupt } from '../src/cli/on-interrupt.js';
import { Payloads } from '../src/cli/payloads.js';
import { WAL_DEFAULTS } from '../src/wal/defaults.js';
import { Wal } from '../src/wal/index.js';
import type { WalEntry, WalOptions } from '../src/wal/index.js';
import { entryRecordBytes, writeEntry } from '../src/wal/record.js';
import { SuiteProfiles, optionValue, positiveInteger, profileDirOf, median, writeResults, type SuiteOption } from './suite.js';
import { diskBytes } from './disk-bytes.js';
import { rawDiskNote } from './report.js';

export const options: Record<string, SuiteOption> = {
  '--cases': {
    help: 'all|prealloc  every case, or only the comparison of preallocation strategies (default all)',
    check: (v) => (v === 'all' || v === 'prealloc' ? null : "must be 'all' or 'prealloc'"),
  },
  '--rounds': positiveInteger.option('N  rounds of every case, each round running them in turn; medians reported (default 3, --quick 1)'),
};

/** The strategies compared, in the order each round runs them. */
const PREALLOCS = ['none', 'zeros', 'fallocate'] as const;

const crc32c = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };
const WINDOW_MS = 250;
/**
 * The raw disk's two patterns. 'new': 1 MiB writes, an fdatasync after each,
 * into a new file: fio's usual figure, for the cross-check. 'overwrite': 1 MiB
 * writes over a file written before, an fdatasync every 8 MiB: the disk goal's
 * baseline: the disk's best durable pattern, with as much per sync as the WAL
 * commits at 16 MiB in flight (1 KiB x 64 x 256: about 7 MiB per fdatasync).
 * On a virtual disk it ran 2-4x the first (fio: 455 against 1,014-1,121
 * MB/s), so only the second is a ceiling. The WAL reaches it only where its
 * syncs carry no size or extent change, that is, into blocks written before.
 * The WAL writes past the page cache where it can, so the ceiling is the
 * better of this pattern through the page cache and past it (fio --direct=1:
 * Node cannot align its buffers as O_DIRECT wants).
 */
const RAW = {
  new: { mibPerSync: 1, overwrite: false },
  overwrite: { mibPerSync: 8, overwrite: true },
} as const;
type RawPattern = (typeof RAW)[keyof typeof RAW];
/** The file the overwrite pattern writes over, wrapping around at its end. */
const OVERWRITE_BYTES = 1 << 30;
const SLICE_RECORDS = 1024;
/** Longest warm-up of a case, under its own load. */
const WARM_UP_MS = 500;

interface Row {
  writer: string;
  size: number;
  batch: number;
  inflight: number;
  recordsPerSec: number; // median window
  meanRecordsPerSec: number;
  payloadMBps: number; // median window, payload bytes
  fileMBps: number; // mean, bytes written to the file (framing included)
  fsyncs: number;
  recordsPerFsync: number;
  appendP50us: number;
  appendP99us: number;
  loopP99ms: number;
  loopMaxms: number;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

interface Appender {
  append(entries: WalEntry[]): Promise<void>;
  fsyncs(): number;
  fileBytes(): number;
  close(): Promise<void>;
}

/** Drives `inflight` outstanding appends of `batch` records for `ms`; measures windows, latency and loop delay. */
async function drive(
  w: Appender,
  size: number,
  batch: number,
  inflight: number,
  ms: number,
  slice = SLICE_RECORDS,
): Promise<Omit<Row, 'writer' | 'size' | 'batch' | 'inflight'>> {
  const payloads = new Payloads(size);
  let next = 1;
  const makeBatch = (): WalEntry[] => {
    const es: WalEntry[] = new Array(batch);
    for (let i = 0; i < batch; i++) es[i] = { index: next++, term: 1, type: 0, data: payloads.next() };
    return es;
  };
  // Warm up under the case's own load (the code is compiled, the writer's buffers and
  // caches have grown to what this many appends in flight need), then measure.
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const latencies: number[] = [];
  const windows: number[] = [];
  let windowRecords = 0;
  let total = 0;
  let fsyncs0 = 0;
  let bytes0 = 0;
  let start = Infinity;
  let windowStart = 0;
  let stop = false;
  const warmUntil = performance.now() + Math.min(ms / 4, WARM_UP_MS);
  await new Promise<void>((resolve, reject) => {
    let outstanding = 0;
    let scheduled = false;
    // New appends are issued from setImmediate in slices of at most
    // SLICE_RECORDS records, so that the load generator itself never holds
    // the event loop for long: the loop delay measured is the writer's.
    const schedule = (): void => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(issue);
    };
    const done = (t: number): void => {
      const now = performance.now();
      outstanding--;
      if (start === Infinity) {
        if (now >= warmUntil) {
          start = windowStart = now;
          fsyncs0 = w.fsyncs();
          bytes0 = w.fileBytes();
          loop.enable();
        }
        if (!stop) schedule();
        return;
      }
      if (latencies.length < 200_000) latencies.push((now - t) * 1000);
      windowRecords += batch;
      total += batch;
      if (now - windowStart >= WINDOW_MS) {
        windows.push((windowRecords * 1000) / (now - windowStart));
        windowRecords = 0;
        windowStart = now;
      }
      if (now - start >= ms) stop = true;
      if (stop && outstanding === 0) resolve();
      else if (!stop) schedule();
    };
    const issue = (): void => {
      scheduled = false;
      let budget = slice;
      while (!stop && outstanding < inflight && budget > 0) {
        outstanding++;
        budget -= batch;
        const t = performance.now();
        w.append(makeBatch()).then(() => done(t), reject);
      }
      if (!stop && outstanding < inflight) schedule();
    };
    issue();
  });
  const elapsed = (performance.now() - start) / 1000;
  loop.disable();
  const fsyncs = w.fsyncs() - fsyncs0;
  const recordsPerSec = median(windows.length > 0 ? windows : [total / elapsed]);
  return {
    recordsPerSec,
    meanRecordsPerSec: total / elapsed,
    payloadMBps: (recordsPerSec * size) / 1e6,
    fileMBps: (w.fileBytes() - bytes0) / elapsed / 1e6,
    fsyncs,
    recordsPerFsync: fsyncs > 0 ? total / fsyncs : 0,
    appendP50us: percentile(latencies, 50),
    appendP99us: percentile(latencies, 99),
    loopP99ms: loop.percentile(99) / 1e6,
    loopMaxms: loop.max / 1e6,
  };
}

/**
 * The native WAL. With `compact`, as a log that snapshots as it goes: once a segment's worth
 * of records is durable past the last snapshot marker, a new one is saved and the segments
 * below it released, so that the WAL holds about two segments and reuses released ones.
 */
async function walAppender(dir: string, options: WalOptions, compact = false): Promise<Appender> {
  const wal = await Wal.open(dir, options);
  const segmentBytes = options.segmentBytes ?? WAL_DEFAULTS.segmentBytes;
  let durable = 0;
  let snapshotAt = 0;
  let compacting: Promise<void> | null = null;
  const compactAfter = async (last: number, recordBytes: number): Promise<void> => {
    durable = Math.max(durable, last);
    if (compacting !== null || (durable - snapshotAt) * recordBytes < segmentBytes) return;
    snapshotAt = durable;
    compacting = wal
      .saveSnapshot({ index: snapshotAt, term: 1 })
      .then(() => wal.releaseTo(snapshotAt))
      .finally(() => (compacting = null));
    await compacting;
  };
  return {
    // The entries are not held while the append is in flight: kept alive until it is durable,
    // they outlive the young generation and the collector's old-generation work shows in the
    // event loop's delay (p99 2-3x in the 262,144-record case).
    append: (es) => {
      const written = wal.append(es);
      if (!compact) return written;
      const last = es.at(-1)!.index;
      const recordBytes = entryRecordBytes(es[0]!.data.length);
      return written.then(() => compactAfter(last, recordBytes));
    },
    fsyncs: () => wal.stats().fsyncs,
    fileBytes: () => wal.stats().bytes,
    close: () => wal.close(),
  };
}

/**
 * The plain Node baseline: the same record framing, built in JS (CRC32C from
 * the crc-32 package), and a group commit that writes everything queued since
 * the last flush with one fs.writeSync and one fs.fdatasyncSync, on the event
 * loop.
 */
function nodeAppender(dir: string): Appender {
  const fd = openSync(join(dir, 'plain.log'), 'w');
  let queue: { buf: Uint8Array; resolve: () => void }[] = [];
  let scheduled = false;
  let fsyncs = 0;
  let bytes = 0;
  const flush = (): void => {
    scheduled = false;
    const q = queue;
    queue = [];
    const buf = q.length === 1 ? q[0]!.buf : Buffer.concat(q.map((x) => x.buf));
    writeSync(fd, buf);
    fdatasyncSync(fd);
    fsyncs++;
    bytes += buf.length;
    for (const x of q) x.resolve();
  };
  return {
    append(es) {
      let total = 0;
      for (const e of es) total += entryRecordBytes(e.data.length);
      const u8 = new Uint8Array(total);
      const dv = new DataView(u8.buffer);
      let pos = 0;
      for (const e of es) {
        const size = writeEntry(u8, dv, pos, e.index, e.term, e.type, e.data);
        dv.setUint32(pos, crc32c.buf(u8.subarray(pos + 4, pos + 32 + e.data.length)) >>> 0, true);
        pos += size;
      }
      return new Promise<void>((resolve) => {
        queue.push({ buf: u8, resolve });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    fsyncs: () => fsyncs,
    fileBytes: () => bytes,
    close: async () => closeSync(fd),
  };
}

/** Writes the file the overwrite pattern writes over, and makes it durable. */
function layOut(dir: string): void {
  const fd = openSync(join(dir, 'overwrite.bin'), 'w');
  const chunks = new Payloads(1 << 20);
  for (let at = 0; at < OVERWRITE_BYTES; at += 1 << 20) writeSync(fd, unlike(chunks.next(), at), 0, 1 << 20, at);
  fdatasyncSync(fd);
  closeSync(fd);
}

/**
 * Stamps `at` (the write's place in the stream) into every 4 KiB block of `chunk`, so that
 * no two blocks written are alike even though the random chunks repeat: what fio's default
 * `scramble_buffers` does, against a host that deduplicates blocks.
 */
function unlike(chunk: Uint8Array, at: number): Uint8Array {
  const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  for (let off = 0; off + 8 <= chunk.length; off += 4096) dv.setFloat64(off, at + off, true);
  return chunk;
}

/**
 * The raw disk: 1 MiB sequential writes of random bytes, the way fio's `--rw=write --bs=1M
 * --fdatasync=N` writes. `MBps` is the median of 250 ms windows, as the WAL's rows are;
 * `meanMBps` covers the whole run, as fio's figure does. They part where the disk is bimodal
 * (a virtual disk that absorbs bursts in the host's cache, then drains at the device's speed).
 */
function rawDisk(dir: string, ms: number, pattern: RawPattern): { MBps: number; meanMBps: number; windows: number[] } {
  const path = join(dir, pattern.overwrite ? 'overwrite.bin' : 'raw.bin');
  const fd = openSync(path, pattern.overwrite ? 'r+' : 'w');
  const chunks = new Payloads(1 << 20);
  const windows: number[] = [];
  const start = performance.now();
  let windowStart = start;
  let windowBytes = 0;
  let written = 0;
  while (performance.now() - start < ms) {
    writeSync(fd, unlike(chunks.next(), written), 0, 1 << 20, pattern.overwrite ? written % OVERWRITE_BYTES : written);
    written += 1 << 20;
    windowBytes += 1 << 20;
    if ((written >> 20) % pattern.mibPerSync !== 0) continue;
    fdatasyncSync(fd);
    const now = performance.now();
    if (now - windowStart >= WINDOW_MS) {
      windows.push(windowBytes / ((now - windowStart) / 1000) / 1e6);
      windowBytes = 0;
      windowStart = now;
    }
  }
  const elapsed = performance.now() - start;
  closeSync(fd);
  if (!pattern.overwrite) rmSync(path, { force: true });
  return { MBps: median(windows), meanMBps: written / (elapsed / 1000) / 1e6, windows };
}

/**
 * fio's figure (random bytes, its defaults) for the same pattern on the same directory, when fio is installed
 * (Debian: fio); null otherwise. `direct`: past the page cache, over the file layOut() wrote.
 */
function fioMBps(dir: string, ms: number, pattern: RawPattern, direct = false): number | null {
  const r = spawnSync(
    'fio',
    [
      '--name=raw',
      ...(direct ? [`--filename=${join(dir, 'overwrite.bin')}`, '--direct=1'] : [`--directory=${dir}`]),
      '--rw=write',
      '--bs=1M',
      // fio lays out an overwritten file before it measures, as layOut() does; a new one grows as it is written.
      ...(pattern.overwrite ? [`--size=${OVERWRITE_BYTES}`, '--overwrite=1'] : ['--size=4G', '--fallocate=none']),
      `--fdatasync=${pattern.mibPerSync}`,
      `--runtime=${Math.max(1, Math.round(ms / 1000))}`,
      '--time_based',
      '--output-format=json',
    ],
    { encoding: 'utf8' },
  );
  if (r.error !== undefined || r.status !== 0) {
    // Installed but failing (a full disk, an option its version lacks), it is not said to be missing.
    if ((r.error as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') console.error(`fio failed (${fioFailure(r)}): no cross-check`);
    return null;
  }
  try {
    const job = (JSON.parse(r.stdout) as { jobs: Array<{ write: { bw_bytes: number } }> }).jobs[0];
    return job === undefined ? null : job.write.bw_bytes / 1e6;
  } catch {
    return null;
  } finally {
    rmSync(join(dir, 'raw.0.0'), { force: true });
  }
}

function fioFailure(r: { error?: Error; status: number | null; stderr: string }): string {
  if (r.error !== undefined) return r.error.message;
  const line = r.stderr.split('\n').find((l) => l.trim() !== '');
  return `exit ${String(r.status)}${line === undefined ? '' : `: ${line.trim().slice(0, 200)}`}`;
}

/**
 * The product's load shape: 100 B records at a fixed 100,000 records/s (a
 * batch of 100 every millisecond, as a Raft leader appends one proposal
 * batch per tick), whatever the latency. Shows what the WAL costs the event
 * loop at that rate and the append latency under it.
 */
async function paced(
  dir: string,
  ms: number,
): Promise<{ recordsPerSec: number; appendP50us: number; appendP99us: number; loopP99ms: number; loopMaxms: number; recordsPerFsync: number }> {
  const wal = await Wal.open(dir, { sync: 'always' });
  const payloads = new Payloads(100);
  let next = 1;
  const latencies: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const fsyncs0 = wal.stats().fsyncs;
  loop.enable();
  const start = performance.now();
  let sent = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(Math.floor(((now - start) * 100_000) / 1000), Math.floor((ms * 100_000) / 1000));
      while (sent < due) {
        const n = Math.min(100, due - sent);
        const es: WalEntry[] = new Array(n);
        for (let i = 0; i < n; i++) es[i] = { index: next++, term: 1, type: 0, data: payloads.next() };
        sent += n;
        const t = performance.now();
        wal.append(es).then(() => {
          latencies.push((performance.now() - t) * 1000);
          done += n;
          if (now - start >= ms && done === sent) resolve();
        }, reject);
      }
      if (now - start < ms) setTimeout(tick, 1);
      else if (done === sent) resolve();
    };
    tick();
  });
  loop.disable();
  const elapsed = (performance.now() - start) / 1000;
  const fsyncs = wal.stats().fsyncs - fsyncs0;
  await wal.close();
  return {
    recordsPerSec: done / elapsed,
    appendP50us: percentile(latencies, 50),
    appendP99us: percentile(latencies, 99),
    loopP99ms: loop.percentile(99) / 1e6,
    loopMaxms: loop.max / 1e6,
    recordsPerFsync: fsyncs > 0 ? done / fsyncs : 0,
  };
}

/**
 * What a fresh WAL takes on disk after one 1 KiB append, once the background
 * preparation of the next segment has settled (two readings 300 ms apart agree).
 */
async function footprint(dir: string, options: WalOptions): Promise<number> {
  const wal = await Wal.open(dir, { sync: 'always', ...options });
  await wal.append([{ index: 1, term: 1, type: 0, data: new Payloads(1024).next() }]);
  let last = -1;
  for (let i = 0; i < 50; i++) {
    const now = diskBytes(dir);
    if (now === last) break;
    last = now;
    await new Promise((r) => setTimeout(r, 300));
  }
  await wal.close();
  return last;
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** With --profile: one profile per case (the writer's main thread), summed per writer. */
export const profiles = true;

export default async function walBench(args: string[]): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'raftlog-walbench-'));
  // Interrupted, the `finally` below does not run; the file overwritten alone is 1 GiB.
  const stop = onInterrupt(() => rmSync(root, { recursive: true, force: true }));
  try {
    await measureIn(root, args);
  } finally {
    stop();
    rmSync(root, { recursive: true, force: true });
  }
}

async function measureIn(root: string, args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const only = optionValue(args, '--cases') === 'prealloc';
  const rounds = positiveInteger.value(args, '--rounds') ?? (quick ? 1 : 3);
  const profiler = new SuiteProfiles('wal', profileDirOf(args));
  const ms = quick ? 600 : 2000;
  const sizes = [100, 1024];
  const batches = [1, 64, 1024];
  const inflights = [1, 16, 256];
  // 1 KiB x 1024 records x 256 in flight would hold 256 MiB in flight and adds nothing the 16-in-flight case does not show.
  const skip = (size: number, batch: number, inflight: number): boolean => size * batch * inflight > 64 * 1024 * 1024;
  type Case = { writer: string; size: number; batch: number; inflight: number; options?: WalOptions; compact?: boolean; rawBefore?: boolean; slice?: number };
  const mainCases: Case[] = [];
  for (const size of only ? [] : sizes)
    for (const batch of batches)
      for (const inflight of inflights) {
        if (skip(size, batch, inflight)) continue;
        mainCases.push({ writer: 'wal', size, batch, inflight });
        mainCases.push({ writer: 'node', size, batch, inflight });
      }
  // Every case runs `rounds` times, a round running each in turn, so that a
  // change in the machine's load falls on all of them alike; each row is the
  // median of its rounds (a single 2 s case swings by a third here, its loop
  // p99 by 2x). Each round also compares how segments are prepared, every
  // strategy in turn on the cases the targets name, after the raw disk, so
  // that the disk-speed goal compares figures taken minutes apart at most (a
  // shared disk's speed drifts by 2x).
  const strategyCases = [
    [1024, 64, 256],
    [1024, 1, 256],
    [100, 1, 1],
  ] as const;
  const cases: Case[] = [];
  for (let round = 0; round < rounds; round++) {
    cases.push(...mainCases);
    for (const [size, batch, inflight] of strategyCases)
      for (const prealloc of PREALLOCS)
        cases.push({
          writer: `wal/${prealloc}`,
          size,
          batch,
          inflight,
          options: { preallocate: prealloc },
          rawBefore: size === strategyCases[0][0] && batch === strategyCases[0][1] && prealloc === PREALLOCS[0],
        });
    // The disk goal's case as a long-running log writes: compacted as it goes, so that its
    // released segments are recycled and it writes into blocks written before, as the raw
    // overwrite pattern does (the cases above only ever write new files).
    cases.push({ writer: 'wal/steady', size: 1024, batch: 64, inflight: 256, compact: true });
    // The same, every append issued in the turn that frees its slot (16 MiB in one turn at
    // the start): the WAL hands such a turn over in pieces as it packs them.
    cases.push({ writer: 'wal/steady-one-turn', size: 1024, batch: 64, inflight: 256, compact: true, slice: Infinity });
  }

  const rows: Row[] = [];
  let n = 0;
  const total = cases.length + 3 + PREALLOCS.length + rounds;
  const machine = machineAtStart();
  console.log(`wal bench: ${total} cases of ${ms} ms in ${root}\n${machine.header()}`);
  const rawMs = Math.max(ms, 1500);
  layOut(root);
  const measureFirst = (p: RawPattern): { MBps: number; meanMBps: number; windows: number[]; fio: number | null; direct: number | null } => {
    process.stdout.write(
      `[${++n}/${total}] raw disk (1 MiB writes ${p.overwrite ? 'over a written file' : 'into a new file'}, fdatasync every ${p.mibPerSync} MiB) ... `,
    );
    const r = { ...rawDisk(root, rawMs, p), fio: fioMBps(root, rawMs, p), direct: p.overwrite ? fioMBps(root, rawMs, p, true) : null };
    console.log(
      `${fmt(r.MBps, 1)} MB/s (mean ${fmt(r.meanMBps, 1)})${r.fio === null ? ' (no fio figure: no cross-check)' : `; fio, a mean: ${fmt(r.fio, 1)} MB/s`}` +
        (r.direct === null ? '' : `; past the page cache (fio --direct=1): ${fmt(r.direct, 1)} MB/s`),
    );
    return r;
  };
  const first = { new: measureFirst(RAW.new), overwrite: measureFirst(RAW.overwrite) };
  /** Each round's ceiling: the better of the pattern through the page cache and past it. */
  const rawRounds: number[] = [];
  const rawRoundsBuffered: number[] = [];
  const rawRoundsDirect: Array<number | null> = [];
  const footprints: Record<string, number> = {};
  for (const prealloc of PREALLOCS) {
    process.stdout.write(`[${++n}/${total}] footprint of a fresh WAL after one append, preallocate '${prealloc}' ... `);
    const dir = join(root, `footprint-${prealloc}`);
    footprints[prealloc] = await footprint(dir, { preallocate: prealloc });
    rmSync(dir, { recursive: true, force: true });
    console.log(`${fmt(footprints[prealloc] / 2 ** 20, 1)} MiB`);
  }
  const measured: Row[] = [];
  for (const c of cases) {
    if (c.rawBefore === true) {
      process.stdout.write(
        `[${++n}/${total}] raw disk (overwrite, fdatasync every ${RAW.overwrite.mibPerSync} MiB), round ${rawRounds.length + 1} of the strategies ... `,
      );
      const buffered = rawDisk(root, rawMs, RAW.overwrite).MBps;
      const direct = fioMBps(root, rawMs, RAW.overwrite, true);
      rawRoundsBuffered.push(buffered);
      rawRoundsDirect.push(direct);
      rawRounds.push(Math.max(buffered, direct ?? 0));
      console.log(`${fmt(buffered, 1)} MB/s${direct === null ? '' : `; past the page cache (fio --direct=1): ${fmt(direct, 1)} MB/s`}`);
    }
    const dir = join(root, `case-${n}`);
    mkdirSync(dir);
    process.stdout.write(`[${++n}/${total}] ${c.writer} ${c.size} B x ${c.batch} per append, ${c.inflight} in flight ... `);
    const w = c.writer === 'node' ? nodeAppender(dir) : await walAppender(dir, { sync: 'always', ...c.options }, c.compact);
    const r = await profiler.around(c.writer, `${c.writer}-${c.size}b-x${c.batch}-${c.inflight}`, () => drive(w, c.size, c.batch, c.inflight, ms, c.slice));
    await w.close();
    rmSync(dir, { recursive: true, force: true });
    measured.push({ writer: c.writer, size: c.size, batch: c.batch, inflight: c.inflight, ...r });
    console.log(`${fmt(r.recordsPerSec)} rec/s, ${fmt(r.payloadMBps, 1)} MB/s, loop p99 ${fmt(r.loopP99ms, 2)} ms`);
  }
  // One row per case, in the order the cases first ran: the median of its rounds.
  const runsOf = new Map<string, Row[]>();
  for (const r of measured) {
    const key = `${r.writer} ${r.size} ${r.batch} ${r.inflight}`;
    const runs = runsOf.get(key);
    if (runs === undefined) runsOf.set(key, [r]);
    else runs.push(r);
  }
  for (const runs of runsOf.values()) {
    const med = (key: keyof Row): number => median(runs.map((r) => r[key] as number));
    rows.push({
      ...runs[0]!,
      recordsPerSec: med('recordsPerSec'),
      meanRecordsPerSec: med('meanRecordsPerSec'),
      payloadMBps: med('payloadMBps'),
      fileMBps: med('fileMBps'),
      fsyncs: med('fsyncs'),
      recordsPerFsync: med('recordsPerFsync'),
      appendP50us: med('appendP50us'),
      appendP99us: med('appendP99us'),
      loopP99ms: med('loopP99ms'),
      loopMaxms: Math.max(...runs.map((r) => r.loopMaxms)),
    });
  }
  process.stdout.write(`[${++n}/${total}] wal paced: 100 B at 100,000 records/s ... `);
  const pacedDir = join(root, 'paced');
  mkdirSync(pacedDir);
  const pace = await profiler.around('wal paced', 'wal-paced', () => paced(pacedDir, Math.max(ms, 2000)));
  console.log(`${fmt(pace.recordsPerSec)} rec/s, append p99 ${fmt(pace.appendP99us)} µs, loop p99 ${fmt(pace.loopP99ms, 2)} ms`);
  machine.finish();
  // fio's usual pattern, for the cross-check, and the disk at the WAL's own
  // sync size as the cases saw it: the median of the first measurement and each round's.
  const raw = { ...RAW.new, ...first.new };
  const overwrite = {
    ...RAW.overwrite,
    MBps: median([Math.max(first.overwrite.MBps, first.overwrite.direct ?? 0), ...rawRounds]),
    first: Math.max(first.overwrite.MBps, first.overwrite.direct ?? 0),
    firstBuffered: first.overwrite.MBps,
    firstDirect: first.overwrite.direct,
    firstMean: first.overwrite.meanMBps,
    rounds: rawRounds,
    roundsBuffered: rawRoundsBuffered,
    roundsDirect: rawRoundsDirect,
    fio: first.overwrite.fio,
  };
  const defaultBig = rows.find((r) => r.writer === `wal/${WAL_DEFAULTS.preallocate}` && r.size === 1024 && r.batch === 64 && r.inflight === 256);
  const steady = rows.find((r) => r.writer === 'wal/steady');
  // The raw disk of the strategy rounds, which the rows judged against it ran beside.
  const roundsRaw = median(rawRounds.length > 0 ? rawRounds : [overwrite.first]);

  const nodeOf = (r: Row): Row | undefined => rows.find((x) => x.writer === 'node' && x.size === r.size && x.batch === r.batch && x.inflight === r.inflight);
  const header =
    '| writer | record | batch | in flight | records/s (median) | MB/s payload | vs node | vs raw disk (overwrite) | records/fsync | append p50 / p99 µs | loop p99 / max ms |';
  const lines = [header, '|' + ' --- |'.repeat(11)];
  for (const r of rows) {
    const node = r.writer === 'node' ? undefined : nodeOf(r);
    lines.push(
      `| ${r.writer} | ${r.size} B | ${r.batch} | ${r.inflight} | ${fmt(r.recordsPerSec)} | ${fmt(r.payloadMBps, 1)} | ${node ? fmt(r.recordsPerSec / node.recordsPerSec, 2) + 'x' : ''} | ${fmt((100 * r.payloadMBps) / overwrite.MBps, 0)}% | ${fmt(r.recordsPerFsync, 1)} | ${fmt(r.appendP50us)} / ${fmt(r.appendP99us)} | ${fmt(r.loopP99ms, 2)} / ${fmt(r.loopMaxms, 1)} |`,
    );
  }
  console.log(`\n${rawDiskNote({ rawDisk: raw, rawDiskOverwrite: overwrite })}`);
  console.log(`${machine.header()}${profiler.enabled ? '; measured under the CPU profiler' : ''}\n`);
  console.log(`every row: the median of ${rounds} round(s) (loop max: the largest)`);
  console.log(lines.join('\n'));
  console.log('\npreallocation strategies; footprint of a fresh WAL after one 1 KiB append (allocated blocks):');
  for (const prealloc of PREALLOCS) {
    const of = (size: number, batch: number, inflight: number): Row | undefined =>
      rows.find((r) => r.writer === `wal/${prealloc}` && r.size === size && r.batch === batch && r.inflight === inflight);
    const big = of(1024, 64, 256);
    console.log(
      `  ${prealloc}: ${fmt(footprints[prealloc]! / 2 ** 20, 1)} MiB; 1 KiB x 64 x 256: ${fmt(big?.payloadMBps ?? 0, 1)} MB/s (${fmt((100 * (big?.payloadMBps ?? 0)) / overwrite.MBps, 0)}% of raw overwrite); ` +
        strategyCases
          .map(([s, b, i]) => `${s} B x ${b} x ${i}: ${fmt(of(s, b, i)?.recordsPerSec ?? 0)} rec/s, loop p99 ${fmt(of(s, b, i)?.loopP99ms ?? 0, 2)} ms`)
          .join('; '),
    );
  }

  // The WAL's performance goals.
  const walRows = rows.filter((r) => r.writer === 'wal');
  const big = walRows.filter((r) => r.size === 1024 && r.inflight === 256);
  const bestBig = big.reduce<Row | undefined>((a, r) => (a === undefined || r.payloadMBps > a.payloadMBps ? r : a), undefined);
  // The goal's cases: 100 B records, 1024 per append, every in-flight depth.
  const small = walRows.filter((r) => r.size === 100 && r.batch === 1024).map((r) => ({ r, ratio: r.recordsPerSec / (nodeOf(r)?.recordsPerSec ?? NaN) }));
  // The loop goal holds in every case of the WAL, its strategies' and steady cases' too.
  const everyWal = rows.filter((r) => r.writer !== 'node');
  const worstLoop = Math.max(...everyWal.map((r) => r.loopP99ms));
  const targets = {
    rawDiskMBps: overwrite.MBps,
    kib256: big.map((r) => ({ batch: r.batch, MBps: r.payloadMBps, ofRaw: r.payloadMBps / overwrite.MBps })),
    bestKib256OfRaw: bestBig ? bestBig.payloadMBps / overwrite.MBps : 0,
    /** The default strategy in the rounds beside the raw disk of the same rounds, at the WAL's sync size. */
    defaultKib64x256OfRaw: defaultBig ? defaultBig.payloadMBps / roundsRaw : 0,
    /** Payload bytes the WAL synced per fdatasync in that case, to set beside the baseline's. */
    defaultKib64x256MiBPerSync: defaultBig ? (defaultBig.recordsPerFsync * defaultBig.size) / 2 ** 20 : 0,
    /** The same case compacted as it goes (segments recycled), against the same rounds' raw disk. */
    steadyKib64x256OfRaw: steady ? steady.payloadMBps / roundsRaw : 0,
    smallVsNode: small.map(({ r, ratio }) => ({ batch: r.batch, inflight: r.inflight, ratio })),
    minSmallVsNode: Math.min(...small.map((s) => s.ratio)),
    medianSmallVsNode: median(small.map((s) => s.ratio)),
    worstLoopP99ms: worstLoop,
  };
  console.log('\ntargets:');
  console.log(
    `  1 KiB x 64 x 256 in flight, default strategy, beside the raw disk in the same rounds: ${fmt(100 * targets.defaultKib64x256OfRaw, 0)}% of the raw disk overwriting with an fdatasync every ${overwrite.mibPerSync} MiB, the WAL's ${fmt(targets.defaultKib64x256MiBPerSync, 1)} MiB (target >= 90%)`,
  );
  console.log(
    `  the same, compacted as it goes (released segments recycled): ${fmt(100 * targets.steadyKib64x256OfRaw, 0)}% of the same raw disk (${fmt(steady?.payloadMBps ?? 0, 1)} MB/s)`,
  );
  // With --cases prealloc only the strategies ran: these two have no cases to judge.
  if (small.length > 0)
    console.log(
      `  100 B x 1024 per append vs plain Node: worst ${fmt(targets.minSmallVsNode, 2)}x, median ${fmt(targets.medianSmallVsNode, 2)}x over the in-flight depths (target >= 1.5x)`,
    );
  if (everyWal.length > 0)
    console.log(
      `  event-loop delay p99, worst WAL case: ${fmt(worstLoop, 2)} ms, median over WAL cases ${fmt(median(everyWal.map((r) => r.loopP99ms)), 2)} ms (target < 5 ms)`,
    );
  console.log(
    `  paced 100 B at 100,000 rec/s: ${fmt(pace.recordsPerSec)} rec/s, ${fmt(pace.recordsPerFsync, 1)} records/fsync, append p50 ${fmt(pace.appendP50us)} / p99 ${fmt(pace.appendP99us)} µs, loop p99 ${fmt(pace.loopP99ms, 2)} / max ${fmt(pace.loopMaxms, 1)} ms`,
  );

  profiler.print();
  console.log('');
  writeResults('wal', {
    machine: machine.machine,
    profiled: profiler.enabled,
    caseMs: ms,
    windowMs: WINDOW_MS,
    rawDisk: raw,
    rawDiskOverwrite: overwrite,
    rows,
    rounds,
    footprintBytes: footprints,
    paced: pace,
    targets,
  });
}

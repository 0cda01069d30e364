// The per-record functions of the append and apply paths, each on its own,
// with tinybench: `npm run bench -- micro [--quick] [--profile]`.
//
// One operation handles a batch of BATCH records (or one checksum of the
// stated size), because a single record takes tens of nanoseconds, about what
// reading the clock twice costs: the ns/record column divides by the batch.
import { createRequire } from 'node:module';
import { Bench, hrtimeNow, type Task } from 'tinybench';
import { Proposals } from '../src/log/proposals.js';
import { BatchReader, encodeBatches, recordOrigin } from '../src/log/record-batch.js';
import type { LogEntry } from '../src/log/state-machine.js';
import { EntryType, type Entry } from '../src/raft/types.js';
import { addon } from '../src/wal/addon.js';
import { ENTRY_PREFIX, Kind, entryRecordBytes, segmentName, writeEntry } from '../src/wal/record.js';
import { replay, type ScanRecords } from '../src/wal/replay.js';
import { machineAtStart } from '../src/cli/machine.js';
import { SuiteProfiles, profileDirOf, writeResults } from './suite.js';

const BATCH = 64;
const crc32cJs = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };

interface Case {
  name: string;
  /** Records (or checksums) per operation. */
  perOp: number;
  fn: () => void;
}

/** What the cases compute goes here, so that no call is dead code to the JIT. */
let sink = 0;

function payloads(size: number): Uint8Array[] {
  return Array.from({ length: BATCH }, (_, i) => new Uint8Array(size).fill(i));
}

/**
 * Packing entries into one WAL frame buffer, as Wal's #write does for an append
 * (sizes, one zeroed buffer, then the header, index, term and payload of each
 * record; the CRC is the writer thread's job).
 */
function walPacking(size: number): Case {
  const entries = payloads(size).map((data, i) => ({ index: i + 1, term: 3, type: 0, data }));
  return {
    name: `wal: pack ${BATCH} x ${size} B entries into a frame buffer`,
    perOp: BATCH,
    fn: () => {
      let total = 0;
      for (const e of entries) total += entryRecordBytes(e.data.length);
      const u8 = new Uint8Array(total);
      const dv = new DataView(u8.buffer);
      let pos = 0;
      for (const e of entries) pos += writeEntry(u8, dv, pos, e.index, e.term, e.type, e.data);
      sink += pos;
    },
  };
}

/**
 * Replaying what the native scan of a WAL found, as open does: `n` entry records of 100 B
 * over four segments. It bounds how long a node with a long log takes to open, beside the
 * scan itself (which reads the disk on the thread pool).
 */
function walReplay(n: number): Case {
  const segments = 4;
  const per = n / segments;
  const records = new Float64Array(n * 8);
  for (let k = 0; k < n; k++) {
    const seg = Math.floor(k / per);
    records.set([Kind.Entry, seg, 24 + (k % per) * 136, ENTRY_PREFIX + 100, 0, k + 1, 1, 0], k * 8);
  }
  const scan: ScanRecords = {
    segments: Array.from({ length: segments }, (_, s) => ({
      seq: s + 1,
      firstIndex: s * per + 1,
      name: segmentName(s + 1, s * per + 1, 1),
      size: 64 << 20,
      end: 24 + per * 136,
      mark: { start: 0, records: 0, crc: 0, atMarker: false },
    })),
    records,
    metas: [],
  };
  return {
    name: `wal: replay a scan of ${n.toLocaleString('en-US')} entry records`,
    perOp: n,
    fn: () => {
      sink += replay('/bench', scan).positions.last;
    },
  };
}

const origin = recordOrigin(1, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
const otherOrigin = recordOrigin(2, new Uint8Array([8, 7, 6, 5, 4, 3, 2, 1]));

function recordEncode(size: number): Case {
  const ps = payloads(size);
  let seq = 1_000_000;
  return {
    name: `record: encodeBatches, ${BATCH} x ${size} B`,
    perOp: BATCH,
    fn: () => {
      const seqs = new Array<number>(BATCH);
      for (let i = 0; i < BATCH; i++) seqs[i] = seq++;
      sink += encodeBatches(origin, seqs, ps, 1 << 20, []).length;
    },
  };
}

/** A committed entry carrying one batch of BATCH records, as a turn's appends become. */
function committed(size: number, from: Uint8Array, firstSeq: number): Entry {
  const seqs = Array.from({ length: BATCH }, (_, i) => firstSeq + i);
  const [data] = encodeBatches(from, seqs, payloads(size), 1 << 20, []);
  return { index: 1, term: 3, type: EntryType.Normal, data: data! };
}

/** `asRead`: the entry's bytes as a follower gets them, a Buffer view into a larger socket read. */
function recordDecode(size: number, asRead = false): Case {
  const entry = committed(size, origin, 1_000_000);
  let data = entry.data;
  if (asRead) {
    const read = Buffer.alloc(data.length + 64);
    read.set(data, 32);
    data = read.subarray(32, 32 + data.length);
  }
  const reader = new BatchReader();
  return {
    name: `record: BatchReader open + next, ${BATCH} x ${size} B${asRead ? ', from a Buffer (as a follower reads it)' : ''}`,
    perOp: BATCH,
    fn: () => {
      if (!reader.open(data, entry.index)) return;
      for (let k = 0; k < reader.count; k++) sink += reader.next().byteLength;
    },
  };
}

/** A batch's bookkeeping on the leader that made it: add each append, markProposed, then entryApplied and applied for each. */
function proposalCycle(): Case {
  const proposals = new Proposals<undefined>(origin);
  const resolve = (): void => void sink++;
  const reject = (): void => void sink--;
  let index = 0;
  let term = 1;
  return {
    name: `proposals: add, markProposed, applied x ${BATCH} (own records, as leader)`,
    perOp: BATCH,
    fn: () => {
      const first = proposals.add(resolve, reject, 100);
      for (let i = 1; i < BATCH; i++) proposals.add(resolve, reject, 100);
      proposals.markProposed(first, first + BATCH - 1, ++index, term);
      proposals.entryApplied(index, term, first);
      for (let i = 0; i < BATCH; i++) proposals.applied(first + i, index, term, i, undefined);
      if (proposals.size !== 0) throw new Error(`${proposals.size} proposals left unsettled`);
      if (index > 2 ** 40) term++;
    },
  };
}

/**
 * Handing a committed batch to the state machine, as ReplicatedLog's
 * applyEntries does: open the batch, build each LogEntry, call apply, and tell
 * the proposals (here a batch another node appended, so nothing is pending: the
 * follower's path).
 */
function applyDispatch(size: number): Case {
  const entry = committed(size, otherOrigin, 1);
  const proposals = new Proposals<number>(origin);
  const sm = { apply: (e: LogEntry): number => e.data.byteLength };
  const reader = new BatchReader();
  return {
    name: `apply: batch -> LogEntry -> apply, ${BATCH} x ${size} B`,
    perOp: BATCH,
    fn: () => {
      if (!reader.open(entry.data, entry.index)) return;
      const own = reader.hasOrigin(origin);
      const first = reader.firstSeq;
      proposals.entryApplied(entry.index, entry.term, own ? first : -1);
      for (let k = 0; k < reader.count; k++) {
        const result = sm.apply({ index: entry.index, term: entry.term, offset: k, data: reader.next() });
        if (own) proposals.applied(first + k, entry.index, entry.term, k, result);
        sink += result;
      }
    },
  };
}

function crcCases(size: number): Case[] {
  const data = new Uint8Array(size).map((_, i) => i * 31);
  // Small inputs are checksummed BATCH times per operation, like a batch of records.
  const reps = size <= 4096 ? BATCH : 1;
  const native = addon();
  const loop =
    (f: () => number): (() => void) =>
    () => {
      for (let i = 0; i < reps; i++) sink += f();
    };
  const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
  return [
    { name: `crc32c native (hardware if the CPU has it), ${label}`, perOp: reps, fn: loop(() => native.crc32c(data, false, 0)) },
    { name: `crc32c native, software table, ${label}`, perOp: reps, fn: loop(() => native.crc32c(data, true, 0)) },
    { name: `crc32c crc-32 package (JS), ${label}`, perOp: reps, fn: loop(() => crc32cJs.buf(data)) },
  ];
}

function cases(): Case[] {
  // The three implementations must agree, or the comparison means nothing.
  const probe = new Uint8Array(1000).map((_, i) => i * 7);
  const want = addon().crc32c(probe, false, 0) >>> 0;
  if (addon().crc32c(probe, true, 0) >>> 0 !== want || crc32cJs.buf(probe) >>> 0 !== want) throw new Error('the CRC32C implementations disagree');
  return [
    walPacking(100),
    walPacking(1024),
    walReplay(100_000),
    recordEncode(100),
    recordDecode(100),
    recordDecode(100, true),
    proposalCycle(),
    applyDispatch(100),
    ...crcCases(128),
    ...crcCases(64 * 1024),
  ];
}

interface Row {
  case: string;
  perOp: number;
  opsPerSec: number;
  meanNs: number;
  p99Ns: number;
  samples: number;
  nsPerRecord: number;
}

function rowOf(c: Case, t: Task): Row {
  const r = t.result;
  if (r === undefined) throw new Error(`${c.name}: no result`);
  if (r.error !== undefined) throw r.error;
  const meanNs = r.latency.mean * 1e6;
  return {
    case: c.name,
    perOp: c.perOp,
    // Operations over the time they took (tinybench's throughput.mean averages per-sample rates, which fast outliers inflate).
    opsPerSec: 1e9 / meanNs,
    meanNs,
    p99Ns: (r.latency.p99 ?? NaN) * 1e6,
    samples: r.latency.samples.length,
    nsPerRecord: meanNs / c.perOp,
  };
}

/** Profiled per case with --profile (summed per group: wal, record, proposals, apply, crc32c). */
export const profiles = true;

export default async function micro(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const time = quick ? 150 : 1000;
  const warmupTime = quick ? 50 : 250;
  const machine = machineAtStart();
  const profiler = new SuiteProfiles('micro', profileDirOf(args));
  console.log(machine.header());
  const rows: Row[] = [];
  for (const c of cases()) {
    const group = c.name.split(/[: ]/, 1)[0]!;
    const row = await profiler.around(group, c.name, async () => {
      const bench = new Bench({ time, warmupTime, throws: true, now: hrtimeNow });
      bench.add(c.name, c.fn);
      await bench.run();
      return rowOf(c, bench.tasks[0]!);
    });
    rows.push(row);
    console.log(`  ${c.name}: ${fmt(row.meanNs)} ns/op, ${fmt(row.nsPerRecord, 1)} ns/record`);
  }
  machine.finish();
  console.log(`\n${machine.header()}`);
  console.log(`tinybench: ${time} ms per case after ${warmupTime} ms of warm-up${profiler.enabled ? ', under the CPU profiler' : ''}`);
  console.log('| case | ops/s | mean ns | p99 ns | samples | records/op | ns/record |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows)
    console.log(`| ${r.case} | ${fmt(r.opsPerSec)} | ${fmt(r.meanNs)} | ${fmt(r.p99Ns)} | ${r.samples} | ${r.perOp} | ${fmt(r.nsPerRecord, 1)} |`);
  profiler.print();
  if (!Number.isFinite(sink)) throw new Error('the cases computed garbage'); // also keeps `sink` live
  writeResults('micro', {
    machine: machine.machine,
    quick,
    profiled: profiler.enabled,
    timeMs: time,
    warmupMs: warmupTime,
    batch: BATCH,
    rows: rows.map((r) => ({
      ...r,
      opsPerSec: Math.round(r.opsPerSec),
      meanNs: Math.round(r.meanNs),
      p99Ns: Math.round(r.p99Ns),
      nsPerRecord: Math.round(r.nsPerRecord * 10) / 10,
    })),
  });
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

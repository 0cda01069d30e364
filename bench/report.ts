// `npm run bench -- report`: docs/performance.md from the results in
// bench/results/*.json, each suite's table with the date and the machine it
// was measured on, after the goals judged from them (goals.ts). It measures
// nothing: the figures are whatever the last run of each suite wrote.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeMachine, type Machine } from '../src/cli/machine.js';
import { goalsSection } from './goals.js';
import { RESULTS_DIR } from './suite.js';

type Json = Record<string, unknown>;
type Cell = string | number | null | undefined;

interface Section {
  title: string;
  about: string;
  /** Figures outside the table. */
  notes?(r: Json): string[];
  table(r: Json): { head: string[]; rows: Cell[][] };
}

/** The raw disk in both patterns, with fio's figures where fio ran (also the WAL bench's own summary). */
export const rawDiskNote = (r: Json): string => {
  const fresh = r.rawDisk as Json | undefined;
  const over = r.rawDiskOverwrite as Json | undefined;
  // The figures are medians of 250 ms windows, as the WAL's rows are; fio reports a mean over
  // its run, so the first measurement's own mean stands beside it.
  const fio = (mean: unknown, v: unknown): string => {
    const parts = [...(typeof mean === 'number' ? [`first run's mean: ${num(mean, 1)}`] : []), ...(typeof v === 'number' ? [`fio, a mean: ${num(v, 1)}`] : [])];
    return parts.length === 0 ? '' : ` (${parts.join('; ')})`;
  };
  const rounds = Array.isArray(over?.rounds) ? (over.rounds as unknown[]) : [];
  // Runs that measured the pattern past the page cache too (the WAL writes that way where it can).
  const direct = Array.isArray(over?.roundsDirect) ? (over.roundsDirect as unknown[]) : [];
  const buffered = Array.isArray(over?.roundsBuffered) ? (over.roundsBuffered as unknown[]) : [];
  const pair = (b: unknown, d: unknown): string => (typeof d === 'number' ? `${num(b, 1)} / ${num(d, 1)}` : num(b, 1));
  const both = typeof over?.firstBuffered === 'number';
  return (
    `Raw disk on the same directory, 1 MiB writes, medians of 250 ms windows: ${num(fresh?.MBps, 1)} MB/s into a new file with an fdatasync after each${fio(fresh?.meanMBps, fresh?.fio)}; ` +
    `${num(over?.MBps, 1)} MB/s over a written file with one every ${num(over?.mibPerSync)} MiB${fio(over?.firstMean, over?.fio)}` +
    (rounds.length === 0
      ? ''
      : both
        ? `, the median of the start and each round of the strategies, each the better of the page cache and past it (fio --direct=1), MB/s: ${[pair(over?.firstBuffered, over?.firstDirect), ...buffered.map((b, i) => pair(b, direct[i]))].join(', ')}`
        : `, the median of ${num(over?.first, 1)} at the start and ${rounds.map((v) => num(v, 1)).join(', ')} before each round of the strategies`) +
    `. The disk goal is judged against the second, the disk's best durable pattern, with about as much per fdatasync as the WAL commits in the goal's case (1 KiB x 64 x 256 in flight: about 7 MiB).`
  );
};

const num = (v: unknown, digits = 0): string =>
  typeof v === 'number' && Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';
const rowsOf = (r: Json, key = 'rows'): Json[] => (Array.isArray(r[key]) ? (r[key] as Json[]) : []);

/** The suites whose results are performance figures, in the order the page shows them. */
const SECTIONS: Record<string, Section> = {
  cluster: {
    title: 'Product benchmark: cluster, embedded node, better-sqlite3',
    about:
      "`raftlog bench`: C clients, each appending one record at a time (a different slice of random bytes each time) and waiting for the commit; the systems take turns within each case, and each figure is the median of the runs. A cluster's turn ends when both followers hold every entry and their processes are idle, so that a trailing follower's catch-up falls on no other system's turn. CPU is this process's user + system time per record (for the cluster: node 1, the leader, and the clients; nodes 2 and 3 run apart), counted until then, and 'all processes' adds nodes 2 and 3 (from /proc); GC is the share of the measured time spent collecting garbage.",
    table: (r) => {
      const rows = rowsOf(r);
      const sqlite = (x: Json): Json | undefined =>
        rows.find((y) => y.system === 'better-sqlite3' && y.recordBytes === x.recordBytes && y.clients === x.clients);
      return {
        head: ['system', 'record', 'clients', 'records/s', 'vs sqlite', 'MB/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'CPU us/record', 'all processes', 'GC'],
        rows: rows.map((x) => {
          const s = sqlite(x);
          return [
            String(x.system),
            `${num(x.recordBytes)} B`,
            num(x.clients),
            num(x.recordsPerSec),
            s === undefined || s === x ? '' : `${num(Number(x.recordsPerSec) / Number(s.recordsPerSec), 2)}x`,
            num(x.mbPerSec, 1),
            num(x.p50Ms, 2),
            num(x.p99Ms, 2),
            num(x.p999Ms, 2),
            num(x.cpuUsPerRecord, 1),
            typeof x.systemCpuUsPerRecord === 'number' ? num(x.systemCpuUsPerRecord, 1) : '-',
            typeof x.gcShare === 'number' ? `${num(100 * x.gcShare)}%` : '-',
          ];
        }),
      };
    },
  },
  resp: {
    title: 'The KV example over RESP: 3-node cluster beside Redis',
    about:
      "`npm run bench -- resp`: three `raftlog serve --resp --sync always` processes (the KV state machine, default snapshots) on loopback, and redis-server with `appendonly yes`, `appendfsync always` (one node, durable), driven in turns by the same closed-loop client over real sockets: C connections, each sending `SET key:<random in 0..99999> <100 random bytes>` and waiting for the reply (the shape of `redis-benchmark -t set -d 100 -r 100000 -c C`, which sends a constant value). Medians of the runs; CPU is the user + system time of the system's processes (the cluster: all three nodes) per million SETs.",
    notes: (r) => [
      `${num(r.seconds, 1)} s measured per case after a ${num(r.warmupSeconds, 1)} s warm-up, ${num(r.runs)} run${r.runs === 1 ? '' : 's'} each; ${
        typeof r.redisVersion === 'string' ? `Redis ${r.redisVersion}` : 'no Redis installed: the cluster alone'
      }. The last column is redis-benchmark's own figure for the cluster and for Redis, when it was installed.`,
      ...snapshotCostNote(r),
      ...cpuBoundNote(r),
    ],
    table: (r) => {
      const lat = (s: unknown): string => {
        const x = s as Json | null;
        return x === null || x === undefined ? '-' : `${num(x.p50Ms, 2)} / ${num(x.p99Ms, 2)} / ${num(x.p999Ms, 2)}`;
      };
      const of = (x: Json, k: string): Json | null => (x[k] === null || typeof x[k] !== 'object' ? null : (x[k] as Json));
      return {
        head: [
          'clients',
          'cluster SET/s',
          'Redis SET/s',
          'cluster / Redis',
          'cluster p50 / p99 / p99.9 ms',
          'Redis p50 / p99 / p99.9 ms',
          'cluster CPU s per M SETs',
          'Redis CPU s per M SETs',
          'redis-benchmark SET/s, cluster / Redis',
        ],
        rows: rowsOf(r).map((x) => {
          const c = of(x, 'cluster');
          const redis = of(x, 'redis');
          const rb = of(x, 'redisBenchmark');
          const rbRedis = rb === null ? null : of(rb, 'redis');
          return [
            num(x.clients),
            num(c?.setsPerSec),
            num(redis?.setsPerSec),
            num(x.ratio, 2),
            lat(c),
            lat(redis),
            num(c?.cpuSecPerMillion),
            num(redis?.cpuSecPerMillion),
            rb === null ? '-' : `${num(of(rb, 'cluster')?.setsPerSec)} / ${num(rbRedis?.setsPerSec)}`,
          ];
        }),
      };
    },
  },
  wal: {
    title: 'Write-ahead log',
    about:
      '`npm run bench -- wal`: the native WAL and a plain Node group-commit writer, `inflight` appends of `batch` records outstanding, every append durable, every record a different slice of random bytes; each case is measured after a warm-up under the same load (a quarter of the measured time, at most 0.5 s). Every case writes new segments only, except wal/steady: the 1 KiB x 64 x 256 case as a log that compacts as it goes (a snapshot marker and a release per segment written), whose released segments are recycled, and wal/steady-one-turn: the same with every append issued in the turn its slot frees (the others issue at most 1,024 records a turn).',
    notes: (r) => {
      const p = r.paced as Json | undefined;
      return [
        ...(typeof r.rounds === 'number'
          ? [`Every row is the median of ${num(r.rounds)} round(s), each round running every case in turn (loop max: the largest).`]
          : []),
        rawDiskNote(r),
        ...(p === undefined
          ? []
          : [
              `Paced, 100 B records at 100,000 records/s: ${num(p.recordsPerSec)} records/s, append p50 / p99 ${num(p.appendP50us)} / ${num(p.appendP99us)} µs, event-loop delay p99 ${num(p.loopP99ms, 2)} ms.`,
            ]),
      ];
    },
    table: (r) => ({
      head: ['writer', 'record', 'batch', 'in flight', 'records/s (median)', 'MB/s payload', 'records/fsync', 'append p50 / p99 µs', 'loop p99 ms'],
      rows: rowsOf(r).map((x) => [
        String(x.writer),
        `${num(x.size)} B`,
        num(x.batch),
        num(x.inflight),
        num(x.recordsPerSec),
        num(x.payloadMBps, 1),
        num(x.recordsPerFsync, 1),
        `${num(x.appendP50us)} / ${num(x.appendP99us)}`,
        num(x.loopP99ms, 2),
      ]),
    }),
  },
  raft: {
    title: 'Consensus core',
    about: '`npm run bench -- raft`: three RawNodes in one process over an in-memory network, 100 B entries; median of several runs.',
    table: (r) => ({
      head: ['batch (entries/proposal)', 'committed entries/s', 'allocated B/entry'],
      rows: rowsOf(r, 'results').map((x) => [num(x.batch), num(x.medianEntriesPerSec), num(x.medianBytesPerEntry)]),
    }),
  },
  micro: {
    title: 'Per-record functions',
    about: '`npm run bench -- micro`: tinybench on the functions of the append and apply paths; one operation handles the stated number of records.',
    table: (r) => ({
      head: ['case', 'ops/s', 'mean ns', 'p99 ns', 'samples', 'records/op', 'ns/record'],
      rows: rowsOf(r).map((x) => [String(x.case), num(x.opsPerSec), num(x.meanNs), num(x.p99Ns), num(x.samples), num(x.perOp), num(x.nsPerRecord, 1)]),
    }),
  },
  instructions: {
    title: 'Instructions per record',
    about:
      "`npm run bench -- instructions` (where valgrind is installed): the embedded log under callgrind, a warm-up and then a short and a long stretch of appends in two runs; their difference in instructions over the records that differ, so that start-up and warm-up cancel. User-space instructions of every thread: the kernel's work (writes, fdatasync) is not counted. A count, not a timing: on an otherwise idle machine it moves by a few percent between rounds where timings here swing by a fifth (valgrind runs one thread at a time, so load still shifts batch sizes and the count with them), and it compares builds on one machine.",
    table: (r) => ({
      head: ['system', 'record', 'clients', 'records counted', 'instructions/record (median)', 'rounds'],
      rows: rowsOf(r).map((x) => [
        String(x.system),
        `${num(x.recordBytes)} B`,
        num(x.clients),
        num(x.records),
        num(x.instructionsPerRecord),
        Array.isArray(x.rounds) ? (x.rounds as unknown[]).map((v) => num(v)).join(', ') : '-',
      ]),
    }),
  },
  recovery: {
    title: 'Recovery from a partition',
    about: '`npm run bench -- recovery`: three nodes over loopback through a fault proxy, default timing.',
    table: (r) => ({
      head: ['case', 'runs', 'cut -> new leader commits, median / worst ms', 'heal -> caught up, median / worst ms'],
      rows: rowsOf(r).map((x) => [
        String(x.case),
        num(x.runs),
        x.electMedianMs === null ? '-' : `${num(x.electMedianMs)} / ${num(x.electMaxMs)}`,
        `${num(x.catchUpMedianMs)} / ${num(x.catchUpMaxMs)}`,
      ]),
    }),
  },
  'resp-parser': {
    title: 'RESP command parser',
    about: "`npm run bench -- resp-parser`: the KV server's command parser alone.",
    table: (r) => ({
      head: ['case', 'ms/op', 'samples'],
      rows: rowsOf(r).map((x) => [String(x.case), num(x.msPerOp, 3), num(x.samples)]),
    }),
  },
};

/** The machine record of a result file; older files have only some of its fields at the top level. */
function machineOf(r: Json): string {
  const m = r.machine as Machine | undefined;
  if (m !== undefined && typeof m === 'object') return describeMachine(m);
  const parts: string[] = [];
  if (typeof r.cpu === 'string') parts.push(r.cpu);
  if (typeof r.cpus === 'number') parts.push(`${r.cpus} cores`);
  if (typeof r.node === 'string') parts.push(`Node ${r.node}`);
  const load = (k: string): string | null => (Array.isArray(r[k]) ? (r[k] as number[]).map((x) => x.toFixed(2)).join(' ') : null);
  const before = load('loadBefore');
  const after = load('loadAfter');
  if (before !== null) parts.push(`load average (1/5/15 min) at start ${before}${after === null ? '' : `, at end ${after}`}`);
  return parts.length === 0 ? 'not recorded' : `${parts.join(', ')} (partly recorded)`;
}

const cell = (c: Cell): string => (c === null || c === undefined ? '-' : String(c).replace(/\|/g, '\\|'));

/** The page for the given results (suite name -> parsed JSON); suites without a section are left out. */
export function renderReport(results: Record<string, Json>, generated: Date): string {
  const out = [
    '# Performance',
    '',
    `Generated by \`npm run bench -- report\` on ${generated.toISOString().slice(0, 10)} from the last run of each benchmark suite.`,
    'Each table names the machine and the load it ran under: figures from a small or busy machine are noisy,',
    'and tables measured on different machines do not compare. Run `npm run bench` to measure your own.',
    'Where the time goes, goal by goal, and what was measured and tried: [where-the-time-goes.md](where-the-time-goes.md).',
    '',
    ...goalsSection(results),
  ];
  for (const [suite, section] of Object.entries(SECTIONS)) {
    const r = results[suite];
    if (r === undefined) continue;
    const { head, rows } = section.table(r);
    out.push('', `## ${section.title}`, '', section.about, '');
    out.push(`Measured ${typeof r.date === 'string' ? r.date.slice(0, 16).replace('T', ' ') + ' UTC' : 'at an unrecorded date'} on: ${machineOf(r)}.`);
    if (r.quick === true) out.push('', 'A `--quick` run: short cases, more noise.');
    if (r.profiled === true) out.push('', 'Measured under the CPU profiler, which slows the code down.');
    for (const note of section.notes?.(r) ?? []) out.push('', note);
    out.push('', `| ${head.join(' | ')} |`, `|${head.map(() => ' --- |').join('')}`);
    for (const row of rows) out.push(`| ${row.map(cell).join(' | ')} |`);
  }
  return out.join('\n') + '\n';
}

export function writeReport(resultsDir = RESULTS_DIR, page = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'performance.md')): string {
  const results: Record<string, Json> = {};
  for (const f of readdirSync(resultsDir).filter((n) => n.endsWith('.json'))) {
    results[f.slice(0, -'.json'.length)] = JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as Json;
  }
  writeFileSync(page, renderReport(results, new Date()));
  console.log(
    `wrote ${relative(process.cwd(), page)} from ${
      Object.keys(results)
        .filter((s) => s in SECTIONS)
        .join(', ') || 'no results'
    }`,
  );
  return page;
}

/** What the KV's snapshots cost: the cluster in turns with one that never snapshots. */
/**
 * What the machine's cores allow, at the most connections: the client shares them, so a
 * system that spends S CPU seconds per million SETs beside a client that spends C can make at
 * most cores * 1e6 / (S + C) SET/s, however well it batches.
 */
function cpuBoundNote(r: Json): string[] {
  const cores = (r.machine as Json | undefined)?.cores;
  const last = rowsOf(r).at(-1);
  const cluster = last?.cluster as Json | null | undefined;
  const redis = last?.redis as Json | null | undefined;
  if (typeof cores !== 'number' || cluster == null || redis == null) return [];
  const cpu = (x: Json): [number, number] => [Number(x.cpuSecPerMillion), Number(x.clientCpuSecPerMillion)];
  const [cs, cc] = cpu(cluster);
  const [rs, rc] = cpu(redis);
  if (![cs, cc, rs, rc].every((v) => Number.isFinite(v) && v > 0)) return [];
  const bound = (s: number, c: number): number => (cores * 1e6) / (s + c);
  const share = (x: Json, s: number, c: number): string => `${num((100 * Number(x.setsPerSec)) / bound(s, c))}%`;
  const lean = bound(3 * rs, cc);
  return [
    `Where the CPU goes, at ${num(last!.clients)} connections: the client itself spends ${num(cc)} CPU s per million SETs in the cluster's turns and ${num(rc)} in Redis's. On these ${num(cores)} cores, client and system together allow at most ${num(bound(cs, cc))} SET/s for the cluster and ${num(bound(rs, rc))} for Redis; they made ${share(cluster, cs, cc)} and ${share(redis, rs, rc)} of that. A three-node cluster whose every node spent as little as Redis (${num(3 * rs)} s per million) would be bound at ${num(lean)}, ${num(lean / bound(rs, rc), 2)}x Redis's bound: where the cores are shared, the cluster's CPU per SET, not its batching, sets the ratio.`,
  ];
}

function snapshotCostNote(r: Json): string[] {
  const c = r.snapshotCost as Json | null | undefined;
  if (c === null || c === undefined) return [];
  const sets = (k: string): string => num((c[k] as Json | undefined)?.setsPerSec);
  return [
    `What snapshots cost: at ${num(c.clients)} connections the cluster above, with the default snapshots (${num(c.snapshotsTaken)} taken while measured), made ${sets('withSnapshots')} SET/s, and the same cluster with \`--snapshot-every ${num(c.snapshotEvery)}\` (none) ${sets('withoutSnapshots')}, in turns: a median ratio of ${num(c.ratio, 2)}.`,
  ];
}

import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { describeMachine } from '../../src/cli/machine.js';
import { verdicts } from '../../bench/goals.js';
import { renderReport } from '../../bench/report.js';

const machine = { cpu: 'Test CPU', cores: 4, node: 'v20.0.0', platform: 'linux-x64', loadStart: [1, 2, 3], loadEnd: [0.5, 1.25, 2] };
/** What every resp result records about its run. */
const respRun = { date: '2026-01-02T03:04:05.000Z', machine, seconds: 5, warmupSeconds: 1, runs: 3 };

it('describes a machine with its load at start and, once finished, at end', () => {
  expect(describeMachine(machine)).toBe('Test CPU, 4 cores, Node v20.0.0; load average (1/5/15 min) at start 1.00 2.00 3.00, at end 0.50 1.25 2.00');
  expect(describeMachine({ ...machine, loadEnd: null })).toBe('Test CPU, 4 cores, Node v20.0.0; load average (1/5/15 min) at start 1.00 2.00 3.00');
});

it('renders each known suite as a table with its date and machine, and leaves the others out', () => {
  const page = renderReport(
    {
      micro: {
        suite: 'micro',
        date: '2026-01-02T03:04:05.000Z',
        machine,
        quick: true,
        rows: [{ case: 'record: decodeRecord, 64 x 100 B', opsPerSec: 50000, meanNs: 20000, p99Ns: 30000, samples: 99, perOp: 64, nsPerRecord: 312.5 }],
      },
      raft: { date: '2026-01-01T00:00:00.000Z', node: 'v20.1.0', results: [{ batch: 10, medianEntriesPerSec: 1234567, medianBytesPerEntry: 80 }] },
      chaos: { date: '2026-01-01T00:00:00.000Z', linearizable: true },
      instructions: {
        suite: 'instructions',
        date: '2026-01-02T03:04:05.000Z',
        machine,
        quick: false,
        rows: [{ system: 'embedded (1 node)', recordBytes: 100, clients: 256, records: 50000, rounds: [6100, 6012], instructionsPerRecord: 6056 }],
      },
    },
    new Date('2026-02-03T00:00:00Z'),
  );
  expect(page).toContain('on 2026-02-03 from the last run');
  expect(page).toContain(`Measured 2026-01-02 03:04 UTC on: ${describeMachine(machine)}.`);
  expect(page).toContain('| record: decodeRecord, 64 x 100 B | 50,000 | 20,000 | 30,000 | 99 | 64 | 312.5 |');
  expect(page).toContain('A `--quick` run');
  expect(page).toContain('on: Node v20.1.0 (partly recorded).');
  expect(page).toContain('| 10 | 1,234,567 | 80 |');
  expect(page).toContain('## Instructions per record');
  expect(page).toContain('| embedded (1 node) | 100 B | 256 | 50,000 | 6,056 | 6,100, 6,012 |');
  expect(page).not.toContain('linearizable');
  expect(page).not.toContain('## Write-ahead log');
  // The page lives in docs/: every file it links to is there.
  const links = [...page.matchAll(/\]\(([^)#]+)[^)]*\)/g)].map((m) => m[1]!);
  expect(links).toContain('where-the-time-goes.md');
  for (const link of links) expect(existsSync(new URL(`../../docs/${link}`, import.meta.url)), link).toBe(true);
});

it('renders the resp suite as one row per concurrency, with the ratio, and the cluster alone without Redis', () => {
  const summary = (setsPerSec: number) => ({ setsPerSec, p50Ms: 1.5, p99Ms: 4, p999Ms: 9.25, cpuSecPerMillion: 321 });
  const page = renderReport(
    {
      resp: {
        ...respRun,
        redisVersion: '7.0.15',
        rows: [
          {
            clients: 16,
            cluster: summary(5000),
            redis: summary(20000),
            ratio: 0.25,
            redisBenchmark: { cluster: { setsPerSec: 4900 }, redis: { setsPerSec: 21000 } },
          },
          { clients: 1, cluster: summary(200), redis: null, ratio: null, redisBenchmark: null },
        ],
      },
    },
    new Date('2026-02-03T00:00:00Z'),
  );
  expect(page).toContain('## The KV example over RESP: 3-node cluster beside Redis');
  expect(page).toContain('5.0 s measured per case after a 1.0 s warm-up, 3 runs each; Redis 7.0.15.');
  expect(page).toContain('| 16 | 5,000 | 20,000 | 0.25 | 1.50 / 4.00 / 9.25 | 1.50 / 4.00 / 9.25 | 321 | 321 | 4,900 / 21,000 |');
  expect(page).toContain('| 1 | 200 | - | - | 1.50 / 4.00 / 9.25 | - | 321 | - | - |');
});

it("says what the cores allow each system at the most connections, from its CPU and the client's", () => {
  const sys = (setsPerSec: number, cpuSecPerMillion: number, clientCpuSecPerMillion: number) => ({
    setsPerSec,
    p50Ms: 1,
    p99Ms: 2,
    p999Ms: 3,
    cpuSecPerMillion,
    clientCpuSecPerMillion,
  });
  const resp = (last: object) => ({
    resp: { ...respRun, redisVersion: '7.0.15', rows: [{ clients: 16, cluster: sys(100, 1, 1), redis: sys(100, 1, 1), ratio: 1 }, last] },
  });
  // 4 cores: the cluster 4e6 / (60 + 20) = 50,000, Redis 4e6 / (15 + 25) = 100,000; three Redis-cost nodes 4e6 / (45 + 20).
  const page = renderReport(resp({ clients: 256, cluster: sys(40000, 60, 20), redis: sys(90000, 15, 25), ratio: 0.44 }), new Date('2026-02-03T00:00:00Z'));
  expect(page).toContain(
    "Where the CPU goes, at 256 connections: the client itself spends 20 CPU s per million SETs in the cluster's turns and 25 in Redis's. On these 4 cores, client and system together allow at most 50,000 SET/s for the cluster and 100,000 for Redis; they made 80% and 90% of that. A three-node cluster whose every node spent as little as Redis (45 s per million) would be bound at 61,538, 0.62x Redis's bound",
  );
  const noRedis = renderReport(resp({ clients: 256, cluster: sys(40000, 60, 20), redis: null, ratio: null }), new Date('2026-02-03T00:00:00Z'));
  expect(noRedis).not.toContain('Where the CPU goes');
});

it('judges each goal from the results: met, missed, or not measured when its suite has not run', () => {
  const row = (system: string, recordBytes: number, clients: number, recordsPerSec: number, extra = {}) => ({
    system,
    recordBytes,
    clients,
    recordsPerSec,
    p99Ms: 1,
    p999Ms: 1,
    gcShare: 0.05,
    ...extra,
  });
  const results = {
    cluster: {
      rows: [
        row('embedded (1 node)', 100, 256, 300_000),
        row('better-sqlite3', 100, 256, 150_000),
        row('embedded (1 node)', 100, 16, 50_000),
        row('better-sqlite3', 100, 16, 100_000),
        row('embedded (1 node)', 100, 1, 7_000, { p99Ms: 0.3, p999Ms: 3 }),
        row('better-sqlite3', 100, 1, 6_000, { p99Ms: 0.25, p999Ms: 1 }),
        row('cluster (3 nodes)', 100, 256, 60_000),
      ],
    },
  };
  const v = Object.fromEntries(verdicts(results).map((g) => [g.goal, g]));
  expect(v['embedded log, 100 B x 256 clients: records/s >= 1.5x better-sqlite3']).toEqual({
    goal: 'embedded log, 100 B x 256 clients: records/s >= 1.5x better-sqlite3',
    measured: '2.00x',
    met: true,
  });
  expect(v['embedded log, 100 B x 16 clients: records/s >= 1.2x better-sqlite3']).toMatchObject({ measured: '0.50x', met: false });
  expect(v['embedded log, 100 B x 1 clients: records/s >= 1x better-sqlite3']).toMatchObject({ met: true });
  expect(v['embedded log, 1 client: p99 <= 1.5x better-sqlite3']).toMatchObject({ measured: '1.20x', met: true });
  expect(v['embedded log, 1 client: p99.9 <= 2x better-sqlite3']).toMatchObject({ measured: '3.00x', met: false });
  expect(v['embedded log, 100 B x 256 clients: GC < 8% of the time']).toMatchObject({ measured: '5.0%', met: true });
  expect(v['3-node cluster, 100 B x 256 clients: records/s >= 0.7x the embedded log']).toMatchObject({ measured: '0.20x', met: false });
  expect(v['embedded log, 100 B x 1024 clients: records/s >= 1.5x better-sqlite3']).toMatchObject({ measured: '-', met: null });
  expect(v['KV over RESP, 3-node cluster, 256 connections: SET/s >= 1x Redis (appendfsync always)']).toMatchObject({ met: null });
  const page = renderReport(results, new Date('2026-02-03T00:00:00Z'));
  expect(page).toContain('| embedded log, 100 B x 16 clients: records/s >= 1.2x better-sqlite3 | 0.50x | no |');
  expect(page).toContain('| WAL alone: event-loop p99 < 5 ms in every case (worst case) | - | not measured |');
});

it('judges no goal from a profiled run, nor from a ratio over a baseline that made nothing', () => {
  const row = (system: string, recordsPerSec: number) => ({ system, recordBytes: 100, clients: 256, recordsPerSec, p99Ms: 1, p999Ms: 1, gcShare: 0.01 });
  const goal = 'embedded log, 100 B x 256 clients: records/s >= 1.5x better-sqlite3';
  const cluster = { rows: [row('embedded (1 node)', 300_000), row('better-sqlite3', 100_000)] };
  expect(verdicts({ cluster }).find((g) => g.goal === goal)).toMatchObject({ measured: '3.00x', met: true });
  // Profiled, raftlog bench measured the systems one after the other, under the profiler.
  expect(verdicts({ cluster: { ...cluster, profiled: true } }).find((g) => g.goal === goal)).toEqual({ goal, measured: '-', met: null });
  const failed = { rows: [row('embedded (1 node)', 300_000), row('better-sqlite3', 0)] };
  expect(verdicts({ cluster: failed }).find((g) => g.goal === goal)).toEqual({ goal, measured: '-', met: null });
});

it('judges the WAL loop goal over every case of the WAL, naming the worst, and not over the node writer', () => {
  const row = (writer: string, loopP99ms: number) => ({ writer, size: 1024, batch: 64, inflight: 256, loopP99ms });
  const goal = 'WAL alone: event-loop p99 < 5 ms in every case (worst case)';
  const of = (rows: unknown[]) => verdicts({ wal: { rows } }).find((g) => g.goal === goal);
  expect(of([row('wal', 2), row('wal/zeros', 1.5), row('wal/steady-one-turn', 9), row('node', 20)])).toEqual({
    goal,
    measured: '9.00 ms (wal/steady-one-turn, 1024 B x 64 x 256 in flight)',
    met: false,
  });
  expect(of([row('wal', 2), row('wal/steady', 3), row('node', 20)])).toMatchObject({
    measured: '3.00 ms (wal/steady, 1024 B x 64 x 256 in flight)',
    met: true,
  });
  expect(of([row('node', 1)])).toMatchObject({ measured: '-', met: null });
});

it('judges the real-client goals: in-process against RESP at 256, and what snapshots cost, shown under the RESP table', () => {
  const results = {
    cluster: { date: '2026-01-01T10:20:30.000Z', rows: [{ system: 'cluster (3 nodes)', recordBytes: 100, clients: 256, recordsPerSec: 30_000 }] },
    resp: {
      ...respRun,
      rows: [{ clients: 256, cluster: { setsPerSec: 24_000 }, redis: null, ratio: null, redisBenchmark: null }],
      snapshotCost: {
        clients: 256,
        snapshotEvery: 1_000_000_000,
        withSnapshots: { setsPerSec: 22_000 },
        withoutSnapshots: { setsPerSec: 25_000 },
        snapshotsTaken: 4,
        ratio: 0.88,
      },
    },
  };
  const v = Object.fromEntries(verdicts(results).map((g) => [g.goal, g]));
  expect(v['3-node cluster, 256 clients: in-process records/s (100 B) and KV-over-RESP SET/s within 1.5x of each other']).toEqual({
    goal: '3-node cluster, 256 clients: in-process records/s (100 B) and KV-over-RESP SET/s within 1.5x of each other',
    // Two suites' runs, hours or days apart: which ones is part of the figure.
    measured: "1.25x (30,000 against 24,000; two runs: the cluster suite's of 2026-01-01 10:20 UTC, the resp suite's of 2026-01-02 03:04 UTC)",
    met: true,
  });
  expect(v['KV over RESP, 3-node cluster: state-machine snapshots at the default snapshotEvery cost < 10% of SET/s']).toEqual({
    goal: 'KV over RESP, 3-node cluster: state-machine snapshots at the default snapshotEvery cost < 10% of SET/s',
    measured: '12.0% (256 connections, 4 snapshots taken while measured)',
    met: false,
  });
  const page = renderReport(results, new Date('2026-02-03T00:00:00Z'));
  expect(page).toContain(
    'What snapshots cost: at 256 connections the cluster above, with the default snapshots (4 taken while measured), made 22,000 SET/s, and the same cluster with `--snapshot-every 1,000,000,000` (none) 25,000, in turns: a median ratio of 0.88.',
  );
  // With no snapshot in the measured time, a ratio of two clusters says nothing of snapshots.
  const noSnapshot = { ...results, resp: { ...results.resp, snapshotCost: { ...results.resp.snapshotCost, snapshotsTaken: 0 } } };
  expect(
    verdicts(noSnapshot).find((g) => g.goal === 'KV over RESP, 3-node cluster: state-machine snapshots at the default snapshotEvery cost < 10% of SET/s'),
  ).toEqual({
    goal: 'KV over RESP, 3-node cluster: state-machine snapshots at the default snapshotEvery cost < 10% of SET/s',
    measured: 'no snapshot fell in the measured time: run longer',
    met: null,
  });
  // Without the suites that measure them, neither goal guesses.
  const none = Object.fromEntries(verdicts({}).map((g) => [g.goal, g]));
  expect(none['KV over RESP, 3-node cluster: state-machine snapshots at the default snapshotEvery cost < 10% of SET/s']).toMatchObject({ met: null });
  expect(none['3-node cluster, 256 clients: in-process records/s (100 B) and KV-over-RESP SET/s within 1.5x of each other']).toMatchObject({ met: null });
});

it('states the raw disk in both patterns, with fio beside each, and which one the disk goal uses', () => {
  const page = renderReport(
    {
      wal: {
        suite: 'wal',
        date: '2026-01-02T03:04:05.000Z',
        machine,
        rawDisk: { mibPerSync: 1, overwrite: false, MBps: 250.5, meanMBps: 240, windows: [250.5], fio: 260.25 },
        rounds: 3,
        rawDiskOverwrite: { mibPerSync: 8, overwrite: true, MBps: 700, first: 690, firstMean: 640, rounds: [700, 710], fio: null },
        rows: [],
      },
    },
    new Date('2026-02-03T00:00:00Z'),
  );
  expect(page).toContain(
    "1 MiB writes, medians of 250 ms windows: 250.5 MB/s into a new file with an fdatasync after each (first run's mean: 240.0; fio, a mean: 260.3); 700.0 MB/s over a written file with one every 8 MiB (first run's mean: 640.0),",
  );
  expect(page).toContain('the median of 690.0 at the start and 700.0, 710.0 before each round of the strategies');
  expect(page).toContain('The disk goal is judged against the second');
  expect(page).toContain('Every row is the median of 3 round(s), each round running every case in turn');
});

it('sets the raw disk through the page cache beside the same pattern past it, where fio measured both', () => {
  const overwrite = { mibPerSync: 8, overwrite: true, MBps: 900, first: 900, firstMean: 640, fio: null };
  const page = renderReport(
    {
      wal: {
        suite: 'wal',
        date: '2026-01-02T03:04:05.000Z',
        machine,
        rawDisk: { mibPerSync: 1, overwrite: false, MBps: 250.5, meanMBps: 240, windows: [250.5], fio: null },
        rounds: 2,
        rawDiskOverwrite: {
          ...overwrite,
          firstBuffered: 690,
          firstDirect: 900,
          rounds: [950, 710],
          roundsBuffered: [700, 710],
          roundsDirect: [950, null],
        },
        rows: [],
      },
    },
    new Date('2026-02-03T00:00:00Z'),
  );
  expect(page).toContain(
    'the median of the start and each round of the strategies, each the better of the page cache and past it (fio --direct=1), MB/s: 690.0 / 900.0, 700.0 / 950.0, 710.0.',
  );
});

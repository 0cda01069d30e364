import { expect, it } from 'vitest';
import { describeMachine } from '../../src/cli/machine.js';
import { verdicts } from '../../bench/goals.js';
import { renderReport } from '../../bench/report.js';

const machine = { cpu: 'Test CPU', cores: 4, node: 'v20.0.0', platform: 'linux-x64', loadStart: [1, 2, 3], loadEnd: [0.5, 1.25, 2] };

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
    },
    new Date('2026-02-03T00:00:00Z'),
  );
  expect(page).toContain('on 2026-02-03 from the last run');
  expect(page).toContain(`Measured 2026-01-02 03:04 UTC on: ${describeMachine(machine)}.`);
  expect(page).toContain('| record: decodeRecord, 64 x 100 B | 50,000 | 20,000 | 30,000 | 99 | 64 | 312.5 |');
  expect(page).toContain('A `--quick` run');
  expect(page).toContain('on: Node v20.1.0 (partly recorded).');
  expect(page).toContain('| 10 | 1,234,567 | 80 |');
  expect(page).not.toContain('linearizable');
  expect(page).not.toContain('## Write-ahead log');
});

it('renders the resp suite as one row per concurrency, with the ratio, and the cluster alone without Redis', () => {
  const summary = (setsPerSec: number) => ({ setsPerSec, p50Ms: 1.5, p99Ms: 4, p999Ms: 9.25, cpuSecPerMillion: 321 });
  const page = renderReport(
    {
      resp: {
        date: '2026-01-02T03:04:05.000Z',
        machine,
        seconds: 5,
        warmupSeconds: 1,
        runs: 3,
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

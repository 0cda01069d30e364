// The seeded simulation in CI: SEEDS runs per cluster size, each with faults
// (drops, duplicates, delays, partitions, crashes that lose unsynced writes,
// membership changes, snapshots) and then a liveness phase. A failure prints
// its seed and the one-line command that replays it.
import { describe, expect, it } from 'vitest';
import { DEFAULT_STEPS, SimFailure, Simulation, type SimOptions, type SimResult } from './simulation.js';
import { InvariantViolation } from './checker.js';
import { nextTurn } from '../setup/next-turn.js';

const SEEDS = 500;

async function runSeeds(
  nodes: number,
  seeds: number,
  extra: Pick<SimOptions, 'mutation' | 'lease' | 'swarm'> = {},
  maxFailures = 5,
  enough: (f: SimFailure) => boolean = () => false,
): Promise<{ failures: SimFailure[]; commits: number; totals: Omit<SimResult, 'recoveryTicks'> }> {
  const failures: SimFailure[] = [];
  let commits = 0;
  const totals = {
    steps: 0,
    time: 0,
    commitIndex: 0,
    leaderChanges: 0,
    crashes: 0,
    snapshotsSent: 0,
    confChangesApplied: 0,
    partitions: 0,
    malformedRefused: 0,
  };
  for (let seed = 1; seed <= seeds && failures.length < maxFailures && !failures.some(enough); seed++) {
    await nextTurn();
    try {
      const r = new Simulation({ nodes, seed, steps: DEFAULT_STEPS, ...extra }).run();
      commits += r.commitIndex;
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r[k];
    } catch (err) {
      if (!(err instanceof SimFailure)) throw err;
      failures.push(err);
    }
  }
  return { failures, commits, totals };
}

describe('seeded simulation', () => {
  for (const nodes of [3, 5]) {
    it(`${nodes} nodes keep every invariant over ${SEEDS} seeds of faults, then make progress`, async () => {
      const { failures, commits, totals } = await runSeeds(nodes, SEEDS);
      for (const f of failures) console.error(f.message);
      expect(failures.map((f) => f.message)).toEqual([]);
      // The faults must leave room for real work, or the safety checks prove little.
      expect(commits / SEEDS).toBeGreaterThan(50);
      // And every kind of trouble must actually happen.
      expect(totals.crashes).toBeGreaterThan(SEEDS);
      expect(totals.partitions).toBeGreaterThan(SEEDS);
      expect(totals.leaderChanges).toBeGreaterThan(SEEDS);
      expect(totals.snapshotsSent).toBeGreaterThan(SEEDS / 2);
      expect(totals.confChangesApplied).toBeGreaterThan(SEEDS);
      expect(totals.malformedRefused).toBeGreaterThan(SEEDS);
    }, 170_000);
  }

  for (const nodes of [3, 5]) {
    it(`${nodes} nodes serving reads by lease stay linearizable over 150 seeds`, async () => {
      const { failures } = await runSeeds(nodes, 150, { lease: true });
      for (const f of failures) console.error(f.message);
      expect(failures.map((f) => f.message)).toEqual([]);
    }, 120_000);
  }

  for (const nodes of [3, 5]) {
    it(`${nodes} nodes under swarm fault mixes (term churn, leader loss during snapshots, transfers to lagging nodes) over 200 seeds`, async () => {
      const { failures, commits } = await runSeeds(nodes, 200, { swarm: true });
      for (const f of failures) console.error(f.message);
      expect(failures.map((f) => f.message)).toEqual([]);
      expect(commits / 200).toBeGreaterThan(20);
    }, 170_000);
  }

  it('the same seed replays the same run', async () => {
    const a = new Simulation({ nodes: 5, seed: 4242, steps: 3000 }).run();
    await nextTurn();
    const b = new Simulation({ nodes: 5, seed: 4242, steps: 3000 }).run();
    expect(b).toEqual(a);
    await nextTurn();
    const c = new Simulation({ nodes: 5, seed: 4243, steps: 3000 }).run();
    expect(c).not.toEqual(a);
  });
});

describe('the simulation catches a broken driver', () => {
  it('acknowledging before the write is durable breaks commit durability at once', async () => {
    const { failures } = await runSeeds(3, 3, { mutation: 'ack-before-persist' });
    expect(failures).toHaveLength(3);
    for (const f of failures) {
      expect(f.cause).toBeInstanceOf(InvariantViolation);
      expect((f.cause as InvariantViolation).invariant).toBe('commit-durable-on-majority');
      expect(f.message).toMatch(/replay: npm run sim -- --nodes 3 --seed \d+ --steps \d+/);
    }
  });

  it('a disk that loses acknowledged entries on a crash is caught', async () => {
    // The first broken safety invariant suffices: a seed that fails on liveness instead runs to its
    // deadline, over a second of CPU in one synchronous piece (seed 15).
    const invariant = (f: SimFailure): string => (f.cause instanceof InvariantViolation ? f.cause.invariant : String(f.cause));
    const safety = (f: SimFailure): boolean => ['commit-durable-on-majority', 'leader-completeness', 'log-matching'].includes(invariant(f));
    const { failures } = await runSeeds(3, 60, { mutation: 'lying-disk' }, 3, safety);
    expect(failures.some(safety), failures.map(invariant).join(', ')).toBe(true);
  });
});

// The real ReplicatedLog under the seeded simulator: every seed runs a
// workload under crashes, torn writes, failing and slow fsyncs, partitions
// (some cutting one direction only), process stalls and a lossy network, then
// checks the history (test/sim-log/log-checker.ts).
// A failing seed prints its one-line replay command.
import { describe, expect, it } from 'vitest';
import { replayCommand, runSimulation, type SimOptions } from './simulation.js';

const SEEDS_3 = 300;
const SEEDS_5 = 80;
// Seeds per test, so that a failure names its range and a loaded machine stays well within the
// timeout: beside stress-ng one test of all 300 seeds of 3 nodes ran past 300 s, one of 50 took 85 s.
const RANGE_3 = 25;
const RANGE_5 = 20;
// Simulated time is bounded; the wall-clock allowance is for a loaded machine.
const SWEEP_TIMEOUT_MS = 120_000;

/** [first seed, seed count] of each test of a sweep of `seeds` seeds, `per` at a time. */
function ranges(seeds: number, per: number): Array<[number, number]> {
  return Array.from({ length: Math.ceil(seeds / per) }, (_, i) => [1 + i * per, Math.min(per, seeds - i * per)]);
}

async function sweep(nodes: number, from: number, count: number, extra: Partial<SimOptions> = {}): Promise<string[]> {
  const failures: string[] = [];
  let acked = 0;
  let restores = 0;
  let crashes = 0;
  let torn = 0;
  let fsyncFailures = 0;
  let barriers = 0;
  let streamed = 0;
  let transfers = 0;
  let catchUpReads = 0;
  let powerCuts = 0;
  let closes = 0;
  let oneWayCuts = 0;
  let pauses = 0;
  for (let seed = from; seed < from + count; seed++) {
    const r = await runSimulation({ seed, nodes, ...extra });
    acked += r.stats.acked;
    restores += r.stats.snapshotRestores;
    crashes += r.stats.crashes;
    torn += r.stats.tornWrites;
    fsyncFailures += r.stats.fsyncFailures;
    barriers += r.stats.barriers;
    streamed += r.stats.streamed;
    transfers += r.stats.transfers;
    catchUpReads += r.stats.catchUpReads;
    powerCuts += r.stats.powerCuts;
    closes += r.stats.closes;
    oneWayCuts += r.stats.oneWayCuts;
    pauses += r.stats.pauses;
    if (!r.ok) {
      failures.push(`seed ${seed} (${nodes} nodes): ${r.violations.slice(0, 2).join(' / ')} -- replay: ${replayCommand(seed, nodes)}`);
    }
  }
  console.log(
    `sim-log ${nodes} nodes, seeds ${from}..${from + count - 1}: ${acked} appends acknowledged, ${crashes} crashes (${torn} with a torn write), ${powerCuts} power cuts, ${closes} clean restarts, ${oneWayCuts} one-way cuts, ${pauses} process stalls, ${fsyncFailures} fsync failures, ${restores} snapshot restores, ${barriers} barriers, ${streamed} records streamed, ${transfers} leadership transfers, ${catchUpReads} catch-up reads, ${failures.length} failing seeds`,
  );
  // The sweep must have exercised what it claims to.
  expect(acked).toBeGreaterThan(count * 50);
  expect(crashes).toBeGreaterThan(count / 2);
  expect(restores).toBeGreaterThan(0);
  expect(torn).toBeGreaterThan(0);
  expect(fsyncFailures).toBeGreaterThan(0);
  expect(barriers).toBeGreaterThan(count);
  expect(streamed).toBeGreaterThan(acked);
  expect(transfers).toBeGreaterThan(0);
  expect(catchUpReads).toBeGreaterThan(0);
  expect(powerCuts).toBeGreaterThan(0);
  expect(closes).toBeGreaterThan(0);
  expect(oneWayCuts).toBeGreaterThan(0);
  expect(pauses).toBeGreaterThan(0);
  return failures;
}

describe('ReplicatedLog in the deterministic simulator', () => {
  for (const [from, count] of ranges(SEEDS_3, RANGE_3)) {
    it(
      `3 nodes, seeds ${from}..${from + count - 1}: nothing acknowledged is lost or reordered, every node applies one sequence, the cluster recovers`,
      async () => {
        expect(await sweep(3, from, count)).toEqual([]);
      },
      SWEEP_TIMEOUT_MS,
    );
  }

  for (const [from, count] of ranges(SEEDS_5, RANGE_5)) {
    it(
      `5 nodes, seeds ${from}..${from + count - 1}`,
      async () => {
        expect(await sweep(5, from, count)).toEqual([]);
      },
      SWEEP_TIMEOUT_MS,
    );
  }

  // Seeds 17, 48 and 81 (3 nodes) and 40032, 40196 (5 nodes) once stalled: a newcomer refused the leader's
  // pre-addition snapshot, and a lagging follower had no address for a leader that joined after it. In seed
  // 600074 (3 nodes) a leader removed itself and crashed before it learned the removal committed: the harness
  // kept waiting for it, as an operator who never looked at the new leader's configuration would.
  const membershipRuns: Array<Array<[number, 3 | 5]>> = [
    Array.from({ length: 20 }, (_, i) => [i + 1, 3]),
    [...Array.from({ length: 20 }, (_, i): [number, 3] => [i + 21, 3]), [81, 3], [600074, 3], [40032, 5], [40196, 5]],
  ];
  for (const runs of membershipRuns) {
    const seeds = runs.map(([seed, nodes]) => `${seed}${nodes === 5 ? ' (5 nodes)' : ''}`);
    it(
      `membership changes (add a node, remove one) under faults, seeds ${seeds[0]}..${seeds[19]}${seeds.length > 20 ? `, ${seeds.slice(20).join(', ')}` : ''}: safe and live`,
      async () => {
        const failed: string[] = [];
        let changes = 0;
        for (const [seed, nodes] of runs) {
          const r = await runSimulation({ seed, nodes, membership: true });
          changes += r.stats.membershipChanges;
          if (!r.ok) failed.push(`seed ${seed}: ${r.violations.slice(0, 2).join(' / ')} -- replay: ${replayCommand(seed, nodes)} --membership`);
        }
        expect(failed).toEqual([]);
        expect(changes).toBeGreaterThan(runs.length * 0.9); // most runs both added and removed a node
      },
      SWEEP_TIMEOUT_MS,
    );
  }

  for (const from of [1, 11, 21]) {
    it(
      `swarm fault mixes (each seed its own faults, pace, snapshot interval and membership), 3 and 5 nodes, seeds ${from}..${from + 9}`,
      async () => {
        const failed: string[] = [];
        for (let seed = from; seed < from + 10; seed++) {
          const nodes = seed % 4 === 0 ? 5 : 3;
          const r = await runSimulation({ seed, nodes, swarm: true });
          if (!r.ok) failed.push(`seed ${seed}: ${r.violations.slice(0, 2).join(' / ')} -- replay: ${replayCommand(seed, nodes, { swarm: true })}`);
        }
        expect(failed).toEqual([]);
      },
      SWEEP_TIMEOUT_MS,
    );
  }

  it('a seed replays exactly', async () => {
    const a = await runSimulation({ seed: 4242, nodes: 3 });
    const b = await runSimulation({ seed: 4242, nodes: 3 });
    const c = await runSimulation({ seed: 4243, nodes: 3 });
    expect(b.digest).toBe(a.digest);
    expect(b.stats).toEqual(a.stats);
    expect(c.digest).not.toBe(a.digest);
  });
});

describe('the simulator has teeth', () => {
  it(
    'disks that acknowledge writes they later lose in a crash are caught: the history diverges or loses acknowledged appends',
    async () => {
      const found: string[] = [];
      // Caught after a power cut (every node at once), which the honest sweep survives.
      for (let seed = 1; seed <= 40 && found.length === 0; seed++) {
        const r = await runSimulation({ seed, nodes: 3, lyingDisks: 8 });
        found.push(...r.violations.filter((v) => /divergence|acknowledged append .* missing|committed twice|stale read/.test(v)));
      }
      expect(found.length).toBeGreaterThan(0);
    },
    SWEEP_TIMEOUT_MS,
  ); // seeds until one is caught: 13 s quiet, 32 s beside stress-ng

  it(
    'barriers answered by the leader lease are caught serving stale reads once a leader stalls',
    async () => {
      // A lease is counted on the leader's own clock: a stalled leader, cut off meanwhile, wakes
      // within it while another leader has committed. Without stalls, seeds 1..200 (3 and 5 nodes)
      // never caught it.
      const found: string[] = [];
      for (let seed = 1; seed <= 60 && found.length === 0; seed++) {
        const r = await runSimulation({ seed, nodes: 3, mutation: 'lease-reads', stallChance: 0.6 });
        found.push(...r.violations.filter((v) => /stale read/.test(v)));
      }
      expect(found.length).toBeGreaterThan(0);
    },
    SWEEP_TIMEOUT_MS,
  );
});

describe('regressions: seeds that once broke the log', () => {
  // Each seed failed, with this version of the simulator, against the code before its fix:
  //   seed 3, before d509c32: a deferred flush threw RAFT_COMPACTED while a local snapshot was being installed:
  //     the WAL's first index moved before raft saw the snapshot, so raft asked for the term just below it.
  //   seed 11, before 1cb404a: an append overtook writes still queued behind a snapshot install, so the WAL
  //     refused it with WAL_GAP.
  //   seed 152, before bd969fc: entries() yielded a deposed leader's uncommitted entries after a snapshot arrived
  //     (it read at or below the restored snapshot, where storage may still hold a discarded suffix).
  // Scripted scenarios, which fail when their fix is reverted and do not depend on the simulator's draws:
  //   seed 3: test/storage/raft-storage.test.ts 'answers term(firstIndex - 1) at every moment of a local
  //     compaction' (the storage publishes a snapshot before the WAL marker moves its first index).
  //   seed 11: test/storage/raft-storage.test.ts 'keeps appends in order when a write lands N microtasks after a
  //     snapshot install' (a write issued while a snapshot installs queues behind it).
  //   seed 152: none. The driver now restores a received snapshot only once the storage has installed it (the WAL
  //     has then discarded the old suffix), so entries() can no longer reach that suffix and the floor it keeps is
  //     a second guard: with it removed, seed 152 still passes.
  // A change to how the simulator draws random numbers remaps seeds: re-check these against those commits
  // (extract `git archive <commit>^ src` into a scratch directory, copy test/sim-log and test/sim next to it,
  // and run `npx tsx test/sim-log/cli.ts --seed <seed> --nodes 3` there).
  for (const seed of [3, 11, 152]) {
    it(`seed ${seed}, 3 nodes`, async () => {
      const r = await runSimulation({ seed, nodes: 3 });
      expect(r.violations, replayCommand(seed, 3)).toEqual([]);
    });
  }
});

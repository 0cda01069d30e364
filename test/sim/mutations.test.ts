// The simulators must catch the classic Raft bugs. Each bug is planted from the
// test side (test/sim/mutations.ts for the core and the core simulator's driver,
// test/sim-log/mutations.ts for the replicated log's driver); the simulators run
// seeds from 1 until one breaks an invariant, and must find one within
// MAX_SEEDS. The seed that caught it must then pass without the bug: the
// checkers fire on the bug, not on the run. The table of seeds needed is printed.
// TEST_SEED=<n> runs only that seed for every mutation (the test then demands
// nothing of it but prints what fired).
import { afterAll, describe, expect, it } from 'vitest';
import { SimFailure, Simulation, replayCommand } from './simulation.js';
import { CORE_DRIVER_MUTATIONS, CORE_MUTATIONS, type SimMutation } from './mutations.js';
import { InvariantViolation } from './checker.js';
import { DRIVER_MUTATIONS, type LogMutation } from '../sim-log/mutations.js';
import { replayCommand as logReplay, runSimulation } from '../sim-log/simulation.js';
import { nextTurn } from '../setup/next-turn.js';
import { announceSeed, testSeeds } from '../seeded.js';

const MAX_SEEDS = 200;
const CORE_STEPS = 2000;
/** The log simulator also runs the core's bugs, for the table; it is not required to catch those, so it stops early. */
const LOG_SIDE_LOOK = 24;

const seeds = (count: number): number[] => testSeeds(Array.from({ length: count }, (_, i) => i + 1));
const replaying = process.env.TEST_SEED !== undefined && process.env.TEST_SEED.trim() !== '';

interface Catch {
  seed: number;
  /** Seeds run, the catching one included. */
  tried: number;
  what: string;
  replay: string;
}

const table: string[] = [];

/**
 * Swarm seeds, except for a member added without a fresh snapshot: that needs a brand-new node, and only the
 * ordinary runs add one (swarm runs add removed nodes back, which keep their own log and configuration).
 */
const swarmFor = (mutation: SimMutation): boolean => mutation !== 'no-snapshot-for-new-member';

function coreRun(seed: number, mutation: SimMutation | undefined, swarm: boolean): string | null {
  const options = { nodes: seed % 2 === 1 ? 3 : 5, seed, steps: CORE_STEPS, swarm, mutation };
  try {
    new Simulation(options).run();
    return null;
  } catch (err) {
    if (!(err instanceof SimFailure)) throw err;
    return err.cause instanceof InvariantViolation ? err.cause.invariant : String(err.cause);
  }
}

async function coreCatch(mutation: SimMutation, limit: number): Promise<Catch | null> {
  let tried = 0;
  for (const seed of seeds(limit)) {
    tried++;
    await nextTurn();
    const what = coreRun(seed, mutation, swarmFor(mutation));
    if (what !== null) {
      return { seed, tried, what, replay: replayCommand({ nodes: seed % 2 === 1 ? 3 : 5, seed, steps: CORE_STEPS, swarm: swarmFor(mutation), mutation }) };
    }
  }
  return null;
}

const logNodes = (seed: number): number => (seed % 4 === 0 ? 5 : 3);

async function logRun(seed: number, mutation: LogMutation | undefined): Promise<string | null> {
  const r = await runSimulation({ seed, nodes: logNodes(seed), swarm: true, mutation });
  return r.ok ? null : r.violations[0]!.replace(/^t=\d+ms /, '');
}

async function logCatch(mutation: LogMutation, limit: number): Promise<Catch | null> {
  let tried = 0;
  for (const seed of seeds(limit)) {
    tried++;
    await nextTurn();
    const what = await logRun(seed, mutation);
    if (what !== null) return { seed, tried, what, replay: logReplay(seed, logNodes(seed), { swarm: true, mutation }) };
  }
  return null;
}

function row(mutation: string, simulator: string, c: Catch | null, limit: number): void {
  const line =
    c === null
      ? `${mutation} | ${simulator} | not within ${limit} seeds`
      : `${mutation} | ${simulator} | seed ${c.seed} (${c.tried} seeds) | ${c.what.slice(0, 90)}`;
  table.push(line);
  if (c !== null) announceSeed(c.seed, `${mutation} on the ${simulator} simulator`);
}

afterAll(() => {
  console.log(`mutation | simulator | caught at | by\n${table.join('\n')}`);
});

describe('the simulators catch every planted bug', () => {
  for (const mutation of [...CORE_MUTATIONS, ...CORE_DRIVER_MUTATIONS]) {
    it(`${mutation}: the core simulator catches it within ${MAX_SEEDS} seeds of ${CORE_STEPS} steps`, async () => {
      const c = await coreCatch(mutation, MAX_SEEDS);
      row(mutation, 'core', c, MAX_SEEDS);
      if (replaying) return;
      expect(c, `${mutation} went unnoticed by the core simulator`).not.toBeNull();
      // The same seed without the bug keeps every invariant: what fired was the bug.
      expect(coreRun(c!.seed, undefined, swarmFor(mutation)), `seed ${c!.seed} fails without the mutation too: ${c!.replay}`).toBeNull();
    }, 120_000);
  }

  // A run of the real driver without the new member's snapshot stalls outside simulated time (it waits on no
  // event); until that is understood, the core simulator alone carries this bug. Lease reads need a stalled
  // leader, which swarm seeds rarely give: sim-log.test.ts catches them with stalls made frequent.
  for (const mutation of DRIVER_MUTATIONS.filter((m) => m !== 'no-snapshot-for-new-member' && m !== 'lease-reads')) {
    it(`${mutation}: the log simulator catches it within ${MAX_SEEDS} seeds`, async () => {
      const c = await logCatch(mutation, MAX_SEEDS);
      row(mutation, 'log', c, MAX_SEEDS);
      if (replaying) return;
      expect(c, `${mutation} went unnoticed by the log simulator`).not.toBeNull();
      expect(await logRun(c!.seed, undefined), `seed ${c!.seed} fails without the mutation too: ${c!.replay}`).toBeNull();
    }, 240_000);
  }

  it(`the core's bugs under the real driver: the log simulator looks ${LOG_SIDE_LOOK} seeds for each (reported, not required)`, async () => {
    let caught = 0;
    for (const mutation of CORE_MUTATIONS) {
      const c = await logCatch(mutation, LOG_SIDE_LOOK);
      row(mutation, 'log', c, LOG_SIDE_LOOK);
      if (c !== null) {
        caught++;
        if (!replaying) expect(await logRun(c.seed, undefined), `seed ${c.seed} fails without the mutation too: ${c.replay}`).toBeNull();
      }
    }
    // Most of them show through the real driver too; none showing would mean its probes are not installed.
    if (!replaying) expect(caught).toBeGreaterThanOrEqual(3);
  }, 240_000);
});

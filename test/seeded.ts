import { randomInt } from 'node:crypto';
import { expect } from 'vitest';
import { seeded } from './random.js';

export { seeded };

// Where every randomized test gets its seed. Without TEST_SEED a test draws a
// fixed seed derived from its name, so a CI run is repeatable and two tests do
// not share one stream; TEST_SEED=<n> replays a printed seed; TEST_SEED=random
// explores a fresh one. The seed is printed with the command that replays it.

const SEED_RANGE = 1_000_000;

/** FNV-1a: a stable number for a test's name. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** TEST_SEED as a number, 'random' drawn afresh, or undefined when unset. */
function seedFromEnv(): number | undefined {
  const raw = process.env.TEST_SEED?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'random') return randomInt(SEED_RANGE);
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`TEST_SEED must be a non-negative integer or "random", got "${raw}"`);
  return seed;
}

function printSeed(seed: number, what: string): void {
  const { testPath, currentTestName } = expect.getState();
  const file = testPath === undefined ? '' : ` ${testPath.replace(`${process.cwd()}/`, '')}`;
  const only = currentTestName === undefined ? '' : ` -t '${currentTestName.replaceAll("'", "'\\''")}'`;
  console.log(`${what} seed ${seed} (replay: TEST_SEED=${seed} npx vitest run${file}${only})`);
}

/** The seed for one randomized test (call it inside the test, so the replay line names it). */
export function testSeed(name: string): number {
  const seed = seedFromEnv() ?? nameHash(name) % SEED_RANGE;
  printSeed(seed, name);
  return seed;
}

/** A fixed sweep of seeds, or only TEST_SEED when it is set (to replay one failing seed of the sweep). */
export function testSeeds(defaults: readonly number[]): number[] {
  const seed = seedFromEnv();
  return seed === undefined ? [...defaults] : [seed];
}

/** Prints the replay line for one seed of a sweep from testSeeds(). */
export function announceSeed(seed: number, name: string): void {
  printSeed(seed, name);
}

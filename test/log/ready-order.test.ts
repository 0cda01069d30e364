// Raft hears which Readies are durable in the order it handed them out: persisted() covers
// every Ready before the one it names, so hearing of a later one first would leave the
// earlier one unknown. The storage's promises may settle out of that order (a write queued
// behind a snapshot being installed settles through the chain, a tick after a later write
// handed straight to the WAL). Here every write settles after a random delay.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { Wal, type WalEntry, type WalHardState } from '../../src/wal/index.js';
import { seeded, testSeed } from '../seeded.js';
import { enc, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('tells raft of durable Readies in their order when their writes settle out of it', async () => {
  const seed = testSeed('Readies durable out of order');
  const random = seeded(seed);
  const t = tempDir();
  cleanups.push(t.cleanup);
  const wal = await Wal.open(t.dir, { sync: 'none' });
  const append = wal.append.bind(wal);
  // Durable as the WAL says, reported 0-3 ms later: a later write often settles first.
  wal.append = (entries: readonly WalEntry[], hs?: WalHardState): Promise<void> =>
    append(entries, hs).then(() => new Promise<void>((resolve) => setTimeout(resolve, Math.floor(random() * 4))));
  const log = await ReplicatedLog.open({ dataDir: t.dir, sync: 'none' }, { wal });
  cleanups.push(() => log.close());
  const failed: unknown[] = [];
  log.on('fatal', (err) => failed.push(err));
  // Proposals in many turns, so that many Readies are in flight at once.
  const appends: Promise<{ index: number }>[] = [];
  for (let turn = 0; turn < 40; turn++) {
    for (let k = 0; k < 5; k++) appends.push(log.append(enc(`${turn}.${k}`)));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const settled = await Promise.allSettled(appends);
  expect(
    settled.filter((s) => s.status === 'rejected'),
    `seed ${seed}`,
  ).toEqual([]);
  expect(failed, `seed ${seed}`).toEqual([]);
  const last = Math.max(...settled.map((s) => (s.status === 'fulfilled' ? s.value.index : 0)));
  expect(log.status().applied).toBeGreaterThanOrEqual(last);
});

// A state machine slower to snapshot than the log is to apply snapshotEvery entries
// gets one snapshot at a time: the next waits for the one being written.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { LogEntry, StateMachine } from '../../src/log/state-machine.js';
import { enc, tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Counts its records; its snapshot stream hands its bytes over only when the test says so. */
class SlowSnapshots implements StateMachine<void> {
  count = 0;
  open = 0;
  mostOpen = 0;
  taken = 0;
  private release: Array<() => void> = [];

  apply(_e: LogEntry): void {
    this.count++;
  }

  snapshot(): AsyncIterable<Uint8Array> {
    this.taken++;
    this.open++;
    this.mostOpen = Math.max(this.mostOpen, this.open);
    const bytes = enc(String(this.count));
    const wait = new Promise<void>((r) => this.release.push(r));
    const self = this;
    return (async function* () {
      try {
        await wait;
        yield bytes;
      } finally {
        self.open--;
      }
    })();
  }

  finishAll(): void {
    for (const r of this.release.splice(0)) r();
  }

  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const _ of data);
  }
}

it('takes one snapshot at a time when writing one takes longer than applying snapshotEvery entries', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const sm = new SlowSnapshots();
  const log = await ReplicatedLog.open({ dataDir: t.dir, stateMachine: sm, snapshotEvery: 10 });
  cleanups.push(async () => {
    sm.finishAll();
    await log.close();
  });
  for (let i = 0; i < 100; i++) await log.append(enc(`r${i}`)); // ten snapshots' worth while the first is held
  expect(sm.taken).toBe(1);
  expect(sm.open).toBe(1);
  sm.finishAll();
  await waitFor('the first snapshot to be written', () => log.metrics().snapshots === 1);
  // Ninety entries applied since: the next starts as the first is done, with no new append.
  await waitFor('the second snapshot to start', () => sm.taken === 2);
  sm.finishAll();
  await waitFor('the second snapshot to be written', () => log.metrics().snapshots === 2);
  expect(sm.mostOpen).toBe(1);
  expect(log.status().snapshotIndex).toBe(log.status().applied); // the second covers everything applied
});

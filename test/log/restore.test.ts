// The state machine's restore() at open, as an application may write it: one that does not
// read the snapshot it is given, and one that never settles.
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { StateMachine } from '../../src/log/state-machine.js';
import { RecordingMachine, enc, fdsUnder, tempDir, waitFor } from './helpers.js';

const dirs: Array<{ cleanup(): void }> = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});

/** A data directory whose log holds a snapshot, so that an open restores from it. */
async function withSnapshot(): Promise<string> {
  const t = tempDir();
  dirs.push(t);
  const log = await ReplicatedLog.open({ dataDir: t.dir, stateMachine: new RecordingMachine(), snapshotEvery: 2, sync: 'none' });
  for (let i = 0; i < 5; i++) await log.append(enc(`r${i}`));
  await waitFor('a snapshot', () => log.status().snapshotIndex > 0);
  await log.close();
  return t.dir;
}

const machine = (restore: StateMachine['restore']): StateMachine => ({ apply: () => undefined, snapshot: () => new Uint8Array(0), restore });

describe('restore() at open', () => {
  it('a restore() that returns without reading its snapshot leaves the file closed', async () => {
    const dir = await withSnapshot();
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: machine(async () => {}), sync: 'none' });
    expect(fdsUnder(`${dir}/snapshots`)).toEqual([]);
    await log.close();
    expect(fdsUnder(dir)).toEqual([]);
  });
});

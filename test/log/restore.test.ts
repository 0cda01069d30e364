// The state machine's restore() at open, as an application may write it: one that does not
// read the snapshot it is given, and one that never settles.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { StateMachine } from '../../src/log/state-machine.js';
import { RecordingMachine, enc, fdsUnder, freePorts, tempDir, waitFor } from './helpers.js';

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

/**
 * A leader (node 1) whose log starts at a snapshot, with node 2 added as a learner: no
 * catch-up window, so node 2 can only start from the leader's snapshot. `node2`: its options.
 */
async function leaderWithSnapshot() {
  const [p1, p2] = await freePorts(2);
  const [a1, a2] = [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`];
  const [d1, d2] = [tempDir(), tempDir()];
  dirs.push(d1, d2);
  const timing = { tickMs: 10, electionTicks: 40, sync: 'none', clusterSecret: 'a secret for the restore tests' } as const;
  const n1 = await ReplicatedLog.open({
    dataDir: d1.dir,
    listen: a1,
    snapshotEvery: 2,
    snapshotCatchUpEntries: 0,
    stateMachine: new RecordingMachine(),
    ...timing,
  });
  try {
    for (let i = 0; i < 5; i++) await n1.append(enc(`r${i}`));
    await waitFor('a snapshot', () => n1.status().snapshotIndex > 0);
    await n1.addLearner(2, a2);
  } catch (err) {
    await n1.close();
    throw err;
  }
  return { n1, d2, node2: { dataDir: d2.dir, id: 2, join: true, peers: { 1: a1, 2: a2 }, ...timing } };
}

describe('restore() at open', () => {
  it('a restore() that returns without reading its snapshot leaves the file closed', async () => {
    const dir = await withSnapshot();
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: machine(async () => {}), sync: 'none' });
    expect(fdsUnder(`${dir}/snapshots`)).toEqual([]);
    await log.close();
    expect(fdsUnder(dir)).toEqual([]);
  });

  it('a restore() that never settles holds open() until its signal aborts: it then rejects with LOG_OPEN_ABORTED, the lock and files released', async () => {
    const dir = await withSnapshot();
    let reading = false;
    // It reads its first chunk, then waits for something that never comes.
    const hung = machine(async (data) => {
      for await (const _ of data) {
        reading = true;
        await new Promise(() => {});
      }
    });
    const controller = new AbortController();
    const opening = ReplicatedLog.open({ dataDir: dir, stateMachine: hung, sync: 'none', signal: controller.signal });
    await waitFor('restore() to read', () => reading);
    const reason = new Error('gave up on the restore');
    controller.abort(reason);
    await expect(opening).rejects.toMatchObject({ code: 'LOG_OPEN_ABORTED', cause: reason });
    expect(fdsUnder(dir)).toEqual([]);
    // The directory is free: the next open (with a state machine that restores) succeeds.
    const sm = new RecordingMachine();
    const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm, sync: 'none' });
    await log.barrier();
    expect(sm.applied.map((a) => a.data)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    await log.close();
  });

  it('a restore() that never reads nor settles: AbortSignal.timeout() bounds the open', async () => {
    const dir = await withSnapshot();
    const opening = ReplicatedLog.open({ dataDir: dir, stateMachine: machine(() => new Promise(() => {})), sync: 'none', signal: AbortSignal.timeout(200) });
    await expect(opening).rejects.toMatchObject({ code: 'LOG_OPEN_ABORTED', message: expect.stringMatching(/timeout/) });
    expect(fdsUnder(dir)).toEqual([]);
    const log = await ReplicatedLog.open({ dataDir: dir, sync: 'none' });
    await log.close();
  });

  it('a signal aborted already refuses the open before anything is created; one that is no AbortSignal is refused', async () => {
    const t = tempDir();
    dirs.push(t);
    const dataDir = `${t.dir}/never`;
    await expect(ReplicatedLog.open({ dataDir, signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'LOG_OPEN_ABORTED' });
    await expect(ReplicatedLog.open({ dataDir, signal: {} as AbortSignal })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/signal must be an AbortSignal/),
    });
    expect(existsSync(dataDir)).toBe(false);
  });

  it('a signal aborted after the open has no effect on the log', async () => {
    const dir = await withSnapshot();
    const controller = new AbortController();
    const log = await ReplicatedLog.open({ dataDir: dir, sync: 'none', signal: controller.signal });
    controller.abort();
    await log.append(enc('after'));
    expect(log.status().role).toBe('leader');
    await log.close();
  });

  it("close() abandons a restore() of a leader's snapshot that never settles: it resolves, and no file under the directory is left open", async () => {
    const { n1, d2, node2 } = await leaderWithSnapshot();
    try {
      let restoring = false;
      const hung = machine(() => {
        restoring = true;
        return new Promise(() => {});
      });
      const n2 = await ReplicatedLog.open({ ...node2, stateMachine: hung });
      await waitFor("node 2 to restore the leader's snapshot", () => restoring);
      await n2.close();
      expect(fdsUnder(d2.dir)).toEqual([]);
    } finally {
      await n1.close();
    }
  });
});

describe("restore() of a leader's snapshot", () => {
  it('a restore() that throws stops the node with LOG_FATAL naming restore(), before the snapshot replaces its log: a reopen finds its state as it was', async () => {
    const { n1, d2, node2 } = await leaderWithSnapshot();
    try {
      let restores = 0;
      const failing = machine(async (data) => {
        restores++;
        for await (const _ of data) break;
        throw new Error('this snapshot cannot be loaded');
      });
      const n2 = await ReplicatedLog.open({ ...node2, stateMachine: failing });
      const fatal = new Promise<{ code: string; message: string }>((resolve) => n2.once('fatal', resolve));
      expect(await fatal).toMatchObject({ code: 'LOG_FATAL', message: expect.stringMatching(/restore\(\)/) });
      await n2.close();
      expect(fdsUnder(d2.dir)).toEqual([]);
      // Neither the snapshot nor its spool was kept: the open restores nothing, and the leader sends it again.
      expect(readdirSync(join(d2.dir, 'snapshots'))).toEqual([]);
      const again = await ReplicatedLog.open({ ...node2, stateMachine: failing });
      expect(again.status().snapshotIndex).toBe(0);
      const before = restores;
      await waitFor('the snapshot sent again', () => restores > before);
      await again.close();
      // With a state machine that loads it, the node catches up.
      const sm = new RecordingMachine();
      const n2b = await ReplicatedLog.open({ ...node2, stateMachine: sm });
      await waitFor('node 2 to catch up', () => sm.applied.length === 5);
      expect(sm.applied.map((a) => a.data)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
      await n2b.close();
    } finally {
      await n1.close();
    }
  });
});

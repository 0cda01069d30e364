// The state machine's restore() at open, as an application may write it: one that does not
// read the snapshot it is given, and one that never settles.
import { existsSync } from 'node:fs';
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
    const [p1, p2] = await freePorts(2);
    const [a1, a2] = [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`];
    const [d1, d2] = [tempDir(), tempDir()];
    dirs.push(d1, d2);
    const timing = { tickMs: 10, electionTicks: 40, sync: 'none', clusterSecret: 'a secret for the restore tests' } as const;
    // No catch-up window: node 2 can only start from the leader's snapshot.
    const n1 = await ReplicatedLog.open({ dataDir: d1.dir, listen: a1, snapshotEvery: 2, snapshotCatchUpEntries: 0, ...timing });
    try {
      for (let i = 0; i < 5; i++) await n1.append(enc(`r${i}`));
      await waitFor('a snapshot', () => n1.status().snapshotIndex > 0);
      await n1.addLearner(2, a2);
      let restoring = false;
      const hung = machine(() => {
        restoring = true;
        return new Promise(() => {});
      });
      const n2 = await ReplicatedLog.open({ dataDir: d2.dir, id: 2, join: true, peers: { 1: a1, 2: a2 }, stateMachine: hung, ...timing });
      await waitFor("node 2 to restore the leader's snapshot", () => restoring);
      await n2.close();
      expect(fdsUnder(d2.dir)).toEqual([]);
    } finally {
      await n1.close();
    }
  });
});

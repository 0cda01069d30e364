// A node that a membership change took out of the cluster, restarted on its data directory: no
// leader sends it anything, so what it is asked is refused at once with NOT_MEMBER, as before it
// stopped, whether its removal is in its snapshot or in its log.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { RecordingMachine, tempDir, waitFor } from './helpers.js';
import { TRIO_PEERS, memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// Far past the test's own timeout: a call held until the log's deadline fails the test.
const TIMING = { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, timeoutMs: 600_000 };
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

for (const snapshotEvery of [1, 1_000]) {
  it(`a removed node restarted answers appends and barriers NOT_MEMBER at once (snapshotEvery ${snapshotEvery})`, async () => {
    const net = new MemoryNetwork();
    const dirs = new Map<number, string>();
    const { logs, leader } = await memoryTrio(net, cleanups, (id) => {
      const t = tempDir();
      cleanups.push(t.cleanup);
      dirs.set(id, t.dir);
      return { options: { dataDir: t.dir, snapshotEvery, ...TIMING }, deps: { wal: undefined } };
    });
    const removed = logs.find((l) => l !== leader)!;
    await leader.append(enc('before'));
    // A removed node learns of its removal only from the commit the leader sends before it
    // applies the change: caught up, with nothing in flight, it is not skipped by that send.
    await waitFor('the node to catch up', () => removed.status().applied >= leader.status().commit, 30_000);
    // A record right behind the removal: applied with it, it is what a snapshot is taken at.
    const removal = leader.removeMember(removed.id);
    const after = leader.append(enc('after'));
    await removal;
    await after;
    await waitFor('the removed node to apply its removal', () => !(removed.id in removed.status().members), 30_000);
    await removed.close();
    const again = await ReplicatedLog.open(
      { dataDir: dirs.get(removed.id)!, id: removed.id, peers: TRIO_PEERS, stateMachine: new RecordingMachine(), sync: 'none', preallocate: 'none', ...TIMING },
      { transport: net.endpoint(removed.id) },
    );
    cleanups.push(() => again.close());
    await expect(again.append(enc('lost'))).rejects.toMatchObject({ code: 'NOT_MEMBER' });
    await expect(again.barrier()).rejects.toMatchObject({ code: 'NOT_MEMBER' });
  }, 90_000);
}

it('a node that joined, was removed and restarted with join answers appends and barriers NOT_MEMBER at once', async () => {
  const net = new MemoryNetwork();
  const { leader } = await memoryTrio(net, cleanups, () => ({ options: { snapshotEvery: 1, ...TIMING } }));
  const t = tempDir();
  cleanups.push(t.cleanup);
  const opts = {
    dataDir: t.dir,
    id: 4,
    join: true,
    peers: { ...TRIO_PEERS, 4: '127.0.0.1:4' },
    sync: 'none',
    preallocate: 'none',
    snapshotEvery: 1,
    ...TIMING,
  } as const;
  await leader.addLearner(4, '127.0.0.1:4');
  const joined = await ReplicatedLog.open({ ...opts, stateMachine: new RecordingMachine() }, { transport: net.endpoint(4) });
  cleanups.push(() => joined.close());
  await leader.append(enc('before'));
  await waitFor('node 4 to catch up', () => joined.status().applied >= leader.status().commit, 30_000);
  const removal = leader.removeMember(4);
  const after = leader.append(enc('after'));
  await removal;
  await after;
  await waitFor('node 4 to apply its removal', () => !(4 in joined.status().members), 30_000);
  await joined.close();
  const again = await ReplicatedLog.open({ ...opts, stateMachine: new RecordingMachine() }, { transport: net.endpoint(4) });
  cleanups.push(() => again.close());
  // Its snapshot, the only place its removal is kept, names it no more: a joining node never takes
  // such a snapshot (the core refuses one that does not name it), so it was a member once.
  expect(again.status().snapshotIndex).toBeGreaterThan(0);
  await expect(again.append(enc('lost'))).rejects.toMatchObject({ code: 'NOT_MEMBER' });
  await expect(again.barrier()).rejects.toMatchObject({ code: 'NOT_MEMBER' });
}, 90_000);

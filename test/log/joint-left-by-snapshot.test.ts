// A joint membership change resolves once the configuration has left the joint state, however
// this node learns it: from the entry that leaves it, or from a leader's snapshot past that entry.
import { afterEach, expect, it } from 'vitest';
import { decodeConfChangeEntry } from '../../src/raft/confchange.js';
import { EntryType, type Message } from '../../src/raft/types.js';
import { MemorySnapshotStore } from '../../src/storage/snapshot-store.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { appendSurely, waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const leavesJoint = (m: Message): boolean => m.entries.some((e) => e.type === EntryType.ConfChange && decodeConfChangeEntry(e.data).changes.length === 0);

it('a joint change whose leader is cut off as it proposes the leave resolves once a snapshot past the leave is installed', async () => {
  const net = new MemoryNetwork();
  const options = { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, timeoutMs: 30_000, snapshotEvery: 5, snapshotCatchUpEntries: 0 };
  const { logs, leader: old } = await memoryTrio(net, cleanups, () => ({ options, deps: { snapshots: new MemorySnapshotStore() } }));
  await old.append(Buffer.from('the leader has committed in its term')); // before that it proposes no change
  const others = logs.filter((l) => l !== old);
  // The leader applies the joint configuration and proposes the entry that leaves it: from then
  // on it is cut off, so it learns of the leave only from the next leader, by snapshot.
  let cut = false;
  net.filter = (m) => {
    if (m.from === old.id && leavesJoint(m)) cut = true;
    return !cut || (m.from !== old.id && m.to !== old.id);
  };
  // Two voters change (the leader becomes a learner, node 4 a voter): the configuration goes joint.
  const outcome = old.changeMembership([{ demote: old.id }, { add: 4, address: '127.0.0.1:4' }]).then(
    () => 'resolved',
    (err: { code?: string }) => err.code ?? String(err),
  );
  await waitFor('the leader to propose the leave', () => cut);
  await waitFor(
    'the next leader to leave the joint configuration',
    () => others.some((l) => l.status().role === 'leader' && l.status().conf.voters.includes(4) && (l.status().conf.votersOutgoing?.length ?? 0) === 0),
    30_000,
  );
  // Its log ends with the leave it proposed; once the new leader has released its log past that,
  // the old leader can only catch up by snapshot.
  const oldLast = old.status().lastIndex;
  const released = (): boolean => others.some((l) => l.status().role === 'leader' && l.status().firstIndex > oldLast + 1);
  for (let i = 0; i < 200 && !released(); i++) await appendSurely(others, Buffer.from(`record ${i}`));
  await waitFor("the new leader to release its log past the old leader's", released, 30_000);
  net.filter = undefined;
  await waitFor('the old leader to install a snapshot', () => old.status().snapshotIndex > oldLast, 30_000);
  expect(old.status().conf.learners).toContain(old.id);
  expect(old.status().conf.votersOutgoing ?? []).toEqual([]);
  // Without the snapshot settling it, the change waited for an entry that never comes, and timed out.
  expect(await outcome).toBe('resolved');
}, 90_000);

// A joint change that removes the leader it was called on, where that leader loses leadership
// once the joint configuration is applied and before it applies the entry that leaves it: the
// next leader leaves it, and the removed node, outside the new configuration, is never sent
// that entry's commit. Its caller must not wait out its timeout for a change that completed.
import { afterEach, expect, it } from 'vitest';
import { EntryType, MessageType } from '../../src/raft/types.js';
import type { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// Generous: on a loaded machine the kept voter's election can take several rounds (the demoted
// node may win first, lead the joint configuration out, then step down as a learner).
const TIMEOUT_MS = 20_000;

it('a joint change that removes the node it was called on resolves once that node loses leadership in the joint configuration', async () => {
  const net = new MemoryNetwork();
  const { logs, leader } = await memoryTrio(net, cleanups, () => ({ options: { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, timeoutMs: TIMEOUT_MS } }));
  const old = leader.id;
  const [demoted, kept] = [1, 2, 3].filter((n) => n !== old) as [number, number];
  // The leader's first membership entry enters the joint configuration; the next, which leaves
  // it, is proposed once the first is applied. From then on nothing the old leader sends arrives.
  let joint = 0;
  let silenced = false;
  net.filter = (m) => {
    if (m.from !== old) return true;
    if (!silenced && m.type === MessageType.MsgApp)
      for (const e of m.entries)
        if (e.type === EntryType.ConfChange) {
          if (joint === 0) joint = e.index;
          else if (e.index > joint) silenced = true;
        }
    return !silenced;
  };
  const outcome = leader.changeMembership([{ remove: old }, { demote: demoted }]).then(
    () => 'resolved',
    (err: { code?: string }) => err.code ?? String(err),
  );
  const newLeader = (): ReplicatedLog<number> | undefined => logs.find((l) => l.id === kept && l.status().role === 'leader');
  await waitFor('the kept voter to lead', () => newLeader() !== undefined, TIMEOUT_MS);
  await waitFor('the new leader to leave the joint configuration', () => !(old in newLeader()!.status().members), TIMEOUT_MS);
  expect(silenced).toBe(true);
  expect(await outcome).toBe('resolved');
}, 60_000);

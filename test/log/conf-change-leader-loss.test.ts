// A membership change whose leader is lost after the change reached the followers may still
// commit under the next leader: its caller must be told the outcome is unknown, never that
// nothing changed.
import { afterEach, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a change whose leader steps down before it commits, and which the next leader commits, is reported APPEND_OUTCOME_UNKNOWN', async () => {
  const net = new MemoryNetwork();
  const { logs, leader: old } = await memoryTrio(net, cleanups, () => ({ options: { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, timeoutMs: 60_000 } }));
  await old.append(Buffer.from('the leader has committed in its term')); // before that it proposes no change
  const others = logs.filter((l) => l !== old);
  // The followers receive the change, but the leader hears nothing back: it never learns that it
  // committed, and steps down once its quorum check finds no follower in touch.
  net.filter = (m) => m.to !== old.id;
  const outcome = old.addLearner(4, '127.0.0.1:4').then(
    () => 'resolved',
    (err: { code?: string }) => err.code ?? String(err),
  );
  await waitFor('a follower to hold the change', () => others.every((l) => l.status().lastIndex > old.status().commit));
  expect(await outcome).not.toBe('resolved');
  await waitFor('a new leader to commit the change', () => others.every((l) => l.status().conf.learners.includes(4)), 30_000);
  expect(await outcome).toBe('APPEND_OUTCOME_UNKNOWN');
}, 60_000);

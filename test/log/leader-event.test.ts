// The 'leader' event tells a follower of every (leader, term) it comes to know, so a user who
// fences writes on the term hears of a leader that lost leadership and won it back; the
// leaderChanges metric and the log line count the same.
import { afterEach, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { RecordingLogger } from '../recording-logger.js';
import { waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('announces the same leader again, at its new term, to a follower that saw none of the elections between', async () => {
  const net = new MemoryNetwork();
  // Node 3 never times out while it hears nothing: it must not campaign (and so forget the leader) while cut off.
  const logger = new RecordingLogger();
  const { logs, leader } = await memoryTrio(net, cleanups, (id) => ({ options: id === 3 ? { electionTicks: 1_000_000, logger } : {} }));
  const bystander = logs[2]!;
  const led = leader.status().id;
  const other = logs[(led === 1 ? 2 : 1) - 1]!;
  await waitFor('node 3 to know the leader', () => bystander.status().lead === led);
  const before = leader.status().term;
  const seen: Array<{ id: number; term: number }> = [];
  bystander.on('leader', (e) => void seen.push(e));
  const changesBefore = bystander.metrics().leaderChanges;
  const linesBefore = logger.lines.length;

  net.cut(led, 3, true);
  net.cut(other.status().id, 3, true);
  await leader.transferLeadership(other.status().id);
  await other.transferLeadership(led);
  const term = leader.status().term;
  expect(term).toBeGreaterThanOrEqual(before + 2);
  net.heal();

  await waitFor('node 3 to learn the new term', () => bystander.status().term === term && bystander.status().lead === led);
  await new Promise((r) => setImmediate(r)); // the event's microtask has run
  expect(seen).toEqual([{ id: led, term }]);
  // The metric and the log line count what the event announces: an alert on leader changes sees the re-election.
  expect(bystander.metrics().leaderChanges).toBe(changesBefore + 1);
  const announced = logger.lines.slice(linesBefore).filter((l) => /^leader /.test(l.message));
  expect(announced.map((l) => ({ message: l.message, term: l.fields.term, from: l.fields.from, to: l.fields.to }))).toEqual([
    { message: `leader is now ${led}`, term, from: led, to: led },
  ]);
}, 60_000);

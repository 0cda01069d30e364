// A follower caught up by snapshot over a MemoryNetwork, each node with its default (file)
// snapshot store: a snapshot's `data` is then a name in the sender's directory, and the
// bytes behind it must travel as they do over TCP, spooled into the receiver's.
import { afterEach, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { appendSurely, waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a follower cut off while the others commit past a snapshot installs one sent in memory from a file store, and catches up', async () => {
  const net = new MemoryNetwork();
  const options = { snapshotEvery: 5, snapshotCatchUpEntries: 0, timeoutMs: 30_000 };
  const { logs } = await memoryTrio(net, cleanups, () => ({ options }));
  const fatal: string[] = [];
  for (const l of logs) l.on('fatal', (f) => fatal.push(`node ${l.id}: ${f.code}: ${f.message}`));
  await appendSurely(logs, Buffer.from('before the cut'));
  const lead = logs.find((l) => l.status().role === 'leader')!;
  const behind = logs.find((l) => l !== lead)!;
  net.isolate(behind.id);
  const others = logs.filter((l) => l !== behind);
  // Released past what the follower holds, its log can only be caught up by snapshot.
  const released = (): boolean => others.some((l) => l.status().role === 'leader' && l.status().firstIndex > behind.status().lastIndex + 1);
  for (let i = 0; i < 200 && !released(); i++) await appendSurely(others, Buffer.from(`record ${i}`));
  expect(released()).toBe(true);
  const last = (await appendSurely(others, Buffer.from('the last record'))).index;
  net.heal();
  await waitFor('the follower to catch up, or a node to stop', () => behind.status().applied >= last || fatal.length > 0, 30_000);
  expect(fatal).toEqual([]);
  expect(behind.status().snapshotIndex).toBeGreaterThan(0);
  expect(behind.status().applied).toBeGreaterThanOrEqual(last);
}, 90_000);

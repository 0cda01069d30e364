// A change that takes a voter out is refused MAJORITY_UNAVAILABLE when a voter it leaves is not
// heard; a voter unheard for a moment (a leader just elected, an answer late on a loaded machine)
// is waited for, up to an election timeout, not called down at the first look.
import { afterEach, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const TIMING = { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, timeoutMs: 20_000 };

it('a removal that would leave a voter unheard for a moment waits for it, and is made once it answers', async () => {
  const net = new MemoryNetwork();
  const { logs, leader } = await memoryTrio(net, cleanups, () => ({ options: TIMING }));
  const [quiet, gone] = logs.filter((l) => l !== leader) as [(typeof logs)[number], (typeof logs)[number]];
  net.filter = (m) => !(m.from === quiet.id && m.to === leader.id);
  await waitFor('the leader to count the quiet voter unheard', () => leader.status().progress?.[quiet.id]?.recentActive === false);
  const removal = leader.removeMember(gone.id).then(
    () => 'removed',
    (err: { code?: string }) => err.code,
  );
  net.filter = undefined;
  expect(await removal).toBe('removed');
  expect(leader.status().conf.voters).toEqual([leader.id, quiet.id].sort((a, b) => a - b));
}, 60_000);

it('a removal that would leave a voter unheard for an election timeout is refused MAJORITY_UNAVAILABLE, nothing proposed', async () => {
  const net = new MemoryNetwork();
  const { logs, leader } = await memoryTrio(net, cleanups, () => ({ options: TIMING }));
  const [quiet, gone] = logs.filter((l) => l !== leader) as [(typeof logs)[number], (typeof logs)[number]];
  net.filter = (m) => !(m.from === quiet.id && m.to === leader.id);
  await waitFor('the leader to count the quiet voter unheard', () => leader.status().progress?.[quiet.id]?.recentActive === false);
  const before = leader.status().lastIndex;
  await expect(leader.removeMember(gone.id)).rejects.toMatchObject({ code: 'MAJORITY_UNAVAILABLE', down: [quiet.id] });
  expect(leader.status().lastIndex).toBe(before);
}, 60_000);

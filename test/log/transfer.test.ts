// Leadership transfer to a follower over a slow link: one that takes longer than an election
// timeout to catch up, and whose vote requests are answered late.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { enc, waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const TICK_MS = 10;
const ELECTION_TICKS = 40;
/**
 * Everything sent to the slow follower arrives this late: within the election timeout (400 ms),
 * as Raft needs, but a round trip outlasts the few ticks a candidate waits before it retries.
 */
const SLOW_MS = 250;
const MiB = 1024 * 1024;

/** Three nodes on an in-memory network (never dialled), and the one that leads first. */
function threeNodes(net: MemoryNetwork): Promise<{ logs: ReplicatedLog<number>[]; leader: ReplicatedLog<number> }> {
  // A window of 1 MiB: catching up on 4 MiB takes a follower behind a slow link four round trips, 2 s.
  // Heartbeats keep arriving (late, but every 40 ms), so it never campaigns on its own.
  return memoryTrio(net, cleanups, () => ({ options: { tickMs: TICK_MS, electionTicks: ELECTION_TICKS, heartbeatTicks: 4, maxInflightBytes: MiB } }));
}

it('hands leadership round three nodes, one of them behind a slow link and behind by more than it catches up in an election timeout', async () => {
  const net = new MemoryNetwork();
  const nodes = await threeNodes(net);
  const { logs } = nodes;
  let leader = nodes.leader;
  const slow = leader.status().id === 3 ? 2 : 3;
  for (const from of [1, 2, 3]) if (from !== slow) net.setLink(from, slow, { delayMs: [SLOW_MS, SLOW_MS] });

  // Each round writes 4 MiB, then hands leadership on at once, round the three: the slow
  // follower has not acknowledged the writes when it is asked to lead, nor can it within the
  // election timeout a leader gives a transfer.
  const record = Buffer.alloc(64 * 1024, 7);
  for (let round = 0; round < 4; round++) {
    const from = leader.status().id;
    await Promise.all(Array.from({ length: (4 * MiB) / record.length }, () => leader.append(record)));
    await leader.append(enc(`round ${round}`));
    const to = (from % 3) + 1;
    await leader.transferLeadership(to);
    expect(logs[to - 1]!.status().role, `round ${round}: ${from} -> ${to}`).toBe('leader');
    leader = logs[to - 1]!;
  }
  await waitFor('every node to apply every round', () => logs.every((l) => l.status().applied === leader.status().applied));
}, 60_000);

it('answers NOT_MEMBER once the node it waits to hand leadership to is removed', async () => {
  const net = new MemoryNetwork();
  const { leader } = await threeNodes(net);
  const gone = leader.status().id === 3 ? 2 : 3;
  net.isolate(gone); // it can never take leadership: the transfer waits
  const outcome = leader.transferLeadership(gone).then(
    () => 'transferred',
    (err: { code?: string }) => err.code,
  );
  // A transfer under way holds proposals, the removal's too: it is made in a gap between asks.
  // A leader just elected on a loaded machine may not have heard the other voter yet, and
  // refuses the removal until it has (MAJORITY_UNAVAILABLE).
  for (let tries = 0; ; tries++) {
    const removed = await leader.removeMember(gone).then(
      () => true,
      (err: { code?: string }) => {
        if ((err.code !== 'APPEND_NOT_COMMITTED' && err.code !== 'MAJORITY_UNAVAILABLE') || tries === 100) throw err;
        return false;
      },
    );
    if (removed) break;
    await new Promise((r) => setTimeout(r, TICK_MS * 5));
  }
  expect(await outcome).toBe('NOT_MEMBER');
}, 60_000);

it("commits a follower's append forwarded to a leader that is handing leadership on, once the leader gives the transfer up", async () => {
  const net = new MemoryNetwork();
  const { logs, leader } = await threeNodes(net);
  const [to, follower] = [1, 2, 3].filter((n) => n !== leader.id) as [number, number];
  net.cut(leader.id, to); // the transferee is never told to campaign: the leader gives the transfer up
  const transfer = leader.transferLeadership(to).then(
    () => 'transferred',
    (err: { code?: string }) => err.code,
  );
  // Forwarded at the end of this turn, it reaches a leader whose transfer is under way.
  const append = logs[follower - 1]!.append(enc('forwarded during a transfer')).then(
    () => 'committed',
    (err: { code?: string }) => err.code,
  );
  expect(await append).toBe('committed');
  expect(leader.status().role).toBe('leader');
  net.heal();
  await transfer;
}, 60_000);

it('answers NO_LEADER, as a barrier waiting then is, once the node it was called on has known no leader for two election timeouts', async () => {
  const net = new MemoryNetwork();
  const { leader } = await threeNodes(net);
  const to = leader.id === 3 ? 2 : 3;
  net.cut(leader.id, to); // the transferee is never told to campaign: the transfer waits
  const outcome = leader.transferLeadership(to).then(
    () => 'transferred',
    (err: { code?: string }) => err.code,
  );
  net.isolate(leader.id); // it steps down, and learns of no leader after it
  expect(await outcome).toBe('NO_LEADER');
}, 60_000);

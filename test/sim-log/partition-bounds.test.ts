// How long a partition costs, in ticks of the simulated clock: the real driver on
// the simulated network and disks, the leader cut off at a chosen tick.
//  - a new leader (in the majority) must commit a client's append within
//    3 base election timeouts of the cut, split votes included: the followers
//    notice within [electionTicks, 2 * electionTicks) of the last heartbeat; two
//    that time out on the same tick both pass pre-vote and split the vote (about
//    one election in ten), and then campaign again after a short randomized
//    retry ([2, electionTicks / 2] ticks), not a whole election timeout;
//  - after the heal, the old leader must hold every record committed before the
//    heal within 3 base election timeouts.
// Both are promises the README makes; over real sockets bench/recovery.bench.ts
// measures the same cases in wall-clock time.
import { describe, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { LogError } from '../../src/log/errors.js';
import { Prng } from '../sim/prng.js';
import { announceSeed, testSeeds } from '../seeded.js';
import { MemoryDisk } from './memory-wal.js';
import { RecordMachine } from './record-machine.js';
import { Lifetime, Scheduler } from './scheduler.js';
import { SimNetwork } from './sim-network.js';

const TICK_MS = 10;
const ELECTION_TICKS = 10;
const BOUND_TICKS = 3 * ELECTION_TICKS;
const enc = new TextEncoder();

interface Node {
  id: number;
  log: ReplicatedLog<string> | null;
}

export interface PartitionTiming {
  /** Ticks from the cut until an append made in the majority committed under a new leader. */
  electTicks: number;
  /** Ticks from the heal until the old leader had applied everything committed before it. */
  catchUpTicks: number;
  /** Elections that ended without a leader before the one that won. */
  splitVotes: number;
}

interface SimCluster {
  sched: Scheduler;
  rng: Prng;
  net: SimNetwork;
  nodes: Node[];
  up: () => ReplicatedLog<string>[];
  leaderOf: (ids: number[]) => Node | undefined;
  /** Runs the simulation until `stop` holds; throws if that takes longer than `ms`. */
  run: (what: string, ms: number, stop: () => boolean) => Promise<void>;
  /** Ends the harness's own heartbeat. */
  done: () => void;
}

/** n real logs on a simulated network (1-3 ms latency, nothing lost) and simulated disks, opening. */
function simCluster(seed: number, n: number): SimCluster {
  const sched = new Scheduler();
  sched.onError = (err) => {
    throw err;
  };
  const rng = new Prng(seed);
  const net = new SimNetwork(sched, rng.fork());
  net.faults = { latencyMs: [1, 3], slow: 0, slowMs: [1, 1], drop: 0, duplicate: 0 };
  const peers: Record<number, string> = {};
  for (let id = 1; id <= n; id++) peers[id] = `sim:${id}`;
  const nodes: Node[] = [];
  for (let id = 1; id <= n; id++) {
    const node: Node = { id, log: null };
    nodes.push(node);
    const disk = new MemoryDisk(rng.fork(), { syncMs: [0, 2], slowSync: 0, slowSyncMs: [0, 0], failSync: 0 });
    const life = new Lifetime();
    const clock = sched.clock(life);
    const noRng = rng.fork();
    void ReplicatedLog.open<string>(
      {
        dataDir: `sim://node${id}`,
        id,
        peers,
        stateMachine: new RecordMachine({ apply: () => undefined, restore: () => undefined }),
        tickMs: TICK_MS,
        electionTicks: ELECTION_TICKS,
        heartbeatTicks: 2,
        timeoutMs: 60_000,
      },
      { wal: disk.open(clock), snapshots: disk.snapshots, transport: net.transport(id), clock, random: () => noRng.next() },
    ).then((log) => (node.log = log));
  }
  // A heartbeat of the harness itself: the event queue is never empty while logs open.
  let watching = true;
  const watch = (): void => {
    if (watching) sched.after(1, watch);
  };
  watch();
  const up = (): ReplicatedLog<string>[] => nodes.map((x) => x.log).filter((l): l is ReplicatedLog<string> => l !== null);
  const leaderOf = (ids: number[]): Node | undefined => nodes.find((x) => ids.includes(x.id) && x.log?.status().role === 'leader');
  const run = async (what: string, ms: number, stop: () => boolean): Promise<void> => {
    await sched.runUntil(sched.now + ms, stop);
    if (!stop()) throw new Error(`seed ${seed}: ${what} did not happen within ${ms} simulated ms`);
  };
  return { sched, rng, net, nodes, up, leaderOf, run, done: () => (watching = false) };
}

/** One scripted run: start, settle, cut the leader off at a tick, measure, heal, measure. */
export async function partitionScenario(seed: number, n: number): Promise<PartitionTiming> {
  const { sched, rng, net, nodes, up, leaderOf, run, done } = simCluster(seed, n);
  await run('a first leader', 5_000, () => up().length === n && leaderOf(nodes.map((x) => x.id)) !== undefined);
  const old = leaderOf(nodes.map((x) => x.id))!;
  // Some history first, on every node.
  let acked = 0;
  for (let i = 0; i < 20; i++) void old.log!.append(enc.encode(`before-${i}`)).then(() => acked++);
  await run('the first appends', 5_000, () => acked === 20 && up().every((l) => l.status().applied >= old.log!.status().commit));
  // Cut on a tick boundary plus a random phase within the heartbeat interval.
  await sched.runUntil(sched.now + TICK_MS - (sched.now % TICK_MS) + rng.range(0, 2 * TICK_MS - 1));
  const oldTerm = old.log!.status().term;
  const majority = nodes.filter((x) => x !== old).map((x) => x.id);
  const cutAt = sched.now;
  net.partition([[old.id], majority]);
  // The old leader is asked too: these can never commit.
  for (let i = 0; i < 5; i++) old.log!.append(enc.encode(`orphan-${i}`)).catch(() => undefined);

  // Clients in the majority append until one append commits in a newer term (an append
  // in flight to the lost leader fails; the client tries again, as a real one would).
  let newCommitAt = -1;
  let newTerm = 0;
  const busy = new Set<number>();
  let seq = 0;
  const client = (): void => {
    if (newCommitAt >= 0) return;
    for (const id of majority) {
      const log = nodes[id - 1]!.log!;
      if (busy.has(id)) continue;
      busy.add(id);
      log.append(enc.encode(`after-${++seq}`)).then(
        (r) => {
          busy.delete(id);
          if (r.term > oldTerm && newCommitAt < 0) {
            newCommitAt = sched.now;
            newTerm = r.term;
          }
        },
        (err: unknown) => {
          busy.delete(id);
          const code = (err as LogError).code;
          if (!['APPEND_OUTCOME_UNKNOWN', 'APPEND_NOT_COMMITTED', 'NO_LEADER'].includes(code)) throw err;
        },
      );
    }
    sched.after(1, client);
  };
  client();
  await run('a commit under a new leader', 20 * BOUND_TICKS * TICK_MS, () => newCommitAt >= 0);
  const electTicks = (newCommitAt - cutAt) / TICK_MS;
  // Pre-vote keeps the term still until a candidate can win; each further term is a vote that split.
  const splitVotes = newTerm - oldTerm - 1;

  // More history the old leader has not seen, then the heal.
  const next = leaderOf(majority)!;
  let more = 0;
  for (let i = 0; i < 20; i++) void next.log!.append(enc.encode(`majority-${i}`)).then(() => more++);
  await run('the majority appends', 5_000, () => more === 20);
  const target = next.log!.status().commit;
  const healAt = sched.now;
  net.heal();
  await run('the old leader to catch up', 20 * BOUND_TICKS * TICK_MS, () => old.log!.status().applied >= target);
  const catchUpTicks = (sched.now - healAt) / TICK_MS;
  done();
  return { electTicks, catchUpTicks, splitVotes };
}

describe('partition timing in the simulator (ticks, not wall-clock)', () => {
  for (const [n, seeds] of [
    [3, Array.from({ length: 150 }, (_, i) => i + 1)],
    [5, Array.from({ length: 100 }, (_, i) => i + 1)],
  ] as const) {
    it(`${n} nodes: a new leader commits within ${BOUND_TICKS} ticks (3 election timeouts) of the leader's cut; the old leader catches up within ${BOUND_TICKS} ticks of the heal`, async () => {
      const elect: number[] = [];
      const catchUp: number[] = [];
      let splits = 0;
      for (const seed of testSeeds(seeds)) {
        announceSeed(seed, `partition bounds ${n} nodes`);
        const t = await partitionScenario(seed, n);
        elect.push(t.electTicks);
        catchUp.push(t.catchUpTicks);
        splits += t.splitVotes > 0 ? 1 : 0;
        expect(t.electTicks, `seed ${seed}: ticks from the cut to a new leader's commit (${t.splitVotes} split votes)`).toBeLessThanOrEqual(BOUND_TICKS);
        expect(t.catchUpTicks, `seed ${seed}: ticks from the heal to the old leader caught up`).toBeLessThanOrEqual(BOUND_TICKS);
      }
      const fmt = (xs: number[]): string => `min ${Math.min(...xs)}, median ${[...xs].sort((a, b) => a - b)[xs.length >> 1]}, max ${Math.max(...xs)}`;
      console.log(
        `${n} nodes, electionTicks ${ELECTION_TICKS}: cut -> new leader commits ${fmt(elect)} ticks (${splits} of ${elect.length} runs had a split vote); heal -> caught up ${fmt(catchUp)} ticks`,
      );
      // Randomized timeouts keep split votes the exception.
      expect(splits).toBeLessThanOrEqual(Math.ceil(elect.length / 4));
    }, 120_000);
  }
});

describe('a healthy cluster in the simulator', () => {
  // The short retry after a split vote must never fire while the leader is alive: no
  // node ever leaves the follower role and the term never moves, however long it runs.
  const TICKS = 1000;
  for (const n of [3, 5]) {
    it(`${n} nodes: nobody campaigns in ${TICKS} ticks under a live leader`, async () => {
      for (const seed of testSeeds([1, 2])) {
        announceSeed(seed, `healthy cluster ${n} nodes`);
        const { sched, nodes, up, leaderOf, run, done } = simCluster(seed, n);
        const ids = nodes.map((x) => x.id);
        await run('a first leader', 5_000, () => up().length === n && leaderOf(ids) !== undefined);
        // Let the election's followers hear the leader before watching.
        await run('every node following', 5_000, () => up().every((l) => l.status().lead !== 0));
        const leader = leaderOf(ids)!;
        const term = leader.log!.status().term;
        let appended = 0;
        let acked = 0;
        let campaigns = 0;
        const end = sched.now + TICKS * TICK_MS;
        let last = -1;
        await sched.runUntil(end, () => {
          if (sched.now === last) return false;
          last = sched.now;
          // Every simulated ms: every node's role and term (a pre-vote round takes at least a network
          // round trip, 2 ms; a campaign raises the term), and now and then an append.
          for (const l of up()) {
            const st = l.status();
            if (st.role === 'pre-candidate' || st.role === 'candidate' || st.term !== term) campaigns++;
          }
          if (sched.now % (7 * TICK_MS) === 0) void leader.log!.append(enc.encode(`steady-${appended++}`)).then(() => acked++);
          return false;
        });
        expect(sched.now, `seed ${seed}: the run reached its end`).toBeGreaterThanOrEqual(end);
        expect(campaigns, `seed ${seed}: moments some node was campaigning or in another term`).toBe(0);
        expect(leader.log!.status().role, `seed ${seed}: the first leader still leads`).toBe('leader');
        expect(appended, `seed ${seed}: appends made`).toBeGreaterThan(TICKS / 8);
        expect(acked, `seed ${seed}: appends committed`).toBeGreaterThanOrEqual(appended - 1);
        done();
      }
    }, 60_000);
  }
});

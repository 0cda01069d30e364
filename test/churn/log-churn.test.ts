// Churn at the level of the replicated log: leadership moving, followers restarting,
// members coming and going, requests that time out. What each cycle took must be given
// back, whatever the cycle ends in.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { enc, freePorts, tempDir, waitFor } from '../log/helpers.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { ProgressStateType } from '../../src/raft/types.js';
import { Census, quiesce } from './census.js';
import { QUICK, SECRET, churnCluster, collect, snapshotFiles, strayFiles, type ChurnCluster, type ChurnNode } from './cluster.js';

const census = new Census();
let cluster: ChurnCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
  const warnings = [...census.warnings];
  census.stop();
  expect(warnings).toEqual([]);
});

describe('log churn', () => {
  it('leadership transfers that time out (to a voter that is down) are let go once they have been answered', async () => {
    // A leader that stays one (a change of leader would let every waiter go, and the test prove
    // nothing): an election timeout of a second, which a loaded machine's pauses do not reach.
    const c = (cluster = await churnCluster(3, { timeoutMs: 300, electionTicks: 100 }));
    const leader = await c.leader();
    const down = c.nodes.find((m) => m !== leader)!;
    await c.stop(down);
    // Held weakly: once each has rejected, nothing of the log should hold them.
    const refs: Array<WeakRef<Promise<void>>> = [];
    const codes = new Set<string>();
    await (async () => {
      const asks: Array<Promise<void>> = [];
      for (let i = 0; i < 50; i++) {
        const p = leader.log!.transferLeadership(down.id);
        refs.push(new WeakRef(p));
        asks.push(p.catch((err: { code?: string }) => void codes.add(err.code ?? '?')));
      }
      await Promise.all(asks);
    })();
    expect([...codes]).toEqual(['TIMEOUT']);
    expect(leader.log!.status().role).toBe('leader');
    await collect();
    expect(refs.filter((r) => r.deref() !== undefined).length).toBe(0);
  });

  it('leadership handed round the cluster 30 times leaves no more timers, sockets or descriptors than after the first few', async () => {
    const c = (cluster = await churnCluster(3));
    census.start();
    const cycle = async (i: number): Promise<void> => {
      const leader = await c.leader();
      const next = c.nodes[leader.id % 3]!; // the next id round
      await leader.log!.transferLeadership(next.id);
      await waitFor(`node ${next.id} to lead`, () => next.log!.status().role === 'leader');
      await next.log!.append(enc(`after transfer ${i}`));
    };
    expect(await census.growth({ cycles: 30, warmUp: 5, cycle })).toEqual({});
    for (const m of c.nodes) expect(m.log!.listenerCount('leader')).toBe(0);
  });

  it('a follower stopped and started 20 times while the leader appends: the process holds what it held after the first restarts', async () => {
    const c = (cluster = await churnCluster(3));
    const leader = await c.leader();
    const follower = c.nodes.find((m) => m !== leader)!;
    census.start();
    const cycle = async (i: number): Promise<void> => {
      await c.stop(follower);
      const ack = await leader.log!.append(enc(`while down ${i}`));
      const log = await c.start(follower);
      await waitFor(`node ${follower.id} to catch up`, () => log.status().applied >= ack.index);
    };
    expect(await census.growth({ cycles: 20, warmUp: 4, cycle })).toEqual({});
    expect(strayFiles(follower.dir)).toEqual([]);
  });

  it('learners with new ids added and removed 12 times: the leader keeps no link, counter or resource for the ones gone', async () => {
    const c = (cluster = await churnCluster(1));
    const leader = c.nodes[0]!;
    census.start();
    const ports = await freePorts(12);
    const cycle = async (i: number): Promise<void> => {
      const id = 9 + i;
      const address = `127.0.0.1:${ports[i - 1]}`;
      const d = tempDir('raftlog-churn-learner-');
      await leader.log!.addLearner(id, address);
      const learner = await ReplicatedLog.open({ dataDir: d.dir, id, peers: { ...c.peers, [id]: address }, join: true, clusterSecret: SECRET, ...QUICK });
      const ack = await leader.log!.append(enc(`for ${id}`));
      await waitFor(`learner ${id} to catch up`, () => learner.status().applied >= ack.index);
      await leader.log!.removeMember(id);
      await learner.close();
      d.cleanup();
    };
    expect(await census.growth({ cycles: 12, warmUp: 4, cycle })).toEqual({});
    const m = leader.log!.metrics();
    expect(Object.keys(leader.log!.status().members)).toEqual(['1']);
    expect(Object.keys(m.transportBytesSent)).toEqual([]);
    expect(Object.keys(m.transportBytesReceived)).toEqual([]);
    expect(Object.keys(m.peerLag)).toEqual([]);
  });

  it('barriers asked on every node while leadership moves 12 times all settle, and none is held once settled', async () => {
    const c = (cluster = await churnCluster(3, { timeoutMs: 2_000 }));
    census.start();
    const refs: Array<WeakRef<Promise<void>>> = [];
    const outcomes = new Map<string, number>();
    let asking = true;
    const ask = async (): Promise<void> => {
      while (asking) {
        const batch: Array<Promise<void>> = [];
        for (const m of c.nodes) {
          for (let k = 0; k < 5; k++) {
            const p = m.log!.barrier();
            refs.push(new WeakRef(p));
            batch.push(
              p.then(
                () => void outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1),
                (err: { code?: string }) => void outcomes.set(err.code ?? '?', (outcomes.get(err.code ?? '?') ?? 0) + 1),
              ),
            );
          }
        }
        await Promise.all(batch);
      }
    };
    const asking1 = ask();
    const cycle = async (i: number): Promise<void> => {
      const leader = await c.leader();
      await leader.log!.transferLeadership(c.nodes[leader.id % 3]!.id);
      if (i < 12) return;
      asking = false; // the first census is taken while barriers are asked, the last once all settled
      await asking1;
    };
    expect(await census.growth({ cycles: 12, warmUp: 3, cycle })).toEqual({});
    expect(outcomes.get('ok')).toBeGreaterThan(0);
    expect([...outcomes.keys()].filter((k) => !['ok', 'NO_LEADER', 'TIMEOUT'].includes(k))).toEqual([]);
    await collect();
    expect(refs.filter((r) => r.deref() !== undefined).length).toBe(0);
  });

  it('appends nobody waits for, made on every node while leadership moves, all settle and free their places', async () => {
    const c = (cluster = await churnCluster(3, { timeoutMs: 500, maxPendingAppends: 100 }));
    const refs: Array<WeakRef<Promise<unknown>>> = [];
    const codes = new Set<string>();
    const fire = (): void => {
      for (const m of c.nodes) {
        for (let k = 0; k < 30; k++) {
          // Dropped by its caller at once: only the log holds it now.
          const p = m.log!.append(enc(`fire ${k}`));
          p.catch((err: { code?: string }) => void codes.add(err.code ?? '?'));
          refs.push(new WeakRef(p));
        }
      }
    };
    for (let i = 1; i <= 8; i++) {
      fire();
      const leader = await c.leader();
      const next = c.nodes[leader.id % 3]!;
      await leader.log!.transferLeadership(next.id).catch(() => undefined);
      fire();
    }
    // Every one settles within the timeout; then each node takes as many appends as before.
    await new Promise((r) => setTimeout(r, 1_000));
    const leader = await c.leader();
    for (const m of c.nodes) {
      const acks = await Promise.allSettled(Array.from({ length: 100 }, () => m.log!.append(enc('after'))));
      expect(acks.filter((a) => a.status === 'rejected' && (a.reason as { code?: string }).code === 'OVERLOADED')).toEqual([]);
    }
    expect(leader.log!.status().role).toBe('leader');
    expect([...codes].filter((k) => !['APPEND_OUTCOME_UNKNOWN', 'APPEND_NOT_COMMITTED', 'OVERLOADED', 'TIMEOUT'].includes(k))).toEqual([]);
    await collect();
    expect(refs.filter((r) => r.deref() !== undefined).length).toBe(0);
  });

  it('a follower that catches up by snapshot, restarted 14 times (every other time while the snapshot is on its way), leaves no spool, extra snapshot file or resource', async () => {
    // A state machine whose snapshot is large enough to take a while to send, and costs nothing to make.
    const bulky = {
      apply: () => 0,
      snapshot: () => Buffer.alloc(4 << 20, 3),
      restore: async (d: AsyncIterable<Uint8Array>) => {
        for await (const chunk of d) void chunk;
      },
    };
    const c = (cluster = await churnCluster(3, { snapshotEvery: 20, snapshotCatchUpEntries: 0, stateMachine: bulky }));
    const leader = await c.leader();
    const follower = c.nodes.find((m) => m !== leader)!;
    const record = Buffer.alloc(1024, 1);
    census.start();
    let last = 0;
    const cycle = async (i: number): Promise<void> => {
      await c.stop(follower);
      for (let k = 0; k < 30; k++) last = (await leader.log!.append(record)).index;
      await waitFor('a snapshot past the follower', () => leader.log!.status().snapshotIndex >= last - 20);
      const log = await c.start(follower);
      if (i % 2 === 1) {
        await waitFor(`node ${follower.id} to catch up`, () => log.status().applied >= last, 15_000);
      } else {
        // Cut off as soon as the leader has begun sending it the snapshot.
        await waitFor(
          'the snapshot on its way',
          () =>
            log.status().applied >= last ||
            strayFiles(follower.dir).length > 0 ||
            leader.log!.status().progress?.[follower.id]?.state === ProgressStateType.ProgressStateSnapshot,
        );
      }
    };
    // The census is taken between transfers, not during one: a snapshot on its way holds its
    // file on the leader, the spool on the follower and the sockets between them.
    const settle = async (): Promise<void> => {
      await waitFor(
        'the snapshot to land',
        () =>
          follower.log!.status().applied >= last &&
          strayFiles(follower.dir).length === 0 &&
          leader.log!.status().progress?.[follower.id]?.state !== ProgressStateType.ProgressStateSnapshot,
        15_000,
      );
      await quiesce();
    };
    expect(await census.growth({ cycles: 14, warmUp: 4, cycle, settle })).toEqual({});
    await c.stop(follower);
    expect(strayFiles(follower.dir)).toEqual([]);
    for (const m of c.nodes) expect(snapshotFiles(m.dir).length).toBeLessThanOrEqual(2);
  });

  it('opens that fail (its peer port taken, its directory held by a running log), 30 of each, release every file, lock and timer they took', async () => {
    const c = (cluster = await churnCluster(2));
    const [running, stopped] = c.nodes as [ChurnNode, ChurnNode];
    await c.stop(stopped);
    // The stopped node's port, taken by something else (which drops what the running node dials).
    const squatter = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => squatter.listen(Number(stopped.address.split(':')[1]), '127.0.0.1', r));
    census.start();
    const codes = new Set<string>();
    const failing = (m: ChurnNode) => async (): Promise<void> => {
      await c.start(m).then(
        () => expect.unreachable('the open succeeded'),
        (err: { code?: string }) => void codes.add(err.code ?? '?'),
      );
    };
    const cycle = (i: number): Promise<void> => failing(i % 2 === 0 ? stopped : running)();
    expect(await census.growth({ cycles: 60, warmUp: 6, cycle })).toEqual({});
    expect([...codes].sort()).toEqual(['TRANSPORT_LISTEN_FAILED', 'WAL_LOCKED']);
    await new Promise<void>((r) => squatter.close(() => r()));
    // Nothing of the failed opens is in the way of one that can succeed.
    const log = await c.start(stopped);
    await waitFor('node 2 to follow', () => log.status().lead !== 0);
  });
});

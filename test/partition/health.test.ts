// /health of a node that is up and knows a leader, but cannot serve: the leader does not
// hear it, or it is stuck installing a snapshot. Knowing a leader is not enough to be healthy.
import { afterEach, describe, expect, it } from 'vitest';
import { serveAdmin, type AdminServer } from '../../src/admin/index.js';
import { appendInTurns, waitFor } from '../log/helpers.js';
import { testSeed } from '../seeded.js';
import { appendAll, proxiedCluster, type Cluster, type Member } from './cluster.js';

async function health(admin: AdminServer): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://${admin.address}/health`, { signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('/health of a node that knows a leader but cannot serve', () => {
  let c: Cluster | undefined;
  const admins: AdminServer[] = [];
  afterEach(async () => {
    for (const a of admins.splice(0)) await a.close();
    await c?.close();
    c = undefined;
  });

  const serve = async (m: Member): Promise<AdminServer> => {
    const a = await serveAdmin({ log: m.log as never, address: '127.0.0.1:0' });
    admins.push(a);
    return a;
  };

  it('a follower the leader cannot hear is 503 with a reason; the leader, which still has a majority, is healthy', async () => {
    c = await proxiedCluster(3, testSeed('health-mute-follower'));
    const leader = await c.leader();
    const follower = c.node([...c.members.keys()].find((id) => id !== leader.id)!);
    const [atLeader, atFollower] = [await serve(leader), await serve(follower)];
    await appendAll(leader, 'before-', 5);
    await waitFor('the follower to apply', () => follower.log.status().applied >= leader.log.status().commit);
    expect((await health(atFollower)).status).toBe(200);

    c.proxy.cut(follower.id, leader.id);
    await appendAll(leader, 'mute-', 10);
    // It still hears the leader's heartbeats, so it still names it.
    expect(follower.log.status().lead).toBe(leader.id);
    const h = await health(atFollower);
    expect(h.status).toBe(503);
    expect(h.body).toMatchObject({ health: false, reason: 'TIMEOUT' });
    expect(h.body.message).toEqual(expect.any(String));
    expect((await health(atLeader)).status).toBe(200);

    c.proxy.heal();
    let after = 0;
    for (let i = 0; i < 20 && after !== 200; i++) after = (await health(atFollower)).status;
    expect(after).toBe(200);
  });

  it('a follower whose snapshot install never ends is 503', async () => {
    c = await proxiedCluster(3, testSeed('health-stuck-restore'), { snapshotEvery: 20, snapshotCatchUpEntries: 0 });
    const leader = await c.leader();
    const behind = c.node([...c.members.keys()].find((id) => id !== leader.id)!);
    const atBehind = await serve(behind);
    // Reset, not held: nothing sent meanwhile reaches it after the heal, so it needs the snapshot.
    c.proxy.isolate(behind.id, 'reset');
    await appendInTurns(leader.log, 'while-away-', 60);
    await waitFor('a snapshot on the leader', () => leader.log.status().snapshotIndex > 0);
    const snapshotIndex = leader.log.status().snapshotIndex;
    // Its state machine takes the snapshot and never finishes with it.
    behind.sm.restore = () => new Promise<void>(() => undefined);
    c.proxy.heal();
    await waitFor(
      'the follower to hear the leader and take its snapshot',
      () => behind.log.status().lead === leader.id && behind.log.status().snapshotIndex >= snapshotIndex,
      20_000,
    );
    expect(behind.log.status().applied).toBeLessThan(snapshotIndex);
    const h = await health(atBehind);
    expect(h.status).toBe(503);
    expect(h.body).toMatchObject({ health: false, reason: 'TIMEOUT' });
  });
});

// A bridge: one node sees both halves of the cluster, the halves do not see each
// other. The leader's half plus the bridge is a majority, so the cluster keeps
// committing; the far half cannot elect (pre-vote: the bridge still hears a
// leader and refuses), and catches up after the heal.
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../log/helpers.js';
import { testSeed } from '../seeded.js';
import { appendAll, assertNoLoss, attempt, proxiedCluster, type Ack, type Cluster } from './cluster.js';

describe('a bridge partition', () => {
  let c: Cluster | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
  });

  for (const [n, near, bridge, far] of [
    [3, [1], 2, [3]],
    [5, [1, 2], 3, [4, 5]],
  ] as const) {
    it(`${n} nodes, ${near.join(',')} | ${bridge} | ${far.join(',')}: the leader's side commits through the bridge, the far side neither leads nor loses anything`, async () => {
      c = await proxiedCluster(n, testSeed(`bridge ${n}`));
      const first = await c.leader();
      const leader = c.node(near[0]!);
      if (first.id !== leader.id) await first.log.transferLeadership(leader.id);
      await waitFor(`node ${leader.id} to lead`, () => leader.log.status().role === 'leader');
      const acked: Ack[] = [...(await appendAll(leader, 'before-', 10))];
      const term = leader.log.status().term;

      for (const a of near)
        for (const b of far) {
          c.proxy.cut(a, b);
          c.proxy.cut(b, a);
        }

      acked.push(...(await appendAll(leader, 'leader-', 30)));
      acked.push(...(await appendAll(c.node(bridge), 'bridge-', 10)));
      // The far side lost the leader: its nodes stop answering for it (NO_LEADER), and none of them takes over.
      for (const id of far) {
        const m = c.node(id);
        await waitFor(`node ${id} to give up on the leader`, () => m.log.status().lead === 0);
        const r = await attempt(m, `far-${id}`);
        expect(r).toMatchObject({ ok: false, code: 'NO_LEADER' });
      }
      expect(leader.log.status()).toMatchObject({ role: 'leader', term });
      for (const id of far) expect(c.node(id).log.status().role).not.toBe('leader');

      c.proxy.heal();
      await assertNoLoss(
        c,
        acked,
        far.map((id) => `far-${id}`),
      );
      expect(leader.log.status().term).toBe(term);
    });
  }
});

// One-way cuts: a follower that cannot hear the leader, and a leader that cannot
// hear a follower. Either way the leader keeps a majority and keeps committing,
// the cut follower does not depose it, and after the heal it holds everything.
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../log/helpers.js';
import { testSeed } from '../seeded.js';
import { allApplied, appendAll, assertNoLoss, proxiedCluster, type Ack, type Cluster } from './cluster.js';

describe('a one-way cut', () => {
  let c: Cluster | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
  });

  it('3 nodes: leader -> follower cut, then follower -> leader cut: commits go on, the leader stays, the follower catches up', async () => {
    c = await proxiedCluster(3, testSeed('one-way'));
    const leader = await c.leader();
    const term = leader.log.status().term;
    const follower = c.node([...c.members.keys()].find((id) => id !== leader.id)!);
    const acked: Ack[] = [...(await appendAll(leader, 'before-', 10))];

    // The follower hears nothing from the leader; the leader still hears the follower.
    c.proxy.cut(leader.id, follower.id);
    acked.push(...(await appendAll(leader, 'deaf-follower-', 30)));
    // It campaigns (pre-vote) and is refused: the others hear a live leader.
    await waitFor('the cut follower to lose the leader', () => follower.log.status().lead === 0);
    acked.push(...(await appendAll(leader, 'still-', 10)));
    expect(leader.log.status()).toMatchObject({ role: 'leader', term });
    expect(follower.log.status().applied).toBeLessThan(acked[acked.length - 1]!.index);
    c.proxy.heal();
    await allApplied(c, acked[acked.length - 1]!.index);

    // Now the leader hears nothing from the follower; the follower still hears the leader.
    c.proxy.cut(follower.id, leader.id);
    acked.push(...(await appendAll(leader, 'mute-follower-', 30)));
    expect(leader.log.status()).toMatchObject({ role: 'leader', term });
    c.proxy.heal();
    await assertNoLoss(c, acked);
    expect(leader.log.status()).toMatchObject({ role: 'leader', term });
  });
});

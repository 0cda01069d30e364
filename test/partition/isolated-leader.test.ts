// The leader is cut off from every other node (its connections held open, as a
// real partition would): the others elect a new leader and commit; what the old
// leader was asked never succeeds; after the heal it has every committed record.
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../log/helpers.js';
import { testSeed } from '../seeded.js';
import { allApplied, appendAll, assertNoLoss, attempt, proxiedCluster, type Ack, type Cluster } from './cluster.js';

/** Waits until each of `ids` names `leader` as its leader. */
function everyoneFollows(c: Cluster, ids: number[], leader: number): Promise<void> {
  return waitFor(`nodes ${ids.join(',')} to follow ${leader}`, () => ids.every((id) => c.node(id).log.status().lead === leader), 20_000);
}

describe('an isolated leader', () => {
  let c: Cluster | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
  });

  for (const n of [3, 5]) {
    for (const mode of ['hold', 'reset'] as const) {
      it(`${n} nodes, ${mode} cut: the majority elects and commits; the old leader's appends fail; after the heal it has everything`, async () => {
        c = await proxiedCluster(n, testSeed(`isolated leader ${n} ${mode}`));
        const old = await c.leader();
        // Appends made before every node follows it may meet a second election of the start.
        await everyoneFollows(c, [...c.members.keys()], old.id);
        const acked: Ack[] = [...(await appendAll(old, 'before-', 20))];
        const oldTerm = old.log.status().term;

        c.proxy.isolate(old.id, mode);
        // Asked of the old leader after the cut: it cannot commit them.
        const orphans = Array.from({ length: 5 }, (_, i) => attempt(old, `orphan-${i}`));
        const rest = [...c.members.keys()].filter((id) => id !== old.id);
        const next = await c.leader({ among: rest, minTerm: oldTerm + 1 });
        await everyoneFollows(c, rest, next.id);
        acked.push(...(await appendAll(next, 'majority-', 30)));
        const follower = c.node(rest.find((id) => id !== next.id)!);
        acked.push(...(await appendAll(follower, 'via-follower-', 10)));

        // The old leader notices (check-quorum) and stops leading; appends made on it now
        // end with NO_LEADER once it has been leaderless for two election timeouts.
        await waitFor('the old leader to step down', () => old.log.status().role !== 'leader');
        const late = await attempt(old, 'late');
        expect(late).toMatchObject({ ok: false, code: 'NO_LEADER' });
        const settled = await Promise.all(orphans);
        for (const o of settled) {
          // Proposed while it still led: the node cannot know whether they commit, and says so.
          expect(o.ok, `orphan ${o.ok ? o.ack.data : o.data} must not succeed`).toBe(false);
          if (!o.ok) expect(['APPEND_OUTCOME_UNKNOWN', 'NO_LEADER']).toContain(o.code);
        }
        expect(old.log.status().term).toBe(oldTerm);

        c.proxy.heal();
        const { upTo } = await assertNoLoss(c, acked, ['late', ...settled.map((o) => (o.ok ? '' : o.data))]);
        expect(old.log.status().term).toBeGreaterThan(oldTerm);
        // The healed node takes part again: an append made on it commits.
        const after = await attempt(old, 'after-heal');
        expect(after.ok).toBe(true);
        if (after.ok) {
          expect(after.ack.index).toBeGreaterThan(upTo);
          await allApplied(c, after.ack.index);
        }
      });
    }
  }
});

// A seeded schedule of partitions (isolations, splits, bridges, one-way cuts,
// resets, slow links) while clients append on every node. After the last heal
// every acknowledged record must be at its acknowledged index in every node's
// committed stream, and no record whose append said "not committed" may be there.
import { afterEach, describe, expect, it } from 'vitest';
import { seeded, testSeed } from '../seeded.js';
import { assertNoLoss, attempt, describe as describeCluster, proxiedCluster, type Ack, type Cluster, type Outcome } from './cluster.js';

const ROUNDS = 6;
const APPENDS_PER_ROUND = 30;
/** Failures that leave a record's fate open or promise it was not committed; anything else is a bug. */
const EXPECTED = new Set(['APPEND_OUTCOME_UNKNOWN', 'APPEND_NOT_COMMITTED', 'NO_LEADER']);
const NOT_COMMITTED = new Set(['APPEND_NOT_COMMITTED', 'NO_LEADER']);

describe('no acknowledged append is lost across partitions', () => {
  let c: Cluster | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
  });

  for (const n of [3, 5]) {
    it(`${n} nodes, ${ROUNDS} seeded rounds of faults under load`, async () => {
      const seed = testSeed(`no-loss ${n}`);
      const rnd = seeded(seed ^ 0x5eed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
      // Short timeouts: an append stuck behind a cut settles soon, and the round moves on.
      c = await proxiedCluster(n, seed, { timeoutMs: 3_000 });
      await c.leader();
      const ids = [...c.members.keys()];
      const outcomes: Outcome[] = [];
      const faults: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const leader = ids.find((id) => c!.node(id).log.status().role === 'leader') ?? pick(ids);
        const other = pick(ids.filter((id) => id !== leader));
        const kind = pick(['isolate-leader', 'isolate-follower', 'split', 'bridge', 'one-way', 'reset', 'slow'] as const);
        switch (kind) {
          case 'isolate-leader':
            c.proxy.isolate(leader);
            break;
          case 'isolate-follower':
            c.proxy.isolate(other);
            break;
          case 'split': {
            const shuffled = [...ids].sort(() => rnd() - 0.5);
            const cut = 1 + Math.floor(rnd() * (n - 1));
            c.proxy.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
            break;
          }
          case 'bridge': {
            const rest = ids.filter((id) => id !== other);
            const half = rest.slice(0, rest.length >> 1);
            for (const a of half)
              for (const b of rest.filter((x) => !half.includes(x))) {
                c.proxy.cut(a, b);
                c.proxy.cut(b, a);
              }
            break;
          }
          case 'one-way':
            if (rnd() < 0.5) c.proxy.cut(leader, other);
            else c.proxy.cut(other, leader);
            break;
          case 'reset':
            c.proxy.isolate(pick(ids), 'reset');
            break;
          case 'slow':
            for (const id of ids) if (id !== other) c.proxy.delay(id, other, 30, 40);
            break;
        }
        faults.push(`${kind}(leader ${leader}, other ${other})`);
        const batch = Array.from({ length: APPENDS_PER_ROUND }, (_, i) => attempt(c!.node(pick(ids)), `r${round}-${i}`));
        outcomes.push(...(await Promise.all(batch)));
        c.proxy.heal();
        // Back to a working cluster before the next fault: a fresh append commits. The first
        // leader found may be one the heal is about to depose (its append then fails, as it
        // may); a client tries again.
        let fresh: Outcome | undefined;
        for (let k = 0; k < 20 && fresh?.ok !== true; k++) {
          fresh = await attempt(await c.leader(), `fresh-${round}-${k}`);
          outcomes.push(fresh);
        }
        expect(fresh?.ok, `round ${round} (${kind}): no fresh append committed after the heal (${describeCluster(c)})`).toBe(true);
      }
      const acked: Ack[] = outcomes.flatMap((o) => (o.ok ? [o.ack] : []));
      const failed = outcomes.flatMap((o) => (o.ok ? [] : [o]));
      for (const f of failed) expect(EXPECTED, `append ${f.data} failed with ${f.code}`).toContain(f.code);
      const never = failed.filter((f) => NOT_COMMITTED.has(f.code)).map((f) => f.data);
      await assertNoLoss(c, acked, never);
      console.log(`no-loss ${n} nodes: ${faults.join(', ')}; ${acked.length} acknowledged, ${failed.length} failed (${never.length} not committed)`);
      expect(acked.length).toBeGreaterThan(ROUNDS * 5);
    });
  }
});

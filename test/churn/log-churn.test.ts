// Churn at the level of the replicated log: leadership moving, followers restarting,
// members coming and going, requests that time out. What each cycle took must be given
// back, whatever the cycle ends in.
import { afterEach, describe, expect, it } from 'vitest';
import { churnCluster, collect, type ChurnCluster } from './cluster.js';

let cluster: ChurnCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe('log churn', () => {
  it('leadership transfers that time out (to a voter that is down) are let go once they have been answered', async () => {
    const c = (cluster = await churnCluster(3, { timeoutMs: 300 }));
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
});

// The real ReplicatedLog changing membership through a joint configuration
// (two nodes in, two out, the leader among them at times) while clients append,
// under crashes, partitions and disk faults: nothing acknowledged is lost, every
// node applies one sequence, and the cluster recovers.
import { describe, expect, it } from 'vitest';
import { replayCommand, runSimulation } from './simulation.js';

describe('ReplicatedLog in the simulator: joint membership changes', () => {
  for (const [nodes, seeds] of [
    [3, 30],
    [5, 15],
  ] as const) {
    it(`${nodes} nodes, seeds 1..${seeds}: add two and remove two at once under faults`, async () => {
      const failed: string[] = [];
      let completed = 0;
      let acked = 0;
      for (let seed = 1; seed <= seeds; seed++) {
        const r = await runSimulation({ seed, nodes, jointMembership: true });
        // Two nodes leave when the change completes: one membership change counted for it, one per leaving node.
        if (r.stats.membershipChanges >= 3) completed++;
        acked += r.stats.acked;
        if (!r.ok) failed.push(`seed ${seed}: ${r.violations.slice(0, 2).join(' / ')} -- replay: ${replayCommand(seed, nodes)} --joint`);
      }
      expect(failed).toEqual([]);
      expect(completed).toBeGreaterThan(seeds / 2); // most runs completed the joint change under the faults
      expect(acked).toBeGreaterThan(seeds * 50);
    }, 170_000);
  }
});

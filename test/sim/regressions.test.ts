// Seeds on which the simulator once found a bug in the core (see the write-ups
// in the project's coordination notes, mirrored in each entry). Each must now
// pass every invariant. A seed names a trajectory of THIS simulator: if the
// simulator's use of randomness changes, the seed replays a different run, so
// every bug also has a scripted test next to the core (test/raft).
import { describe, expect, it } from 'vitest';
import { SimFailure, Simulation, replayCommand } from './simulation.js';

const cases: { nodes: number; seed: number; steps: number; bug: string }[] = [
  { nodes: 3, seed: 90, steps: 1500, bug: 'forwarded MsgTransferLeader naming the leader itself was rejected by step()' },
  { nodes: 3, seed: 31, steps: 5000, bug: 'a forwarded MsgProp bouncing back to its origin (now leader) was rejected by step()' },
  { nodes: 3, seed: 196, steps: 5000, bug: 'a forwarded MsgProp bouncing back to its origin (now leader) was rejected by step()' },
  { nodes: 5, seed: 82, steps: 5000, bug: 'a forwarded MsgProp bouncing back to its origin (now leader) was rejected by step()' },
];

describe('simulator regressions', () => {
  for (const c of cases) {
    it(`${replayCommand(c)}: ${c.bug}`, () => {
      let failure: string | undefined;
      try {
        const r = new Simulation(c).run();
        expect(r.steps).toBeGreaterThanOrEqual(c.steps);
      } catch (err) {
        if (!(err instanceof SimFailure)) throw err;
        failure = err.message;
      }
      expect(failure).toBeUndefined();
    });
  }
});

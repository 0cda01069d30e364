// Seeds on which the simulator found a bug in the core; each was checked to
// fail against the core as it was before the fix, and must now pass every
// invariant. A seed names a trajectory of THIS simulator: when the simulator's
// use of randomness changes, re-derive them (`git archive <pre-fix commit>` into
// a scratch tree, copy test/sim over it, `npm run sim -- --seeds N --keep-going`
// there). Every bug also has a scripted test next to the core that does not depend on the simulator's draws,
// and fails when its fix is reverted:
//   bug 1: test/raft/client.test.ts 'a stale forward that names the receiving leader as transferee is accepted
//          as a no-op' (step() refused a MsgTransferLeader from the node itself, which a follower forwards when
//          it asks to transfer to the leader; the rule: forwarded requests keep their origin as sender).
//   bug 2: test/raft/client.test.ts 'a forwarded proposal that bounces back to its origin, now leader, is
//          appended' (same rule, for MsgProp).
//   bug 3: test/raft/client.test.ts 'lease: a stale leader cut off by a partition serves no stale read' (the
//          lease counts only heartbeats answered within electionTimeout - 1 ticks) and
//          test/raft/lease-timeout-now.test.ts (no lease read after MsgTimeoutNow went out in the term).
//   bug 7: test/raft/stale-acks.test.ts 'drops the ack of an append that a later append in the same Ready
//          truncated' (an ack carries the acked entry's term and is dropped when the log no longer holds it).
//   bug 8: test/raft/election.test.ts 'a refused vote request of a later term leaves the election timer
//          running; a granted one restarts it' (Raft restarts the timer on a granted vote, not a refused one).
//   bug 9: test/raft/joint.test.ts 'a removed leader whose hand-off was cut off campaigns to finish it when
//          the new voters still need its vote' (a node outside its configuration never campaigned).
//   bug 10: test/raft/removed-peers.test.ts 'leader traffic of an earlier term from an unknown id is answered
//          with this node's term and changes nothing' (it was refused, so a node whose term ran ahead never told
//          a leader added after its configuration, and with CheckQuorum nobody answered its vote requests).
//   bug 11: test/raft/removed-peers.test.ts 'a learner hears a leader of a later term that it does not know,
//          though it still knows its old leader' (a learner never campaigns, so it never forgot its old leader).
//   bug 12: test/raft/joint.test.ts 'a removed leader restarted after its hand-off was cut off tells the new
//          voters, as it refuses their votes, that the change committed' (a restart forgot the hand-off, and the
//          node, outside its configuration, never campaigned; now a refused vote carries the commit index).
//   bug 13: test/raft/membership.test.ts 'a learner whose term ran ahead tells the leader of an earlier term,
//          having no campaign to do it' (without CheckQuorum or PreVote it ignored that leader for good).
//   bug 14: test/raft/election.test.ts 'a vote request of an earlier term is refused with this node's term, so a
//          candidate that nobody else asks for votes learns it' (a stale vote request went unanswered).
import { describe, expect, it } from 'vitest';
import { SimFailure, Simulation, replayCommand } from './simulation.js';

const cases: { nodes: number; seed: number; steps: number; lease?: boolean; joint?: boolean; swarm?: boolean; bug: string }[] = [
  // Bug 1: fail against the core before 0990782.
  { nodes: 3, seed: 25, steps: 5000, bug: 'forwarded MsgTransferLeader naming the leader itself was rejected by step()' },
  { nodes: 5, seed: 29, steps: 5000, bug: 'forwarded MsgTransferLeader naming the leader itself was rejected by step()' },
  // Bug 2: fail against the core before b320df1.
  { nodes: 3, seed: 168, steps: 5000, bug: 'a forwarded MsgProp bouncing back to its origin (now leader) was rejected by step()' },
  { nodes: 5, seed: 135, steps: 5000, bug: 'a forwarded MsgProp bouncing back to its origin (now leader) was rejected by step()' },
  // Bug 3: fail against the core before 6ffd3d4 (lease reads served by a deposed leader).
  { nodes: 3, seed: 327, steps: 5000, lease: true, bug: 'a partitioned leader served a stale lease read' },
  { nodes: 5, seed: 61, steps: 5000, lease: true, bug: 'a partitioned leader served a stale lease read' },
  // Bug 7: fails against the core before 8e6c60f.
  { nodes: 5, seed: 300039, steps: 6000, bug: 'a follower acknowledged entries that a later append in the same Ready truncated' },
  // Bug 8: fails against the core before the refused vote kept the election timer.
  {
    nodes: 3,
    seed: 500880,
    steps: 5000,
    joint: true,
    bug: 'candidates that could not win (logs behind) restarted the timer of the only node that could, in a joint configuration without PreVote',
  },
  // Bug 9: fails against the core before a removed leader could campaign to finish its hand-off.
  {
    nodes: 3,
    seed: 510794,
    steps: 5000,
    joint: true,
    bug: "a removed leader's hand-off ended unfinished; the new voters, still joint, needed its vote, and it never campaigned",
  },
  // Bug 10: fails against the core before unknown leaders of an earlier term were answered.
  {
    nodes: 5,
    seed: 810916,
    steps: 5000,
    swarm: true,
    bug: 'a candidate whose term ran ahead refused the heartbeats of a leader its configuration predated, and was never answered',
  },
  // Bug 11: fails against the core before a learner heard an unknown leader of a later term.
  { nodes: 5, seed: 811129, steps: 5000, swarm: true, bug: 'a learner kept the leader it knew and refused the one elected since' },
  // Bug 12: fail against the core before a refused vote told the candidate how far its log is committed.
  {
    nodes: 3,
    seed: 8102493,
    steps: 5000,
    joint: true,
    swarm: true,
    bug: 'a removed leader restarted after its transferee cut its hand-off off; the new voters, still joint, needed its vote, and it never campaigned',
  },
  {
    nodes: 3,
    seed: 8102527,
    steps: 5000,
    joint: true,
    swarm: true,
    bug: 'a removed leader restarted after its transferee cut its hand-off off; the new voters, still joint, needed its vote, and it never campaigned',
  },
  // Bug 13: fails against the core before a learner answered a leader of an earlier term without CheckQuorum.
  {
    nodes: 5,
    seed: 9401961,
    steps: 5000,
    joint: true,
    swarm: true,
    bug: "a removed voter's vote requests raised a learner's term above the leader's, and the learner ignored that leader for good",
  },
  // Bug 14: fails against the core before a vote request of an earlier term was answered.
  {
    nodes: 3,
    seed: 9407033,
    steps: 5000,
    joint: true,
    swarm: true,
    bug: 'a node that saw the one electable candidate as a learner never asked it for votes nor answered its stale ones, and no term reached both',
  },
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

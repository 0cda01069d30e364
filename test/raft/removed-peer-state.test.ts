// A leader that adds and removes members for as long as it leads, each a new id (a cluster whose
// machines are replaced, one after another), holds per-peer state for the members it has now only.
import { describe, expect, it } from 'vitest';
import { Network } from './network.js';
import { ConfChangeType } from '../../src/raft/types.js';

/** The peers the leader's raft keeps a heartbeat slot for. */
const heartbeatSlots = (net: Network, id: number): number[] =>
  [...(net.node(id) as unknown as { raft: { heartbeatAt: Map<number, number> } }).raft.heartbeatAt.keys()].sort((a, b) => a - b);

describe('per-peer state of removed members', () => {
  it('a leader that adds and removes 200 learners in one term keeps heartbeat slots for its members only', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const term = net.node(1).status().term;
    for (let i = 0; i < 200; i++) {
      const id = 100 + i;
      net.node(1).proposeConfChange({ type: ConfChangeType.AddLearnerNode, nodeId: id });
      net.stabilize();
      net.tickAll(2); // a heartbeat goes to every member, the learner included (it is not on the network)
      expect(heartbeatSlots(net, 1)).toContain(id);
      net.node(1).proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: id });
      net.stabilize();
      expect(net.node(1).status().conf.learners).toEqual([]);
    }
    net.tickAll(2);
    expect(net.node(1).status().term).toBe(term); // one term throughout: nothing reset the leader
    expect(heartbeatSlots(net, 1)).toEqual([2, 3]);
  });
});

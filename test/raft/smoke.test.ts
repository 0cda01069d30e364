import { describe, expect, it } from 'vitest';
import { Network } from './network.js';
import { StateType } from '../../src/raft/types.js';

describe('smoke', () => {
  it('elects a leader and replicates in a 3-node cluster', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    expect(net.node(1).status().state).toBe(StateType.StateLeader);
    net.propose(1, 'a', 'b');
    net.propose(2, 'c');
    for (const id of [1, 2, 3]) expect(net.peer(id).applied).toEqual(['a', 'b', 'c']);
  });
  it('a single node elects itself and commits', () => {
    const net = new Network([1]);
    net.campaign(1);
    net.propose(1, 'x');
    expect(net.peer(1).applied).toEqual(['x']);
  });
});

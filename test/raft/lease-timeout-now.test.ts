// Regression (core simulator, lease seeds 327 and 61: a partitioned leader served a stale lease read).
// A leader that sent MsgTimeoutNow has handed its term's lease away: the transferee campaigns past the
// followers' lease at once, so a new leader may commit writes while the old one's lease still looks valid
// by its own clock. From then on, in that term, the old leader serves no read from its lease.
import { describe, expect, it } from 'vitest';
import { Network, enc } from './network.js';
import { MessageType, type ReadState } from '../../src/raft/types.js';

function readsOf(net: Network, id: number): ReadState[] {
  const out: ReadState[] = [];
  for (let round = 0; round < 100; round++) {
    const rd = net.handleReady(id);
    if (rd === undefined && !net.deliverOne()) break;
    if (rd !== undefined) out.push(...rd.readStates);
  }
  return out;
}

describe('lease reads after MsgTimeoutNow', () => {
  it('within its lease by the clock, a leader that sent MsgTimeoutNow serves no lease read', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, readOnlyOption: 'lease' });
    net.campaign(1);
    net.tickAll(1); // a heartbeat round: the lease runs from here
    let timeoutNow = 0;
    net.addFilter((m) => {
      if (m.type === MessageType.MsgTimeoutNow) timeoutNow++;
      return m.type === MessageType.MsgTimeoutNow; // lost on the way: node 1 still leads
    });
    net.node(1).transferLeader(2);
    net.stabilize();
    expect(timeoutNow).toBe(1);
    net.isolate(1);
    net.node(1).readIndex(enc('stale?'));
    expect(readsOf(net, 1)).toEqual([]);
  });

  it('the same read without a transfer is served from the lease (the test above can fail)', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true, readOnlyOption: 'lease' });
    net.campaign(1);
    net.tickAll(1);
    net.isolate(1);
    net.node(1).readIndex(enc('fresh'));
    expect(readsOf(net, 1).length).toBe(1);
  });
});

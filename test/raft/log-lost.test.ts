// A follower that lost its stored log (a wiped or replaced data directory) hears from
// the leader of entries it acknowledged and no longer holds. Raft's safety rests on
// what a node acknowledged staying durable: a node that forgot it could vote a leader
// in without the entries it helped commit. It must stop and say so, and the leader
// must not flood it with probes meanwhile.
import { describe, expect, it } from 'vitest';
import { LogLostError, MemoryStorage } from '../../src/raft/index.js';
import { MessageType } from '../../src/raft/types.js';
import { Network, msg, newNode } from './network.js';

describe('a follower whose log was lost', () => {
  it('refuses a heartbeat beyond its log with RAFT_LOG_LOST, changing nothing', () => {
    const node = newNode(3, MemoryStorage.withConf([1, 2, 3]));
    const before = node.status();
    let thrown: unknown;
    try {
      node.step(msg({ type: MessageType.MsgHeartbeat, from: 1, to: 3, term: 2, commit: 6 }));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(LogLostError);
    expect(thrown).toMatchObject({ code: 'RAFT_LOG_LOST', leader: 1, acknowledged: 6, lastIndex: 0 });
    // Not even the leader's term was taken.
    expect(node.status()).toEqual(before);
    expect(node.hasReady()).toBe(false);
  });

  it('takes a heartbeat within its log, from the leader of any term, as before', () => {
    const node = newNode(3, MemoryStorage.withConf([1, 2, 3]));
    node.step(msg({ type: MessageType.MsgHeartbeat, from: 1, to: 3, term: 2, commit: 0 }));
    expect(node.status()).toMatchObject({ term: 2, lead: 1 });
  });

  it('is not probed again at once when it refuses the entry it acknowledged', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a', 'b', 'c');
    net.stabilize();
    const match = net.peer(1).storage.lastIndex();
    expect(net.peer(3).storage.lastIndex()).toBe(match);
    // Node 3 comes back with nothing; the leader learns it went away and probes it.
    const wiped = net.log.length;
    net.addPeer(3, MemoryStorage.withConf([1, 2, 3]));
    net.node(1).reportUnreachable(3);
    net.propose(1, 'd');
    net.stabilize();
    const since = net.log.slice(wiped);
    const probes = since.filter((m) => m.type === MessageType.MsgApp && m.to === 3);
    const refusals = since.filter((m) => m.type === MessageType.MsgAppResp && m.from === 3 && m.reject);
    // One refusal at the entry it acknowledged, and the leader waits; before, each refusal
    // brought the same probe back at once, without end.
    expect(refusals.map((m) => m.index)).toEqual([match]);
    expect(probes.map((m) => m.index)).toEqual([match]);
    expect(net.peer(1).node.status().progress?.[3]).toMatchObject({ match, next: match + 1 });
  });
});

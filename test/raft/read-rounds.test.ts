// A quorum's answer to a heartbeat round confirms every read the leader took before
// that round went out, so the reads a leader takes before its next Ready share one
// round: one heartbeat per peer, carrying the latest read's context.
import { describe, expect, it } from 'vitest';
import { Network, collectReadies, uncommittedLeader, enc, dec, msg } from './network.js';
import { MessageType, type Message, type Ready } from '../../src/raft/types.js';

const isHeartbeat = (m: Message) => m.type === MessageType.MsgHeartbeat;

/** Heartbeats of `rd` as "to:context" ("-" for none). */
const heartbeats = (rd: Ready) => rd.messages.filter(isHeartbeat).map((m) => `${m.to}:${m.context === undefined ? '-' : dec(m.context)}`);

/** Takes the heartbeats out of the network's queue, undelivered. */
function holdHeartbeats(net: Network): Message[] {
  const held = net.queue.filter(isHeartbeat);
  net.queue = net.queue.filter((m) => !isHeartbeat(m));
  return held;
}

/** What the leader `id` answered in `readies`, as "asker:context@index". */
function answers(readies: Ready[], id: number): string[] {
  const out: string[] = [];
  for (const rd of readies) {
    for (const r of rd.readStates) out.push(`${id}:${dec(r.context)}@${r.index}`);
    for (const m of rd.messages) if (m.type === MessageType.MsgReadIndexResp && !m.reject) out.push(`${m.to}:${dec(m.context!)}@${m.index}`);
  }
  return out.sort();
}

describe('reads share heartbeat rounds', () => {
  it('a new leader releases the reads it held until its first commit of the term with one heartbeat per peer', () => {
    const net = uncommittedLeader();
    const leader = net.node(2);
    const forwarded = (from: number, ctx: string) => msg({ type: MessageType.MsgReadIndex, from, to: 2, context: enc(ctx) });
    leader.readIndex(enc('own-0'));
    leader.step(forwarded(1, 'from-1'));
    leader.readIndex(enc('own-1'));
    leader.step(forwarded(3, 'from-3'));
    leader.readIndex(enc('own-2'));
    // Held: nothing goes out for them yet.
    expect(collectReadies(net, 2).flatMap(heartbeats)).toEqual([]);
    net.heal();
    // Follower 1 acknowledges the leader's entry of its term: it commits.
    const lastIndex = leader.status().commit + 1;
    leader.step(msg({ type: MessageType.MsgAppResp, from: 1, to: 2, term: leader.status().term, index: lastIndex }));
    expect(leader.status().commit).toBe(lastIndex);
    const rd = net.handleReady(2)!;
    expect(heartbeats(rd)).toEqual(['1:own-2', '3:own-2']);
    const readies = [rd, ...collectReadies(net, 2)];
    // That one round answered all five, each at the commit index the leader released them at.
    expect(readies.slice(1).flatMap(heartbeats)).toEqual([]);
    expect(answers(readies, 2)).toEqual([
      `1:from-1@${lastIndex}`,
      `2:own-0@${lastIndex}`,
      `2:own-1@${lastIndex}`,
      `2:own-2@${lastIndex}`,
      `3:from-3@${lastIndex}`,
    ]);
  });

  it('two reads taken before one Ready cost one heartbeat per peer, and both are confirmed', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'a');
    const leader = net.node(1);
    leader.step(msg({ type: MessageType.MsgReadIndex, from: 3, to: 1, context: enc('from-3') }));
    leader.readIndex(enc('own'));
    const rd = net.handleReady(1)!;
    expect(heartbeats(rd)).toEqual(['2:own', '3:own']);
    expect(answers([rd, ...collectReadies(net, 1)], 1)).toEqual(['1:own@2', '3:from-3@2']);
  });

  it("the periodic beat and a read's round in one Ready are one heartbeat, carrying the read and the later commit index", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const leader = net.node(1);
    leader.propose([enc('x')]);
    net.handleReady(1);
    // The followers take the entry; their acknowledgements wait in the queue.
    while (net.deliverOne());
    net.handleReady(2);
    net.handleReady(3);
    const acks = net.queue.splice(0);
    expect(acks.map((m) => m.type)).toEqual([MessageType.MsgAppResp, MessageType.MsgAppResp]);
    leader.tick(); // the periodic beat: commit 1
    for (const m of acks) leader.step(m); // commit 2
    leader.readIndex(enc('r'));
    const rd = net.handleReady(1)!;
    const hb = rd.messages.filter(isHeartbeat);
    expect(hb.map((m) => [m.to, m.commit, dec(m.context!)])).toEqual([
      [2, 2, 'r'],
      [3, 2, 'r'],
    ]);
    expect(answers([rd, ...collectReadies(net, 1)], 1)).toEqual(['1:r@2']);
  });

  it('an answer carrying an older round releases only the reads taken before that round', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.propose(1, 'x');
    const leader = net.node(1);
    leader.readIndex(enc('a'));
    expect(heartbeats(net.handleReady(1)!)).toEqual(['2:a', '3:a']);
    const roundA = holdHeartbeats(net);
    net.propose(1, 'y');
    expect(holdHeartbeats(net)).toEqual([]);
    leader.readIndex(enc('b'));
    leader.readIndex(enc('c'));
    expect(heartbeats(net.handleReady(1)!)).toEqual(['2:c', '3:c']);
    const roundC = holdHeartbeats(net);
    const deliver = (m: Message) => {
      net.queue.push(m);
      return answers(collectReadies(net, 1), 1);
    };
    expect(deliver(roundA[0]!)).toEqual(['1:a@2']);
    expect(deliver(roundC[1]!)).toEqual(['1:b@3', '1:c@3']);
    // Late answers to either round change nothing.
    expect(deliver(roundA[1]!)).toEqual([]);
    expect(deliver(roundC[0]!)).toEqual([]);
  });
});

// A leader without a quorum's answers holds the reads it was asked for: each waits for a
// heartbeat round a quorum acknowledges. Local callers and forwarding followers may ask at
// any rate, so the reads it holds are bounded, and one past the bound is refused with a code.
import { describe, expect, it } from 'vitest';
import { Network, collectReadies, collectReads, uncommittedLeader, enc, dec, msg } from './network.js';
import { MessageType } from '../../src/raft/types.js';
import { InvalidMessageError, ReadIndexDroppedError } from '../../src/raft/index.js';
import { MAX_PENDING_READS } from '../../src/raft/read-only.js';

function refusal(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof ReadIndexDroppedError) return `${e.code} ${e.reason}`;
    throw e;
  }
  return undefined;
}

/** The contexts of the reads `leader` refused to the followers that forwarded them, since last asked. */
function refusedToFollowers(net: Network, leader: number): string[] {
  const out: string[] = [];
  while (net.node(leader).hasReady()) {
    for (const m of net.handleReady(leader)!.messages) if (m.type === MessageType.MsgReadIndexResp && m.reject) out.push(`${m.to}:${dec(m.context!)}`);
  }
  return out;
}

const forwarded = (from: number, ctx: string) => msg({ type: MessageType.MsgReadIndex, from, to: 1, context: enc(ctx) });

describe('reads a leader holds are bounded', () => {
  it('a leader cut off from its quorum refuses reads past the bound, and serves those it holds once the quorum answers', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(1);
    const leader = net.node(1);
    for (let i = 0; i < MAX_PENDING_READS; i++) {
      if (i % 2 === 0) leader.readIndex(enc(`l${i}`));
      else leader.step(forwarded(2, `f${i}`));
    }
    expect(refusedToFollowers(net, 1)).toEqual([]);
    expect(refusal(() => leader.readIndex(enc('one-too-many')))).toBe('RAFT_READ_INDEX_DROPPED too-many-pending');
    // A follower's read is refused by an answer, to the follower that asked.
    leader.step(forwarded(3, 'one-too-many'));
    expect(refusedToFollowers(net, 1)).toEqual(['3:one-too-many']);
    // Asking again for a read it holds is no new read.
    expect(refusal(() => leader.readIndex(enc('l0')))).toBeUndefined();
    expect(collectReads(net, 1)).toEqual([]);
    net.heal();
    leader.tick();
    const served = collectReads(net, 1).map((r) => dec(r.context));
    expect(served.length).toBe(MAX_PENDING_READS / 2);
    expect(served.every((c) => c.startsWith('l'))).toBe(true);
    // Served: the room is back.
    expect(refusal(() => leader.readIndex(enc('after')))).toBeUndefined();
  });

  it('reads held until the new leader commits an entry of its term count too, and one asked twice is held once', () => {
    const net = uncommittedLeader();
    const leader = net.node(2);
    const from3 = (ctx: string) => msg({ type: MessageType.MsgReadIndex, from: 3, to: 2, context: enc(ctx) });
    for (let i = 0; i < MAX_PENDING_READS; i++) leader.step(from3(`f${i}`));
    expect(refusal(() => leader.step(from3('f0')))).toBeUndefined();
    expect(refusal(() => leader.readIndex(enc('one-too-many')))).toBe('RAFT_READ_INDEX_DROPPED too-many-pending');
    net.heal();
    leader.tick();
    // Each held read is answered once, to the follower that asked.
    const answered = collectReads(net, 3).map((r) => dec(r.context));
    expect(answered.length).toBe(MAX_PENDING_READS);
    expect(new Set(answered).size).toBe(MAX_PENDING_READS);
    expect(refusal(() => leader.readIndex(enc('after')))).toBeUndefined();
  });

  it('bounds the bytes of the contexts it holds', () => {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    net.isolate(1);
    const leader = net.node(1);
    const big = (i: number) => {
      const c = new Uint8Array(64 * 1024);
      c[0] = i;
      return c;
    };
    let held = 0;
    while (held < 64) {
      leader.step({ ...forwarded(2, ''), context: big(held) });
      if (refusedToFollowers(net, 1).length > 0) break;
      held++;
    }
    expect(held).toBeLessThan(64);
    expect(held).toBeGreaterThan(0);
  });

  it("tells a follower that forwarded one read too many it was refused, and the follower reports only its leader's refusal of its term", () => {
    const net = new Network([1, 2, 3]);
    net.campaign(2);
    net.campaign(1);
    // No heartbeat answer reaches the leader: it confirms no read.
    net.addFilter((m) => m.type === MessageType.MsgHeartbeatResp);
    const leader = net.node(1);
    for (let i = 0; i < MAX_PENDING_READS; i++) leader.step(forwarded(3, `f${i}`));
    const follower = net.node(2);
    follower.readIndex(enc('one-too-many'));
    const readies = collectReadies(net, 2);
    expect(readies.flatMap((rd) => rd.readStates)).toEqual([]);
    expect(readies.flatMap((rd) => rd.readsRefused ?? []).map(dec)).toEqual(['one-too-many']);

    const term = follower.status().term;
    const refusal = (from: number, t: number, index = 0) =>
      msg({ type: MessageType.MsgReadIndexResp, from, to: 2, term: t, reject: true, index, context: enc(`from ${from} in ${t}`) });
    follower.step(refusal(3, term));
    follower.step(refusal(1, term - 1));
    expect(collectReadies(net, 2).flatMap((rd) => rd.readsRefused ?? [])).toEqual([]);
    // A refusal names no read point.
    expect(() => follower.step(refusal(1, term, 7))).toThrow(InvalidMessageError);
  });

  it('a read asked again while the leader holds it sends no heartbeat round of its own: the periodic one confirms it', () => {
    const net = new Network([1, 2, 3], { heartbeatTick: 3 });
    net.campaign(1);
    net.addFilter((m) => m.type === MessageType.MsgHeartbeatResp);
    const leader = net.node(1);
    const heartbeats = () => collectReadies(net, 1).flatMap((rd) => rd.messages.filter((m) => m.type === MessageType.MsgHeartbeat));
    leader.step(forwarded(3, 'f0'));
    expect(heartbeats().map((m) => m.to)).toEqual([2, 3]);
    for (let i = 0; i < 5; i++) leader.step(forwarded(3, 'f0'));
    expect(heartbeats()).toEqual([]);
    net.heal();
    leader.tick();
    leader.tick();
    leader.tick();
    // The periodic round carries the held read: its quorum answers it, once.
    expect(collectReads(net, 3).map((r) => dec(r.context))).toEqual(['f0']);
  });
});

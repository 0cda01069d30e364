import { describe, expect, it } from 'vitest';
import { EntryType, MessageType, type Message } from '../../src/raft/types.js';
import { Prng } from '../sim/prng.js';
import { Lifetime, Scheduler } from './scheduler.js';
import { perfectNet, SimNetwork, type SimTransport } from './sim-network.js';

function msg(type: MessageType, from: number, to: number, index = 0): Message {
  return {
    type,
    from,
    to,
    term: 1,
    logTerm: 0,
    index,
    entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) }],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
}

async function cluster(seed: number, ids = [1, 2, 3]) {
  const sched = new Scheduler();
  const net = new SimNetwork(sched, new Prng(seed));
  const inbox = new Map<number, Message[]>();
  const unreachable: Array<[number, number]> = [];
  const snaps: Array<[number, number, boolean]> = [];
  const ts = new Map<number, SimTransport>();
  for (const id of ids) {
    const t = net.transport(id);
    for (const p of ids) if (p !== id) t.addPeer(p);
    inbox.set(id, []);
    await t.start({
      onMessage: (m) => inbox.get(id)!.push(m),
      onUnreachable: (p) => unreachable.push([id, p]),
      onSnapshotStatus: (p, ok) => snaps.push([id, p, ok]),
    });
    ts.set(id, t);
  }
  const run = async () => {
    while (await sched.step());
  };
  return { sched, net, inbox, ts, run, unreachable, snaps };
}

describe('SimNetwork', () => {
  it('delivers deep copies after the latency', async () => {
    const c = await cluster(1);
    c.net.faults = { ...perfectNet, latencyMs: [3, 3] };
    const m = msg(MessageType.MsgApp, 1, 2);
    c.ts.get(1)!.send([m]);
    expect(c.inbox.get(2)).toEqual([]);
    await c.run();
    const got = c.inbox.get(2)!;
    expect(got).toEqual([m]);
    expect(got[0]).not.toBe(m);
    expect(got[0]!.entries[0]!.data).not.toBe(m.entries[0]!.data);
    expect(c.sched.now).toBe(3);
  });

  it('reorders, drops and duplicates, but never duplicates MsgProp', async () => {
    const c = await cluster(2);
    c.net.faults = { latencyMs: [1, 5], slow: 0.2, slowMs: [20, 80], drop: 0.1, duplicate: 0.3 };
    const n = 400;
    c.ts.get(1)!.send(Array.from({ length: n }, (_, i) => msg(MessageType.MsgApp, 1, 2, i)));
    c.ts.get(1)!.send(Array.from({ length: n }, (_, i) => msg(MessageType.MsgProp, 1, 3, i)));
    await c.run();
    const apps = c.inbox.get(2)!.map((m) => m.index);
    const props = c.inbox.get(3)!.map((m) => m.index);
    expect(new Set(apps).size).toBeLessThan(n); // some dropped
    expect(apps.length).toBeGreaterThan(new Set(apps).size); // some duplicated
    expect(apps).not.toEqual([...apps].sort((a, b) => a - b)); // some reordered
    expect(props.length).toBe(new Set(props).size); // MsgProp at most once
    expect(props.length).toBeLessThan(n);
    expect(c.net.stats.sent).toBe(2 * n);
  });

  it('partitions cut messages (also those in flight) and report the peer unreachable; heal restores', async () => {
    const c = await cluster(3);
    c.net.faults = { ...perfectNet, latencyMs: [5, 5] };
    c.ts.get(1)!.send([msg(MessageType.MsgHeartbeat, 1, 2)]); // in flight when the partition forms
    c.net.partition([[1], [2, 3]]);
    expect(c.net.describe()).toBe('{1} {2,3}');
    c.ts.get(1)!.send([msg(MessageType.MsgHeartbeat, 1, 3), msg(MessageType.MsgHeartbeat, 1, 3)]);
    c.ts.get(2)!.send([msg(MessageType.MsgHeartbeat, 2, 3)]);
    await c.run();
    expect(c.inbox.get(2)).toEqual([]);
    expect(c.inbox.get(3)!.map((m) => m.from)).toEqual([2]);
    expect(c.unreachable).toEqual([[1, 3]]); // once per peer per turn
    c.net.heal();
    c.ts.get(1)!.send([msg(MessageType.MsgHeartbeat, 1, 2)]);
    await c.run();
    expect(c.inbox.get(2)!.length).toBe(1);
  });

  it('a link cut one way stops that direction only (also what is in flight); heal restores it', async () => {
    const c = await cluster(6);
    c.net.faults = { ...perfectNet, latencyMs: [5, 5] };
    c.ts.get(1)!.send([msg(MessageType.MsgHeartbeat, 1, 2)]); // in flight when the cut comes
    c.net.cutOneWay(1, 2);
    expect(c.net.partitioned).toBe(true);
    expect(c.net.describe()).toBe('cut 1>2');
    c.ts.get(1)!.send([msg(MessageType.MsgHeartbeat, 1, 2), msg(MessageType.MsgHeartbeat, 1, 3)]);
    c.ts.get(2)!.send([msg(MessageType.MsgHeartbeatResp, 2, 1)]);
    await c.run();
    expect(c.inbox.get(2)).toEqual([]);
    expect(c.inbox.get(3)!.map((m) => m.from)).toEqual([1]);
    expect(c.inbox.get(1)!.map((m) => m.from)).toEqual([2]); // 1 still hears 2
    expect(c.unreachable).toEqual([[1, 2]]); // the sender whose direction is cut is told, the other is not
    c.net.heal();
    expect(c.net.partitioned).toBe(false);
    c.ts.get(1)!.send([msg(MessageType.MsgHeartbeat, 1, 2)]);
    await c.run();
    expect(c.inbox.get(2)!.length).toBe(1);
  });

  it('a message to a stalled process is read when it wakes, and is lost if it dies first', async () => {
    const c = await cluster(7);
    const life = new Lifetime();
    const t2 = c.net.transport(2, undefined, life);
    t2.addPeer(1);
    const got: string[] = [];
    await t2.start({ onMessage: (m) => got.push(`${m.index}@${c.sched.now}`) });
    life.pausedUntil = 50;
    c.ts.get(1)!.send([msg(MessageType.MsgApp, 1, 2, 1)]);
    c.sched.after(10, () => c.ts.get(1)!.send([msg(MessageType.MsgApp, 1, 2, 2)]));
    await c.run();
    expect(got).toEqual(['1@50', '2@50']);
    life.pausedUntil = 100;
    c.ts.get(1)!.send([msg(MessageType.MsgApp, 1, 2, 3)]);
    c.sched.after(20, () => life.end());
    await c.run();
    expect(got).toEqual(['1@50', '2@50']);
  });

  it('reports snapshot status: true when sent, false when the peer is cut off', async () => {
    const c = await cluster(4);
    c.ts.get(1)!.send([msg(MessageType.MsgSnap, 1, 2)]);
    c.net.partition([[1], [2, 3]]);
    c.ts.get(1)!.send([msg(MessageType.MsgSnap, 1, 3)]);
    await c.run();
    expect(c.snaps).toEqual([
      [1, 2, true],
      [1, 3, false],
    ]);
  });

  it('a detached (crashed) endpoint neither sends nor receives, and a new lifetime takes its place', async () => {
    const c = await cluster(5);
    let closed = 0;
    c.ts.get(2)!.detach();
    c.ts.get(1)!.send([msg(MessageType.MsgApp, 1, 2)]);
    c.ts.get(2)!.send([msg(MessageType.MsgApp, 2, 1)]);
    await c.run();
    expect(c.inbox.get(1)).toEqual([]);
    expect(c.inbox.get(2)).toEqual([]);
    const t2 = c.net.transport(2, () => closed++);
    t2.addPeer(1);
    const got: Message[] = [];
    await t2.start({ onMessage: (m) => got.push(m) });
    c.ts.get(1)!.send([msg(MessageType.MsgApp, 1, 2)]);
    await c.run();
    expect(got.length).toBe(1);
    await t2.close();
    expect(closed).toBe(1);
  });
});

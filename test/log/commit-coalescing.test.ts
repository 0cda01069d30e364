// Under a closed-loop load, a leader's new commit index and the entries its clients
// append once they hear of it leave for each follower in one socket write: the
// transport waits for the turn's proposal (sendingLater), and the core holds back a
// commit index its own write has not caught up with. In that write the entries carry
// the commit index, so the message that carried it alone is left out: each round costs
// every follower one message and one answer. Without the waiting, each round costs every
// follower two writes, two wake-ups and two answers; without the leaving out, two answers.
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';
import { Wal } from '../../src/wal/wal.js';
import { enc, freePorts, tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it("16 clients: the leader's commit index travels to each follower with the next entries, in one message and one write", async () => {
  const ports = await freePorts(3);
  const peers: Record<number, string> = Object.fromEntries(ports.map((p, i) => [i + 1, `127.0.0.1:${p}`]));
  const transports = new Map<number, TcpTransport>();
  const logs: ReplicatedLog[] = [];
  for (let id = 1; id <= 3; id++) {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const others = Object.fromEntries(Object.entries(peers).filter(([k]) => Number(k) !== id));
    // Heartbeats and pings are writes of one frame each: rare here, so that a slow run (on a
    // loaded machine) does not dilute the ratio of frames to writes that the test is about.
    const transport = new TcpTransport({ id, clusterId: 'raftlog', listen: peers[id]!, peers: others, insecure: true, heartbeatIntervalMs: 1000 });
    transports.set(id, transport);
    logs.push(await ReplicatedLog.open({ dataDir: t.dir, id, peers, insecure: true, heartbeatTicks: 5 }, { transport }));
  }
  cleanups.push(async () => {
    for (const l of logs) await l.close();
  });
  let leader: ReplicatedLog | undefined;
  await waitFor('a leader', () => (leader = logs.find((l) => l.status().role === 'leader')) !== undefined);
  const stats = transports.get(leader!.status().id)!.stats();
  const sum = (ps: typeof stats.peers): number[] =>
    Object.values(ps).reduce((s, p) => [s[0]! + p.writes, s[1]! + p.framesSent, s[2]! + p.coalesced], [0, 0, 0]);
  const before = sum(stats.peers);
  await Promise.all(
    Array.from({ length: 16 }, async (_, c) => {
      for (let i = 0; i < 40; i++) await leader!.append(enc(`c${c}-${i}`));
    }),
  );
  const after = sum(transports.get(leader!.status().id)!.stats().peers);
  const [writes, frames, coalesced] = after.map((n, i) => n - before[i]!) as [number, number, number];
  // About one commit index left out per write; none if it went out in a write of its own.
  console.log(`commit coalescing: ${frames} frames in ${writes} writes, ${coalesced} commit indexes carried by the entries after them`);
  expect(coalesced / writes).toBeGreaterThan(0.5);
});

it("keeps what sendingLater says: once a turn's appends are proposed, what the proposal sent is flushed", async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const wal = await Wal.open(join(t.dir, 'wal'));
  wal.inlineWrites = false; // no flush before an inline write: only the one after the proposal
  let handlers: TransportHandlers | undefined;
  const flushes: boolean[] = []; // sendingLater() at each flush
  const transport: Transport = {
    start: async (h) => {
      handlers = h;
    },
    send: () => undefined,
    flush: () => flushes.push(handlers!.sendingLater!()),
    addPeer: () => undefined,
    removePeer: () => undefined,
    close: async () => undefined,
  };
  const log = await ReplicatedLog.open({ dataDir: t.dir }, { transport, wal });
  cleanups.push(() => log.close());
  for (let turn = 0; turn < 5; turn++) {
    const acks = [log.append(enc(`${turn}a`)), log.append(enc(`${turn}b`))];
    expect(handlers!.sendingLater!()).toBe(true);
    const before = flushes.length;
    await Promise.all(acks);
    expect(flushes.length, `flushes after turn ${turn}`).toBeGreaterThan(before);
  }
  expect(flushes.every((later) => !later)).toBe(true);
});

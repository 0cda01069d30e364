// A follower's acknowledgement promises the leader that the entries are on its disk: the leader counts it toward
// a commit. The driver must send it only once the write is durable (the core lists it in
// Ready.messagesAfterPersist for that reason). Here the follower is the real ReplicatedLog over a simulated disk
// whose every fsync takes 500 ms of simulated time, and a scripted leader sends it one append.
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { EntryType, MessageType, type Message } from '../../src/raft/types.js';
import { Prng } from '../sim/prng.js';
import { MemoryDisk } from './memory-wal.js';
import { RecordMachine } from './record-machine.js';
import { Lifetime, Scheduler } from './scheduler.js';
import { SimNetwork } from './sim-network.js';

const SLOW_DISK = { syncMs: [500, 500] as [number, number], slowSync: 0, slowSyncMs: [0, 0] as [number, number], failSync: 0 };

const life = new Lifetime();
afterEach(() => life.end());

describe('a follower acknowledges an append only once it is durable', () => {
  it('every MsgAppResp for entry 1 leaves after the disk holds entry 1', async () => {
    const sched = new Scheduler();
    const net = new SimNetwork(sched, new Prng(1));
    const disk = new MemoryDisk(new Prng(2), SLOW_DISK);
    const clock = sched.clock(life);
    const transport = net.transport(2);
    // What the follower sends, with whether its disk held entry 1 at that moment.
    const sent: { m: Message; durable: boolean }[] = [];
    const send = transport.send.bind(transport);
    transport.send = (ms: Message[]): void => {
      for (const m of ms) sent.push({ m, durable: disk.durablyHolds(1, 1) });
      send(ms);
    };
    const leader = net.transport(1);
    await leader.start({ onMessage: () => {} });
    leader.addPeer(2);

    let log: ReplicatedLog<string> | null = null;
    let openFailed: unknown;
    void ReplicatedLog.open<string>(
      {
        dataDir: 'sim://node2',
        id: 2,
        peers: { 1: 'sim:1', 2: 'sim:2', 3: 'sim:3' },
        stateMachine: new RecordMachine({ apply: () => {}, restore: () => {} }),
        tickMs: 10,
        electionTicks: 1000, // it never campaigns during the test
        heartbeatTicks: 2,
        timeoutMs: 1000,
      },
      { wal: disk.open(clock), snapshots: disk.snapshots, transport, clock, random: () => 0.5 },
    ).then(
      (l) => (log = l),
      (err: unknown) => (openFailed = err),
    );
    // Opening runs partly outside the scheduler (promise chains): let those settle between simulated steps.
    for (let i = 0; i < 1000 && log === null && openFailed === undefined; i++) {
      await new Promise((r) => setImmediate(r));
      await sched.runUntil(sched.now + 10, () => log !== null || openFailed !== undefined);
    }
    expect(openFailed).toBeUndefined();
    expect(log).not.toBeNull();

    const start = sched.now;
    leader.send([
      {
        type: MessageType.MsgApp,
        from: 1,
        to: 2,
        term: 1,
        logTerm: 0,
        index: 0,
        entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(0) }],
        commit: 0,
        reject: false,
        rejectHint: 0,
      },
      // Answered at once: its answer promises nothing about the disk. (The scheduler delivers the two in separate
      // turns, so each has a Ready of its own; test/log/ack-beside-answers.test.ts has one Ready carry both kinds.)
      { type: MessageType.MsgHeartbeat, from: 1, to: 2, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 },
    ]);
    const acks = (): { m: Message; durable: boolean }[] => sent.filter((s) => s.m.type === MessageType.MsgAppResp && !s.m.reject && s.m.index >= 1);
    await sched.runUntil(start + 5_000, () => acks().length > 0);
    expect(acks().length).toBeGreaterThan(0);
    expect(acks().map((s) => s.durable)).toEqual(acks().map(() => true));
    // The disk is the slow part: the ack waited for its fsync, while the heartbeat's answer did not.
    expect(sched.now - start).toBeGreaterThanOrEqual(500);
    expect(sent.some((s) => s.m.type === MessageType.MsgHeartbeatResp && !s.durable)).toBe(true);
    await log!.close();
  });
});

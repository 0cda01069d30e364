// A follower far behind is caught up a bounded window at a time. Everything a leader
// sends in one turn of its event loop is encoded in that turn: a window of tens of
// megabytes, sent the moment such a follower answered, held the leader's loop for more
// than an election timeout. Entries older than the WAL keeps in memory are read off the loop.
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MessageType, type Message } from '../../src/raft/types.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { Wal } from '../../src/wal/index.js';
import { countReadsOnCaller } from '../wal/helpers.js';
import { RecordingMachine, tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MiB = 1024 * 1024;
const entryBytes = (m: Message): number => m.entries.reduce((n, e) => n + e.data.byteLength, 0);

it.each([
  ['the default window (4 MiB)', undefined, 4 * MiB],
  ['maxInflightBytes: 1 MiB', MiB, MiB],
])(
  'a leader sends a follower 22 MiB behind at most its window and one message of entries in one turn, and catches it up: %s',
  async (_, maxInflightBytes, window) => {
    const net = new MemoryNetwork();
    const peers = { 1: '127.0.0.1:1', 2: '127.0.0.1:2', 3: '127.0.0.1:3' }; // never dialled: the network is in memory
    // Entry bytes each node sent to each peer in the current turn of the event loop, and the most in any turn.
    const turn = new Map<string, number>();
    const most = new Map<string, number>();
    let resetting = false;
    /** Per node: reads of entries the WAL no longer holds in memory, made on the event loop. */
    const diskReadsOnLoop = new Map<number, () => number>();
    const logs: ReplicatedLog<number>[] = [];
    const machines: RecordingMachine[] = [];
    for (let id = 1; id <= 3; id++) {
      const t = tempDir();
      cleanups.push(t.cleanup);
      const transport = net.endpoint(id);
      const send = transport.send.bind(transport);
      transport.send = (messages: Message[]): void => {
        for (const m of messages) {
          if (m.type !== MessageType.MsgApp || m.entries.length === 0) continue;
          const link = `${m.from}->${m.to}`;
          const bytes = (turn.get(link) ?? 0) + entryBytes(m);
          turn.set(link, bytes);
          most.set(link, Math.max(most.get(link) ?? 0, bytes));
        }
        if (!resetting) {
          resetting = true;
          setImmediate(() => {
            resetting = false;
            turn.clear();
          });
        }
        send(messages);
      };
      const sm = new RecordingMachine();
      machines.push(sm);
      const wal = await Wal.open(join(t.dir, 'wal'), { sync: 'none', preallocate: 'none' });
      diskReadsOnLoop.set(id, countReadsOnCaller(wal));
      // No snapshots: the follower must be caught up from the log, a window at a time.
      const log = await ReplicatedLog.open(
        { dataDir: t.dir, id, peers, stateMachine: sm, sync: 'none', preallocate: 'none', snapshotEvery: 1_000_000, maxInflightBytes },
        { transport, wal },
      );
      logs.push(log);
    }
    cleanups.push(async () => {
      for (const l of logs) await l.close();
    });
    let leader: ReplicatedLog<number> | undefined;
    await waitFor('a leader', () => (leader = logs.find((l) => l.status().role === 'leader')) !== undefined);
    const lead = leader!.status().id;
    const behind = lead === 3 ? 2 : 3;
    net.isolate(behind); // the other two commit without it

    const record = Buffer.alloc(60 * 1024, 7);
    for (let i = 0; i < 24 * 16; i += 16) {
      await Promise.all(Array.from({ length: 16 }, () => leader!.append(record)));
    }
    const last = leader!.status().applied;
    expect(logs[behind - 1]!.status().applied).toBeLessThan(10);
    most.clear();

    net.heal();
    await waitFor('the follower to catch up', () => logs[behind - 1]!.status().applied >= last, 60_000);
    expect(leader!.status().role).toBe('leader');
    expect(leader!.status().term).toBe(logs[behind - 1]!.status().term);
    const sent = most.get(`${lead}->${behind}`) ?? 0;
    // The window may be passed by the one message that fills it (at most 1 MiB).
    expect(sent, `the most entry bytes sent in one turn, ${(sent / MiB).toFixed(1)} MiB`).toBeGreaterThan(window / 4);
    expect(sent).toBeLessThanOrEqual(window + MiB);
    expect(machines[behind - 1]!.applied.length).toBe(machines[lead - 1]!.applied.length);
    // What the WAL no longer kept in memory (it keeps 16 MiB of the 22 MiB) came from disk, read off the leader's event loop.
    expect(diskReadsOnLoop.get(lead)!()).toBe(0);
  },
  120_000,
);

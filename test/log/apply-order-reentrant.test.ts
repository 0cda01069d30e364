// Entries a node applies outside its driver loop (a Ready held until a membership change's commit
// is durable) are applied as the loop would: an apply() that calls into the log there must not
// have the loop hand out a later Ready and apply its records before the rest of the held ones.
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { LogEntry, StateMachine } from '../../src/log/state-machine.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { Wal, type WalEntry, type WalHardState } from '../../src/wal/index.js';
import { TRIO_PEERS } from './memory-trio.js';
import { enc, tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Records where each record applied; at the first after learner 4 joined, appends and closes its log from inside apply(). */
class Reentrant implements StateMachine<number> {
  seen: string[] = [];
  log: ReplicatedLog<number> | null = null;
  closedAt: string | null = null;
  apply(e: LogEntry): number {
    this.seen.push(`${e.index}.${e.offset}`);
    if (this.log !== null && this.closedAt === null && this.log.status().conf.learners.includes(4)) {
      this.closedAt = `${e.index}.${e.offset}`;
      this.log.append(enc('late')).catch(() => undefined);
      this.log.close().catch(() => undefined);
    }
    return 0;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  async restore(): Promise<void> {}
}

it('records held behind a membership change apply in order when apply() closes the log', async () => {
  const net = new MemoryNetwork();
  const slowMs = new Map<number, number>();
  const logs: ReplicatedLog<number>[] = [];
  const machines: Reentrant[] = [];
  cleanups.push(async () => {
    for (const l of logs) await l.close().catch(() => undefined);
  });
  for (let id = 1; id <= 3; id++) {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const wal = await Wal.open(join(t.dir, 'wal'), { sync: 'none', preallocate: 'none' });
    const append = wal.append.bind(wal);
    // The leader's writes slow, its followers' quick: entries the followers took commit while the
    // leader's Ready that applies the membership change still waits for its write.
    wal.append = async (entries: readonly WalEntry[], hs?: WalHardState): Promise<void> => {
      const ms = slowMs.get(id) ?? 0;
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
      return append(entries, hs);
    };
    const sm = new Reentrant();
    machines.push(sm);
    logs.push(
      await ReplicatedLog.open(
        { dataDir: t.dir, id, peers: TRIO_PEERS, stateMachine: sm, sync: 'none', preallocate: 'none' },
        { transport: net.endpoint(id), wal },
      ),
    );
  }
  let leader: ReplicatedLog<number> | undefined;
  await waitFor('a leader', () => (leader = logs.find((l) => l.status().role === 'leader')) !== undefined);
  const sm = machines[logs.indexOf(leader!)]!;
  sm.log = leader!;
  for (let id = 1; id <= 3; id++) slowMs.set(id, logs[id - 1] === leader ? 80 : 5);
  const acks: Array<Promise<unknown>> = [];
  const hold = (p: Promise<unknown>): void => void acks.push(p.catch(() => undefined));
  hold(leader!.addLearner(4, '127.0.0.1:4'));
  for (let turn = 0; turn < 400 && sm.closedAt === null; turn++) {
    for (let k = 0; k < 5; k++) hold(leader!.append(enc(`t${turn}.${k}`)));
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(acks);
  expect(sm.closedAt).not.toBeNull();
  const order = sm.seen.map((s) => s.split('.').map(Number) as [number, number]);
  const back = order.findIndex(([i, k], n) => n > 0 && (i < order[n - 1]![0] || (i === order[n - 1]![0] && k <= order[n - 1]![1])));
  expect(back, `${sm.seen[back - 1]} then ${sm.seen[back]} (closed at ${sm.closedAt})`).toBe(-1);
}, 30_000);

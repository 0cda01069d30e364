// A consumer that tails the log with entries() and is overtaken by a snapshot (LOG_COMPACTED)
// resumes as the README says: from the state machine and the index it has applied, read in one
// turn, and not while a snapshot from the leader is being restored. It then holds every
// committed record exactly once, in order.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { readAll } from '../../src/log/state-machine.js';
import { MemorySnapshotStore } from '../../src/storage/snapshot-store.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { RecordingMachine, appendInTurns, appendSurely, enc, pos, tempDir, waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Holds restore() after it has read the snapshot, until `open()`. */
class GatedMachine extends RecordingMachine {
  private gate: Promise<void> | null = null;
  private release = (): void => undefined;
  close(): void {
    this.gate = new Promise((r) => (this.release = r));
  }
  open(): void {
    this.release();
  }
  override async restore(data: AsyncIterable<Uint8Array>, meta: { index: number }): Promise<void> {
    const bytes = await readAll(data);
    if (this.gate !== null) await this.gate;
    this.applied = JSON.parse(Buffer.from(bytes).toString()) as RecordingMachine['applied'];
    this.restoredFrom = meta.index;
  }
}

/**
 * The positions of the records `log` holds, as a consumer that follows entries() from `from`
 * keeps them, starting with `state`; `onCompacted` runs as it is overtaken, before it resumes.
 */
function follow(
  log: ReplicatedLog<number>,
  sm: RecordingMachine,
  onCompacted: () => void,
  state: string[] = [],
  from = 1,
): { state: string[]; done: Promise<void> } {
  const done = (async () => {
    for (;;) {
      try {
        for await (const e of log.entries({ from })) state.push(pos(e));
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== 'LOG_COMPACTED') throw err;
        onCompacted();
        // The README's recipe: the state machine and status().applied of one turn, unless a
        // snapshot from the leader is being restored (snapshotIndex above applied).
        for (;;) {
          const s = log.status();
          if (s.snapshotIndex <= s.applied) {
            state.splice(0, state.length, ...sm.applied.map(pos));
            from = s.applied + 1;
            break;
          }
          await log.barrier();
        }
      }
    }
  })();
  done.catch(() => undefined); // asserted below
  return { state, done };
}

it('a consumer overtaken by a snapshot of its own node resumes without a record twice', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const sm = new RecordingMachine();
  const log = await ReplicatedLog.open({ dataDir: t.dir, stateMachine: sm, snapshotEvery: 5, snapshotCatchUpEntries: 0, sync: 'none' });
  cleanups.push(() => log.close());
  await appendInTurns(log, 'r', 10); // a snapshot each 5 records
  // Compacted, and more applied since its snapshot (one due while another is written waits for it).
  const ahead = (): boolean => log.status().firstIndex > 2 && log.status().applied > log.status().snapshotIndex;
  for (let i = 0; i < 20 && !ahead(); i++) {
    await log.append(enc(`more ${i}`));
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(ahead()).toBe(true);
  // A consumer that starts late: the log has compacted past where it starts.
  let overtaken = 0;
  const { state, done } = follow(log, sm, () => overtaken++);
  const last = await log.append(enc('last'));
  await waitFor('the consumer to reach the last record', () => state.includes(pos(last)), 30_000);
  expect(overtaken).toBe(1);
  expect(state).toEqual(sm.applied.map(pos));
  await log.close();
  await done;
}, 60_000);

it('a consumer on a follower overtaken by a snapshot from the leader resumes once it is restored, without a gap', async () => {
  const net = new MemoryNetwork();
  const options = { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, timeoutMs: 30_000, snapshotEvery: 5, snapshotCatchUpEntries: 0 };
  const machines = new Map<number, GatedMachine>();
  const { logs, leader } = await memoryTrio(net, cleanups, (id) => {
    const sm = new GatedMachine();
    machines.set(id, sm);
    return { options: { ...options, stateMachine: sm }, deps: { snapshots: new MemorySnapshotStore() } };
  });
  await leader.append(enc('first'));
  const behind = logs.find((l) => l !== leader)!;
  const sm = machines.get(behind.id)!;
  await waitFor('the follower to apply it', () => behind.status().applied === leader.status().applied);
  // The consumer has what the follower applied, and stops for a while (it is slow, or restarts).
  const saved = sm.applied.map(pos);
  const from = behind.status().applied + 1;
  net.isolate(behind.id);
  sm.close();
  const others = logs.filter((l) => l !== behind);
  const cut = behind.status().lastIndex;
  for (let i = 0; i < 200 && !others.some((l) => l.status().role === 'leader' && l.status().firstIndex > cut + 1); i++) {
    await appendSurely(others, enc(`r${i}`));
  }
  net.heal();
  // It goes on while the follower's state machine restores the snapshot that overtook it.
  await waitFor('the restore to begin', () => behind.status().snapshotIndex > cut, 30_000);
  let overtaken = 0;
  const { state, done } = follow(behind, sm, () => overtaken++, saved, from);
  await waitFor('the consumer to be overtaken', () => overtaken === 1, 30_000);
  sm.open();
  const last = await appendSurely(logs, enc('last'));
  const reference = machines.get(others.find((l) => l.status().role === 'leader')!.id)!;
  await waitFor('the consumer to reach the last record', () => state[state.length - 1] === `${last.index}.0`, 30_000);
  expect(state).toEqual(reference.applied.map(pos));
  await behind.close();
  await done;
}, 90_000);

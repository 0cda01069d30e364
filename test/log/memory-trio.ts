// Three nodes on an in-memory network (never dialled), each in a new temporary directory with a
// WAL that does not sync: the cluster the log's protocol tests drive.
import { join } from 'node:path';
import { ReplicatedLog, type ReplicatedLogDeps } from '../../src/log/replicated-log.js';
import type { ReplicatedLogOptions } from '../../src/log/options.js';
import type { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { Wal } from '../../src/wal/index.js';
import { RecordingMachine, tempDir, waitFor } from './helpers.js';

export const TRIO_PEERS = { 1: '127.0.0.1:1', 2: '127.0.0.1:2', 3: '127.0.0.1:3' };

/**
 * Opens nodes 1, 2 and 3 on `net`, each with the options and deps `each(id)` gives beside its
 * own; resolves to them, by id, and to the first that leads. `cleanups` is given their closes
 * and their directories' removal.
 */
export async function memoryTrio(
  net: MemoryNetwork,
  cleanups: Array<() => Promise<void> | void>,
  each: (id: number) => { options?: Partial<ReplicatedLogOptions<number>>; deps?: Partial<ReplicatedLogDeps> } = () => ({}),
): Promise<{ logs: ReplicatedLog<number>[]; leader: ReplicatedLog<number> }> {
  const logs: ReplicatedLog<number>[] = [];
  cleanups.push(async () => {
    for (const l of logs) await l.close();
  });
  for (let id = 1; id <= 3; id++) {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const wal = await Wal.open(join(t.dir, 'wal'), { sync: 'none', preallocate: 'none' });
    const { options, deps } = each(id);
    const base = { dataDir: t.dir, id, peers: TRIO_PEERS, stateMachine: new RecordingMachine(), sync: 'none' as const, preallocate: 'none' as const };
    logs.push(await ReplicatedLog.open({ ...base, ...options }, { transport: net.endpoint(id), wal, ...deps }));
  }
  let leader: ReplicatedLog<number> | undefined;
  await waitFor('a leader', () => (leader = logs.find((l) => l.status().role === 'leader')) !== undefined);
  return { logs, leader: leader! };
}

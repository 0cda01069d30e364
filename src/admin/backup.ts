// A backup of the state machine at a linearizable point. Kept in this one function
// so that the way the snapshot is produced can change without touching its callers.
import type { ReplicatedLog } from '../log/replicated-log.js';
import { snapshotChunks, type StateMachine } from '../log/state-machine.js';

export interface Backup {
  /** The last log index the state covers. */
  index: number;
  /** The state machine's snapshot bytes, read as they are sent: never gathered whole. */
  chunks: AsyncIterable<Uint8Array>;
}

/**
 * Waits for a barrier (everything committed before the call is applied here), then
 * snapshots the state machine in the same turn as it reads the applied index, so
 * the two describe the same point.
 */
export async function takeBackup(log: ReplicatedLog<unknown>, sm: StateMachine<unknown>): Promise<Backup> {
  await log.barrier();
  const index = log.status().applied;
  const data = sm.snapshot(); // taken in the same turn as the index; read after
  return { index, chunks: snapshotChunks(data) };
}

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
export async function takeBackup(log: Pick<ReplicatedLog<unknown>, 'barrier' | 'status'>, sm: StateMachine<unknown>): Promise<Backup> {
  for (;;) {
    await log.barrier();
    const { applied, snapshotIndex } = log.status();
    // A snapshot from the leader being installed: the state machine may hold it already, and the
    // log reports it applied only once the storage holds it too. Its state labelled with the older
    // index would pass for less than it is. A barrier asked now waits for the install (the
    // leader's commit index is past the snapshot), unless the node stops.
    if (snapshotIndex > applied) continue;
    const data = sm.snapshot(); // taken in the same turn as the index; read after
    return { index: applied, chunks: snapshotChunks(data) };
  }
}

// The peers a transport's driver removed: raft has forgotten them, so nothing is reported about them.
// Only the latest are kept, or a cluster whose members are replaced by new ids grows the set for as
// long as the node runs. Raft addresses a removed peer only in answer to it (a vote it asks for, say)
// and soon stops; the core forgets removed ids past the same bound, so one forgotten here and reported
// after all meets raft's unknown-peer error, which the driver ignores.
import { REMOVALS_REMEMBERED } from '../raft/raft.js';

/** Records `id` as the latest removal (removed again, it is the last forgotten), forgetting the oldest past the bound. */
export function rememberRemoval(removed: Set<number>, id: number): void {
  removed.delete(id);
  removed.add(id);
  if (removed.size > REMOVALS_REMEMBERED) removed.delete(removed.values().next().value!);
}

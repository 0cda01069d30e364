// A proposal a peer forwards becomes the log's once the leader appends it, and every node then
// applies it: a record batch that does not decode stops each of them there, and at every open
// after, and a membership change would change the cluster without its leader's API being asked.
// What a follower forwards is only ever its appends' record batches, so anything else (an empty
// entry, a membership change, bytes that do not decode) is refused before the core sees it.
//
// A batch's origin is how a node recognises its own records when they apply, and resolves its
// callers with their positions: a batch that names another node, copied from the log, would
// have that node tell a caller its record sits where the sender's bytes do. The transport holds
// a proposal's sender to the peer that authenticated, and a follower forwards only proposals it
// made, so a batch must name its sender.
import { EntryType, type Message } from '../raft/types.js';
import { BatchReader } from './record-batch.js';

/** Why the proposal `m`, forwarded by a peer, may not reach the core; null if it may. */
export function forwardedProposalFault(m: Message): string | null {
  if (m.entries.length === 0) return 'it carries no entry';
  const reader = new BatchReader();
  for (const e of m.entries) {
    if (e.type !== EntryType.Normal) return 'it carries a membership change, which only the leader proposes';
    try {
      if (!reader.open(e.data, e.index)) return 'it carries an empty entry';
    } catch (err) {
      return `its records do not decode (${(err as Error).message})`;
    }
    if (reader.nodeId !== m.from) return `it carries records of node ${reader.nodeId}, not of its sender`;
  }
  return null;
}

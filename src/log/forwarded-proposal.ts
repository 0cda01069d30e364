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

/**
 * The kinds of fault, each a reason of raftlog_proposals_refused_total and of the refusal's log
 * line (code PROPOSAL_REFUSED whatever the kind): the operator learns which one it was, the peer
 * nothing, as the message is dropped.
 */
export const FORWARDED_PROPOSAL_FAULTS = ['NO_ENTRY', 'MEMBERSHIP_CHANGE', 'EMPTY_ENTRY', 'UNDECODABLE', 'FOREIGN_ORIGIN'] as const;

export type ForwardedProposalFaultKind = (typeof FORWARDED_PROPOSAL_FAULTS)[number];

/** Why the proposal `m`, forwarded by a peer, may not reach the core; null if it may. */
export function forwardedProposalFault(m: Message): { kind: ForwardedProposalFaultKind; message: string } | null {
  if (m.entries.length === 0) return { kind: 'NO_ENTRY', message: 'it carries no entry' };
  const reader = new BatchReader();
  for (const e of m.entries) {
    if (e.type !== EntryType.Normal) return { kind: 'MEMBERSHIP_CHANGE', message: 'it carries a membership change, which only the leader proposes' };
    try {
      if (!reader.open(e.data, e.index)) return { kind: 'EMPTY_ENTRY', message: 'it carries an empty entry' };
    } catch (err) {
      return { kind: 'UNDECODABLE', message: `its records do not decode (${(err as Error).message})` };
    }
    if (reader.nodeId !== m.from) return { kind: 'FOREIGN_ORIGIN', message: `it carries records of node ${reader.nodeId}, not of its sender` };
  }
  return null;
}

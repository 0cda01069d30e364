// The promise behind a vote or an append acknowledgement, checked at the moment
// it is sent against the node's durable state (which, after a group fsync, may
// already include a later write that overwrote what the ack names).
import { MessageType, type Message } from '../../src/raft/types.js';
import type { MemoryStorage } from '../../src/raft/index.js';
import { InvariantViolation } from './checker.js';

/** A granted vote is durable (or outdated by a durable later term); an append acknowledgement names a durable entry. */
export function checkAcksDurable(id: number, storage: MemoryStorage, msgs: readonly Message[]): void {
  const hs = storage.initialState().hardState;
  for (const m of msgs) {
    // A later durable term also keeps the promise: the node can never vote in m.term again.
    if (m.type === MessageType.MsgVoteResp && !m.reject && hs.term <= m.term && (hs.term !== m.term || hs.vote !== m.to)) {
      throw new InvariantViolation('vote-durable', `node ${id} grants ${m.to} its vote in term ${m.term}, durable state is term ${hs.term} vote ${hs.vote}`);
    }
    if (m.type !== MessageType.MsgAppResp || m.reject) continue;
    if (m.index > storage.lastIndex()) {
      throw new InvariantViolation('ack-durable', `node ${id} acknowledges index ${m.index}, durable log ends at ${storage.lastIndex()}`);
    }
    // Below the snapshot every entry is committed; the entry at the snapshot index has the snapshot's term.
    if (m.index < storage.firstIndex() - 1) continue;
    const term = storage.term(m.index);
    if (term !== m.logTerm) {
      throw new InvariantViolation('ack-durable', `node ${id} acknowledges ${m.index}@${m.logTerm}, but its durable entry ${m.index} has term ${term}`);
    }
  }
}

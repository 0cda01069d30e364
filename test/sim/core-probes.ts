// Probes into the core that the simulators' checkers use to see a broken rule
// at the moment it breaks, where the messages alone do not show it: what a
// leader's log held when it handed leadership over, and what a voter's log held
// when it granted a vote. Each returns its undo.
import { MessageType, type Message } from '../../src/raft/types.js';
import { Raft } from '../../src/raft/raft.js';
import { patch, type RaftInternals } from './mutations.js';

const raftProto = Raft.prototype as unknown as RaftInternals & { msgs: Message[]; msgsAfterAppend: Message[] };

/** What the checkers read of a node that is about to hand leadership over. */
export interface TimeoutNowSeen {
  /** The core instance that sent it (a process may run several simulations' nodes). */
  raft: object;
  from: number;
  to: number;
  term: number;
  lastIndex: number;
  lastTerm: number;
}

/**
 * Calls `fn` each time any core sends MsgTimeoutNow, with the sender's log as it is at that moment (the
 * message itself carries none of it); returns the undo.
 */
export function observeTimeoutNow(fn: (seen: TimeoutNowSeen) => void): () => void {
  return patch(
    raftProto,
    'sendTimeoutNow',
    (original) =>
      function (this: RaftInternals, to: number): void {
        const last = this.raftLog.lastIndex();
        fn({ raft: this, from: this.id, to, term: this.term, lastIndex: last, lastTerm: this.raftLog.term(last) ?? 0 });
        original.call(this, to);
      },
  );
}

/** A node's log position as its core holds it (unstable entries included), for judging a vote. */
export function logPosition(raw: unknown): { lastIndex: number; lastTerm: number } {
  const log = (raw as { raft: RaftInternals }).raft.raftLog;
  const lastIndex = log.lastIndex();
  return { lastIndex, lastTerm: log.term(lastIndex) ?? 0 };
}

/** A vote or pre-vote granted to a candidate whose log was less up to date than the voter's. */
export interface BadGrant {
  /** The voter's core instance. */
  raft: object;
  voter: number;
  candidate: number;
  type: 'vote' | 'pre-vote';
  term: number;
  candidateLast: [index: number, term: number];
  voterLast: [index: number, term: number];
}

/**
 * Calls `fn` for every vote or pre-vote a core grants although the candidate's log is not at least as up to
 * date as its own (§5.4.1), judged independently from the voter's log as it stood when the request arrived.
 */
export function observeVoteGrants(fn: (bad: BadGrant) => void): () => void {
  return patch(
    raftProto,
    'step',
    (original) =>
      function (this: typeof raftProto, m: Message): void {
        if (m.type !== MessageType.MsgVote && m.type !== MessageType.MsgPreVote) return original.call(this, m);
        const last = this.raftLog.lastIndex();
        const lastTerm = this.raftLog.term(last) ?? 0;
        const upToDate = m.logTerm > lastTerm || (m.logTerm === lastTerm && m.index >= last);
        const before = [this.msgs.length, this.msgsAfterAppend.length];
        original.call(this, m);
        if (upToDate) return;
        const want = m.type === MessageType.MsgVote ? MessageType.MsgVoteResp : MessageType.MsgPreVoteResp;
        const out = [...this.msgs.slice(before[0]), ...this.msgsAfterAppend.slice(before[1])];
        if (out.some((r) => r.type === want && r.to === m.from && !r.reject)) {
          fn({
            raft: this,
            voter: this.id,
            candidate: m.from,
            type: m.type === MessageType.MsgVote ? 'vote' : 'pre-vote',
            term: m.term,
            candidateLast: [m.index, m.logTerm],
            voterLast: [last, lastTerm],
          });
        }
      },
  );
}

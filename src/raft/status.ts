// A read-only view of a node, for operators, tests and the simulator's checks.
import { StateType, type ProgressStatus, type Status } from './types.js';
import type { Raft } from './raft.js';

// Enum members as locals: under tsx and vitest each `Enum.Member` access is a module getter call on the hot path.
const { StateLeader } = StateType;

export function getStatus(r: Raft): Status {
  const s: Status = {
    id: r.id,
    term: r.term,
    vote: r.vote,
    commit: r.raftLog.committed,
    applied: r.raftLog.applied,
    lead: r.lead,
    state: r.state,
    leadTransferee: r.leadTransferee,
    conf: r.trk.confState(),
  };
  if (r.state === StateLeader) {
    const progress: Record<number, ProgressStatus> = {};
    for (const id of r.trk.peers) {
      const pr = r.trk.progress.get(id)!;
      progress[id] = {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        inflight: pr.inflights.size,
        inflightBytes: pr.inflights.bytes,
        paused: pr.isPaused(),
        // The tracker's flag is cleared every election timeout and set again by the next answer: read
        // alone it showed a live follower inactive for a heartbeat's round trip in every timeout.
        recentActive: pr.recentActive || r.ticks - pr.leaseAckTick < r.electionTimeout,
        isLearner: pr.isLearner,
      };
    }
    s.progress = progress;
  }
  return s;
}

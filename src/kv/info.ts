// INFO for the RESP example: the node's state in Redis's style, `# Section` headers
// and `key:value` lines, every state in words.
import type { LogStatus } from '../log/replicated-log.js';
import type { LogMetrics } from '../log/metrics.js';
import { ProgressStateType, StateType } from '../raft/types.js';

const PROGRESS: Record<number, string> = {
  [ProgressStateType.ProgressStateProbe]: 'probe',
  [ProgressStateType.ProgressStateReplicate]: 'replicate',
  [ProgressStateType.ProgressStateSnapshot]: 'snapshot',
};

const RAFT_STATE: Record<number, string> = {
  [StateType.StateFollower]: 'follower',
  [StateType.StatePreCandidate]: 'pre-candidate',
  [StateType.StateCandidate]: 'candidate',
  [StateType.StateLeader]: 'leader',
};

export function formatInfo(s: Partial<LogStatus>, metrics?: LogMetrics): string {
  const lines: string[] = ['# Raft'];
  const put = (k: string, v: unknown): void => {
    if (v !== undefined) lines.push(`${k}:${String(v)}`);
  };
  put('id', s.id);
  put('role', s.role);
  put('state', s.state === undefined ? undefined : RAFT_STATE[s.state]);
  put('term', s.term);
  put('vote', s.vote);
  put('leader', s.lead);
  put('commit', s.commit);
  put('applied', s.applied);
  if (s.leadTransferee) put('lead_transferee', s.leadTransferee);
  if (s.conf !== undefined) {
    put('voters', s.conf.voters.join(','));
    put('learners', s.conf.learners.join(','));
  }
  if (s.fatal !== undefined) put('fatal', `${s.fatal.code} ${s.fatal.message}`);
  lines.push('', '# Peers');
  const ids = Object.keys(s.members ?? {})
    .map(Number)
    .sort((a, b) => a - b);
  ids.forEach((id, i) => {
    const p = s.progress?.[id];
    const parts = [`id=${id}`, `address=${s.members![id]}`, `role=${id === s.lead ? 'leader' : s.conf?.learners.includes(id) ? 'learner' : 'voter'}`];
    if (p !== undefined) {
      parts.push(
        `match=${p.match}`,
        `next=${p.next}`,
        `lag=${Math.max(0, (s.lastIndex ?? 0) - p.match)}`,
        `state=${PROGRESS[p.state] ?? 'unknown'}`,
        `active=${id === s.id || p.recentActive ? 'yes' : 'no'}`,
      );
    }
    lines.push(`peer${i}:${parts.join(',')}`);
  });
  lines.push('', '# WAL');
  put('first_index', s.firstIndex);
  put('last_index', s.lastIndex);
  put('snapshot_index', s.snapshotIndex);
  if (metrics !== undefined) {
    put('appends_committed', metrics.proposalsCommitted);
    put('bytes_written', metrics.walBytesWritten);
    put('segments', metrics.walSegments);
    put('cached_bytes', metrics.walCachedBytes);
    put('slab_bytes', metrics.walSlabBytes);
    put('fsyncs', metrics.walFsyncDuration?.count);
    put('snapshots_taken', metrics.snapshots);
  }
  return lines.join('\r\n') + '\r\n';
}

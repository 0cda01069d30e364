// Promotion of a learner to a voter. The log's own promote() refuses a learner that
// is not caught up (NOT_CAUGHT_UP); where the log has none, the same rule is applied
// here from the leader's progress table before the learner is made a voter.
import { LogError, NotLeaderError } from '../log/errors.js';
import type { ReplicatedLog } from '../log/replicated-log.js';

/** A learner further behind the leader's last index than this is not promoted. */
export const PROMOTE_MAX_LAG = 1000;

export class NotCaughtUpError extends LogError {
  constructor(id: number, lag: number) {
    super('NOT_CAUGHT_UP', `node ${id} is ${lag} entries behind the leader (at most ${PROMOTE_MAX_LAG} to be promoted); wait and retry`);
  }
}

type Promotable = { promote(id: number): Promise<void> };

export async function promote(log: ReplicatedLog<unknown>, id: number): Promise<void> {
  const own = (log as unknown as Partial<Promotable>).promote;
  if (typeof own === 'function') return own.call(log, id);
  const s = log.status();
  if (s.role !== 'leader') throw new NotLeaderError(s.lead, 'promotion');
  const p = s.progress?.[id];
  if (p === undefined || !p.isLearner) throw new LogError('INVALID_ARGUMENT', `node ${id} is not a learner`);
  const lag = Math.max(0, s.lastIndex - p.match);
  if (lag > PROMOTE_MAX_LAG) throw new NotCaughtUpError(id, lag);
  const address = s.members[id];
  if (address === undefined) throw new LogError('INVALID_ARGUMENT', `node ${id} has no known address`);
  // Adding a learner as a voter promotes it (Raft's AddNode on a learner).
  await log.addMember(id, address);
}

// The configuration a membership change yields, as etcd's confchange.Changer
// defines it: a change either applies directly (at most one voter changes) or
// moves the configuration into a joint state (incoming and outgoing voters,
// both majorities needed), which a later empty change leaves. Pure functions
// over ConfState; a refused change throws InvalidConfChangeError and the
// caller's configuration is untouched.
import { ConfChangeType, type ConfChangeV2, type ConfState } from './types.js';
import { InvalidConfChangeError } from './errors.js';
import { validateConfChangeV2 } from './confchange.js';

const sorted = (s: Iterable<number>): number[] => [...s].sort((a, b) => a - b);

export function isJoint(cs: ConfState): boolean {
  return (cs.votersOutgoing?.length ?? 0) > 0;
}

/** A copy in canonical form: sorted ids, joint parts present only when joint (or non-empty). */
export function cloneConfState(cs: ConfState): ConfState {
  const out: ConfState = { voters: sorted(cs.voters), learners: sorted(cs.learners) };
  if ((cs.votersOutgoing?.length ?? 0) > 0) out.votersOutgoing = sorted(cs.votersOutgoing!);
  if ((cs.learnersNext?.length ?? 0) > 0) out.learnersNext = sorted(cs.learnersNext!);
  if (cs.autoLeave === true) out.autoLeave = true;
  return out;
}

/** Every node the configuration names (voters of either half and learners of both kinds). */
export function members(cs: ConfState): Set<number> {
  return new Set([...cs.voters, ...(cs.votersOutgoing ?? []), ...cs.learners, ...(cs.learnersNext ?? [])]);
}

interface Working {
  incoming: Set<number>;
  outgoing: ReadonlySet<number>;
  learners: Set<number>;
  learnersNext: Set<number>;
}

/**
 * The configuration after `cc`. No changes: leave the joint state. Otherwise the
 * changes apply directly when the configuration is simple, the transition 'auto'
 * and at most one voter changes; else the configuration becomes joint.
 */
export function applyConfChangeV2(cs: ConfState, cc: ConfChangeV2): ConfState {
  validateConfChangeV2(cc);
  if (cc.changes.length === 0) return leaveJoint(cs);
  if (isJoint(cs)) throw new InvalidConfChangeError('the configuration is joint: leave it before another change');
  const w: Working = {
    incoming: new Set(cs.voters),
    outgoing: new Set(),
    learners: new Set(cs.learners),
    learnersNext: new Set(),
  };
  apply(w, cc);
  const changedVoters = symmetricDifference(new Set(cs.voters), w.incoming);
  if (cc.transition === 'auto' && changedVoters <= 1) {
    // A node that starts with no configuration (it learns it from the log) may pass through voterless states.
    if (w.incoming.size === 0 && cs.voters.length > 0) throw new InvalidConfChangeError('the change would leave no voters');
    return check({ voters: sorted(w.incoming), learners: sorted(w.learners) });
  }
  if (cs.voters.length === 0) throw new InvalidConfChangeError('a configuration without voters cannot become joint');
  // Joint: the outgoing half is the configuration as it was; the changes build the incoming one.
  const joint: Working = {
    incoming: new Set(cs.voters),
    outgoing: new Set(cs.voters),
    learners: new Set(cs.learners),
    learnersNext: new Set(),
  };
  apply(joint, cc);
  if (joint.incoming.size === 0) throw new InvalidConfChangeError('the change would leave no voters');
  const out: ConfState = { voters: sorted(joint.incoming), learners: sorted(joint.learners), votersOutgoing: sorted(joint.outgoing) };
  if (joint.learnersNext.size > 0) out.learnersNext = sorted(joint.learnersNext);
  if (cc.transition === 'auto') out.autoLeave = true;
  return check(out);
}

/** Leaves the joint state: the outgoing half is dropped, and its demoted voters become learners. */
export function leaveJoint(cs: ConfState): ConfState {
  if (!isJoint(cs)) throw new InvalidConfChangeError('the configuration is not joint: there is nothing to leave');
  const learners = new Set(cs.learners);
  for (const id of cs.learnersNext ?? []) learners.add(id);
  return check({ voters: sorted(cs.voters), learners: sorted(learners) });
}

function apply(w: Working, cc: ConfChangeV2): void {
  for (const c of cc.changes) {
    const id = c.nodeId;
    switch (c.type) {
      case ConfChangeType.AddNode:
        w.incoming.add(id);
        w.learners.delete(id);
        w.learnersNext.delete(id);
        break;
      case ConfChangeType.AddLearnerNode:
        if (w.learners.has(id)) break;
        w.incoming.delete(id);
        w.learnersNext.delete(id);
        // A voter of the outgoing half keeps voting there until the joint state is left.
        if (w.outgoing.has(id)) w.learnersNext.add(id);
        else w.learners.add(id);
        break;
      case ConfChangeType.RemoveNode:
        w.incoming.delete(id);
        w.learners.delete(id);
        w.learnersNext.delete(id);
        break;
    }
  }
}

function symmetricDifference(a: ReadonlySet<number>, b: ReadonlySet<number>): number {
  let n = 0;
  for (const id of a) if (!b.has(id)) n++;
  for (const id of b) if (!a.has(id)) n++;
  return n;
}

/** etcd's invariants: learners are no voters, learnersNext are outgoing voters only, no joint parts outside a joint state. */
function check(cs: ConfState): ConfState {
  const incoming = new Set(cs.voters);
  const outgoing = new Set(cs.votersOutgoing ?? []);
  for (const id of cs.learners) {
    if (incoming.has(id) || outgoing.has(id)) throw new InvalidConfChangeError(`node ${id} would be both a learner and a voter`);
  }
  for (const id of cs.learnersNext ?? []) {
    if (!outgoing.has(id) || incoming.has(id)) throw new InvalidConfChangeError(`node ${id} is in learnersNext but not only an outgoing voter`);
  }
  if (outgoing.size === 0 && ((cs.learnersNext?.length ?? 0) > 0 || cs.autoLeave === true)) {
    throw new InvalidConfChangeError('learnersNext and autoLeave exist only in a joint configuration');
  }
  return cs;
}

/** Checks a ConfState read from a snapshot against the same invariants; throws InvalidConfChangeError. */
export function checkConfState(cs: ConfState): void {
  check(cs);
}

// Whether a node was removed from the cluster, and why, as /health, the CLI and the status page
// all tell it: a removed node that still runs names the leader it last heard and the members it knew, and
// none of that is the cluster's any more.
import type { LogStatus } from '../log/index.js';
import { members as confMembers } from '../raft/changer.js';

/**
 * The node applied a configuration without itself, or a member that applied its removal refuses
 * it (`removedBy`: it was cut off when the change committed, and never applies it). An empty
 * configuration (a node not yet joined) is no removal. The status page's script keeps a copy of
 * this, as it cannot import; a test holds the two to the same answers.
 */
export function isRemoved(s: Pick<LogStatus, 'id' | 'conf' | 'removedBy'>): boolean {
  if (s.removedBy !== undefined) return true;
  const conf = confMembers(s.conf);
  return conf.size > 0 && !conf.has(s.id);
}

/**
 * Why a removed node (isRemoved) is one, in the words the CLI's lines and the status page's
 * banner put in brackets. The page's script keeps a copy of this too, held to it by the same test.
 */
export function removalReason(s: Pick<LogStatus, 'conf' | 'removedBy'>): string {
  if (s.removedBy !== undefined) return `node ${s.removedBy} refuses it as removed`;
  return `its configuration no longer holds it (voters ${s.conf.voters.join(', ')})`;
}

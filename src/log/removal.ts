// A node a membership change took out of the configuration hears from no leader again:
// what it is asked cannot complete there, so it is refused at once (NOT_MEMBER) instead
// of waiting out its timeout, and a read it served would be as stale as the last entry
// it applied. A node cut off when its removal committed learns it from a member that
// refuses what it sends.
import { members as confMembers } from '../raft/changer.js';
import { MessageType, type ConfState, type Message } from '../raft/types.js';
import type { Logger } from '../logger.js';
import { NotMemberError } from './errors.js';

/** What the removal state needs from the node: its configuration, and what waits on it. */
export interface RemovalHost {
  conf(): ConfState;
  logger: Logger;
  proposals: { leaderLost(reason: string): void };
  appends: { failAll(err: () => Error): void };
  barriers: { rejectUnanswered(err: () => Error): void };
}

export class Removal {
  /**
   * A member that applied this node's removal refused what it sent (a node cut off when its
   * removal committed is told by no leader). Not durable, and forgotten once a leader is heard:
   * a member that has not yet applied a change adding this node back refuses it too.
   */
  private refusedBy = 0;

  constructor(
    private readonly id: number,
    private readonly host: RemovalHost,
    /** This node has been in the configuration: one not in it now was taken out by a change. */
    private wasMember: boolean,
  ) {}

  /** The member that refused this node as removed; 0 if none did since a leader was heard. */
  get by(): number {
    return this.refusedBy;
  }

  /** NOT_MEMBER once a change has taken this node out of the configuration; null while it is in it. */
  error(what: string): NotMemberError | null {
    return this.wasMember && (this.refusedBy !== 0 || !confMembers(this.host.conf()).has(this.id))
      ? new NotMemberError(this.id, `${what} on node ${this.id}, which was removed from the cluster (use a member)`, this.host.conf())
      : null;
  }

  /** The configuration changed (a change applied, a snapshot restored): one without this node answers what waits here. */
  onConfChange(): void {
    if (confMembers(this.host.conf()).has(this.id)) {
      this.wasMember = true;
      return;
    }
    if (this.wasMember) this.failWaiting();
  }

  /** `peer` refused this node as removed; `lead` is the leader this node knows. */
  onRefused(peer: number, lead: number): void {
    // A node that follows a leader is a member in that leader's eyes: the refusal came from a member
    // whose log lags a change adding this node back, in answer to what this node sent before. But
    // for the leader it follows: a learner never campaigns, so it goes on naming the leader that
    // forgot it, and learns its removal when that leader refuses what it forwards.
    if (this.refusedBy !== 0 || (lead !== 0 && lead !== this.id && lead !== peer)) return;
    if (!this.wasMember || !confMembers(this.host.conf()).has(this.id)) return;
    this.refusedBy = peer;
    this.host.logger.warn(
      { code: 'NOT_MEMBER', peer },
      `node ${peer} refuses this node (${this.id}) as removed from the cluster: its removal committed unseen here; calls on it are refused until a leader is heard`,
    );
    this.failWaiting();
  }

  /** A message the core took: from the leader this node follows, it is a member again. */
  onStepped(m: Message, lead: number): void {
    if (this.refusedBy !== 0 && m.from === lead && isLeaderTraffic(m.type)) this.refusedBy = 0;
  }

  /** A new leader is known. */
  onNewLeader(): void {
    this.refusedBy = 0;
  }

  /**
   * Answers what waits here: appends it forwarded may still commit, unseen here, so their
   * outcome is unknown; queued appends and barriers are refused.
   */
  private failWaiting(): void {
    this.host.proposals.leaderLost(`node ${this.id} was removed from the cluster before the record was known to commit`);
    this.host.appends.failAll(() => this.error('append')!);
    this.host.barriers.rejectUnanswered(() => this.error('barrier')!);
  }
}

/** What only a leader sends. */
function isLeaderTraffic(type: MessageType): boolean {
  return type === MessageType.MsgApp || type === MessageType.MsgHeartbeat || type === MessageType.MsgSnap;
}

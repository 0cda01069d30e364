// Who is in the cluster and where to reach them: the address book the transport
// dials, the membership changes this node proposed and is waiting on, and the
// changes the log applies (one at a time, or several through a joint configuration).
import { decodeConfChangeEntry, encodeConfChange, encodeConfChangeV2 } from '../raft/confchange.js';
import { isJoint, members as confMembers } from '../raft/changer.js';
import { InvalidConfChangeError, ProposalDroppedError, RaftError } from '../raft/errors.js';
import type { RawNode } from '../raft/raw-node.js';
import { ConfChangeType, type ConfChange, type ConfChangeV2, type ConfState, type Entry } from '../raft/types.js';
import type { Transport } from '../transport/transport.js';
import type { Logger } from '../logger.js';
import type { Deadlines } from './deadlines.js';
import {
  AlreadyMemberError,
  InvalidArgumentError,
  LogCorruptError,
  MajorityUnavailableError,
  NotCaughtUpError,
  NotCommittedError,
  NotLeaderError,
  NotMemberError,
  OutcomeUnknownError,
  type LogError,
} from './errors.js';
import { MAX_HOST_LENGTH, isPeerAddress } from '../transport/address.js';

/**
 * One step of `changeMembership`. `add` makes a voter (a learner named here is promoted, under
 * the same catch-up rule as `promote`), `addLearner` a learner, `remove` takes a node out,
 * `promote` turns a learner into a voter, `demote` a voter into a learner. A step that would
 * leave its node as it is refuses the whole change: NOT_MEMBER, ALREADY_MEMBER.
 */
export type MembershipChange =
  { add: number; address: string } | { addLearner: number; address: string } | { remove: number } | { promote: number } | { demote: number };

/** What membership needs from the driver. */
export interface MembershipHost {
  node: Pick<RawNode, 'proposeConfChange' | 'applyConfChange' | 'status'>;
  /**
   * The peer links to keep in step with the address book; null for a log without peers.
   * `index`: the entry (or snapshot) applied that took the peer out.
   */
  peers: { addPeer: Transport['addPeer']; removePeer(peer: number, index: number): void } | null;
  deadlines: Pick<Deadlines, 'run'>;
  logger: Logger;
  /** The error a new request gets now (the log is closing or stopped), or null. */
  refusal(): Error | null;
  stopped(): boolean;
  leader(): number;
  isLeader(): boolean;
  lastIndex(): number;
  /** Calls fn again a tick later. */
  retryLater(fn: () => void): void;
  /** A proposal was handed to the node: run the driver loop. */
  pump(): void;
}

const KINDS = ['add', 'addLearner', 'remove', 'promote', 'demote'] as const;
type Kind = (typeof KINDS)[number];

/** One change as parsed: `label` names it in errors. */
interface Step {
  kind: Kind;
  id: number;
  address: string | undefined;
  label: string;
}

interface ConfPending {
  term: number;
  /** The entry data proposed: the change committed at its index is ours only if it is these bytes. */
  data: Uint8Array;
  resolve(): void;
  reject(e: Error): void;
}

/** An address as an error names it: a long one cut short, or the message would carry all of it. */
function describeAddress(address: unknown): string {
  const text = JSON.stringify(address) ?? String(address);
  return text.length > 300 ? `${text.slice(0, 100)}... (${text.length} characters)` : text;
}

/** A node id as the membership calls and transferLeadership take it; `where` names the call. */
export function checkNodeId(id: unknown, where: string): void {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0)
    throw new InvalidArgumentError(`${where}: id must be a positive integer, got ${typeof id === 'string' ? JSON.stringify(id) : String(id)}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Membership {
  private readonly confPending = new Map<number, ConfPending>();
  /** Membership changes applied as a joint configuration: they resolve once the joint state is left. */
  private readonly confLeaving = new Set<() => void>();
  /** Changes that removed this node while it leads: they resolve once it has handed off (see settle). */
  private readonly confHandoff = new Set<() => void>();

  /** `members`: the address book, id -> 'host:port', this node included. */
  constructor(
    private readonly id: number,
    private readonly host: MembershipHost,
    readonly members: Map<number, string>,
    public conf: ConfState,
    private readonly promoteMaxLag: number,
    /** Ticks a change waits for a voter it would call down to be heard (see propose). */
    private readonly electionTicks: number,
  ) {}

  /** Links every other member at start. */
  linkPeers(): void {
    for (const [peer, addr] of this.members) if (peer !== this.id) this.host.peers?.addPeer(peer, addr);
  }

  addMember(id: number, address: string): Promise<void> {
    return this.one('addMember', id, { add: id, address });
  }

  addLearner(id: number, address: string): Promise<void> {
    return this.one('addLearner', id, { addLearner: id, address });
  }

  removeMember(id: number): Promise<void> {
    return this.one('removeMember', id, { remove: id });
  }

  promote(id: number): Promise<void> {
    return this.one('promote', id, { promote: id });
  }

  /**
   * A single change, checked as changeMembership checks one (an add of a learner is a
   * promotion, under the catch-up rule), its errors named by the call.
   */
  private one(where: string, id: number, change: MembershipChange): Promise<void> {
    try {
      checkNodeId(id, where);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.change([change], where);
  }

  /** `where` names a single-change call (addMember, ...) in errors; changeMembership's name its change by place. */
  change(changes: readonly MembershipChange[], where?: string): Promise<void> {
    let steps: Step[];
    try {
      steps = this.parse(changes, where);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const ccs = steps.map((s) => this.toConfChange(s));
    const cc: ConfChange | ConfChangeV2 = ccs.length === 1 ? ccs[0]! : { transition: 'auto', changes: ccs };
    return this.propose(cc, () => this.refuse(steps));
  }

  /**
   * Applies a committed membership change; true if it adds or re-adds a member (which a
   * snapshot taken before it does not name).
   */
  apply(e: Entry): boolean {
    const cc = decodeMembershipEntry(e);
    this.conf = this.host.node.applyConfChange(cc);
    const t = this.host.peers;
    for (const c of cc.changes) {
      if (c.type === ConfChangeType.RemoveNode || c.context === undefined) continue;
      const addr = new TextDecoder().decode(c.context);
      if (this.members.get(c.nodeId) === addr) continue;
      this.members.set(c.nodeId, addr);
      if (c.nodeId !== this.id) t?.addPeer(c.nodeId, addr);
    }
    // A removed voter keeps its link while it still votes in the outgoing half of a joint configuration.
    const inConf = confMembers(this.conf);
    for (const id of [...this.members.keys()]) {
      if (inConf.has(id)) continue;
      this.members.delete(id);
      if (id !== this.id) t?.removePeer(id, e.index);
    }
    const what = cc.changes.map(
      (c) => `${c.type === ConfChangeType.RemoveNode ? 'removed' : c.type === ConfChangeType.AddLearnerNode ? 'added learner' : 'added voter'} ${c.nodeId}`,
    );
    this.host.logger.info(
      { index: e.index, changes: cc.changes.map((c) => ({ type: ConfChangeType[c.type], member: c.nodeId })), conf: this.conf },
      `membership: ${what.length === 0 ? 'left the joint configuration' : what.join(', ')}${isJoint(this.conf) ? ' (joint)' : ''}`,
    );
    const p = this.confPending.get(e.index);
    if (p !== undefined) {
      this.confPending.delete(e.index);
      if (p.term !== e.term || !sameBytes(p.data, e.data)) p.reject(new NotCommittedError(`index ${e.index} was committed with another entry`));
      else if (isJoint(this.conf)) this.confLeaving.add(p.resolve);
      else this.settle(p.resolve);
    }
    this.settleLeft();
    return cc.changes.some((c) => c.type !== ConfChangeType.RemoveNode);
  }

  /** The joint changes applied so far are done once the configuration is no longer joint. */
  private settleLeft(): void {
    if (isJoint(this.conf) || this.confLeaving.size === 0) return;
    const done = [...this.confLeaving];
    this.confLeaving.clear();
    for (const resolve of done) this.settle(resolve);
  }

  /** A record was applied at `index`: a change this node proposed there lost its slot. */
  recordApplied(index: number): void {
    const conf = this.confPending.get(index);
    if (conf === undefined) return;
    this.confPending.delete(index);
    conf.reject(new NotCommittedError(`index ${index} was committed with another entry`));
  }

  /** The snapshot at `index` replaced the state: its configuration and, if it names them, its members' addresses. */
  restore(conf: ConfState, members: ReadonlyArray<readonly [number, string]>, index: number): void {
    this.conf = conf;
    // A snapshot past the entry that left the joint state passes over it: this is the only word of it.
    this.settleLeft();
    if (members.length === 0) return;
    // Only the difference: a redial would drop what is queued to a peer that stays.
    const t = this.host.peers;
    const next = new Map(members);
    // A log opened without a peer port names itself 'embedded', which is no address. Opened again
    // with one, it and the members it adds know where it listens: a snapshot taken before must not
    // put that placeholder back, or the members could never answer it.
    for (const [id, addr] of next) {
      const known = this.members.get(id);
      if (known !== undefined && !isPeerAddress(addr)) next.set(id, known);
    }
    for (const id of this.members.keys()) if (!next.has(id) && id !== this.id) t?.removePeer(id, index);
    for (const [id, addr] of next) if (id !== this.id && this.members.get(id) !== addr) t?.addPeer(id, addr);
    this.members.clear();
    for (const [id, addr] of next) this.members.set(id, addr);
  }

  /**
   * The leader this node proposed through is gone: its changes may or may not commit (a follower
   * that holds one may lead next and commit it), and no longer can be told apart here. A change
   * that removed this leader resolves now: the leader stepped down after its hand-off (or lost
   * its leadership otherwise) and can do no more for it. So does a joint change applied here that
   * takes this node out: any leader of the joint configuration leaves it, and a node outside the
   * configuration it leaves to is not sent that entry's commit, so would wait out its timeout.
   */
  onLeaderLost(): void {
    for (const [index, c] of this.confPending) {
      this.confPending.delete(index);
      c.reject(new OutcomeUnknownError('leadership changed before the membership change was known to commit'));
    }
    const done = [...this.confHandoff];
    this.confHandoff.clear();
    if (
      isJoint(this.conf) &&
      !this.conf.voters.includes(this.id) &&
      !this.conf.learners.includes(this.id) &&
      !(this.conf.learnersNext ?? []).includes(this.id)
    ) {
      done.push(...this.confLeaving);
      this.confLeaving.clear();
    }
    for (const resolve of done) resolve();
  }

  /** The log stopped: its deadlines settle the waiting changes. */
  clear(): void {
    this.confPending.clear();
    this.confLeaving.clear();
    this.confHandoff.clear();
  }

  /**
   * A change is done once applied, unless it removed this node while it leads. The new voters
   * may then not know yet that it committed, and were it joint, without the nodes it removed
   * they could never form the old half's quorum. Such a leader keeps leading until an entry it
   * appends after the change commits in the new configuration, or for an election timeout
   * (the new voters out of its reach), and then steps down: the change
   * resolves then. A hand-off that ended unfinished lets the node campaign, though not a
   * voter, to finish it. Only a leader of the new configuration can confirm the voters know, which
   * is why the README has operators check it before stopping removed nodes.
   */
  private settle(resolve: () => void): void {
    if (this.host.isLeader() && !this.conf.voters.includes(this.id)) this.confHandoff.add(resolve);
    else resolve();
  }

  /**
   * Proposes a membership change on the leader, retrying while another change is pending;
   * `check` runs before each attempt and refuses with its error (nothing proposed).
   */
  private propose(cc: ConfChange | ConfChangeV2, check: () => LogError | null = () => null): Promise<void> {
    const refused = this.host.refusal();
    if (refused !== null) return Promise.reject(refused);
    let data: Uint8Array;
    try {
      data = 'changes' in cc ? encodeConfChangeV2(cc) : encodeConfChange(cc);
    } catch (err) {
      return Promise.reject(err instanceof RaftError ? new InvalidArgumentError(err.message) : (err as Error));
    }
    if (!this.host.isLeader()) return Promise.reject(new NotLeaderError(this.host.leader(), 'membership changes'));
    return this.host.deadlines.run('membership change', (resolve, reject) => {
      let index = 0;
      let gaveUp = false;
      let waited = 0;
      const attempt = (): void => {
        if (gaveUp || this.host.stopped()) return;
        const refused = check();
        // A voter unheard is not called down before an election timeout of asking: a leader
        // elected a moment ago has not yet heard its followers answer, and one answer late on a
        // loaded machine is not an outage.
        if (refused instanceof MajorityUnavailableError && waited++ < this.electionTicks) {
          this.host.retryLater(attempt);
          return;
        }
        if (refused !== null) {
          reject(refused);
          return;
        }
        let pos;
        try {
          pos = this.host.node.proposeConfChange(cc);
        } catch (err) {
          // One change at a time, and only once the leader committed an entry of its term: wait for that.
          if (err instanceof ProposalDroppedError && err.reason === 'conf-change-pending') {
            this.host.retryLater(attempt);
            return;
          }
          reject(err instanceof ProposalDroppedError ? new NotCommittedError(err.message, { cause: err }) : (err as Error));
          return;
        }
        if (pos === null) {
          reject(new NotLeaderError(this.host.leader(), 'membership changes'));
          return;
        }
        index = pos.index;
        this.confPending.set(pos.index, { term: pos.term, data, resolve, reject });
        this.host.pump();
      };
      attempt();
      return () => {
        gaveUp = true;
        this.confPending.delete(index);
        this.confLeaving.delete(resolve);
        this.confHandoff.delete(resolve);
      };
    });
  }

  /** The changes' form, checked once: what they find in the configuration is checked before each attempt (see refuse). */
  private parse(changes: readonly MembershipChange[], where?: string): Step[] {
    if (!Array.isArray(changes) || changes.length === 0) throw new InvalidArgumentError('changeMembership needs a non-empty array of changes');
    const steps: Step[] = [];
    for (const [i, change] of changes.entries()) {
      const keys = typeof change === 'object' && change !== null ? Object.keys(change).filter((k) => k !== 'address') : [];
      if (keys.length !== 1) throw new InvalidArgumentError(`changeMembership: change ${i} must have exactly one of add, addLearner, remove, promote, demote`);
      const kind = keys[0]!;
      if (!KINDS.includes(kind as Kind)) throw new InvalidArgumentError(`changeMembership: change ${i} has an unknown kind '${kind}'`);
      const id = (change as Record<string, unknown>)[kind];
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0)
        throw new InvalidArgumentError(`changeMembership: change ${i}: ${kind} needs a positive integer node id, got ${String(id)}`);
      const label = where ?? `changeMembership: change ${i}`;
      const address = (change as { address?: unknown }).address;
      if (kind === 'add' || kind === 'addLearner') {
        // An address must be one a peer can be dialled at, or the member would hold a vote that never comes.
        if (typeof address !== 'string' || !isPeerAddress(address))
          throw new InvalidArgumentError(
            `${label}: address must be 'host:port', a host of at most ${MAX_HOST_LENGTH} characters and a port from 1 to 65535, got ${describeAddress(address)}`,
          );
      } else if (address !== undefined) throw new InvalidArgumentError(`${label}: ${kind} takes no address`);
      steps.push({ kind: kind as Kind, id, address: address as string | undefined, label });
    }
    if (new Set(steps.map((s) => s.id)).size !== steps.length) throw new InvalidArgumentError('changeMembership: a node is named more than once');
    return steps;
  }

  private toConfChange(s: Step): ConfChange {
    if (s.kind === 'remove') return { type: ConfChangeType.RemoveNode, nodeId: s.id };
    const type = s.kind === 'add' || s.kind === 'promote' ? ConfChangeType.AddNode : ConfChangeType.AddLearnerNode;
    // A promotion or demotion carries the address known for the node, so every node's book keeps it.
    const address = s.address ?? this.members.get(s.id);
    return address === undefined ? { type, nodeId: s.id } : { type, nodeId: s.id, context: new TextEncoder().encode(address) };
  }

  /**
   * Why the changes cannot be proposed now, checked before each attempt (a change waiting
   * behind another finds the configuration that one left): a change that would leave the
   * configuration as it is (NOT_MEMBER, ALREADY_MEMBER), a promotion of a learner that lags
   * (NOT_CAUGHT_UP), or a new member this log could not reach. While joint, the core decides.
   */
  private refuse(steps: readonly Step[]): LogError | null {
    const taken = this.addressTaken(steps);
    if (taken !== null) return taken;
    if (isJoint(this.conf)) return null;
    const promoted: number[] = [];
    for (const s of steps) {
      const role = this.conf.voters.includes(s.id) ? 'voter' : this.conf.learners.includes(s.id) ? 'learner' : undefined;
      const refused = this.standing(s, role);
      if (refused !== null) return refused;
      if (role === 'learner' && (s.kind === 'add' || s.kind === 'promote')) promoted.push(s.id);
    }
    return this.notCaughtUp(promoted) ?? this.majorityUnavailable(steps);
  }

  /**
   * A change that takes a voter out while another is down: committed by the old majority, it
   * left voters of which too few answer to commit or elect (3 voters, one down, one removed: the
   * other two each need the one that is down). Only changes that take voters out are checked:
   * an add is how a cluster grows, its new voter not yet started.
   */
  private majorityUnavailable(steps: readonly Step[]): LogError | null {
    const out = new Set(steps.filter((s) => (s.kind === 'remove' || s.kind === 'demote') && this.conf.voters.includes(s.id)).map((s) => s.id));
    if (out.size === 0) return null;
    const status = this.host.node.status();
    const progress = status.progress;
    if (progress === undefined) return null; // not leading: the proposal says so
    // A node the change adds is left out: it is not started yet, and new voters are the operator's to bring up.
    const voters = [
      ...this.conf.voters.filter((id) => !out.has(id)),
      ...this.conf.learners.filter((id) => steps.some((s) => s.id === id && s.kind !== 'remove' && s.kind !== 'addLearner')),
    ];
    const down = voters.filter((id) => id !== status.id && progress[id]?.recentActive !== true);
    // No voter left is a change the core refuses for what it is (RAFT_INVALID_CONF_CHANGE).
    if (voters.length === 0 || voters.length - down.length > voters.length / 2) return null;
    return new MajorityUnavailableError(steps.length === 1 ? steps[0]!.label : 'changeMembership', voters, down);
  }

  /**
   * A retried change, or a mistyped id, would otherwise commit and resolve having changed
   * nothing; an add at another address than a member's would move it, and a mistyped id cut a
   * live member off from its peers. An add of a learner promotes it; an addLearner of a voter
   * is refused rather than demote it, which `demote` says.
   */
  private standing(s: Step, role: 'voter' | 'learner' | undefined): LogError | null {
    if (role === undefined) {
      if (s.kind === 'remove' || s.kind === 'promote' || s.kind === 'demote') return new NotMemberError(s.id, s.label, this.conf);
      // A new member needs a peer port to be reached on, or it would hold a vote that never comes.
      if (this.host.peers === null)
        return new InvalidArgumentError(`${s.label}: this log has no peer port to reach node ${s.id} on (open it with listen, or peers)`);
      return null;
    }
    const at = this.members.get(s.id);
    switch (s.kind) {
      case 'remove':
        return null;
      case 'promote':
      case 'demote':
        return role === (s.kind === 'promote' ? 'voter' : 'learner') ? new AlreadyMemberError(s.id, role, s.label) : null;
      default:
        if (at !== undefined && at !== s.address) return new AlreadyMemberError(s.id, role, s.label, `, at ${at}; to move it, replace it with a new id`);
        if (role === 'voter') return new AlreadyMemberError(s.id, role, s.label, s.kind === 'addLearner' ? '; to make it a learner, demote it' : '');
        return s.kind === 'addLearner' ? new AlreadyMemberError(s.id, role, s.label) : null;
    }
  }

  /**
   * A node added at the address of a member that stays, or of another node the same change
   * adds: the peers dial one of them there and meet the other, which refuses them as the wrong
   * node, so the new member never answers and holds a vote that never comes (a second such
   * voter cost a three-node cluster its majority). Taking over a member's address is a change
   * that also removes that member, as a replace does.
   */
  private addressTaken(steps: readonly Step[]): LogError | null {
    const removed = new Set(steps.filter((s) => s.kind === 'remove').map((s) => s.id));
    const holders = new Map<string, number>();
    for (const id of confMembers(this.conf)) {
      const at = this.members.get(id);
      if (at !== undefined && !removed.has(id)) holders.set(at, id);
    }
    for (const s of steps) {
      if ((s.kind !== 'add' && s.kind !== 'addLearner') || s.address === undefined) continue;
      const holder = holders.get(s.address);
      if (holder !== undefined && holder !== s.id)
        return new InvalidArgumentError(
          `${s.label}: ${s.address} is node ${holder}'s address; to give it to node ${s.id}, remove node ${holder} in the same change (member replace)`,
        );
      holders.set(s.address, s.id);
    }
    return null;
  }

  /** NOT_CAUGHT_UP for the first learner to promote whose log is too far behind the leader's. */
  private notCaughtUp(ids: readonly number[]): LogError | null {
    if (ids.length === 0) return null;
    const progress = this.host.node.status().progress;
    if (progress === undefined) return null; // not leading: the proposal says so
    const last = this.host.lastIndex();
    for (const id of ids) {
      const lag = last - (progress[id]?.match ?? 0);
      if (lag > this.promoteMaxLag) return new NotCaughtUpError(id, lag, this.promoteMaxLag);
    }
    return null;
  }
}

/**
 * A committed membership change's data, decoded. Data that does not decode (another format's, or
 * damage that passed every checksum) is the entry's fault, as a record batch's is: LOG_CORRUPT
 * naming it, not a storage failure.
 */
export function decodeMembershipEntry(e: Entry): ConfChangeV2 {
  try {
    return decodeConfChangeEntry(e.data);
  } catch (err) {
    if (err instanceof InvalidConfChangeError) throw new LogCorruptError(e.index, err.message);
    throw err;
  }
}

// RawNode: the caller's handle on the core. It turns the state machine's
// output into Readys and takes back the caller's progress: advance (the Ready
// was taken; its committed entries will be applied) and persisted (its
// writes are durable). Several Readys may be in flight; they become durable
// in order, so persisted(rd) also covers every Ready handed out before rd.
import {
  EntryType,
  MessageType,
  None,
  StateType,
  type ConfChange,
  type ConfChangeV2,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type ProposalPosition,
  type Ready,
  type SoftState,
  type Status,
} from './types.js';
import { resolveConfig, type Config } from './config.js';
import { Raft, newMessage } from './raft.js';
import { validateMessage } from './validate.js';
import { encodeAnyConfChange } from './confchange.js';
import { getStatus } from './status.js';
import {
  InvalidMessageError,
  LeaderTransferError,
  NoLeaderError,
  ReadyProtocolError,
  StepLocalMsgError,
  SnapshotRefusedError,
  StepPeerNotFoundError,
} from './errors.js';
import { EMPTY } from './empty.js';
import { ENTRY_OVERHEAD } from './size.js';

// Enum members as locals: under tsx and vitest each `Enum.Member` access is a module getter call on the hot path.
const {
  MsgApp,
  MsgAppResp,
  MsgBeat,
  MsgHeartbeat,
  MsgCheckQuorum,
  MsgHeartbeatResp,
  MsgHup,
  MsgPreVote,
  MsgPreVoteResp,
  MsgProp,
  MsgReadIndex,
  MsgSnap,
  MsgSnapStatus,
  MsgTimeoutNow,
  MsgTransferLeader,
  MsgUnreachable,
  MsgVote,
  MsgVoteResp,
} = MessageType;
const { StateLeader } = StateType;
const { ConfChange: EntryConfChange, Normal: EntryNormal } = EntryType;

/** A Ready handed out: what advance(rd) and persisted(rd) must do with it. */
interface InFlight {
  rd: Ready;
  /** Size (entriesSize) of rd.committedEntries: the leader's uncommitted budget shrinks by it on advance. */
  payload: number;
  /** Last entry written by rd, or index 0 for none. */
  lastIndex: number;
  lastTerm: number;
  snapshotIndex: number;
  /** Messages to ourselves (own vote, own append acknowledgement) that count only once durable. */
  selfMessages: Message[];
}

function isLocalOnly(t: MessageType): boolean {
  return t === MsgHup || t === MsgBeat || t === MsgUnreachable || t === MsgSnapStatus || t === MsgCheckQuorum;
}

function isResponse(t: MessageType): boolean {
  return t === MsgAppResp || t === MsgVoteResp || t === MsgHeartbeatResp || t === MsgPreVoteResp;
}

function checkData(d: unknown, what: string): asserts d is Uint8Array {
  if (!(d instanceof Uint8Array)) throw new InvalidMessageError(`${what} must be a Uint8Array`);
}

function checkPeerId(id: unknown, what: string): asserts id is number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0)
    throw new InvalidMessageError(`${what} must be a positive integer node id, got ${String(id)}`);
}

export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  /** Readys handed out whose writes are not yet reported durable, in order. */
  private readonly inFlight: InFlight[] = [];
  /** Readys handed out and not yet advanced, in order (the same records). */
  private readonly unadvanced: InFlight[] = [];

  constructor(config: Config) {
    this.raft = new Raft(resolveConfig(config));
    this.prevSoft = { lead: this.raft.lead, state: this.raft.state };
    this.prevHard = this.raft.hardState();
  }

  get id(): number {
    return this.raft.id;
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (a pre-election first when preVote is on). */
  campaign(): void {
    this.raft.step(newMessage(MsgHup, this.raft.id, this.raft.id, 0));
  }

  /**
   * Proposes one or many entries as ONE proposal. On the leader returns where
   * the first entry landed; on a follower forwards it (in messages of at most
   * maxSizePerMsg, or of one entry) and returns null. Throws
   * ProposalDroppedError when it cannot be accepted.
   */
  propose(data: Uint8Array | Uint8Array[]): ProposalPosition | null {
    let entries: Entry[];
    if (Array.isArray(data)) {
      if (data.length === 0) throw new InvalidMessageError('propose needs at least one entry');
      entries = new Array<Entry>(data.length);
      for (let i = 0; i < data.length; i++) {
        const d = data[i];
        checkData(d, `proposal data[${i}]`);
        entries[i] = { index: 0, term: 0, type: EntryNormal, data: d };
      }
    } else {
      checkData(data, 'proposal data');
      entries = [{ index: 0, term: 0, type: EntryNormal, data }];
    }
    const m = newMessage(MsgProp, this.raft.id, this.raft.id, 0);
    m.entries = entries;
    return this.raft.propose(m, true);
  }

  /**
   * Proposes a membership change: a single change, or a ConfChangeV2 (several changes
   * at once, through a joint configuration when more than one voter changes; no changes
   * leaves the joint configuration). One at a time; applied with applyConfChange once
   * committed. A change the configuration cannot take throws InvalidConfChangeError
   * (on the leader) and nothing is appended.
   */
  proposeConfChange(cc: ConfChange | ConfChangeV2): ProposalPosition | null {
    const m = newMessage(MsgProp, this.raft.id, this.raft.id, 0);
    m.entries = [{ index: 0, term: 0, type: EntryConfChange, data: encodeAnyConfChange(cc) }];
    return this.raft.propose(m, true);
  }

  /**
   * Steps a message from a peer. Takes ownership of it: the core keeps
   * references to its entries (which must not be mutated afterwards).
   * Throws InvalidMessageError, StepLocalMsgError or StepPeerNotFoundError
   * without changing any state; ProposalDroppedError / ReadIndexDroppedError
   * when a forwarded request cannot be served (the request is then lost, as
   * if the network had dropped it). A leader that holds too many reads answers
   * a forwarded one with a refusal instead (see Ready.readsRefused).
   */
  step(m: Message): void {
    validateMessage(m, this.raft.id);
    if (isLocalOnly(m.type)) throw new StepLocalMsgError(m.type);
    const r = this.raft;
    // Only members (and nodes a logged change is adding) are heard: a stranger's heartbeat, append,
    // vote or snapshot must not move this node's term, leader or log. Two exceptions keep a lagging
    // node live, since its configuration may predate a newer member's addition: while it knows no
    // leader it hears leader traffic from an id it never saw removed (and then only from that leader),
    // and the vote requests of such an id (a candidate joint with an outgoing half that names this
    // node may need its vote; the vote rules still require the candidate's log to be as up to date).
    // And leader traffic of an earlier term is answered, never followed (see isStaleLeaderTraffic).
    if (
      isResponse(m.type)
        ? !r.trk.progress.has(m.from)
        : !r.knows(m.from) && !this.mayLeadUnknown(m) && !this.mayCampaignUnknown(m) && !this.isStaleLeaderTraffic(m)
    )
      throw new StepPeerNotFoundError(m.from);
    // A snapshot replaces the whole state, so it is taken only from the node known to lead the
    // message's term (even once this node lost sight of it: see Raft.termLeader). A follower that
    // has not heard of that leader yet refuses it: the leader's heartbeat or append (sent before
    // any snapshot) makes it known, and the snapshot is retried.
    if (m.type === MsgSnap && (m.term !== r.term || r.termLeader !== m.from)) throw new SnapshotRefusedError(m.from, m.term);
    // A forwarded transfer names the transferee as its sender, so it may come back to it; anything
    // else from ourselves is a routing bug (a proposal or read reaches the leader from its maker only).
    if (m.from === this.raft.id && m.type !== MsgTransferLeader) {
      throw new InvalidMessageError(`node ${m.from} cannot send itself messages through step()`);
    }
    this.raft.step(m);
  }

  private mayLeadUnknown(m: Message): boolean {
    const r = this.raft;
    if (m.type !== MsgApp && m.type !== MsgHeartbeat && m.type !== MsgSnap && m.type !== MsgTimeoutNow) return false;
    if (r.state === StateLeader) return false;
    // The leader this node follows in this term is that term's only leader; removed, it knows it (this
    // node learned the removal committed from it) and is handing off: its entry must reach the new voters,
    // and once it has, the one it names campaigns at once.
    if (r.lead === m.from && m.term === r.term) return true;
    if (m.type === MsgTimeoutNow) return false;
    // Any other removed node that never learned of its removal may still think it leads the term it led in: it
    // must not take this node over. A leader of a later term won an election after this node applied the removal,
    // which a removed node can only do if a configuration added it back (this node's log may not hold that change
    // yet: refusing the new leader would leave it behind for good) or if it holds the removal itself, which it
    // then commits and steps down.
    const removedAt = r.removedPeers.get(m.from);
    if (removedAt !== undefined && m.term <= removedAt) return false;
    if (r.lead === None) return m.term >= r.term;
    // A node outside its own configuration (but to finish a hand-off, which forgets its leader anyway) or a learner
    // does not campaign, so it may never forget the leader it had: a leader of a later term is heard, or a node
    // removed and then added back could never learn its return, nor a learner a leader elected since it last applied.
    return (!r.trk.progress.has(r.id) || r.isLearner) && m.term > r.term;
  }

  /**
   * An append or heartbeat of a term earlier than this node's, from a leader this node does not know (its
   * configuration may predate the leader's addition). Raft answers it with this node's term (with CheckQuorum or
   * PreVote) and changes nothing. Refusing it instead can wedge a node whose term ran ahead while it was cut off:
   * the voters it knows ignore its vote requests while they hear their leader, and that leader, never told the
   * later term, keeps a leadership this node cannot follow.
   */
  private isStaleLeaderTraffic(m: Message): boolean {
    return (m.type === MsgApp || m.type === MsgHeartbeat) && m.term < this.raft.term;
  }

  private mayCampaignUnknown(m: Message): boolean {
    const r = this.raft;
    if (m.type !== MsgVote && m.type !== MsgPreVote) return false;
    return r.lead === None && !r.removedPeers.has(m.from); // a leader knows one: itself
  }

  /** Requests a linearizable read point; it shows up in Ready.readStates tagged with `ctx`. */
  readIndex(ctx: Uint8Array): void {
    checkData(ctx, 'read index context');
    const m = newMessage(MsgReadIndex, this.raft.id, this.raft.id, 0);
    m.context = ctx;
    this.raft.step(m);
  }

  /** Asks the leader (this node, or forwarded to it) to hand leadership to `to`. */
  transferLeader(to: number): void {
    checkPeerId(to, 'transferee');
    const r = this.raft;
    if (r.state !== StateLeader && r.lead === None) throw new NoLeaderError(`node ${r.id} knows no leader to hand leadership from`);
    if (r.state === StateLeader) {
      const pr = r.trk.progress.get(to);
      if (pr === undefined) throw new LeaderTransferError(`node ${to} is not in the configuration`);
      if (pr.isLearner) throw new LeaderTransferError(`node ${to} is a learner`);
    }
    // etcd's convention: the transferee is the message's sender.
    r.step(newMessage(MsgTransferLeader, r.id, to, 0));
  }

  /** Storage has read the entries it answered EntriesPendingError for: a leader sends them now. */
  entriesFetched(): void {
    this.raft.entriesFetched();
  }

  /** The leader could not reach `id`: stop streaming to it and probe. */
  reportUnreachable(id: number): void {
    checkPeerId(id, 'peer');
    if (!this.raft.trk.progress.has(id)) throw new StepPeerNotFoundError(id);
    this.raft.step(newMessage(MsgUnreachable, this.raft.id, id, 0));
  }

  /** The snapshot sent to `id` was installed (ok) or failed. */
  reportSnapshot(id: number, ok: boolean): void {
    checkPeerId(id, 'peer');
    if (!this.raft.trk.progress.has(id)) throw new StepPeerNotFoundError(id);
    const m = newMessage(MsgSnapStatus, this.raft.id, id, 0);
    m.reject = !ok;
    this.raft.step(m);
  }

  /**
   * Applies a committed membership change; returns the new configuration (to
   * store with snapshots). Every ConfChange entry of Ready.committedEntries must
   * come through here, in order: until it has, this node neither campaigns nor
   * accepts another membership proposal.
   */
  applyConfChange(cc: ConfChange | ConfChangeV2): ConfState {
    return this.raft.applyConfChange(cc);
  }

  status(): Status {
    return getStatus(this.raft);
  }

  hasReady(): boolean {
    const r = this.raft;
    const log = r.raftLog;
    if (r.lead !== this.prevSoft.lead || r.state !== this.prevSoft.state) return true;
    if (r.term !== this.prevHard.term || r.vote !== this.prevHard.vote || log.committed !== this.prevHard.commit) return true;
    if (r.msgs.length > 0 || r.msgsAfterAppend.length > 0 || r.readStates.length > 0 || r.readsRefused.length > 0) return true;
    if (log.hasNextUnstableEnts() || log.unstable.nextSnapshot() !== undefined) return true;
    return log.hasNextCommittedEnts();
  }

  /** Everything to persist, send and apply since the last Ready. Call advance(rd) right after. */
  ready(): Ready {
    const r = this.raft;
    const log = r.raftLog;
    const entries = log.unstable.nextEntries();
    const snapshot = log.unstable.nextSnapshot();
    const committedEntries = log.nextCommittedEnts();
    let messagesAfterPersist: Message[] = EMPTY;
    let selfMessages: Message[] = EMPTY;
    const after = r.msgsAfterAppend;
    for (let i = 0; i < after.length; i++) {
      const m = after[i]!;
      if (m.to === r.id) {
        if (selfMessages === EMPTY) selfMessages = [];
        selfMessages.push(m);
      } else {
        if (messagesAfterPersist === EMPTY) messagesAfterPersist = [];
        messagesAfterPersist.push(m);
      }
    }

    const rd: Ready = {
      readStates: r.readStates.length === 0 ? EMPTY : r.readStates,
      entries,
      committedEntries,
      messages: r.msgs.length === 0 ? EMPTY : r.msgs,
      messagesAfterPersist,
      mustSync: false,
    };
    if (r.lead !== this.prevSoft.lead || r.state !== this.prevSoft.state) {
      rd.softState = { lead: r.lead, state: r.state };
      this.prevSoft = rd.softState;
    }
    const hs = this.prevHard;
    if (r.term !== hs.term || r.vote !== hs.vote || log.committed !== hs.commit) {
      rd.hardState = r.hardState();
      rd.mustSync = r.term !== hs.term || r.vote !== hs.vote;
      this.prevHard = rd.hardState;
    }
    if (snapshot !== undefined) rd.snapshot = snapshot;
    if (r.readsRefused.length > 0) {
      rd.readsRefused = r.readsRefused;
      r.readsRefused = [];
    }
    if (entries.length > 0 || snapshot !== undefined) rd.mustSync = true;

    // Accept: nothing in this Ready is handed out again.
    if (r.msgs.length > 0) r.msgs = [];
    if (after.length > 0) r.msgsAfterAppend = [];
    if (r.readStates.length > 0) r.readStates = [];
    log.unstable.acceptInProgress();
    if (snapshot !== undefined) log.acceptApplying(snapshot.meta.index);
    if (committedEntries.length > 0) log.acceptApplying(committedEntries[committedEntries.length - 1]!.index);

    let payload = 0;
    for (let i = 0; i < committedEntries.length; i++) {
      const e = committedEntries[i]!;
      payload += e.data.length + ENTRY_OVERHEAD;
      if (e.type === EntryConfChange) r.confChangesToApply++;
    }
    const last = entries.length > 0 ? entries[entries.length - 1]! : undefined;
    const f: InFlight = {
      rd,
      payload,
      lastIndex: last === undefined ? 0 : last.index,
      lastTerm: last === undefined ? 0 : last.term,
      snapshotIndex: snapshot === undefined ? 0 : snapshot.meta.index,
      selfMessages,
    };
    this.inFlight.push(f);
    this.unadvanced.push(f);
    return rd;
  }

  /**
   * The Ready was taken: its committed entries will be applied in order (the
   * applied index moves to the last of them). Readys are advanced in the order
   * they were handed out.
   */
  advance(rd: Ready): void {
    if (this.unadvanced.length === 0 || this.unadvanced[0]!.rd !== rd) {
      throw new ReadyProtocolError('advance() must be called once per Ready, in the order they were handed out');
    }
    const { payload } = this.unadvanced.shift()!;
    const r = this.raft;
    if (rd.snapshot !== undefined) r.raftLog.appliedTo(rd.snapshot.meta.index);
    const ce = rd.committedEntries;
    if (ce.length > 0) {
      r.raftLog.appliedTo(ce[ce.length - 1]!.index);
      if (r.state === StateLeader) r.reduceUncommittedSize(payload);
    }
    r.maybeAutoLeave();
  }

  /**
   * rd's snapshot, entries and hardState are durable (and so are those of
   * every Ready handed out before it): the leader may now count itself for
   * them. Returns the messages to send now: the messagesAfterPersist of rd and
   * of every earlier Ready it covers, less the acknowledgements that are no
   * longer true (see stillTrue). Send exactly these, never
   * rd.messagesAfterPersist itself.
   */
  persisted(rd: Ready): Message[] {
    let at = -1;
    for (let i = 0; i < this.inFlight.length; i++) {
      if (this.inFlight[i]!.rd === rd) {
        at = i;
        break;
      }
    }
    if (at < 0) throw new ReadyProtocolError('persisted() for a Ready that is unknown or already persisted');
    const r = this.raft;
    let out: Message[] = EMPTY;
    for (let k = 0; k <= at; k++) {
      const f = this.inFlight.shift()!;
      if (f.snapshotIndex > 0) r.raftLog.unstable.stableSnapTo(f.snapshotIndex);
      if (f.lastIndex > 0) r.raftLog.unstable.stableTo(f.lastIndex, f.lastTerm);
      const self = f.selfMessages;
      for (let i = 0; i < self.length; i++) r.step(self[i]!);
      const send = this.stillTrue(f.rd.messagesAfterPersist);
      if (send.length > 0) out = out.length === 0 ? send : out.concat(send);
    }
    return out;
  }

  /**
   * An acknowledgement promises that the log holds the entry it names (index,
   * logTerm). Between the ack's Ready and its persisted() a later input may
   * overwrite that entry (a new leader truncated the log), and one group fsync
   * can make both writes durable before the ack leaves: sent, it would promise
   * an entry the log no longer holds, and an old leader could count it toward
   * a commit. Such an ack is dropped, as if the network had lost it; the
   * leader asks again. Checked against everything this node has accepted,
   * durable or not, so an overwrite still in flight also counts. An entry
   * compacted away has no known term, so an ack naming one is dropped too.
   */
  private stillTrue(msgs: Message[]): Message[] {
    const log = this.raft.raftLog;
    let out: Message[] | null = null;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      const stale = m.type === MsgAppResp && !m.reject && log.zeroTerm(m.index) !== m.logTerm;
      if (stale && out === null) out = msgs.slice(0, i);
      else if (!stale && out !== null) out.push(m);
    }
    return out ?? msgs;
  }

  /** Number of Readys handed out whose writes are not yet reported durable. */
  get inFlightReadys(): number {
    return this.inFlight.length;
  }

  /** True when this node knows a leader (itself included). */
  hasLeader(): boolean {
    return this.raft.lead !== None;
  }
}

// The Raft state machine of one node: roles, terms, voting, replication,
// commitment, reads, leadership transfer and membership. Pure: every input is
// a call (step, tick, ...), every output lands in msgs / msgsAfterAppend /
// readStates and the log, which RawNode turns into Readys.
import {
  EntryType,
  MessageType,
  None,
  ConfChangeType,
  ProgressStateType,
  StateType,
  type ConfChange,
  type ConfChangeV2,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type ProposalPosition,
  type ReadState,
  type Snapshot,
} from './types.js';
import type { ResolvedConfig } from './config.js';
import { RaftLog } from './log.js';
import { ProgressTracker } from './tracker.js';
import type { Progress } from './progress.js';
import { VoteResult } from './quorum.js';
import { MAX_PENDING_READ_BYTES, MAX_PENDING_READS, ReadOnly, readContextKey } from './read-only.js';
import { decodeConfChangeEntry, encodeConfChangeV2, isConfChangeV2 } from './confchange.js';
import { applyConfChangeV2, members } from './changer.js';
import { countWithin, entriesSize } from './size.js';
import {
  CorruptStateError,
  LogLostError,
  InvalidConfigError,
  InvalidMessageError,
  ProposalDroppedError,
  ReadIndexDroppedError,
  SnapshotTemporarilyUnavailableError,
  EntriesPendingError,
} from './errors.js';
import { EMPTY } from './empty.js';

// Enum members as locals: under tsx and vitest each `Enum.Member` access is a module getter call on the hot path.
const {
  MsgApp,
  MsgAppResp,
  MsgBeat,
  MsgCheckQuorum,
  MsgHeartbeat,
  MsgHeartbeatResp,
  MsgHup,
  MsgPreVote,
  MsgPreVoteResp,
  MsgProp,
  MsgReadIndex,
  MsgReadIndexResp,
  MsgSnap,
  MsgSnapStatus,
  MsgTimeoutNow,
  MsgTransferLeader,
  MsgUnreachable,
  MsgVote,
  MsgVoteResp,
} = MessageType;
const { StateCandidate, StateFollower, StateLeader, StatePreCandidate } = StateType;
const { ProgressStateProbe, ProgressStateReplicate, ProgressStateSnapshot } = ProgressStateType;
const { ConfChange: EntryConfChange, Normal: EntryNormal } = EntryType;

/** Marks the votes of a campaign started by MsgTimeoutNow: they bypass the leader lease. */
export const CAMPAIGN_TRANSFER: Uint8Array = Uint8Array.from([...'CampaignTransfer'].map((c) => c.charCodeAt(0)));

const NO_DATA = new Uint8Array(0);

type CampaignType = 'pre-election' | 'election' | 'transfer';

export function newMessage(type: MessageType, to: number, from: number, term: number): Message {
  return { type, to, from, term, logTerm: 0, index: 0, entries: EMPTY, commit: 0, reject: false, rejectHint: 0 };
}

function isTransferContext(ctx: Uint8Array | undefined): boolean {
  if (ctx === undefined || ctx.length !== CAMPAIGN_TRANSFER.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER[i]) return false;
  return true;
}

/**
 * Removed ids a node keeps in mind (removedPeers), the latest: a cluster whose members are replaced by
 * new ids would otherwise hold one for each as long as the node runs. A removed node still running is
 * normally stopped long before this many later removals; one forgotten is an unknown id again, which
 * is refused while this node knows a leader.
 */
export const REMOVALS_REMEMBERED = 1024;

export class Raft {
  readonly id: number;
  term = 0;
  vote = None;
  private following = None;
  /**
   * The node known to lead the current term, kept when this node loses sight of it: a pre-candidate
   * is still in that term, which no other node can lead. The only node a snapshot of this term is
   * taken from (RawNode.step): a follower busy storing the leader's snapshot may read no heartbeat
   * for longer than its election timeout, and must not then refuse the snapshot it stored.
   */
  termLeader = None;
  /** The leader this node follows: None while it campaigns, or once it lost sight of it. */
  get lead(): number {
    return this.following;
  }
  set lead(id: number) {
    this.following = id;
    if (id !== None) this.termLeader = id;
  }
  /**
   * Nodes named by an AddNode/AddLearnerNode entry this node's log has held but whose change is not
   * applied yet: a node added by the leader may talk (e.g. win an election, as it counts itself a
   * voter) before a lagging follower applies that change. Each with the first index that names it:
   * a new leader that overwrites the log from there takes the change away.
   */
  readonly pendingPeers = new Map<number, number>();
  /**
   * Nodes a change applied since this node started removed (the latest REMOVALS_REMEMBERED), with this node's term when it applied the change.
   * Such a node does not lead this one again in that term or an earlier one (see RawNode.mayLeadUnknown).
   */
  readonly removedPeers = new Map<number, number>();
  state: StateType = StateFollower;
  isLearner = false;
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;
  readonly readOnly: ReadOnly;

  /** Messages that may leave at once. */
  msgs: Message[] = [];
  /** Messages that may leave only once everything accepted before them is durable (some addressed to self). */
  msgsAfterAppend: Message[] = [];
  readStates: ReadState[] = [];
  /** Contexts of this node's reads its leader refused (see Ready.readsRefused). */
  readsRefused: Uint8Array[] = [];

  leadTransferee = None;
  /** Index of the latest conf change proposed by this leader; no new one until it is applied. */
  pendingConfIndex = 0;
  /** Size (entriesSize) of the entries this leader appended that are not yet committed and applied. */
  uncommittedSize = 0;
  /**
   * ConfChange entries handed out in Ready.committedEntries and not yet passed
   * to applyConfChange: advance() moves `applied` before the caller has really
   * applied them, and a membership change must build on the applied configuration.
   */
  confChangesToApply = 0;
  /**
   * A leader that applied its own removal (or demotion) appends one empty entry and keeps leading
   * until that entry commits (or an election timeout passes): its followers may not know yet that
   * the change committed, and under the configuration they still apply they may need this node's
   * vote while its log is longer than theirs. A majority of the new voters that hold the entry got
   * it in a message carrying a commit index past the change. 0: no hand-off under way.
   */
  handoffIndex = 0;
  /**
   * A leader outside its configuration whose hand-off ended unfinished (it timed out, or a higher term
   * deposed the leader). The new voters may not know that the
   * change committed, and if they are still joint they may need this node's vote, which it refuses
   * (its log holds the entry they missed). So it may campaign, though not a voter, to lead once more
   * and finish the hand-off. Cleared when a hand-off completes or the node is a voter again. Not kept across a
   * restart: then the commit index its refusals carry (refuseVote) tells the new voters the change committed.
   */
  handoffUnfinished = false;
  /** This leader sent MsgTimeoutNow in its term: its lease is void. */
  private timeoutNowSent = false;
  /** Reads that arrived before this leader committed an entry of its term, by context key. */
  private pendingReadIndexMessages = new Map<string, Message>();
  /** Context bytes of pendingReadIndexMessages. */
  private pendingReadIndexBytes = 0;
  /** A commit index some followers have not been sent: it waits for this leader's own write (see bcastCommit). */
  private commitHeld = false;
  /**
   * Where in msgs the heartbeat to each peer not yet handed out stands. A quorum's answer to a round
   * confirms every read taken before the round went out (ReadOnly.advance), so a later round before
   * the next Ready updates that heartbeat instead of sending the peer another.
   */
  private readonly heartbeatAt = new Map<number, number>();

  electionElapsed = 0;
  heartbeatElapsed = 0;
  /** Ticks since this node started: the leader's clock for its lease. */
  ticks = 0;
  randomizedElectionTimeout = 0;
  /** The tick at which this node began to ask for pre-votes in the term it would campaign in. */
  private preVoteSince = 0;

  readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly checkQuorum: boolean;
  private readonly preVote: boolean;
  private readonly maxMsgSize: number;
  private readonly maxUncommittedSize: number;
  private readonly disableProposalForwarding: boolean;
  private readonly random: () => number;

  constructor(c: ResolvedConfig) {
    this.id = c.id;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.maxMsgSize = c.maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize;
    this.disableProposalForwarding = c.disableProposalForwarding;
    this.random = c.random;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady);
    this.trk = new ProgressTracker(c.maxInflightMsgs, c.maxInflightBytes);
    this.readOnly = new ReadOnly(c.readOnlyOption);

    const { hardState, confState } = c.storage.initialState();
    this.trk.setConf(confState, this.raftLog.lastIndex() + 1);
    this.isLearner = this.trk.learners.includes(this.id);
    this.loadState(hardState);
    if (c.applied > 0) {
      if (c.applied > this.raftLog.committed) throw new CorruptStateError(`applied ${c.applied} is beyond commit ${this.raftLog.committed}`);
      this.raftLog.appliedTo(c.applied);
    }
    this.becomeFollower(this.term, None);
  }

  private loadState(hs: HardState): void {
    const last = this.raftLog.lastIndex();
    if (hs.commit > last) throw new CorruptStateError(`hard state commit ${hs.commit} is beyond the last index ${last}`);
    if (hs.commit > this.raftLog.committed) this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  // ---- sending -------------------------------------------------------------

  private msg(type: MessageType, to: number): Message {
    return newMessage(type, to, this.id, this.term);
  }

  private send(m: Message): void {
    // Acknowledgements and votes promise durability: they wait for the write.
    if (m.type === MsgAppResp || m.type === MsgVoteResp || m.type === MsgPreVoteResp) {
      this.msgsAfterAppend.push(m);
    } else {
      this.msgs.push(m);
    }
  }

  /** Sends a MsgApp (or a snapshot) to `to` if its progress allows; false when nothing went out. */
  private maybeSendAppend(to: number, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to)!;
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.term(prevIndex);
    if (prevTerm === undefined) return this.maybeSendSnapshot(to, pr);
    let ents: Entry[] = EMPTY;
    // A full window sends only empty MsgApps: they still get answers, which free the window if messages were lost.
    if (pr.state !== ProgressStateReplicate || !pr.inflights.full()) {
      try {
        ents = this.raftLog.entriesToSend(pr.next, this.maxMsgSize);
      } catch (e) {
        // Storage is reading them; entriesFetched() sends them.
        if (e instanceof EntriesPendingError) return false;
        throw e;
      }
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    const bytes = entriesSize(ents);
    const m = this.msg(MsgApp, to);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = ents;
    m.commit = this.raftLog.committed;
    this.send(m);
    pr.sentEntries(ents.length, bytes);
    if (m.commit > pr.sentCommit) pr.sentCommit = m.commit;
    return true;
  }

  /** Sends to `to` (an empty MsgApp if nothing else); in replicate state streams as much as the window allows. */
  private sendAppend(to: number): void {
    if (!this.maybeSendAppend(to, true)) return;
    if (this.trk.progress.get(to)!.state !== ProgressStateReplicate) return;
    while (this.maybeSendAppend(to, false)) {
      /* keep streaming */
    }
  }

  private maybeSendSnapshot(to: number, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.raftLog.snapshot();
    } catch (e) {
      // Storage is preparing one; the next heartbeat response retries.
      if (e instanceof SnapshotTemporarilyUnavailableError) return false;
      throw e;
    }
    if (snap.meta.index === 0) throw new CorruptStateError(`follower ${to} needs a snapshot but storage has none`);
    pr.becomeSnapshot(snap.meta.index);
    const m = this.msg(MsgSnap, to);
    m.snapshot = snap;
    this.send(m);
    return true;
  }

  private sendHeartbeat(to: number, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to)!;
    // Never tell a follower to commit beyond what it is known to hold.
    const commit = Math.min(pr.match, this.raftLog.committed);
    const at = this.heartbeatAt.get(to);
    let m = at === undefined ? undefined : this.msgs[at];
    if (m === undefined || m.type !== MsgHeartbeat || m.to !== to || m.term !== this.term) {
      m = this.msg(MsgHeartbeat, to);
      this.heartbeatAt.set(to, this.msgs.length);
      this.send(m);
    }
    // Either commit index was within what the follower acknowledged in this term, which it still holds.
    m.commit = Math.max(m.commit, commit);
    // The send tick comes back in the response: the follower reset its election timer after it. The
    // message leaves after this tick whichever round it first belonged to.
    m.index = this.ticks;
    // The latest round's context is the last read held: its answer confirms the earlier ones too.
    if (ctx === undefined) delete m.context;
    else m.context = ctx;
    if (m.commit > pr.sentCommit) pr.sentCommit = m.commit;
  }

  /**
   * The commit index advanced: tell the followers. While the leader's own write of the
   * newly committed entries is still syncing (its followers answered first), a follower in
   * replicate state with no entries to receive is not sent a message carrying only the
   * commit index: it is sent when the leader's own write is durable, which is also when the
   * leader applies those entries and its clients propose again, so that the commit travels
   * with the next entries instead of in a message and a wake-up of its own. A follower
   * learns it no later than the leader's clients do, and a heartbeat carries it too.
   */
  private bcastCommit(): void {
    const self = this.trk.progress.get(this.id);
    // A leader handing off steps down at once: its followers must hear the commit now.
    if (self === undefined || self.match >= this.raftLog.committed || this.handoffIndex > 0) {
      this.commitHeld = false;
      this.bcastAppend();
      return;
    }
    this.commitHeld = true;
    const peers = this.trk.peers;
    for (let i = 0; i < peers.length; i++) {
      const id = peers[i]!;
      if (id === this.id) continue;
      if (this.trk.progress.get(id)!.state !== ProgressStateReplicate) this.sendAppend(id);
      else
        while (this.maybeSendAppend(id, false)) {
          /* entries carry the commit index */
        }
    }
  }

  /** This leader's own write caught up with the commit index it held back from its followers. */
  private releaseHeldCommit(): void {
    this.commitHeld = false;
    const committed = this.raftLog.committed;
    const peers = this.trk.peers;
    for (let i = 0; i < peers.length; i++) {
      const id = peers[i]!;
      if (id !== this.id && this.trk.progress.get(id)!.sentCommit < committed) this.sendAppend(id);
    }
  }

  /** Storage has read entries it was asked for (EntriesPendingError): send what the followers wait for. */
  entriesFetched(): void {
    if (this.state !== StateLeader) return;
    const peers = this.trk.peers;
    for (let i = 0; i < peers.length; i++) {
      const id = peers[i]!;
      if (id === this.id) continue;
      while (this.maybeSendAppend(id, false)) {
        /* as sendAppend streams, but never an empty message */
      }
    }
  }

  bcastAppend(): void {
    const peers = this.trk.peers;
    for (let i = 0; i < peers.length; i++) {
      const id = peers[i]!;
      if (id !== this.id) this.sendAppend(id);
    }
  }

  /** The periodic heartbeat: its answers may also resume a paused probe. */
  private beat(): void {
    for (const pr of this.trk.progress.values()) pr.probeDue = true;
    this.bcastHeartbeat();
  }

  private bcastHeartbeat(ctx: Uint8Array | undefined = this.readOnly.lastPendingContext()): void {
    const peers = this.trk.peers;
    for (let i = 0; i < peers.length; i++) {
      const id = peers[i]!;
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    }
  }

  // ---- roles ---------------------------------------------------------------

  private reset(term: number, retry = false, answersTook = 0): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = None;
      this.termLeader = None;
    }
    this.lead = None;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout(retry, answersTook);
    this.leadTransferee = None;
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    // Our own match is what is durable, never what is merely accepted.
    const stable = Math.min(last, this.raftLog.stableLastIndex());
    for (const [id, pr] of this.trk.progress) pr.reset(id === this.id ? stable : 0, last + 1);
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly.reset();
    this.heartbeatAt.clear();
    this.pendingReadIndexMessages.clear();
    this.pendingReadIndexBytes = 0;
    this.timeoutNowSent = false;
    // A hand-off under way ends here unfinished (a timeout, a higher term), unless its caller saw it through.
    if (this.handoffIndex > 0) this.handoffUnfinished = true;
    this.handoffIndex = 0;
    this.commitHeld = false;
  }

  /**
   * A follower waits [electionTimeout, 2 * electionTimeout) ticks for a leader. A `retry` is
   * the wait of a candidate whose campaign a quorum's pre-votes (or the leader's MsgTimeoutNow)
   * started: the leader is known to be gone, so waiting a whole timeout again before the next
   * campaign only lengthens the outage. When its campaign ends without a winner (the vote
   * split), it campaigns again after [2, max(3, electionTimeout / 2)] ticks: still randomized,
   * so that rivals that tied draw apart; never 1, because the timer starts mid-tick and a retry
   * at the next tick would abandon a campaign whose votes are still being written to the
   * voters' disks. Nor before its votes can come back: the window starts later by twice the
   * ticks its pre-votes took to be answered (`answersTook`), and is as much wider, so that
   * rivals over such links still draw apart; over links slower than the window alone, a
   * candidate gave up before its votes came, again in every term the voters granted it, and
   * no one was elected. The pre-candidate it then becomes keeps that timer. A leader alive for a
   * quorum is never at risk: only a quorum's pre-votes make a candidate, and a voter in the
   * leader's lease refuses them.
   */
  private resetRandomizedElectionTimeout(retry: boolean, answersTook = 0): void {
    const r = this.random();
    if (!(r >= 0 && r < 1)) throw new InvalidConfigError(`random() must return a number in [0, 1), got ${String(r)}`);
    if (retry) {
      const span = Math.max(2, Math.floor(this.electionTimeout / 2) - 1);
      const slow = 2 * answersTook;
      this.randomizedElectionTimeout = 2 + slow + Math.min(span + slow - 1, Math.floor(r * (span + slow)));
    } else {
      this.randomizedElectionTimeout = this.electionTimeout + Math.min(this.electionTimeout - 1, Math.floor(r * this.electionTimeout));
    }
  }

  becomeFollower(term: number, lead: number): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateFollower;
  }

  /** `retry`: see resetRandomizedElectionTimeout. */
  private becomeCandidate(retry: boolean, answersTook = 0): void {
    if (this.state === StateLeader) throw new CorruptStateError('leader cannot become candidate');
    this.reset(this.term + 1, retry, answersTook);
    this.vote = this.id;
    this.state = StateCandidate;
  }

  private becomePreCandidate(): void {
    if (this.state === StateLeader) throw new CorruptStateError('leader cannot become pre-candidate');
    // A pre-candidate changes neither term nor vote: that is the point of PreVote.
    this.trk.resetVotes();
    // Asking again counts from the first time: answers to it, for the same term, still count.
    if (this.state !== StatePreCandidate) this.preVoteSince = this.ticks;
    this.state = StatePreCandidate;
    this.lead = None;
  }

  private becomeLeader(): void {
    if (this.state === StateFollower) throw new CorruptStateError('follower cannot become leader without an election');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateLeader;
    const self = this.trk.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // Conf changes already in the log must be applied before this leader proposes another.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The empty entry of the term: once it commits, everything before it is committed too (Figure 8).
    this.appendEntry([{ index: 0, term: 0, type: EntryNormal, data: NO_DATA }], true);
    // Not a voter: elected only to finish a hand-off (handoffUnfinished), and this entry is it.
    if (self === undefined || self.isLearner) this.handoffIndex = this.raftLog.lastIndex();
  }

  /** Whether this node may campaign. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return ((pr !== undefined && !pr.isLearner) || this.handoffUnfinished) && !this.raftLog.hasNextOrInProgressSnapshot();
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.confChangesToApply > 0) return true;
    const log = this.raftLog;
    return this.hasConfChangeIn(Math.max(log.applied + 1, log.firstIndex()), log.committed);
  }

  /** Whether the log holds a ConfChange entry from `lo` to `hi`, both included. */
  private hasConfChangeIn(lo: number, hi: number): boolean {
    let i = lo;
    while (i <= hi) {
      const ents = this.raftLog.slice(i, hi + 1, 16 * 1024 * 1024);
      for (const e of ents) if (e.type === EntryConfChange) return true;
      i += ents.length;
    }
    return false;
  }

  hup(t: CampaignType): void {
    if (this.state === StateLeader) return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    this.campaign(t);
  }

  private campaign(t: CampaignType): void {
    let voteType: MessageType;
    let term: number;
    if (t === 'pre-election') {
      this.becomePreCandidate();
      voteType = MsgPreVote;
      term = this.term + 1; // the term we would campaign in
    } else {
      // Without PreVote nothing showed that the leader is gone: a failed campaign waits a whole timeout.
      // At most an election timeout: answers slower than that break Raft's timing anyway, and a
      // pre-candidate cut off for long, asking all the while, would count the whole cut.
      const answersTook = this.state === StatePreCandidate ? Math.min(this.electionTimeout, this.ticks - this.preVoteSince) : 0;
      this.becomeCandidate(this.preVote || t === 'transfer', answersTook);
      voteType = MsgVote;
      term = this.term;
    }
    const respType = voteType === MsgVote ? MsgVoteResp : MsgPreVoteResp;
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voters) {
      if (id === this.id) {
        // Our own vote counts once the HardState recording it is durable.
        const m = newMessage(respType, this.id, this.id, term);
        this.send(m);
        continue;
      }
      const m = newMessage(voteType, id, this.id, term);
      m.index = lastIndex;
      m.logTerm = lastTerm;
      if (t === 'transfer') m.context = CAMPAIGN_TRANSFER;
      this.send(m);
    }
  }

  private poll(id: number, granted: boolean): VoteResult {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---- time ----------------------------------------------------------------

  tick(): void {
    this.ticks++;
    if (this.state === StateLeader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.preVote ? 'pre-election' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.handoffIndex > 0) {
        // The hand-off did not finish in an election timeout (the new voters are out of reach):
        // step down all the same, and campaign later to finish it (see handoffUnfinished).
        this.becomeFollower(this.term, None);
        return;
      }
      if (this.checkQuorum && !this.trk.quorumActiveAndReset(this.id)) {
        this.becomeFollower(this.term, None);
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.leadTransferee !== None) this.leadTransferee = None;
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.beat();
    }
  }

  // ---- input ---------------------------------------------------------------

  /** Steps a validated message. Proposals go through propose(). */
  step(m: Message): void {
    // A leader tells a follower to commit only what that follower acknowledged (sendHeartbeat), and
    // a follower acknowledges only what is durable: a heartbeat beyond our log means we lost it.
    // Checked before anything changes, as a malformed message would be.
    if (m.type === MsgHeartbeat && m.term >= this.term && m.commit > this.raftLog.lastIndex()) {
      throw new LogLostError(m.from, m.commit, this.raftLog.lastIndex());
    }
    if ((m.type === MsgVoteResp || m.type === MsgPreVoteResp) && m.reject) this.learnCommit(m);
    /** The election timer before a vote request of a later term reset it: kept if the vote is refused. */
    let timer: [elapsed: number, timeout: number] | null = null;
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MsgVote || m.type === MsgPreVote) {
        const force = isTransferContext(m.context);
        const inLease = this.checkQuorum && this.lead !== None && this.electionElapsed < this.electionTimeout;
        // The leader lease: a follower that heard from a leader recently does not help depose it.
        if (!force && inLease) return;
      }
      if (m.type === MsgPreVote) {
        // Never change term on a pre-vote request.
      } else if (m.type === MsgPreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; the term changes only if the pre-election is won.
      } else if (m.type === MsgApp || m.type === MsgHeartbeat || m.type === MsgSnap) {
        this.becomeFollower(m.term, m.from);
      } else {
        if (m.type === MsgVote && this.state !== StateLeader) timer = [this.electionElapsed, this.randomizedElectionTimeout];
        this.becomeFollower(m.term, None);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote || !this.promotable()) && (m.type === MsgHeartbeat || m.type === MsgApp)) {
        // A stale leader, perhaps cut off and unable to win again: tell it our term so it steps down. Without
        // CheckQuorum or PreVote a voter need not (its campaign carries its term to the cluster), but a learner
        // never campaigns: its term, raised by a vote request, would otherwise keep the leader out for good.
        this.send(this.msg(MsgAppResp, m.from));
      } else if (m.type === MsgPreVote || m.type === MsgVote) {
        // Raft answers a stale request with the later term. A candidate whose configuration names this node,
        // where this node's (behind it) names the candidate a learner, hears of the later term no other way:
        // this node never asks it for a vote.
        this.refuseVote(m);
      }
      return;
    }

    switch (m.type) {
      case MsgHup:
        this.hup(this.preVote ? 'pre-election' : 'election');
        return;
      case MsgVote:
      case MsgPreVote: {
        const canVote = this.vote === m.from || (this.vote === None && this.lead === None) || (m.type === MsgPreVote && m.term > this.term);
        const respType = m.type === MsgVote ? MsgVoteResp : MsgPreVoteResp;
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          // The response carries the request's term: for a pre-vote that is the future term.
          this.send(newMessage(respType, m.from, this.id, m.term));
          if (m.type === MsgVote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.refuseVote(m);
          if (timer !== null) {
            // Raft restarts the election timer when a vote is granted, not when one is refused: a
            // candidate that cannot win (its log behind) must not hold back the node that can. Without
            // PreVote such candidates keep raising the term, and when every request restarted every
            // timer, a joint configuration whose only electable node was outnumbered by them stayed
            // leaderless for fifteen election timeouts and more.
            [this.electionElapsed, this.randomizedElectionTimeout] = timer;
          }
        }
        return;
      }
      case MsgProp:
        this.propose(m);
        return;
    }

    switch (this.state) {
      case StateLeader:
        this.stepLeader(m);
        return;
      case StateCandidate:
      case StatePreCandidate:
        this.stepCandidate(m);
        return;
      default:
        this.stepFollower(m);
    }
  }

  /**
   * Refuses a vote or pre-vote, telling the candidate how far its log is committed as far as this node
   * knows: the commit index, or the candidate's last index if lower, with the term of that entry here.
   * A candidate that applies its membership changes only once it knows them committed may still be
   * in a configuration that needs this node's vote, which a node whose log is longer never gives: a
   * removed leader whose hand-off was cut off is one, and it may no longer know it led one (a
   * restart). Told that the change committed, the candidate applies it and campaigns without this node.
   */
  private refuseVote(m: Message): void {
    const r = this.msg(m.type === MsgVote ? MsgVoteResp : MsgPreVoteResp, m.from);
    r.reject = true;
    const commit = Math.min(this.raftLog.committed, m.index);
    const term = this.raftLog.term(commit);
    if (commit > 0 && term !== undefined) {
      r.commit = commit;
      r.logTerm = term;
    }
    this.send(r);
  }

  /**
   * A refused vote's commit index (see refuseVote). An entry a log shares with a log committed up to it
   * is committed, and with it everything before it (Log Matching), whichever node and term say so. Only
   * a node that knows no leader listens (a leader's followers learn the commit index from it), and only
   * to a commit index that brings a membership change, the one thing a candidate cannot do without: any
   * other commit its next leader's entry commits. As in hup(), a node campaigns only once every
   * committed change is applied: a candidate stops, and campaigns again in the configuration it makes.
   */
  private learnCommit(m: Message): void {
    const log = this.raftLog;
    if (this.lead !== None || m.commit <= log.committed || !log.matchTerm(m.commit, m.logTerm)) return;
    if (!this.hasConfChangeIn(log.committed + 1, m.commit)) return;
    log.commitTo(m.commit);
    if (this.state !== StateFollower) this.becomeFollower(this.term, None);
  }

  /**
   * A proposal. `local` when RawNode built it (its entries are ours to fill in);
   * otherwise it came through the network. Returns where it landed on the
   * leader, null when forwarded.
   */
  propose(m: Message, local = false): ProposalPosition | null {
    if (this.state === StateFollower) {
      if (this.lead === None) throw new ProposalDroppedError('no-leader', `node ${this.id} knows no leader in term ${this.term}`);
      if (this.disableProposalForwarding) throw new ProposalDroppedError('forwarding-disabled');
      // A proposal reaches the leader from the node that made it, as its sender on that connection
      // (the leader holds the records' origin to it): one another node sent here, taking this node
      // for the leader, is dropped, and its maker learns its fate as of a lost message.
      if (!local) throw new ProposalDroppedError('not-originator', `node ${this.id} forwards only its own proposals, not node ${m.from}'s`);
      // In messages of at most maxSizePerMsg (or one entry), as MsgApp goes: a turn's proposal
      // may hold more than the transport carries in one frame, which would drop it every time.
      for (let i = 0; i < m.entries.length;) {
        const n = countWithin(m.entries, i, m.entries.length, this.maxMsgSize);
        const fwd = newMessage(MsgProp, this.lead, this.id, 0);
        fwd.entries = i === 0 && n === m.entries.length ? m.entries : m.entries.slice(i, i + n);
        this.send(fwd);
        i += n;
      }
      return null;
    }
    if (this.state !== StateLeader) throw new ProposalDroppedError('no-leader', `node ${this.id} is campaigning in term ${this.term}`);
    if (!this.trk.progress.has(this.id) || this.handoffIndex > 0)
      throw new ProposalDroppedError('not-member', `leader ${this.id} was removed from the configuration`);
    if (this.leadTransferee !== None) throw new ProposalDroppedError('transfer-pending', `leadership is moving to ${this.leadTransferee}`);

    let confAt = -1;
    for (let i = 0; i < m.entries.length; i++) {
      if (m.entries[i]!.type !== EntryConfChange) continue;
      if (confAt >= 0) throw new ProposalDroppedError('conf-change-pending', 'one conf change per proposal');
      if (this.pendingConfIndex > this.raftLog.applied || this.confChangesToApply > 0) {
        throw new ProposalDroppedError('conf-change-pending', `conf change at ${this.pendingConfIndex} not applied yet (applied ${this.raftLog.applied})`);
      }
      if (!this.committedEntryInCurrentTerm()) throw new ProposalDroppedError('conf-change-pending', 'leader has not committed an entry of its term yet');
      // Refuse a change that cannot apply (removing every voter, entering a joint state while
      // joint, leaving one when not joint, a node named twice) before it enters the log.
      applyConfChangeV2(this.trk.confState(), decodeConfChangeEntry(m.entries[i]!.data));
      confAt = i;
    }

    let es = m.entries;
    if (!local) {
      // A forwarded message may be shared (or duplicated) by the transport: never mutate its entries.
      es = new Array<Entry>(m.entries.length);
      for (let i = 0; i < es.length; i++) es[i] = { index: 0, term: 0, type: m.entries[i]!.type, data: m.entries[i]!.data };
    }
    const first = this.raftLog.lastIndex() + 1;
    if (!this.appendEntry(es)) {
      throw new ProposalDroppedError('uncommitted-size', `${this.uncommittedSize} uncommitted bytes exceed the limit ${this.maxUncommittedSize}`);
    }
    if (confAt >= 0) this.pendingConfIndex = first + confAt;
    this.bcastAppend();
    return { index: first, term: this.term };
  }

  /**
   * Leader: assigns index and term to `es` (mutates them) and appends; false if over the uncommitted
   * budget, unless `always` (an entry the leader needs to finish what it began, which never waits).
   */
  private appendEntry(es: Entry[], always = false): boolean {
    const li = this.raftLog.lastIndex();
    const size = entriesSize(es);
    if (!always && this.maxUncommittedSize > 0 && this.uncommittedSize > 0 && this.uncommittedSize + size > this.maxUncommittedSize) return false;
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      e.term = this.term;
      e.index = li + 1 + i;
    }
    this.uncommittedSize += size;
    this.notePendingPeers(es);
    const last = this.raftLog.append(es);
    // The leader counts itself once these entries are durable: a self-acknowledgement delivered after the write.
    const ack = this.msg(MsgAppResp, this.id);
    ack.index = last;
    this.send(ack);
    return true;
  }

  reduceUncommittedSize(size: number): void {
    this.uncommittedSize = size >= this.uncommittedSize ? 0 : this.uncommittedSize - size;
  }

  committedEntryInCurrentTerm(): boolean {
    return this.raftLog.zeroTerm(this.raftLog.committed) === this.term;
  }

  private maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  // ---- leader --------------------------------------------------------------

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MsgBeat:
        this.beat();
        return;
      case MsgCheckQuorum:
        if (!this.trk.quorumActiveAndReset(this.id)) this.becomeFollower(this.term, None);
        return;
      case MsgReadIndex: {
        const key = readContextKey(m.context!);
        // A read asked again (a lost answer, a new leader, a periodic re-ask) is no new read. One this leader
        // holds needs no heartbeat round of its own: the periodic heartbeat carries the latest held read's
        // context, and a quorum's answer to it confirms every read held before it. A round per re-ask made
        // each waiting read cost a broadcast to every peer at every re-ask.
        if (this.pendingReadIndexMessages.has(key) || this.readOnly.has(key)) return;
        if (!this.admitRead(m)) return;
        if (!this.committedEntryInCurrentTerm()) {
          // Our commit index may lag the previous leader's until an entry of this term commits.
          this.pendingReadIndexMessages.set(key, m);
          this.pendingReadIndexBytes += m.context!.length;
          return;
        }
        if (this.holdForRound(m)) this.bcastHeartbeat(m.context);
        return;
      }
    }

    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MsgAppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MsgHeartbeatResp: {
        pr.recentActive = true;
        // A probe carries the same entries every time: it is retried once per heartbeat interval, not at every
        // answer. The heartbeats of many ReadIndex rounds, held by a network and delivered at once, otherwise
        // each brought back a probe of up to maxSizePerMsg, a gigabyte to encode in one turn.
        if (pr.state !== ProgressStateProbe || pr.probeDue) pr.msgAppFlowPaused = false;
        if (m.index <= this.ticks && m.index > pr.leaseAckTick) pr.leaseAckTick = m.index;
        if (pr.match < this.raftLog.lastIndex() || pr.sentCommit < this.raftLog.committed) this.sendAppend(m.from);
        if (m.context === undefined || m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (acks === undefined || !this.hasQuorum(acks)) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case MsgSnapStatus:
        if (pr.state !== ProgressStateSnapshot) return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for the follower's answer (or a heartbeat response) before probing.
        pr.msgAppFlowPaused = true;
        return;
      case MsgUnreachable:
        // Messages were probably lost; fall back to probing.
        if (pr.state === ProgressStateReplicate) pr.becomeProbe();
        return;
      case MsgTransferLeader: {
        if (pr.isLearner) return;
        const transferee = m.from;
        if (this.leadTransferee !== None) {
          if (this.leadTransferee === transferee) return;
          this.leadTransferee = None;
        }
        if (transferee === this.id) return;
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee);
        return;
      }
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    // A leader never truncates its log within its term, so no follower can hold more of it than it has.
    if (!m.reject && m.index > this.raftLog.lastIndex()) {
      throw new InvalidMessageError(`node ${m.from} acknowledges index ${m.index} beyond the leader's last index ${this.raftLog.lastIndex()}`);
    }
    pr.recentActive = true;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.rejectHintTerm !== undefined && m.rejectHintTerm > 0) {
        // Skip every entry of ours whose term is above the follower's term at the hint.
        nextProbe = this.raftLog.findConflictByTerm(m.rejectHint, m.rejectHintTerm).index;
      }
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === ProgressStateReplicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    const progressed = pr.maybeUpdate(m.index);
    if (!progressed && !(pr.match === m.index && pr.state === ProgressStateProbe)) return;
    if (pr.state === ProgressStateProbe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressStateSnapshot) {
      if (pr.match + 1 >= this.raftLog.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      }
    } else {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastCommit();
      if (this.handoffIndex > 0 && this.raftLog.committed >= this.handoffIndex) {
        // Handed off: a majority of the new voters know the change committed. One of them that
        // holds this whole log campaigns at once, instead of after an election timeout.
        const successor = this.handoffSuccessor();
        if (successor !== None) this.sendTimeoutNow(successor);
        this.becomeFollower(this.term, None);
        this.handoffUnfinished = false;
        return;
      }
    } else if (m.from !== this.id && oldPaused) {
      this.sendAppend(m.from);
    } else if (m.from === this.id && this.commitHeld && pr.match >= this.raftLog.committed) {
      this.releaseHeldCommit();
    }
    if (m.from === this.id) return;
    // The window may have opened: stream as much as it allows.
    while (this.maybeSendAppend(m.from, false)) {
      /* keep sending */
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(m.from);
  }

  /** The lowest voter, other than this node, that holds this leader's whole log; None if there is none. */
  private handoffSuccessor(): number {
    const last = this.raftLog.lastIndex();
    for (const id of this.trk.voters) if (id !== this.id && this.trk.progress.get(id)?.match === last) return id;
    return None;
  }

  private sendTimeoutNow(to: number): void {
    this.timeoutNowSent = true;
    this.send(this.msg(MsgTimeoutNow, to));
  }

  /**
   * Whether no other leader can have been elected: a quorum of voters answered
   * heartbeats sent less than electionTimeout - 1 ticks ago. Each of them reset
   * its election timer after that send and, under CheckQuorum, refuses votes for
   * a full election timeout (the lease); one tick of margin absorbs tick phase.
   * Never again in this term once a MsgTimeoutNow went out: however late it
   * arrives, the campaign it starts skips the followers' lease.
   */
  private inLease(): boolean {
    if (this.timeoutNowSent) return false;
    // While joint, a majority of each half must have answered.
    const since = this.trk.quorumValue((id) => (id === this.id ? this.ticks : this.trk.progress.get(id)!.leaseAckTick));
    return this.ticks - since < this.electionTimeout - 1;
  }

  private hasQuorum(acks: ReadonlySet<number>): boolean {
    return this.trk.hasQuorum(acks);
  }

  /** Answers a read at once when no heartbeat round is needed; otherwise holds it for the next round and returns true. */
  private holdForRound(m: Message): boolean {
    if (this.trk.isSingleton() || (this.readOnly.option === 'lease' && this.inLease())) {
      // Alone, or within the lease: no round trip.
      this.respondToReadIndex(m, this.raftLog.committed);
      return false;
    }
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.readOnly.recvAck(this.id, m.context!);
    return true;
  }

  private respondToReadIndex(req: Message, index: number): void {
    if (req.from === None || req.from === this.id) {
      this.readStates.push({ index, context: req.context! });
      return;
    }
    const r = this.msg(MsgReadIndexResp, req.from);
    r.index = index;
    r.context = req.context!;
    this.send(r);
  }

  /**
   * Refuses a new read when the leader already holds MAX_PENDING_READS (or their contexts'
   * MAX_PENDING_READ_BYTES), waiting for its first commit of the term or for a quorum's
   * answer: without a quorum they would pile up for as long as it leads. Its own read is
   * refused by a throw; a follower's by a rejecting MsgReadIndexResp, so that the follower's
   * caller learns it at once, as the leader's does, instead of asking again until it gives up.
   */
  private admitRead(m: Message): boolean {
    const count = this.readOnly.pendingCount() + this.pendingReadIndexMessages.size;
    const bytes = this.readOnly.bytes + this.pendingReadIndexBytes;
    if (count < MAX_PENDING_READS && (count === 0 || bytes + m.context!.length <= MAX_PENDING_READ_BYTES)) return true;
    if (m.from === None || m.from === this.id) {
      throw new ReadIndexDroppedError('too-many-pending', `leader ${this.id} holds ${count} reads (${bytes} bytes of context) a quorum has not confirmed`);
    }
    const r = this.msg(MsgReadIndexResp, m.from);
    r.reject = true;
    r.context = m.context!;
    this.send(r);
    return false;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.size === 0 || !this.committedEntryInCurrentTerm()) return;
    const msgs = [...this.pendingReadIndexMessages.values()];
    this.pendingReadIndexMessages.clear();
    this.pendingReadIndexBytes = 0;
    let round = false;
    for (const m of msgs) round = this.holdForRound(m) || round;
    // One round for all: it carries the last of them, and its answer confirms those before it.
    if (round) this.bcastHeartbeat();
  }

  // ---- candidate -----------------------------------------------------------

  private stepCandidate(m: Message): void {
    const respType = this.state === StatePreCandidate ? MsgPreVoteResp : MsgVoteResp;
    switch (m.type) {
      case MsgApp:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MsgReadIndex:
        throw new ReadIndexDroppedError('no-leader', `node ${this.id} is campaigning in term ${this.term}`);
      case respType: {
        const res = this.poll(m.from, !m.reject);
        if (res === VoteResult.VoteWon) {
          if (this.state === StatePreCandidate) {
            this.campaign('election');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === VoteResult.VoteLost) {
          this.becomeFollower(this.term, None);
        }
        return;
      }
    }
  }

  // ---- follower ------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MsgTransferLeader:
        // Nothing to do when there is no leader to ask, or the transferee already leads.
        if (this.lead === None || this.lead === m.from) return;
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      case MsgTimeoutNow:
        // The leader chose us: campaign at once, past any lease.
        this.hup('transfer');
        return;
      case MsgReadIndex: {
        if (this.lead === None) throw new ReadIndexDroppedError('no-leader', `node ${this.id} knows no leader in term ${this.term}`);
        // As a proposal, a read reaches the leader from the node that asked, which the leader answers.
        if (m.from !== this.id) throw new ReadIndexDroppedError('not-originator', `node ${this.id} forwards only its own reads, not node ${m.from}'s`);
        this.send({ ...m, to: this.lead, term: 0 });
        return;
      }
      case MsgReadIndexResp:
        // Only the term's leader confirmed a read with a quorum; any other member's answer is a read point nobody checked.
        if (m.from !== this.lead) return;
        if (m.reject) this.readsRefused.push(m.context ?? NO_DATA);
        else this.readStates.push({ index: m.index, context: m.context ?? NO_DATA });
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    const log = this.raftLog;
    if (m.index < log.committed) {
      this.ack(m.from, log.committed);
      return;
    }
    // Where these entries overwrite the log, if they do and it names nodes being added.
    const cut = this.pendingPeers.size > 0 ? log.findConflict(m.entries) : 0;
    const last = log.lastIndex();
    const lastNew = log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      if (cut !== 0 && cut <= last) for (const [id, at] of this.pendingPeers) if (at >= cut) this.pendingPeers.delete(id);
      this.notePendingPeers(m.entries);
      this.ack(m.from, lastNew);
      return;
    }
    // Reject with a hint: our last index at or below theirs whose term is at most theirs.
    const hint = log.findConflictByTerm(Math.min(m.index, log.lastIndex()), m.logTerm);
    const r = this.msg(MsgAppResp, m.from);
    r.index = m.index;
    r.reject = true;
    r.rejectHint = hint.index;
    r.rejectHintTerm = hint.term;
    this.send(r);
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(Math.min(m.commit, this.raftLog.lastIndex()));
    const r = this.msg(MsgHeartbeatResp, m.from);
    r.index = m.index;
    if (m.context !== undefined) r.context = m.context;
    this.send(r);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot!;
    this.ack(m.from, this.restore(s) ? this.raftLog.lastIndex() : this.raftLog.committed);
  }

  /**
   * Acknowledges our log up to `index`. The ack leaves only once that is durable, and a
   * later message handled before then may truncate the log below it: the ack carries the
   * entry's term in logTerm, so that ready() can drop it if the entry is no longer there.
   */
  private ack(to: number, index: number): void {
    const r = this.msg(MsgAppResp, to);
    r.index = index;
    r.logTerm = this.raftLog.zeroTerm(index);
    this.send(r);
  }

  /** Installs a snapshot from the leader; false when it brings nothing new. */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.raftLog.committed) return false;
    if (this.state !== StateFollower) {
      // Only a follower of the sender may restore; anything else is a bug upstream. Be safe.
      this.becomeFollower(this.term + 1, None);
      return false;
    }
    const cs = s.meta.conf;
    if (!members(cs).has(this.id)) return false;
    if (this.raftLog.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold that entry: just move commit forward.
      this.raftLog.commitTo(s.meta.index);
      return false;
    }
    this.raftLog.restore(s);
    // The log is gone, and with it every change it held: the snapshot's configuration says who is a member.
    this.pendingPeers.clear();
    this.trk.setConf(cs, this.raftLog.lastIndex() + 1);
    this.isLearner = cs.learners.includes(this.id);
    return true;
  }

  // ---- membership ----------------------------------------------------------

  private notePendingPeers(es: Entry[]): void {
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      if (e.type !== EntryConfChange) continue;
      let cc: ConfChangeV2;
      try {
        cc = decodeConfChangeEntry(e.data);
      } catch {
        continue; // refused again, with its error, when applied
      }
      for (const c of cc.changes) if (c.type !== ConfChangeType.RemoveNode && !this.pendingPeers.has(c.nodeId)) this.pendingPeers.set(c.nodeId, e.index);
    }
  }

  /** Whether `id` may send this node messages: a member, or a node a logged change is adding. */
  knows(id: number): boolean {
    // Without any configuration (a node that learns it from its log) there is nothing to check against.
    return this.trk.progress.size === 0 || this.trk.progress.has(id) || this.pendingPeers.has(id);
  }

  applyConfChange(change: ConfChange | ConfChangeV2): ConfState {
    const cc: ConfChangeV2 = isConfChangeV2(change) ? change : { transition: 'auto', changes: [change] };
    // Counted even if the change is refused below: the entry has been dealt with.
    if (this.confChangesToApply > 0) this.confChangesToApply--;
    for (const c of cc.changes) this.pendingPeers.delete(c.nodeId);
    const before = members(this.trk.confState());
    const cs = applyConfChangeV2(this.trk.confState(), cc);
    // Only a node that left the configuration altogether is never heard again (an outgoing voter still votes).
    const after = members(cs);
    for (const id of before) {
      if (after.has(id)) continue;
      this.removedPeers.set(id, this.term);
      if (this.removedPeers.size > REMOVALS_REMEMBERED) this.removedPeers.delete(this.removedPeers.keys().next().value!);
      // Cleared otherwise only at a new term: a leader that replaced members with new ids would keep one per id it ever had.
      this.heartbeatAt.delete(id);
    }
    for (const id of after) this.removedPeers.delete(id);
    this.trk.setConf(cs, this.raftLog.lastIndex() + 1);
    this.isLearner = this.trk.learners.includes(this.id);
    if (this.trk.isVoter(this.id)) this.handoffUnfinished = false;
    if (this.state !== StateLeader) return cs;
    if (!this.trk.progress.has(this.id) || this.isLearner) {
      // Removed (or demoted): a leader outside the voters must not keep leading, but it hands off
      // first (see handoffIndex). While joint, a leader of the outgoing half only still leads: it
      // takes the configuration out of the joint state.
      if (this.handoffIndex === 0) {
        this.appendEntry([{ index: 0, term: 0, type: EntryNormal, data: NO_DATA }], true);
        this.handoffIndex = this.raftLog.lastIndex();
        // A whole election timeout for it, not what is left of the check-quorum round.
        this.electionElapsed = 0;
        this.bcastAppend();
      }
      return cs;
    }
    if (this.maybeCommit()) {
      // A smaller quorum (a voter removed or demoted) may already hold more entries.
      this.bcastAppend();
    } else {
      for (const id of this.trk.peers) if (id !== this.id) this.maybeSendAppend(id, false);
    }
    if (this.leadTransferee !== None && !this.trk.isVoter(this.leadTransferee)) this.leadTransferee = None;
    this.maybeAutoLeave();
    return cs;
  }

  /**
   * A leader whose configuration is joint with autoLeave proposes the leave-joint entry
   * itself, once every earlier change is applied (the joint one included). Called after a
   * change is applied and after every advance (a new leader inherits a joint configuration).
   */
  maybeAutoLeave(): void {
    if (this.state !== StateLeader || !this.trk.autoLeave || !this.trk.isJoint()) return;
    if (this.confChangesToApply > 0 || this.pendingConfIndex > this.raftLog.applied) return;
    if (!this.trk.progress.has(this.id)) return;
    const leave: Entry = { index: 0, term: 0, type: EntryConfChange, data: encodeConfChangeV2({ transition: 'auto', changes: [] }) };
    // Over the uncommitted budget: the next advance tries again, once entries have committed.
    if (!this.appendEntry([leave])) return;
    this.pendingConfIndex = this.raftLog.lastIndex();
    this.bcastAppend();
  }
}

// The vocabulary of the consensus core. Names follow etcd/raft so that readers
// of the Raft paper and of etcd find their way. This file is the contract
// between the core (src/raft), the storage layer and the driver (src/log):
// extend it, but do not rename.

/** Node ids are positive integers; 0 means "none". */
export const None = 0;

/**
 * Largest term and index a message may carry. Far beyond any real cluster's
 * reach, yet leaves room below 2^53 so that `term + 1` and `index + n` stay
 * exact integers: a peer cannot push a node to a term it can never leave.
 */
export const MAX_TERM = 2 ** 53 - 2 ** 32;
export const MAX_INDEX = MAX_TERM;

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before a vote or an acknowledgement leaves the node. */
export interface HardState {
  term: number;
  vote: number;
  commit: number;
}

/**
 * A configuration. Outside a joint change only `voters` and `learners` are set.
 * During a joint change (etcd's joint consensus) `voters` is the incoming
 * configuration, `votersOutgoing` the one being left (both must agree on every
 * decision), `learnersNext` the voters of the outgoing configuration that turn
 * learners when the joint state is left, and `autoLeave` says whether the leader
 * leaves the joint state by itself. Absent parts are empty (false): a non-joint
 * configuration compares equal to `{ voters, learners }`.
 */
export interface ConfState {
  voters: number[];
  learners: number[];
  votersOutgoing?: number[];
  learnersNext?: number[];
  autoLeave?: boolean;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  AddLearnerNode = 2,
}

/** One membership change; `context` is opaque to the core (the driver puts the peer's address there). */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: number;
  context?: Uint8Array;
}

/**
 * How a ConfChangeV2 moves through the joint configuration:
 * - 'auto': when at most one voter changes, the change applies directly (as a single
 *   change does); otherwise the configuration becomes joint and the leader proposes
 *   the leave-joint entry itself once the joint configuration is applied.
 * - 'explicit': the configuration always becomes joint, and stays so until the
 *   caller proposes a ConfChangeV2 without changes (leave joint).
 */
export type ConfChangeTransition = 'auto' | 'explicit';

/**
 * Several membership changes applied atomically (etcd's ConfChangeV2). Each change
 * carries its own opaque context. No changes at all means "leave the joint configuration".
 */
export interface ConfChangeV2 {
  transition: ConfChangeTransition;
  changes: ConfChange[];
}

export enum MessageType {
  MsgHup = 0,
  MsgBeat = 1,
  MsgProp = 2,
  MsgApp = 3,
  MsgAppResp = 4,
  MsgVote = 5,
  MsgVoteResp = 6,
  MsgSnap = 7,
  MsgHeartbeat = 8,
  MsgHeartbeatResp = 9,
  MsgUnreachable = 10,
  MsgSnapStatus = 11,
  MsgCheckQuorum = 12,
  MsgTransferLeader = 13,
  MsgTimeoutNow = 14,
  MsgReadIndex = 15,
  MsgReadIndexResp = 16,
  MsgPreVote = 17,
  MsgPreVoteResp = 18,
}

/**
 * A message between nodes (or from the driver to its own node). Plain data,
 * so a transport can encode it with msgpack as it is.
 */
export interface Message {
  type: MessageType;
  to: number;
  from: number;
  term: number;
  /** MsgApp: term of the entry at `index` (prevLogTerm). Votes: the candidate's last log term. */
  logTerm: number;
  /**
   * MsgApp: prevLogIndex. Votes: the candidate's last log index. Responses: the index acknowledged or rejected.
   * MsgHeartbeat / MsgHeartbeatResp: the leader's tick when it sent the heartbeat (echoed back; the lease).
   */
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  /** On a rejected MsgAppResp: the follower's hint of where the leader should look next. */
  rejectHint: number;
  /** On a rejected MsgAppResp: the term of the entry at rejectHint, so the leader skips back a whole term. */
  rejectHintTerm?: number;
  /** ReadIndex request context, or the campaign-transfer marker on votes. */
  context?: Uint8Array;
}

export enum StateType {
  StateFollower = 0,
  StateCandidate = 1,
  StateLeader = 2,
  StatePreCandidate = 3,
}

export enum ProgressStateType {
  ProgressStateProbe = 0,
  ProgressStateReplicate = 1,
  ProgressStateSnapshot = 2,
}

/** Volatile state, reported in a Ready when it changes; never persisted. */
export interface SoftState {
  lead: number;
  state: StateType;
}

/** A linearizable read point: once `index` is applied, a read tagged `context` may be served. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/**
 * Everything the caller must do after the core changed. The order for one Ready:
 *  1. send `messages` at once (the leader's MsgApps go out while its own disk write runs);
 *  2. persist `snapshot`, `entries` and `hardState` (entries may overwrite a suffix);
 *  3. call `advance(rd)` as soon as the Ready is handed out (the next Ready may be taken
 *     while this one's write is still in flight);
 *  4. once step 2 is durable: call `persisted(rd)` and send the messages it returns
 *     (`messagesAfterPersist` less any acknowledgement a later Ready made untrue);
 *  5. apply `committedEntries` in order (after `snapshot`, if any).
 */
export interface Ready {
  softState?: SoftState;
  /** Set when term, vote or commit changed. */
  hardState?: HardState;
  readStates: ReadState[];
  /**
   * Contexts of reads this node forwarded that its leader refused: it holds as many reads as it may
   * (MAX_PENDING_READS) unconfirmed by a quorum. No answer will come for them; absent when there are none.
   */
  readsRefused?: Uint8Array[];
  /** To append to stable storage. */
  entries: Entry[];
  /** To install in stable storage and restore into the state machine. */
  snapshot?: Snapshot;
  /** Committed entries to apply, in order, bounded by maxCommittedSizePerReady. */
  committedEntries: Entry[];
  /** Safe to send before anything in this Ready is durable. */
  messages: Message[];
  /**
   * Votes, MsgAppResps and the like, which promise durability. Never sent from here: `persisted(rd)` returns
   * the ones still true once this Ready's entries, hardState and snapshot are durable.
   */
  messagesAfterPersist: Message[];
  /** True when entries, hardState or snapshot must be fsynced. */
  mustSync: boolean;
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressStateType;
  /** Messages in flight (replicate state). */
  inflight: number;
  inflightBytes: number;
  paused: boolean;
  /** The leader heard from it within the last election timeout. */
  recentActive: boolean;
  isLearner: boolean;
}

export interface Status {
  id: number;
  term: number;
  vote: number;
  commit: number;
  applied: number;
  lead: number;
  state: StateType;
  leadTransferee: number;
  conf: ConfState;
  /** Only on the leader. */
  progress?: Record<number, ProgressStatus>;
}

/** The leader's result of a proposal: where its entries landed. */
export interface ProposalPosition {
  /** Index of the first proposed entry. */
  index: number;
  term: number;
}

/** Stable storage as the core sees it: synchronous, read-only (the caller writes). */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most maxSize bytes but always at least one if any. Throws CompactedError below firstIndex. */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /**
   * As entries(), for a message to a follower. Optional: a storage that must read older
   * entries from disk may instead throw EntriesPendingError while it reads them off the
   * caller's thread, and call RawNode.entriesFetched() once they are ready.
   */
  entriesToSend?(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i; valid for firstIndex()-1 (the snapshot's term) .. lastIndex(). Throws CompactedError below. */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The latest snapshot. May throw SnapshotTemporarilyUnavailableError. */
  snapshot(): Snapshot;
}

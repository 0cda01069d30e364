import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { LogLostError, NoLeaderError, ProposalDroppedError, ReadIndexDroppedError, StepPeerNotFoundError } from '../raft/errors.js';
import { members as confMembers } from '../raft/changer.js';
import { RawNode } from '../raft/raw-node.js';
import {
  EntryType,
  MessageType,
  StateType,
  type ConfState,
  type Entry,
  type Message,
  type HardState,
  type Ready,
  type Snapshot,
  type SoftState,
} from '../raft/types.js';
import type { LogStore } from '../storage/log-store.js';
import { RaftStorage, commitsConfChange } from '../storage/raft-storage.js';
import { FileSnapshotStore, type SnapshotStore } from '../storage/snapshot-store.js';
import { openInstanceId } from '../storage/instance-id.js';
import { PeerInstanceFile } from '../storage/peer-instances.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import type { TlsOptions } from '../transport/tcp-transport.js';
import type { Secret } from '../transport/auth.js';
import type { Transport } from '../transport/transport.js';
import { isPeerAddress } from '../transport/address.js';
import { defer } from '../defer.js';
import { guardedLogger, silentLogger, type Logger } from '../logger.js';
import { Wal, WalError, type WalStats } from '../wal/index.js';
import { codeOf } from '../errors.js';
import { RaftError } from '../raft/errors.js';
import { StorageError } from '../storage/errors.js';
import { TransportError } from '../transport/errors.js';
import { realClock, type Clock } from './clock.js';
import { AppendQueue } from './append-queue.js';
import { checkedOnArrival } from './checked-snapshots.js';
import { CommittedEntries } from './committed-entries.js';
import { prepareDataDir } from './data-dir.js';
import { Deadlines } from './deadlines.js';
import {
  ClosedError,
  FatalError,
  LogCorruptError,
  LogError,
  InvalidArgumentError,
  NotMemberError,
  OpenAbortedError,
  OpenFailedError,
  OverloadedError,
  RecordTooLargeError,
  type FatalErrorCode,
} from './errors.js';
import { Membership, checkNodeId, type MembershipChange } from './membership.js';
import { MetricCounters, turnNow, type LogMetrics } from './metrics.js';
import { NoLeaderTimer } from './no-leader.js';
import { resolveOptions, validateCredentials, validateDeps, type ReplicatedLogOptions, type ResolvedOptions } from './options.js';
import { openPeerTransport, requirePeerAuthentication } from './peer-transport.js';
import { Proposals, type AppendResult } from './proposals.js';
import { ReadBarriers } from './read-barriers.js';
import { SnapshotRestore } from './snapshot-restore.js';
import { logMetrics, logStatus, ROLE, walStats, type LogStatus, type NodeView } from './status.js';
import { BatchReader, recordOrigin, unreadable } from './record-batch.js';
import { forwardedProposalFault } from './forwarded-proposal.js';
import { HeldProposals } from './held-proposals.js';
import { RefusalLog } from '../refusal-log.js';
import { Removal } from './removal.js';
import { decodeSnapshotData } from './snapshot-data.js';
import { SnapshotTaking } from './snapshot-taking.js';
import { applyReturnedPromise, attribute, isPromise, stateMachineFailed } from './state-machine-failure.js';
import { NullStateMachine, type LogEntry, type StateMachine } from './state-machine.js';

/** The parts the driver runs on; the simulator supplies its own. */
export interface ReplicatedLogDeps {
  wal: LogStore;
  snapshots: SnapshotStore;
  transport: Transport | null;
  clock: Clock;
  /** In [0, 1) with at least 32 random bits: election jitter and this node's session id. */
  random: () => number;
  logger: Logger;
  /** The data directory's record of its peers' instances (null when the log was given its WAL): a removed member's is forgotten. */
  peerInstances: { forget(peers: Iterable<number>, index: number): Promise<void>; settled(): Promise<void> } | null;
}

export type { LogStatus } from './status.js';

export type { MembershipChange } from './membership.js';

/** What a log announces, as an EventEmitter: `log.on('leader', ({ id, term }) => ...)`. */
export interface LogEvents {
  /** The leader this node knows changed, or the same node leads at a new term: `id` 0 means none is known now. */
  leader: [{ id: number; term: number }];
  /** The node stopped after a storage or transport failure, a state machine's error, or on a corrupt entry (status().role is then 'fatal'). */
  fatal: [{ code: FatalErrorCode; message: string }];
}

/**
 * The executor of every append's promise. A module-level function hands out the
 * promise's resolvers with no closure allocated per append; `add` takes them at once.
 */
const captured: { resolve: (r: never) => void; reject: (e: Error) => void } = { resolve: () => undefined, reject: () => undefined };
function capture(resolve: (r: never) => void, reject: (e: Error) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

/**
 * A durable, replicated, ordered log. Records appended on any node are committed
 * by a majority, made durable, and applied in order to the state machine of every
 * node. With no peers it is a crash-safe local log with the same API.
 */
export class ReplicatedLog<R = unknown> extends EventEmitter<LogEvents> {
  /** @internal */
  private readonly node: RawNode;
  /** @internal */
  private readonly counters = new MetricCounters();
  /** Scratch for the apply loop, which reads every batch without allocating. @internal */
  private readonly batch = new BatchReader();
  /** @internal */
  private readonly proposals: Proposals<R>;
  /** @internal */
  private readonly appends: AppendQueue;
  /** @internal */
  private pumpScheduled = false;
  /** @internal */
  private pumping = false;
  /** A Ready that applies a membership change waits for its commit to be durable; no other Ready runs meanwhile. @internal */
  private applyHeld = false;
  /** Readies handed to the storage, oldest first, and whether each is durable yet. @internal */
  private readonly persisting: Array<{ rd: Ready; durable: boolean }> = [];
  /** @internal */
  private closed = false;
  /** close() was called: no new work is accepted. @internal */
  private closing = false;
  /** The storage's figures as the WAL was closed, which status() and metrics() report from then on. @internal */
  private final: { lastIndex: number; firstIndex: number; walStats: WalStats | null } | null = null;
  /** @internal */
  private fatal: FatalError | LogCorruptError | undefined;
  /** @internal */
  private lead = 0;
  /** What 'leader' last announced. @internal */
  private announced = { id: 0, term: 0 };
  /** @internal */
  private role = StateType.StateFollower;
  /** @internal */
  private applied: number;
  /** @internal */
  private readonly membership: Membership;
  /** @internal */
  private readonly barriers: ReadBarriers;
  /** @internal */
  private readonly noLeader: NoLeaderTimer;
  /** Whether a change took this node out of the configuration: what it is asked is then refused at once. @internal */
  private readonly removal: Removal;
  /** Barriers, membership changes and leadership transfers: settled in time, or when the log stops. @internal */
  private readonly deadlines: Deadlines;
  /** Called once at the next change of leader (and when the log stops); one that gives up first takes itself out. @internal */
  private readonly leaderWaiters = new Set<() => void>();
  /** Run at every tick: the leadership transfers under way. @internal */
  private readonly tickWaiters = new Set<() => void>();
  /** The leadership transfers under way, answered NO_LEADER when this node turns leaderless. @internal */
  private readonly transferRejects = new Set<(err: Error) => void>();
  /** @internal */
  private readonly committed: CommittedEntries;
  /** The index of the last snapshot restored into the state machine: entries() serves nothing at or below it. @internal */
  private snapshotFloor = 0;
  /** Snapshots this node takes of its state machine, and the index of the latest, taken or received. @internal */
  private readonly snapshotTaking: SnapshotTaking;
  /**
   * The forgetting of every member removed so far, rejected if one failed. A snapshot past a
   * removal is not made the restart point before it: a restart applies only the entries above
   * that snapshot, so a forgetting lost in a crash would never be made again. @internal
   */
  private forgotten: Promise<unknown> = Promise.resolve();
  /** @internal */
  private readonly restore: SnapshotRestore;
  /**
   * Received snapshots whose spools wait for raft's answer: a Ready that hands one over takes it
   * out; those left when raft has no Ready to give were refused or superseded, and are deleted.
   * @internal
   */
  private readonly spooled = new Set<Snapshot>();
  /** Proposals forwarded by peers and refused (see forwarded-proposal.ts), logged at a bounded rate. @internal */
  private readonly refusedProposals: RefusalLog;
  /** Proposals forwarded by peers while this leader hands leadership on (see held-proposals.ts). @internal */
  private readonly heldProposals: HeldProposals;
  /** @internal */
  private stopTicking: () => void = () => {};
  /** @internal */
  private closePromise: Promise<void> | undefined;
  /** Aborted, with the error the log stopped on, when it stops: a state machine's call still running is abandoned then. @internal */
  private readonly halt = new AbortController();

  private constructor(
    readonly id: number,
    /** @internal */ private readonly storage: RaftStorage,
    /** @internal */ private readonly deps: ReplicatedLogDeps,
    /** @internal */ private readonly sm: StateMachine<R>,
    /** @internal */ private readonly opts: Readonly<ResolvedOptions<R>>,
    members: Map<number, string>,
  ) {
    super();
    // The WAL syncs a short write inline when its disk is fast, holding the event loop but
    // saving the thread hand-off per batch. Before it does, what this turn sent goes out:
    // a leader's followers then write the same entries while its own write syncs, instead
    // of waiting for the end of the turn.
    if (deps.transport?.flush !== undefined) deps.wal.beforeInlineWrite = this.flushSends;
    // A follower far behind is sent entries read off the event loop: raft sends them once read.
    storage.onEntriesFetched = (err) => {
      if (this.closed) return;
      try {
        if (err !== undefined) throw err;
        this.node.entriesFetched();
      } catch (e) {
        this.fail(e); // as pump() does: a read that finds damage stops the node
        return;
      }
      this.schedulePump();
    };
    const snap = storage.snapshot();
    this.applied = snap.meta.index;
    this.node = new RawNode({
      id,
      electionTick: opts.electionTicks,
      heartbeatTick: opts.heartbeatTicks,
      storage,
      applied: this.applied,
      checkQuorum: true,
      preVote: true,
      readOnlyOption: 'safe',
      maxInflightBytes: opts.maxInflightBytes,
      random: deps.random,
    });
    // 64 random bits per open, beside the node id: no two live sessions share an origin.
    const session = new Uint8Array(8);
    const view = new DataView(session.buffer);
    view.setUint32(0, Math.floor(deps.random() * 0x1_0000_0000) >>> 0);
    view.setUint32(4, Math.floor(deps.random() * 0x1_0000_0000) >>> 0);
    const c = this.counters;
    this.proposals = new Proposals<R>(recordOrigin(id, session), (err, started) => {
      if (err === null) c.proposalsCommitted++;
      else c.appendFailed((err as { code?: string }).code ?? 'UNKNOWN');
      c.appendDuration.observe((turnNow() - started) / 1000);
    });
    this.appends = new AppendQueue(this.proposals as Proposals<unknown>, deps.clock, opts.timeoutMs, opts.tickMs, {
      lead: () => this.lead,
      node: this.node,
      fail: (err) => this.fail(err),
      // What the proposal sends goes out now, with what waited for it (sendingLater), and before
      // the leader's own write of it is handed to the WAL.
      pump: () => {
        this.pump();
        this.flushSends();
      },
    });
    this.deadlines = new Deadlines(deps.clock, opts.timeoutMs);
    this.refusedProposals = new RefusalLog(deps.logger, 'log: refused forwarded proposals', deps.clock);
    this.heldProposals = new HeldProposals(opts.maxPendingBytes, opts.maxPendingAppends);
    this.noLeader = new NoLeaderTimer(opts.electionTicks, opts.tickMs);
    this.barriers = new ReadBarriers(
      {
        readIndex: (ctx) => this.node.readIndex(ctx),
        leader: () => this.lead,
        applied: () => this.applied,
        stopped: () => this.closed,
        schedulePump: () => this.schedulePump(),
        refused: (code) => this.counters.readsRefused.add(code),
      },
      this.proposals.origin,
      deps.clock,
      opts.electionTicks,
    );
    const t = deps.transport;
    const membershipHost = {
      node: this.node,
      // A member removed is forgotten with its instance: its id may be added back on an empty directory.
      peers:
        t === null
          ? null
          : { addPeer: (peer: number, address: string) => t.addPeer(peer, address), removePeer: (peer: number, index: number) => this.removePeer(peer, index) },
      deadlines: this.deadlines,
      logger: deps.logger,
      refusal: () => this.refusal(),
      stopped: () => this.closed,
      leader: () => this.lead,
      isLeader: () => this.role === StateType.StateLeader,
      lastIndex: () => storage.lastIndex(),
      retryLater: (fn: () => void) => void deps.clock.setTimeout(fn, opts.tickMs),
      pump: () => this.pump(),
    };
    this.membership = new Membership(id, membershipHost, members, storage.initialState().confState, opts.promoteMaxLag, opts.electionTicks);
    const takingHost = {
      sm: this.sm,
      membership: this.membership,
      compact: (index: number, term: number, conf: ConfState, data: AsyncIterable<Uint8Array>) =>
        storage.compact(index, term, conf, data, opts.snapshotCatchUpEntries, this.forgotten),
      term: (index: number) => storage.term(index),
      applied: () => this.applied,
      stopped: () => this.closed,
      restoring: () => this.restore.active,
      counters: this.counters,
      clock: deps.clock,
      logger: deps.logger,
      fail: (err: unknown) => this.fail(err),
    };
    this.snapshotTaking = new SnapshotTaking(takingHost, opts, snap.meta.index);
    // Started without `join`, a node was a member from its bootstrap; started with it, one that holds
    // a snapshot was, since the core refuses a snapshot that does not name it. Either, restarted on a
    // snapshot that holds its own removal, is not in the configuration it opens with, and was removed.
    const wasMember = opts.join !== true || snap.meta.index > 0 || confMembers(this.membership.conf).has(id);
    const removalHost = { conf: () => this.membership.conf, logger: deps.logger, proposals: this.proposals, appends: this.appends, barriers: this.barriers };
    this.removal = new Removal(id, removalHost, wasMember);
    this.committed = new CommittedEntries({
      storage,
      snapshotFloor: () => this.snapshotFloor,
      applied: () => this.applied,
      stopped: () => this.closed,
      refusal: () => this.refusal(),
      fatal: () => this.fatal,
      fail: (err) => this.fail(err),
    });
    this.restore = new SnapshotRestore({
      installedSnapshot: () => storage.snapshot(),
      restore: async (snap) => {
        await this.forgetSkippedMembers(snap);
        return this.restoreFrom(snap);
      },
      applyEntries: (entries) => this.asIfPumping(() => this.applyEntries(entries)),
      stopped: () => this.closed,
      stopReason: () => this.fatal ?? new ClosedError(),
      onDrained: () => this.schedulePump(),
      fail: (err) => this.fail(err),
    });
    storage.beforeInstall = (snap) => this.restore.beforeInstall(snap);
  }

  /**
   * Opens (creating if needed) the node's data directory and starts the node. Any failure
   * rejects with a coded error, after the directory lock, files and ports taken so far are
   * released. It waits for the state machine's restore(), which only `signal` bounds.
   */
  static async open<R = unknown>(options: ReplicatedLogOptions<R>, givenDeps?: Partial<ReplicatedLogDeps>): Promise<ReplicatedLog<R>> {
    const o = resolveOptions(options);
    const deps = validateDeps(givenDeps);
    const { id, peers } = o;
    const memberIds = Object.keys(peers).map(Number);
    const listen = o.listen ?? peers[id];
    const tcp = deps?.transport === undefined && (memberIds.length > 1 || listen !== undefined);
    if (tcp) requirePeerAuthentication(o);
    const logger = guardedLogger(o.logger ?? deps?.logger ?? silentLogger).child({ node: id });
    let wal: LogStore | undefined = deps?.wal;
    let transport: Transport | null = null;
    let log: ReplicatedLog<R> | undefined;
    const { signal } = o;
    const abortIfAsked = (): void => {
      if (signal?.aborted === true) throw new OpenAbortedError(signal.reason);
    };
    // Stops what start() waits for (a restore, the first election); the checks around it catch the rest.
    const abandon = (): void => log?.shutdown(new OpenAbortedError(signal!.reason));
    signal?.addEventListener('abort', abandon, { once: true });
    try {
      abortIfAsked();
      if (wal === undefined && deps?.snapshots === undefined) {
        await prepareDataDir(o.dataDir);
      }
      wal ??= await Wal.open(join(o.dataDir, 'wal'), {
        segmentBytes: o.segmentBytes,
        sync: o.sync,
        preallocate: o.preallocate,
        cacheBytes: o.cacheBytes,
        logger,
      });
      // Not made where the WAL records a snapshot: its file is missing (RaftStorage.open says so), and
      // an empty snapshots/ left there would be in the way of the one put back.
      const snapshots = deps?.snapshots ?? (await FileSnapshotStore.open(join(o.dataDir, 'snapshots'), { create: wal.snapshot === null }));
      // A joining node is not in the configuration it starts from: it never campaigns on its
      // own, and learns its membership from the leader (the entry that added it, or a snapshot).
      const bootstrap: ConfState =
        o.join === true ? { voters: memberIds.filter((m) => m !== id), learners: [] } : { voters: memberIds.length > 0 ? memberIds : [id], learners: [] };
      const storage = await RaftStorage.open(wal, snapshots, bootstrap, logger);
      // Made before the node talks to anyone, while the WAL's lock keeps any other process out.
      // The transport meets peers only once the log has started: `log` is set by then.
      const applied = (): number => log?.applied ?? 0;
      const instance = deps?.wal === undefined ? { id: await openInstanceId(o.dataDir), peers: await PeerInstanceFile.open(o.dataDir), applied } : undefined;
      const random = deps?.random ?? (() => randomInt(0x1_0000_0000) / 0x1_0000_0000);
      transport = deps?.transport !== undefined ? deps.transport : tcp ? openPeerTransport(o, listen, snapshots, logger, instance) : null;
      log = new ReplicatedLog<R>(
        id,
        storage,
        {
          wal,
          snapshots,
          transport,
          clock: deps?.clock ?? realClock,
          random,
          logger,
          peerInstances: deps?.peerInstances !== undefined ? deps.peerInstances : (instance?.peers ?? null),
        },
        o.stateMachine ?? (new NullStateMachine() as unknown as StateMachine<R>),
        o,
        new Map(memberIds.length > 0 ? Object.entries(peers).map(([k, v]) => [Number(k), v]) : [[id, listen ?? 'embedded']]),
      );
      abortIfAsked();
      await log.start();
      abortIfAsked();
      return log;
    } catch (err) {
      // Release the directory lock and the port, and report the first error, not a
      // secondary one from the cleanup.
      const failure = coded(err);
      logger.debug({ err: failure }, `open of ${o.dataDir} failed: ${failure.message}`);
      if (log !== undefined) {
        log.shutdown(failure);
        await log.release();
      } else {
        await transport?.close().catch(() => undefined);
        await wal?.close().catch(() => undefined);
      }
      throw failure;
    } finally {
      signal?.removeEventListener('abort', abandon);
    }
  }

  /** @internal */
  private async start(): Promise<void> {
    const held = this.storage.snapshot();
    if (held.meta.index > 0) (await this.restoreFrom(held))();
    const t = this.deps.transport;
    if (t !== null) {
      this.membership.linkPeers();
      await t.start({
        onMessage: (m) => this.onMessage(m),
        onUnreachable: (peer) => this.report(() => this.node.reportUnreachable(peer)),
        onSnapshotStatus: (peer, ok) => this.report(() => this.node.reportSnapshot(peer, ok)),
        onRemoved: (peer) => {
          if (!this.closed) this.removal.onRefused(peer, this.lead);
        },
        // The appends of this turn are proposed at its end: a leader's MsgApps for them then
        // share a write with what it sent earlier in the turn (a commit index, say).
        sendingLater: () => this.appends.proposing,
        snapshots: checkedOnArrival(this.deps.snapshots),
        logger: this.deps.logger,
      });
      // Opened to listen on port 0, the node knows its port only now: its entry in the address
      // book (status, snapshots, what members learn of it) named port 0, where nobody listens.
      const own = this.membership.members.get(this.id);
      if (t instanceof TcpTransport && own !== undefined && !isPeerAddress(own)) this.membership.members.set(this.id, t.address);
    }
    this.tick();
    // Alone in its configuration, a node need not wait an election timeout: it
    // leads as soon as its vote is durable, and open() returns a log ready to append.
    if (this.commitsAlone()) {
      // What its log holds is committed once its term's first entry is: until then the records
      // acknowledged before the restart were not applied, and its state read after open() lacked them.
      const replayed = this.storage.lastIndex();
      this.node.campaign();
      this.pump();
      await new Promise<void>((resolve) => {
        const check = (): void => (this.lead === this.id || this.closed ? resolve() : void this.leaderWaiters.add(check));
        check();
      });
      while (!this.closed && this.applied < replayed) await this.committed.changed();
    }
    if (this.fatal !== undefined) throw this.fatal;
    this.pump();
  }

  // ---- the public API ----

  /**
   * Appends a record; resolves once it is committed, durable and applied on this node.
   * `data` is read at the end of this event-loop turn, not copied now: a change made to
   * it before then is in the record, and a buffer transferred before then fails the
   * append with INVALID_ARGUMENT.
   */
  append(data: Uint8Array): Promise<AppendResult<R>> {
    if (!(data instanceof Uint8Array)) return this.refuseAppend(new InvalidArgumentError('append(data): data must be a Uint8Array'));
    if (this.closed || this.closing) return this.refuseAppend(this.fatal ?? new ClosedError());
    const o = this.opts;
    const size = data.length; // equals byteLength on a Uint8Array, and unlike it is inlined by the optimizer
    if (size > o.maxRecordBytes) return this.refuseAppend(new RecordTooLargeError(size, o.maxRecordBytes));
    if (size === 0 && unreadable(data)) return this.refuseAppend(new InvalidArgumentError('append(data): the buffer of data is detached (transferred)'));
    if (this.proposals.size >= o.maxPendingAppends) return this.refuseAppend(new OverloadedError(`${this.proposals.size} appends pending (maxPendingAppends)`));
    if (this.proposals.bytes + size > o.maxPendingBytes)
      return this.refuseAppend(new OverloadedError(`${this.proposals.bytes} bytes pending (maxPendingBytes)`));
    // Before NO_LEADER: a removed leader knows no leader once it has handed off, and the cure is another node, not a wait.
    const removed = this.removal.error('append');
    if (removed !== null) return this.refuseAppend(removed);
    if (this.noLeader.expired(this.lead)) return this.refuseAppend(this.noLeader.error('append'));
    const p = new Promise<AppendResult<R>>(capture);
    this.appends.push(this.proposals.add(captured.resolve as (r: AppendResult<R>) => void, captured.reject, size, turnNow()), data);
    return p;
  }

  /**
   * An append failed before it was queued, counted as the queued ones are: once a node has been
   * leaderless for a while every append fails here (NO_LEADER), and overload (OVERLOADED) only
   * here, so leaving them out had the failure rate drop to nothing when everything failed.
   * @internal
   */
  private refuseAppend(err: LogError): Promise<never> {
    this.counters.appendFailed(err.code);
    this.counters.appendDuration.observe(0);
    return Promise.reject(err);
  }

  /** Resolves once this node has applied everything committed before the call: a linearizable read point. */
  barrier(): Promise<void> {
    const refused = this.refusal();
    if (refused !== null) return Promise.reject(refused);
    const removed = this.removal.error('barrier');
    if (removed !== null) return Promise.reject(removed);
    if (this.noLeader.expired(this.lead)) return Promise.reject(this.noLeader.error('barrier'));
    return this.deadlines.run('barrier', (resolve, reject) => this.barriers.wait(resolve, reject));
  }

  /**
   * Committed records from `from` on, in order, then new ones as they are applied, until the
   * log closes. Records older than the WAL keeps in memory are read off the event loop. A
   * reader of a log that stops on a failure throws its error (LOG_FATAL, LOG_CORRUPT); one
   * started on a closed log throws LOG_CLOSED. Its return() (a `break`) ends it at once, also
   * while it waits for the next record.
   */
  entries(options: { from?: number } = {}): AsyncGenerator<LogEntry> {
    return this.committed.read(options);
  }

  status(): LogStatus {
    return logStatus(this.view());
  }

  /**
   * The log's counters, histograms and gauges, as plain numbers (the admin layer's
   * /metrics turns them into Prometheus text). Gauges are computed now.
   */
  metrics(): LogMetrics {
    return logMetrics(this.view(), this.counters, this.final?.walStats ?? walStats(this.deps.wal), this.deps.transport);
  }

  /** @internal */
  private view(): NodeView {
    const { storage } = this;
    return {
      id: this.id,
      status: this.node.status(),
      applied: this.applied,
      fatal: this.fatal,
      closed: this.closed || this.closing,
      members: this.membership.members,
      lastIndex: this.final?.lastIndex ?? storage.lastIndex(),
      firstIndex: this.final?.firstIndex ?? storage.firstIndex(),
      snapshotIndex: this.snapshotTaking.index,
      removedBy: this.removal.by,
    };
  }

  /**
   * Rotates peer credentials without a restart: new handshakes use them. A secret rotation goes
   * `[old, new]` on every node, then `[new, old]`, then `[new]`; each connection whose peer proved
   * a secret the new list lacks is closed (its peer redials with the new one). Renewed
   * certificates replace the old ones for new connections; open ones stay, unless the CAs
   * changed: then every peer connection is closed, and peers the new CAs verify redial. A log that
   * closed or stopped throws its error (LOG_CLOSED, LOG_FATAL): its transport is closed, and a
   * rotation step that seemed done here would not be.
   */
  reloadCredentials(c: { clusterSecret?: Secret | Secret[]; tls?: TlsOptions }): void {
    const refused = this.refusal();
    if (refused !== null) throw refused;
    const t = this.deps.transport;
    if (!(t instanceof TcpTransport)) throw new InvalidArgumentError('reloadCredentials: this log has no TCP transport');
    validateCredentials(c);
    try {
      t.reloadCredentials(c);
    } catch (err) {
      throw err instanceof TransportError ? new InvalidArgumentError(`reloadCredentials: ${err.message}`) : err;
    }
  }

  /**
   * Hands leadership to voter `id`, on any node (a follower asks its leader); resolves once `id`
   * leads. Asked while no leader is known, it waits for one, as a barrier does. A leader gives
   * up a transfer `id` has not taken within an election timeout: it is asked again every two
   * (NOT_MEMBER if `id` was removed meanwhile) until the call's timeout.
   */
  transferLeadership(id: number): Promise<void> {
    const refused = this.refusal();
    if (refused !== null) return Promise.reject(refused);
    try {
      checkNodeId(id, 'transferLeadership');
    } catch (err) {
      return Promise.reject(err as Error);
    }
    // Asked again while it waits (below), by when `id` may have been removed or demoted.
    const notVoter = (): Error | null => {
      const { conf } = this.membership;
      if (conf.voters.includes(id)) return null;
      return confMembers(conf).has(id)
        ? new InvalidArgumentError(`transferLeadership: node ${id} is not a voter`)
        : new NotMemberError(id, 'transferLeadership', conf);
    };
    const refusal = notVoter();
    if (refusal !== null) return Promise.reject(refusal);
    if (this.noLeader.expired(this.lead)) return Promise.reject(this.noLeader.error('leadership transfer'));
    return this.deadlines.run('leadership transfer', (resolveRun, rejectRun) => {
      let asked = false;
      let ticksSinceAsked = 0;
      const stop = (): void => {
        this.leaderWaiters.delete(check);
        this.tickWaiters.delete(onTick);
        this.transferRejects.delete(reject);
      };
      const resolve = (): void => {
        stop();
        resolveRun();
      };
      const reject = (err: Error): void => {
        stop();
        rejectRun(err);
      };
      // A leader gives up a transfer its transferee has not taken within an election timeout
      // (one catching up over a slow link, say), and no one told this call: asked again every
      // two election timeouts, so that proposals, which a transfer holds, flow in between.
      const onTick = (): void => {
        if (!asked || ++ticksSinceAsked < 2 * this.opts.electionTicks) return;
        asked = false;
        ticksSinceAsked = 0;
        check();
      };
      const check = (): void => {
        if (this.lead !== id && !asked && this.lead !== 0) {
          const gone = notVoter();
          if (gone !== null) {
            reject(gone);
            return;
          }
          try {
            this.node.transferLeader(id);
            asked = true;
          } catch (err) {
            // The core may have lost the leader the log names until its next turn: ask the next one.
            if (!(err instanceof NoLeaderError)) {
              reject(err as Error);
              return;
            }
          }
          if (asked) this.pump();
        }
        if (this.lead === id) resolve();
        else this.leaderWaiters.add(check);
      };
      this.tickWaiters.add(onTick);
      this.transferRejects.add(reject);
      check();
      // Timed out: a leader that appears later is not asked. Without a change of leader (a
      // transfer to a voter that is down) nothing else takes the waiter, nor what it holds.
      return stop;
    });
  }

  addMember(id: number, address: string): Promise<void> {
    return this.membership.addMember(id, address);
  }

  addLearner(id: number, address: string): Promise<void> {
    return this.membership.addLearner(id, address);
  }

  removeMember(id: number): Promise<void> {
    return this.membership.removeMember(id);
  }

  /**
   * Turns learner `id` into a voter, once its log is within `promoteMaxLag` entries of the
   * leader's last index (NOT_CAUGHT_UP otherwise: nothing is proposed). On the leader.
   */
  promote(id: number): Promise<void> {
    return this.membership.promote(id);
  }

  /**
   * Applies several membership changes atomically. When more than one voter changes, the
   * cluster passes through a joint configuration (the old and the new voters must both agree
   * on every commit and election) and leaves it by itself; a single voter change applies
   * directly. Resolves once the final configuration is applied on this node. On the leader.
   */
  changeMembership(changes: readonly MembershipChange[]): Promise<void> {
    return this.membership.change(changes);
  }

  /**
   * Stops the node. Appends already handed to raft get a short grace (two election
   * timeouts) to commit; what is still unsettled then rejects with APPEND_OUTCOME_UNKNOWN.
   * Appends not yet proposed (no leader is known) reject with LOG_CLOSED at once. Everything acknowledged is already durable.
   * A snapshot being written is finished first, unless the state machine's stream yields
   * nothing for `timeoutMs`: that write is then abandoned (the log holds what it covers).
   */
  close(): Promise<void> {
    this.closePromise ??= this.stop();
    return this.closePromise;
  }

  /** @internal */
  private async stop(): Promise<void> {
    // The log's timers do not hold the process open (an idle log must not), and a close may wait
    // on nothing else: the grace below, a snapshot stream's deadline. A process with no other
    // work would exit under the close() it awaits, its WAL never closed.
    const hold = setInterval(() => undefined, 1 << 30);
    try {
      if (!this.closed) {
        this.closing = true;
        if (this.lead !== 0) this.appends.propose();
        // Those no leader took stay unproposed: a leader that appears during the grace must not
        // be handed records their callers were told would fail, and none need be waited for.
        this.appends.failAll(() => new ClosedError());
        const graceMs = 2 * this.opts.electionTicks * this.opts.tickMs;
        for (let waited = 0; this.proposals.size > 0 && waited < graceMs && !this.closed; waited += this.opts.tickMs) {
          await new Promise<void>((r) => this.deps.clock.setTimeout(r, this.opts.tickMs));
        }
        this.proposals.leaderLost('the log was closed before the record was known to commit');
        this.shutdown(new ClosedError());
      }
      await this.release();
    } finally {
      clearInterval(hold);
    }
  }

  /** A member left the configuration at `index`: its link goes, and its instance is forgotten. @internal */
  private removePeer(peer: number, index: number): void {
    this.deps.transport?.removePeer(peer);
    const forgot = this.deps.peerInstances?.forget([peer], index);
    if (forgot === undefined) return;
    forgot.catch((err: unknown) => this.fail(err, `forgetting the instance of removed node ${peer}`));
    this.forgotten = Promise.all([this.forgotten, forgot]);
    this.forgotten.catch(() => undefined); // failed the node above; a snapshot waiting for it fails with it
  }

  /**
   * A snapshot received from the leader passes over the membership changes it covers: a member
   * removed and added back among them, on an empty directory, is a new instance this node cannot
   * tell from the one it recorded. Its members' instances are forgotten, durably before the
   * snapshot is installed, and recorded again as next met; but not those of the members
   * connected now: each connection proved the recorded instance, and a member added back on an
   * empty directory is refused, so not connected. The members it removes are forgotten then
   * too: a restart from it never applies their removal again. @internal
   */
  private async forgetSkippedMembers(snap: Snapshot): Promise<void> {
    const live = this.deps.transport?.connectedPeers?.() ?? new Set<number>();
    const kept = confMembers(snap.meta.conf);
    const removed = [...this.membership.members.keys()].filter((peer) => !kept.has(peer));
    await this.deps.peerInstances?.forget(
      [...[...kept].filter((peer) => !live.has(peer)), ...removed].filter((peer) => peer !== this.id),
      snap.meta.index,
    );
  }

  /** Frees the port, the files and the directory lock, also after a fatal failure, so the directory can be reopened. @internal */
  private async release(): Promise<void> {
    await this.deps.transport?.close().catch((err: unknown) => this.deps.logger.warn({ err, code: codeOf(err) }, 'closing the transport failed'));
    await this.deps.peerInstances?.settled();
    await this.storage.flush().catch(() => undefined); // a failed write already failed its appends and stopped the node
    // A closed WAL answers no reads: status() and metrics() report the figures of this moment from now on.
    try {
      this.final ??= { lastIndex: this.storage.lastIndex(), firstIndex: this.storage.firstIndex(), walStats: walStats(this.deps.wal) };
    } catch {
      // The WAL was closed under the log (a store passed in deps and closed by its owner): no figures to keep.
    }
    await this.deps.wal.close().catch((err: unknown) => this.deps.logger.warn({ err, code: codeOf(err) }, 'closing the WAL failed'));
  }

  // ---- the driver loop ----

  /** @internal */
  private tick(): void {
    if (this.closed) return;
    this.node.tick();
    if (this.heldProposals.size > 0) this.releaseHeldProposals();
    this.appends.onTick();
    if (this.noLeader.onTick(this.lead, this.role)) this.failLeaderless();
    this.barriers.onTick();
    for (const w of [...this.tickWaiters]) w();
    this.pump();
    this.stopTicking = this.deps.clock.setTimeout(() => this.tick(), this.opts.tickMs);
  }

  /** @internal */
  private onMessage(m: Message): void {
    if (this.closed) {
      if (m.snapshot !== undefined) this.discardSnapshot(m.snapshot);
      return;
    }
    if (m.snapshot !== undefined) return this.onSnapshot(m, m.snapshot);
    if (m.type === MessageType.MsgProp) {
      const fault = forwardedProposalFault(m);
      if (fault !== null) {
        this.counters.proposalsRefused.add(fault.kind);
        this.refusedProposals.warn(
          { code: 'PROPOSAL_REFUSED', reason: fault.kind, peer: m.from },
          `refused a proposal forwarded from node ${m.from}: ${fault.message}`,
        );
        return;
      }
    }
    try {
      this.node.step(m);
    } catch (err) {
      // The node forgot what it acknowledged: serving on (a vote, above all) could undo commits.
      if (err instanceof LogLostError) return this.fail(err, 'finding its log lost');
      if (err instanceof ProposalDroppedError && err.reason === 'transfer-pending' && this.heldProposals.hold(m)) return;
      // The core changed nothing. A forwarded request it cannot serve, or a response from a
      // peer that just left, is ordinary (the sender copes as with a lost message); anything
      // else deserves a line in the log.
      // A removed node that missed its removal's commit learns it so (the transport checks it removed the sender):
      // only what the core refuses, never a node added back that now leads a later term.
      if (err instanceof StepPeerNotFoundError) this.deps.transport?.refuseRemoved?.(m.from);
      else if (!(err instanceof ProposalDroppedError || err instanceof ReadIndexDroppedError)) {
        this.deps.logger.debug({ peer: m.from, type: m.type, err }, `dropped a message from ${m.from}: ${(err as Error).message}`);
      }
      return;
    }
    this.removal.onStepped(m, this.lead);
    this.schedulePump();
  }

  /**
   * Steps the forwarded proposals held during a leadership transfer once the transfer was given
   * up; drops them once this node no longer leads (their senders see the leader change).
   * @internal
   */
  private releaseHeldProposals(): void {
    if (this.role !== StateType.StateLeader) {
      this.heldProposals.take();
      return;
    }
    if (this.node.status().leadTransferee !== 0) return;
    for (const m of this.heldProposals.take()) {
      try {
        this.node.step(m);
      } catch (err) {
        if (!(err instanceof ProposalDroppedError))
          this.deps.logger.debug({ peer: m.from, err }, `dropped a held proposal from ${m.from}: ${(err as Error).message}`);
      }
    }
  }

  /**
   * A received snapshot sits in a spool until raft takes it (its Ready installs it);
   * one raft refuses (stale, from a non-leader) or leaves behind is deleted once raft has
   * no Ready left to give. A Ready may be held back meanwhile (one that applies a membership
   * change waits for its write), so the answer may come turns later.
   * @internal
   */
  private onSnapshot(m: Message, snap: Snapshot): void {
    this.spooled.add(snap);
    try {
      this.node.step(m);
    } catch (err) {
      this.deps.logger.debug({ peer: m.from, err }, `dropped a snapshot from ${m.from}: ${(err as Error).message}`);
    }
    this.pump();
    this.schedulePump(); // delivered from inside the driver's own turn, pump() above did nothing
  }

  /** Deletes the spools raft did not take: called when it has no Ready left to give. @internal */
  private discardUntaken(): void {
    for (const snap of this.spooled) this.discardSnapshot(snap);
    this.spooled.clear();
  }

  /** @internal */
  private discardSnapshot(snap: Snapshot): void {
    this.deps.snapshots
      .discard(snap)
      .catch((err: unknown) => this.deps.logger.warn({ err, code: codeOf(err) }, `deleting a received snapshot failed: ${(err as Error).message}`));
  }

  /** A transport report about a peer that has just left the configuration is stale, not an error. @internal */
  private report(fn: () => void): void {
    if (this.closed) return;
    try {
      fn();
    } catch (err) {
      if (!(err instanceof StepPeerNotFoundError)) throw err;
      return;
    }
    this.schedulePump();
  }

  /**
   * Writes what this turn sent now. Called where nothing may throw: from the end of a turn
   * (the proposal), and by the WAL before a write that holds the event loop.
   * @internal
   */
  private readonly flushSends = (): void => {
    try {
      this.deps.transport?.flush?.();
    } catch (err) {
      this.fail(err, 'a transport failure');
    }
  };

  /** @internal */
  private readonly scheduledPump = (): void => {
    this.pumpScheduled = false;
    this.pump();
  };

  /** @internal */
  private schedulePump(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    defer(this.scheduledPump);
  }

  /** @internal */
  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (!this.closed && !this.applyHeld && this.node.hasReady()) this.handleReady(this.node.ready());
      if (this.spooled.size > 0 && !this.closed && !this.applyHeld) this.discardUntaken();
    } catch (err) {
      this.fail(err);
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Tells raft which Readies are durable in the order it handed them out (persisted() covers
   * every Ready before the one it names). Their writes' promises may settle out of that order
   * by a microtask or two: a write queued behind a snapshot being installed settles through
   * the chain, a tick after a later write handed to the WAL directly.
   * @internal
   */
  private persistedInOrder(): void {
    const q = this.persisting;
    while (q.length > 0 && q[0]!.durable) {
      const acks = this.node.persisted(q.shift()!.rd);
      if (acks.length > 0) this.deps.transport?.send(acks);
    }
  }

  /** @internal */
  private handleReady(rd: Ready): void {
    if (rd.softState !== undefined) this.onSoftState(rd.softState);
    if (rd.softState !== undefined || rd.hardState !== undefined) this.announceLeader(rd.hardState);
    if (rd.snapshot !== undefined) this.spooled.delete(rd.snapshot);
    // The leader's MsgApps leave now, while its own write runs (thesis §10.2.1).
    if (rd.messages.length > 0) this.deps.transport?.send(rd.messages);
    const durable = this.storage.persist(rd);
    // A configuration this node reports applied must survive a crash of every node: operators stop
    // removed members on that report. So a Ready that applies a membership change waits until its
    // commit is durable (the storage writes it at once), and the Readies after it wait for it.
    const held = commitsConfChange(rd);
    if (held) this.applyHeld = true;
    else this.advanceAndApply(rd, durable);
    const persisting = { rd, durable: false };
    this.persisting.push(persisting);
    durable.then(
      () => {
        if (this.closed) return;
        try {
          if (held) {
            this.applyHeld = false;
            this.asIfPumping(() => this.advanceAndApply(rd, durable));
          }
          persisting.durable = true;
          this.persistedInOrder();
        } catch (err) {
          this.fail(err); // as pump() does: damage found while applying stops the node
          return;
        }
        this.committed.notify();
        this.schedulePump();
      },
      (err: unknown) => this.fail(err),
    );
  }

  /**
   * Runs `apply` (entries applied outside the driver loop: held for a membership change's write,
   * or behind a snapshot's restore) as the loop would. An apply() that calls into the log
   * (close(), transferLeadership()) runs the loop at once: it would hand out a later Ready and
   * apply its entries before the rest of these, out of order.
   * @internal
   */
  private asIfPumping(apply: () => void): void {
    const was = this.pumping;
    this.pumping = true;
    try {
      apply();
    } finally {
      this.pumping = was;
    }
    this.schedulePump(); // what the loop was asked for meanwhile
  }

  /** @internal */
  private advanceAndApply(rd: Ready, durable: Promise<void>): void {
    this.node.advance(rd);
    if (rd.snapshot !== undefined) this.beginRestore(rd.snapshot, durable);
    this.applyEntries(rd.committedEntries);
    this.barriers.onReadStates(rd.readStates);
    if (rd.readsRefused !== undefined) this.barriers.onReadsRefused(rd.readsRefused);
  }

  /**
   * Emits 'leader' when the leader this node knows changes, and when the same node leads at a
   * new term: it lost leadership and won it again, maybe unseen here, and a user who fences
   * writes on the term must hear of it. `hard`: this Ready's, if its term may have changed.
   * @internal
   */
  private announceLeader(hard: HardState | undefined): void {
    const id = this.lead;
    if (id === this.announced.id && (id === 0 || hard === undefined || hard.term === this.announced.term)) return;
    const announced = { id, term: hard?.term ?? this.node.status().term };
    const from = this.announced.id;
    this.announced = announced;
    // Counted and logged as the event is, so an alert on leader changes sees a re-election too.
    if (id !== 0) this.counters.leaderChanges++;
    this.deps.logger.info({ term: announced.term, from, to: id, role: ROLE[this.role] }, id === 0 ? `leader ${from} lost` : `leader is now ${id}`);
    // After this turn: a listener that throws must not stop the node mid-Ready.
    queueMicrotask(() => this.emit('leader', { ...announced }));
  }

  /** @internal */
  private onSoftState(ss: SoftState): void {
    const wasLeader = this.role === StateType.StateLeader;
    const oldLead = this.lead;
    this.role = ss.state;
    this.lead = ss.lead;
    this.noLeader.onLeader(ss.lead);
    if (ss.lead !== 0 && ss.lead !== oldLead) this.removal.onNewLeader();
    if ((wasLeader && ss.state !== StateType.StateLeader) || (oldLead !== 0 && ss.lead !== oldLead)) {
      this.proposals.leaderLost(`leader ${oldLead} was lost before the record was known to commit`);
      this.membership.onLeaderLost();
    }
    if (ss.lead !== 0 && ss.lead !== oldLead) {
      const waiters = [...this.leaderWaiters];
      this.leaderWaiters.clear();
      for (const w of waiters) w();
      this.appends.propose();
      this.barriers.onNewLeader();
    }
  }

  /** The only voter of its configuration, of both halves of a joint one. @internal */
  private commitsAlone(): boolean {
    const { voters, votersOutgoing } = this.membership.conf;
    if (voters.length !== 1 || voters[0] !== this.id) return false;
    return votersOutgoing === undefined || votersOutgoing.length === 0 || (votersOutgoing.length === 1 && votersOutgoing[0] === this.id);
  }

  /** @internal */
  private applyEntries(entries: Entry[]): void {
    if (this.restore.holds(entries)) return;
    const batch = this.batch;
    const origin = this.proposals.origin;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.type === EntryType.ConfChange) {
        this.applyConfChange(e);
        this.proposals.entryApplied(e.index, e.term, -1);
        this.snapshotTaking.counted(1);
      } else if (batch.open(e.data, e.index)) {
        // open() throws LOG_CORRUPT on damage (the pump stops the node) before any record is applied.
        const own = batch.hasOrigin(origin); // read before apply() runs the application's code
        const first = batch.firstSeq;
        const count = batch.count;
        this.proposals.entryApplied(e.index, e.term, own ? first : -1);
        for (let k = 0; k < count; k++) {
          let result: R;
          try {
            result = this.sm.apply({ index: e.index, term: e.term, offset: k, data: batch.next() });
          } catch (err) {
            throw stateMachineFailed('apply', err);
          }
          if (isPromise(result)) throw applyReturnedPromise(result);
          if (own) this.proposals.applied(first + k, e.index, e.term, k, result);
        }
        // Alone, a node commits by its own write, and no peer's answer is on its way to join
        // the next proposal. With peers, commits come with their answers, and a leader that
        // proposed before it had read the rest of them committed fewer records a second.
        if (own && this.commitsAlone()) this.appends.afterSettle();
        this.snapshotTaking.counted(count);
        this.membership.recordApplied(e.index);
      } else {
        this.proposals.entryApplied(e.index, e.term, -1); // an empty entry: a new leader's first
        this.membership.recordApplied(e.index);
      }
      this.applied = e.index;
    }
    if (entries.length === 0) return;
    this.barriers.onApplied(this.applied);
    this.committed.notify();
    this.snapshotTaking.maybeTake(entries[entries.length - 1]!.term);
  }

  /** @internal */
  private applyConfChange(e: Entry): void {
    // A snapshot taken before a member joined does not name it, and the member refuses it;
    // if the leader must catch it up by snapshot, it needs one taken since.
    if (this.membership.apply(e)) this.snapshotTaking.memberAdded();
    this.removal.onConfChange();
  }

  /**
   * From the Ready that hands over a received snapshot, the log answers from it:
   * nothing below it is served, and its configuration is the one in force.
   * @internal
   */
  private beginRestore(snap: Snapshot, installed: Promise<void>): void {
    this.snapshotFloor = snap.meta.index;
    this.snapshotTaking.index = snap.meta.index;
    this.membership.conf = snap.meta.conf;
    this.restore.add(snap, installed);
  }

  /**
   * Streams a snapshot (held, or received and not yet installed) into the state machine;
   * resolves to what makes it the log's, called once the storage holds it.
   * @internal
   */
  private async restoreFrom(snap: Snapshot): Promise<() => void> {
    const d = await decodeSnapshotData(this.deps.snapshots.read(snap), `at index ${snap.meta.index}, term ${snap.meta.term}`);
    try {
      await this.unlessHalted(Promise.resolve(this.sm.restore(d.app, { index: snap.meta.index, term: snap.meta.term })));
    } catch (err) {
      throw attribute('restore', err);
    } finally {
      await d.app[Symbol.asyncIterator]().return?.(undefined); // closes the file if restore stopped early
    }
    return () => {
      if (this.closed) return;
      this.deps.logger.info({ index: snap.meta.index, term: snap.meta.term }, `state machine restored from the snapshot at ${snap.meta.index}`);
      this.snapshotFloor = snap.meta.index;
      this.membership.restore(snap.meta.conf, d.members, snap.meta.index);
      this.removal.onConfChange();
      this.applied = snap.meta.index;
      this.snapshotTaking.restored(snap.meta.index);
      this.barriers.onApplied(this.applied);
      this.committed.notify();
    };
  }

  /**
   * `p`, or once the log stops, the error it stopped on. A state machine's restore() that never
   * settled held open() (and the snapshot's file) for good; abandoned, how it ends is logged.
   * @internal
   */
  private unlessHalted<T>(p: Promise<T>): Promise<T> {
    const { signal } = this.halt;
    return new Promise<T>((resolve, reject) => {
      const abandon = (): void => {
        p.catch((err: unknown) => this.fail(attribute('restore', err), 'an abandoned restore'));
        reject(signal.reason as Error);
      };
      if (signal.aborted) return abandon();
      signal.addEventListener('abort', abandon, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', abandon);
          resolve(v);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', abandon);
          reject(err as Error);
        },
      );
    });
  }

  /** The error a new request gets once close() was called or the node stopped; null while it runs. @internal */
  private refusal(): Error | null {
    return this.closed || this.closing ? (this.fatal ?? new ClosedError()) : null;
  }

  /** Answers everything waiting for a leader now: queued appends, barriers and leadership transfers. @internal */
  private failLeaderless(): void {
    this.appends.failAll(() => this.noLeader.error('append'));
    this.barriers.rejectUnanswered(() => this.noLeader.error('barrier'));
    for (const reject of [...this.transferRejects]) reject(this.noLeader.error('leadership transfer'));
  }

  /**
   * A storage failure is final for this node: the WAL may have lost what it was
   * writing. So is an entry that cannot be decoded. The node stops at once and says
   * so (status().role 'fatal'); close() then releases its files and port.
   * @internal
   */
  private fail(err: unknown, after?: string): void {
    if (this.closed) {
      // A closed node stops nothing, but what failed while it closed (a snapshot being written,
      // say) is still said, at debug: closing cuts short what was under way, and that is expected.
      this.deps.logger.debug({ err }, `after close: ${after ?? 'a failure'}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    this.fatal = err instanceof LogCorruptError || err instanceof FatalError ? err : new FatalError(err, after);
    this.deps.logger.error({ err: this.fatal, code: this.fatal.code }, `node stopped: ${this.fatal.message}`);
    const f = { code: this.fatal.code, message: this.fatal.message };
    queueMicrotask(() => this.emit('fatal', f));
    this.shutdown(this.fatal);
    void this.deps.transport?.close().catch(() => undefined);
  }

  /** @internal */
  private shutdown(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.halt.abort(err);
    this.refusedProposals.flush();
    this.stopTicking();
    this.snapshotTaking.onStop();
    this.proposals.failAll(err);
    this.appends.failAll(() => err);
    this.deadlines.closeAll(err);
    this.barriers.clear();
    this.membership.clear();
    const waiters = [...this.leaderWaiters];
    this.leaderWaiters.clear();
    for (const w of waiters) w();
    this.committed.notify();
  }
}

/** Every failure of open() carries a raftlog code; a foreign one (a socket's EADDRINUSE, say) is wrapped. */
function coded(err: unknown): Error {
  if (err instanceof LogError || err instanceof WalError || err instanceof StorageError || err instanceof TransportError || err instanceof RaftError)
    return err;
  return new OpenFailedError(err);
}

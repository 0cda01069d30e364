// The deterministic cluster simulator. Every node is a RawNode over a
// MemoryStorage that holds exactly what the node's simulated disk has made
// durable. Time is virtual; one seeded Prng decides every delay, fault and
// proposal; after each event the InvariantChecker has seen everything the
// nodes handed out, so a broken invariant stops the run at the step that broke it.
import {
  ConfChangeType,
  EntryType,
  MessageType,
  StateType,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type Ready,
  type Snapshot,
} from '../../src/raft/types.js';
import { MemoryStorage, RawNode, decodeConfChangeEntry, isJoint } from '../../src/raft/index.js';
import type { ConfChangeV2 } from '../../src/raft/types.js';
import { EventQueue, type Timed, type Unnumbered } from './eventqueue.js';
import { InvariantChecker, InvariantViolation, entryKey, mixHash } from './checker.js';
import { Network, reliable, type LinkFaults } from './network.js';
import { Prng } from './prng.js';
import { corrupt } from './malformed.js';
import { checkAcksDurable } from './acks-durable.js';
import { SimNode, TICK, copyStorage, decodeState, encodeState, forgetTail, type PendingWrite } from './sim-node.js';
import { isCoreMutation, plantCoreMutation, type SimMutation } from './mutations.js';
import { logPosition, observeTimeoutNow, type TimeoutNowSeen } from './core-probes.js';
import { FaultMix, type FaultKind } from './fault-mix.js';

// TICK (sim-node.ts) is 10 time units; messages take 1-6 units (up to 300 when delayed), disk writes 1-15.
const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 1;
/** How long a newly added member may be sent snapshots that predate it (a few disk writes and a compaction). */
const STALE_SNAPSHOT_TICKS = 10;
/** Events per run while faults are injected, unless told otherwise. */
export const DEFAULT_STEPS = 5000;

export interface SimOptions {
  nodes: number;
  seed: number;
  /** Events processed while faults are injected. */
  steps: number;
  /** Ticks allowed, once faults stop, for a leader to be elected and a proposal to commit everywhere. */
  livenessTicks?: number;
  /** Receives one line per event when set. */
  trace?: (line: string) => void;
  /**
   * Break the core or the driver on purpose, to prove the checkers catch it (see mutations.ts): e.g.
   * 'ack-before-persist' sends messagesAfterPersist before the write is durable; 'lying-disk' loses the
   * newest durable entries on a crash; 'figure-8' lets a leader commit an older term's entry by counting.
   */
  mutation?: SimMutation;
  /**
   * Swarm testing: the seed also draws which kinds of fault happen and how often, and adds the schedules
   * that build the classic traps (term churn, leader loss during a snapshot, transfers to a lagging node).
   */
  swarm?: boolean;
  /** Serve reads by lease (readOnlyOption 'lease') on seeds that run CheckQuorum, with perfect clocks. */
  lease?: boolean;
  /**
   * Also propose joint membership changes (add two/remove two, replace the leader, demote a voter). Off by
   * default, so that the seeds of runs without it keep their random streams.
   */
  joint?: boolean;
}

export interface SimResult {
  steps: number;
  /** Virtual time at the end. */
  time: number;
  commitIndex: number;
  leaderChanges: number;
  crashes: number;
  snapshotsSent: number;
  /** Membership changes applied, counted on every node that applied one. */
  confChangesApplied: number;
  /** Of those, the ones that entered a joint configuration (several changes at once, or explicit). */
  jointChangesApplied?: number;
  partitions: number;
  /** Malformed messages the nodes refused, as they must. */
  malformedRefused: number;
  /** Ticks it took, after faults stopped, to commit the liveness probe everywhere. */
  recoveryTicks: number;
}

export function replayCommand(o: Pick<SimOptions, 'nodes' | 'seed' | 'steps' | 'mutation' | 'lease' | 'joint' | 'swarm'>): string {
  const extra = `${o.lease === true ? ' --lease' : ''}${o.joint === true ? ' --joint' : ''}${o.swarm === true ? ' --swarm' : ''}${o.mutation !== undefined ? ` --mutation ${o.mutation}` : ''}`;
  return `npm run sim -- --nodes ${o.nodes} --seed ${o.seed} --steps ${o.steps}${extra}`;
}

/** A run that broke an invariant or threw: names the seed and how to replay it. */
export class SimFailure extends Error {
  readonly code = 'SIM_FAILURE';
  constructor(
    readonly options: Pick<SimOptions, 'nodes' | 'seed' | 'steps' | 'mutation' | 'lease' | 'joint' | 'swarm'>,
    readonly step: number,
    readonly time: number,
    override readonly cause: unknown,
  ) {
    const what = cause instanceof Error ? `${cause.name}${'code' in cause ? ` [${String(cause.code)}]` : ''}: ${cause.message}` : String(cause);
    super(`seed ${options.seed} (${options.nodes} nodes) failed at step ${step}, t=${time}: ${what}\n  replay: ${replayCommand(options)}`);
    this.name = 'SimFailure';
  }
}

type SimEvent =
  | (Timed & { kind: 'tick'; node: number; incarnation: number })
  | (Timed & { kind: 'deliver'; sender: number; msg: Message })
  | (Timed & { kind: 'disk'; node: number; incarnation: number })
  | (Timed & { kind: 'snapStatus'; node: number; incarnation: number; to: number; ok: boolean })
  | (Timed & { kind: 'client' })
  | (Timed & { kind: 'fault' })
  | (Timed & { kind: 'heal' })
  | (Timed & { kind: 'restart'; node: number })
  | (Timed & { kind: 'ready'; node: number; incarnation: number })
  | (Timed & { kind: 'unreachable'; node: number; incarnation: number; to: number })
  | (Timed & { kind: 'interrupt'; node: number; incarnation: number });

const stateNames: Record<StateType, string> = {
  [StateType.StateFollower]: 'follower',
  [StateType.StateCandidate]: 'candidate',
  [StateType.StateLeader]: 'leader',
  [StateType.StatePreCandidate]: 'precandidate',
};

export class Simulation {
  readonly rng: Prng;
  readonly checker = new InvariantChecker();
  readonly net: Network;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly nodes = new Map<number, SimNode>();
  private now = 0;
  private step = 0;
  private faulting = true;
  private proposalSeq = 0;
  private readonly stats = {
    leaderChanges: 0,
    crashes: 0,
    snapshotsSent: 0,
    confChangesApplied: 0,
    jointChangesApplied: 0,
    partitions: 0,
    malformedRefused: 0,
  };
  /** ReadIndex requests in flight: context -> commit index known anywhere when the read was issued. */
  private readonly reads = new Map<string, number>();
  private readonly trace: ((line: string) => void) | undefined;
  /** Liveness probes proposed after faults stopped, and the nodes that applied one. */
  private readonly probes = new Set<string>();
  private readonly probeApplied = new Set<number>();
  private readonly answeredReads = new Set<string>();
  /** Vote and pre-vote requests delivered: type/voter/candidate/term -> whether any copy found the candidate up to date. */
  private readonly voteAsks = new Map<string, boolean>();

  /** Per-seed core configuration and driver behaviour, so flow control and batching paths all get exercised. */
  readonly knobs: {
    preVote: boolean;
    checkQuorum: boolean;
    maxSizePerMsg: number;
    maxInflightMsgs: number;
    maxInflightBytes: number;
    maxCommittedSizePerReady: number;
    maxUncommittedEntriesSize: number;
  };
  /** Probability that a delivered message is preceded by a malformed copy of it. */
  private readonly garbage: number;
  /** Applied entries a node keeps in its log before it snapshots and compacts (few means many MsgSnap). */
  private readonly compactEvery: number;
  /** Probability that a node due for compaction compacts now. */
  private readonly compactChance: number = 0.2;
  /** Whether state machines persist their own applied state (restart with Config.applied beyond the snapshot). */
  private readonly persistentStateMachine: boolean;
  /** How far (in time units per tick) a node's clock may run fast or slow. */
  private readonly clockSkew: number;
  /** Probability that a node's Ready is taken a little later instead of at once. */
  private readonly deferReady: number;
  /** Probability that a disk completion also completes the writes queued right behind it (group commit). */
  private readonly groupCommit: number;
  /** This seed's own blend of faults, in swarm runs. */
  private readonly mix: FaultMix | undefined;

  constructor(readonly options: SimOptions) {
    this.rng = new Prng(options.seed);
    this.net = new Network(this.rng.fork());
    const r = this.rng;
    this.knobs = {
      preVote: r.chance(0.75),
      checkQuorum: r.chance(0.75),
      maxSizePerMsg: r.pick([64, 256, 1024, 4096]),
      maxInflightMsgs: r.pick([1, 2, 8, 64]),
      maxInflightBytes: r.pick([0, 256, 4096, 1 << 14]),
      maxCommittedSizePerReady: r.pick([64, 1024, 1 << 20]),
      maxUncommittedEntriesSize: r.pick([0, 512, 1 << 16]),
    };
    this.deferReady = r.pick([0, 0.2, 0.5]);
    this.persistentStateMachine = r.chance(0.5);
    this.compactEvery = r.pick([5, 40, 200]);
    this.garbage = r.pick([0, 0.01, 0.05]);
    // A lease presumes clocks that agree; lease runs keep them perfect, to test the lease logic alone.
    this.clockSkew = r.pick([0, 0, 1]) * (options.lease === true ? 0 : 1);
    this.groupCommit = r.pick([0, 0.3, 0.8]);
    this.trace = options.trace;
    if (options.swarm === true) {
      this.mix = new FaultMix(this.rng.fork());
      // A lease counted in ticks cannot see a stalled process: lease runs never pause one.
      if (options.lease === true) this.mix.weights.pause = 0;
      // Snapshots often and eagerly: a snapshot then often reaches a follower that already holds its last entry.
      const r2 = this.rng.fork();
      this.compactEvery = r2.pick([1, 2, 5, 40, 200]);
      this.compactChance = r2.pick([0.2, 1, 1]);
      this.log(`swarm: ${this.mix.describe()}`);
    }
    this.log(
      `knobs ${JSON.stringify(this.knobs)} deferReady=${this.deferReady} groupCommit=${this.groupCommit} persistentStateMachine=${this.persistentStateMachine} compactEvery=${this.compactEvery} garbage=${this.garbage} clockSkew=${this.clockSkew}`,
    );
    const voters = Array.from({ length: options.nodes }, (_, i) => i + 1);
    const conf: ConfState = { voters, learners: [] };
    for (const id of voters) {
      const storage = new MemoryStorage();
      // Bootstrap: every node starts from the same empty snapshot that names the voters.
      storage.applySnapshot({ meta: { index: 0, term: 0, conf }, data: encodeState(0, 0) });
      const n = new SimNode(id, storage, conf);
      n.tickPeriod = TICK + this.rng.range(-this.clockSkew, this.clockSkew);
      n.confHistory.push({ index: 0, conf });
      this.nodes.set(id, n);
      this.start(n);
    }
  }

  private log(line: string): void {
    this.trace?.(`${String(this.now).padStart(6)} #${this.step} ${line}`);
  }

  /** Build a RawNode from the node's durable state alone. */
  private start(n: SimNode): void {
    n.storage = copyStorage(n.storage);
    const { hardState } = n.storage.initialState();
    const snap = n.storage.snapshot();
    const restored = decodeState(snap.data);
    n.base = restored.index;
    n.hashes = [restored.hash];
    n.conf = snap.meta.conf;
    n.confHistory = [{ index: snap.meta.index, conf: snap.meta.conf }];
    const sm = n.smDurable;
    n.smDurable = undefined;
    if (sm !== undefined && sm.index > snap.meta.index) {
      // The state machine kept its own state up to sm.index: the core must start from there, with the
      // configuration reached there (else it would not re-apply the membership changes before it).
      n.storage.setConfState(sm.conf);
      n.base = sm.index;
      n.hashes = [sm.hash];
      n.conf = sm.conf;
      n.confHistory = [{ index: sm.index, conf: sm.conf }];
    }
    n.state = StateType.StateFollower;
    n.readyScheduled = false;
    n.pausedUntil = 0;
    n.term = hardState.term;
    n.up = true;
    n.incarnation++;
    const random = this.rng.fork();
    n.raw = new RawNode({
      id: n.id,
      electionTick: ELECTION_TICK,
      heartbeatTick: HEARTBEAT_TICK,
      storage: n.storage,
      applied: n.base,
      ...this.knobs,
      readOnlyOption: this.options.lease === true && this.knobs.checkQuorum ? 'lease' : 'safe',
      random: () => random.next(),
    });
    const first = n.storage.firstIndex();
    const last = n.storage.lastIndex();
    this.checker.nodeStarted(n.id, {
      term: hardState.term,
      commit: hardState.commit,
      snapIndex: snap.meta.index,
      snapTerm: snap.meta.term,
      entries: last >= first ? n.storage.entries(first, last + 1, Number.POSITIVE_INFINITY) : [],
    });
    this.checker.stateRestored(n.id, n.base, n.hashAt(n.base));
    this.queue.push({ kind: 'tick', at: this.now + 1 + this.rng.int(TICK), node: n.id, incarnation: n.incarnation });
  }

  run(): SimResult {
    // Planted bugs and probes patch the core's prototypes for this run only (runs are synchronous).
    const undo = [observeTimeoutNow((seen) => this.timeoutNowSent(seen))];
    if (isCoreMutation(this.options.mutation)) undo.push(plantCoreMutation(this.options.mutation));
    try {
      return this.runUnchecked();
    } catch (err) {
      throw new SimFailure(this.options, this.step, this.now, err);
    } finally {
      for (const u of undo.reverse()) u();
    }
  }

  private runUnchecked(): SimResult {
    this.queue.push({ kind: 'client', at: this.rng.range(1, 40) });
    this.queue.push({ kind: 'fault', at: this.rng.range(50, 400) });
    while (this.step < this.options.steps) {
      this.step++;
      this.dispatch(this.queue.pop()!);
    }
    const recoveryTicks = this.recover();
    return {
      steps: this.step,
      time: this.now,
      commitIndex: this.checker.commitIndex,
      ...this.stats,
      recoveryTicks,
    };
  }

  /**
   * Stop all faults, restart every member (and no more membership changes), then demand in bounded time that a
   * leader commits a fresh proposal which every member applies, and answers a linearizable read.
   */
  private recover(): number {
    this.faulting = false;
    this.log('faults stop: network healed, every member restarted');
    this.net.heal();
    this.net.faults = reliable;
    for (const n of this.nodes.values()) n.pausedUntil = Math.min(n.pausedUntil, this.now);
    // An operator shuts down the nodes the cluster removed: one that never learned of its removal would otherwise
    // keep deposing leaders with higher terms where neither PreVote nor CheckQuorum guards (Raft thesis 4.2.3).
    const latest = [...this.nodes.values()].reduce((a, b) => (b.applied > a.applied ? b : a));
    // A node stays while any node's configuration still counts it (a voter of a joint configuration's outgoing half
    // included): a follower that has not yet learned that its leader's removal committed still needs its vote.
    const members = new Set<number>();
    for (const n of this.nodes.values()) {
      const c = n.conf;
      for (const id of [...c.voters, ...c.learners, ...(c.votersOutgoing ?? []), ...(c.learnersNext ?? [])]) members.add(id);
    }
    for (const n of this.nodes.values()) {
      if (!members.has(n.id)) {
        if (n.up) this.crash(n);
        this.log(`${n.id} decommissioned (not in the configuration of node ${latest.id} at ${latest.applied})`);
      } else if (!n.up) {
        this.restart(n);
      }
    }
    const start = this.now;
    // Without PreVote and CheckQuorum, a removed node that never learned of its removal keeps deposing leaders with
    // higher terms (Raft thesis 4.2.3): the cluster still recovers, but slowly, so the bound is looser.
    const protectedCluster = this.knobs.preVote || this.knobs.checkQuorum;
    // Catching up a lagging node (a backlog of uncommitted entries included) may take a round trip, about a tick,
    // per couple of entries on seeds that run 64-byte messages and a window of one: the bound grows with the lag.
    const nodes = [...this.nodes.values()];
    const lag = Math.max(...nodes.map((n) => this.checker.lastIndex(n.id))) - Math.min(...nodes.map((n) => n.applied));
    const limit = (this.options.livenessTicks ?? (protectedCluster ? 15 : 50) * ELECTION_TICK + Math.ceil(lag / 2)) * TICK;
    let probe: string | undefined;
    let probeAt = 0;
    let read: string | undefined;
    let readAt = 0;
    let nextCheck = this.now;
    while (this.now - start <= limit) {
      const e = this.queue.pop()!;
      this.step++;
      this.dispatch(e);
      if (this.now < nextCheck) continue;
      nextCheck = this.now + TICK;
      // The leader of the latest term: a leader of an older term may still think it leads, cut off from
      // the cluster (without CheckQuorum nothing makes it step down) or removed without knowing it.
      const leader = [...this.nodes.values()]
        .filter((n) => n.up && n.state === StateType.StateLeader)
        .reduce<SimNode | undefined>((a, b) => (a === undefined || b.term > a.term ? b : a), undefined);
      if (leader === undefined) continue;
      // A committed change still being applied when faults stopped may have added a node back.
      for (const id of [...leader.conf.voters, ...leader.conf.learners]) {
        const n = this.nodes.get(id)!;
        if (!n.up) this.restart(n);
      }
      if (probe === undefined || !this.appliedEverywhere(leader)) {
        // A probe can be lost with a leader change before it commits: propose a fresh one now and then.
        if (probe === undefined || this.now - probeAt > 3 * ELECTION_TICK * TICK) {
          const data = `live-${this.step}`;
          if (this.propose(leader, [new TextEncoder().encode(data)])) {
            probe = data;
            probeAt = this.now;
            this.probes.add(data);
          }
        }
        continue;
      }
      // Then a linearizable read, asked of any voter (followers forward it), must be answered too.
      if (read !== undefined && this.answeredReads.has(read)) return Math.ceil((this.now - start) / TICK);
      if (read === undefined || this.now - readAt > 3 * ELECTION_TICK * TICK) {
        const voters = leader.conf.voters.map((id) => this.nodes.get(id)!);
        read = this.readIndex(this.rng.pick(voters), `live-read-${this.step}`) ? `live-read-${this.step}` : undefined;
        readAt = this.now;
      }
    }
    const roles = [...this.nodes.values()].map((n) => `${n.id}:${stateNames[n.state]}@${n.term} applied ${n.applied}`).join(', ');
    const what =
      probe === undefined
        ? 'no leader accepted a proposal'
        : read === undefined
          ? 'the probe proposal is not applied everywhere'
          : `read ${read} is unanswered`;
    throw new InvariantViolation('liveness', `${limit / TICK} ticks after faults stopped, ${what} (${roles})`);
  }

  /** Whether every member (in the leader's configuration) has applied one of the liveness probes. */
  private appliedEverywhere(leader: SimNode): boolean {
    for (const id of [...leader.conf.voters, ...leader.conf.learners]) if (!this.probeApplied.has(id)) return false;
    return true;
  }

  private dispatch(e: SimEvent): void {
    this.now = e.at;
    const target = e.kind === 'deliver' ? this.nodes.get(e.msg.to) : 'node' in e ? this.nodes.get(e.node) : undefined;
    if (target !== undefined && this.now < target.pausedUntil && e.kind !== 'restart') {
      // A paused process does nothing: what arrives waits for it, and the ticks it sleeps through are lost.
      const { seq: _, ...later } = e;
      const at = e.kind === 'tick' ? target.pausedUntil + target.tickPeriod : target.pausedUntil;
      this.queue.push({ ...later, at } as Unnumbered<SimEvent>);
      return;
    }
    switch (e.kind) {
      case 'tick': {
        const n = this.nodes.get(e.node)!;
        if (!n.up || n.incarnation !== e.incarnation) return;
        n.raw.tick();
        this.settle(n);
        this.queue.push({ kind: 'tick', at: this.now + n.tickPeriod, node: n.id, incarnation: n.incarnation });
        return;
      }
      case 'deliver':
        return this.deliver(e.sender, e.msg);
      case 'disk': {
        const n = this.nodes.get(e.node)!;
        if (!n.up || n.incarnation !== e.incarnation) return;
        return this.diskDone(n);
      }
      case 'snapStatus': {
        const n = this.nodes.get(e.node)!;
        if (!n.up || n.incarnation !== e.incarnation) return;
        this.log(`${n.id} reportSnapshot(${e.to}, ${e.ok})`);
        try {
          n.raw.reportSnapshot(e.to, e.ok);
        } catch (err) {
          if (!isCode(err, 'RAFT_STEP_PEER_NOT_FOUND')) throw err; // the peer was removed meanwhile
        }
        return this.settle(n);
      }
      case 'client':
        // Once faults stop, only the liveness probes run: a backlog proposed faster than a seed with tiny
        // messages can replicate would starve them, which says nothing about the core.
        if (!this.faulting) return;
        this.client();
        this.queue.push({ kind: 'client', at: this.now + this.rng.range(1, 40) });
        return;
      case 'fault':
        if (!this.faulting) return;
        if (this.mix !== undefined) {
          this.swarmFault(this.mix.draw(this.rng));
          this.queue.push({ kind: 'fault', at: this.now + this.rng.range(...this.mix.interval) });
          return;
        }
        this.fault();
        this.queue.push({ kind: 'fault', at: this.now + this.rng.range(50, 500) });
        return;
      case 'interrupt': {
        const n = this.nodes.get(e.node)!;
        if (!this.faulting || !n.up || n.incarnation !== e.incarnation) return;
        this.log(`${n.id} loses leadership while its snapshot is in flight`);
        if (this.rng.chance(0.5)) {
          this.crash(n);
          this.queue.push({ kind: 'restart', at: this.now + this.rng.range(10, 300), node: n.id });
        } else {
          this.isolate(n);
        }
        return;
      }
      case 'heal':
        if (!this.faulting) return;
        this.log(`heal ${this.net.describe()}`);
        this.net.heal();
        return;
      case 'ready': {
        const n = this.nodes.get(e.node)!;
        if (!n.up || n.incarnation !== e.incarnation) return;
        n.readyScheduled = false;
        return this.handleReady(n);
      }
      case 'unreachable': {
        const n = this.nodes.get(e.node)!;
        if (!n.up || n.incarnation !== e.incarnation) return;
        try {
          n.raw.reportUnreachable(e.to);
        } catch (err) {
          if (!isCode(err, 'RAFT_STEP_PEER_NOT_FOUND')) throw err; // the peer was removed meanwhile
        }
        return this.settle(n);
      }
      case 'restart': {
        const n = this.nodes.get(e.node)!;
        if (!n.up && this.faulting) this.restart(n);
        return;
      }
    }
  }

  private up(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** Random client traffic: proposals (mostly at the leader), reads, transfers, elections. */
  private client(): void {
    const up = this.up();
    if (up.length === 0) return;
    const leader = up.find((n) => n.state === StateType.StateLeader);
    const r = this.rng.next();
    const target = leader !== undefined && this.rng.chance(0.8) ? leader : this.rng.pick(up);
    if (this.mix !== undefined && leader !== undefined && this.faulting && this.rng.chance(this.mix.membershipChurn)) {
      this.changeMembership(leader);
    } else if (r < 0.85) {
      const count = this.rng.chance(0.3) ? this.rng.range(2, 6) : 1;
      const batch: Uint8Array[] = [];
      for (let i = 0; i < count; i++) batch.push(new TextEncoder().encode(`p${++this.proposalSeq}`));
      this.propose(target, batch);
    } else if (r < 0.93) {
      this.readIndex(target, `r${++this.proposalSeq}`);
    } else if (r < 0.95) {
      if (leader !== undefined && this.faulting) this.changeMembership(leader);
    } else if (r < 0.98) {
      const to = this.rng.pick([...this.nodes.keys()]);
      this.log(`${target.id} transferLeader(${to})`);
      try {
        target.raw.transferLeader(to);
      } catch (err) {
        if (!isCode(err, 'RAFT_LEADER_TRANSFER', 'RAFT_NO_LEADER')) throw err;
      }
      this.settle(target);
    } else {
      this.log(`${target.id} campaign()`);
      target.raw.campaign();
      this.settle(target);
    }
  }

  /** One membership change at the leader: add or promote an outsider, or remove or demote a follower. */
  private changeMembership(leader: SimNode): void {
    // While joint only leaving is possible; with autoLeave the leader does it itself.
    if (isJoint(leader.conf)) {
      if (leader.conf.autoLeave !== true) this.proposeJoint(leader, { transition: 'auto', changes: [] });
      return;
    }
    // A leader outside its own configuration is handing off: it proposes nothing (and a change
    // drawn from its voters could name it twice, removed and added).
    if (!leader.conf.voters.includes(leader.id)) return;
    if (this.options.joint === true && this.rng.chance(0.5) && this.jointChange(leader)) return;
    const { voters, learners } = leader.conf;
    // Removed nodes come back too: once one leads, it must catch up a follower that has not applied its return.
    const outsiders = [...this.nodes.keys()].filter((id) => !voters.includes(id) && !learners.includes(id));
    const removable = voters.length > Math.max(2, Math.ceil(this.options.nodes / 2)) ? voters.filter((id) => id !== leader.id) : [];
    const options: ConfChange[] = [
      ...outsiders.map((nodeId) => ({ type: this.rng.chance(0.5) ? ConfChangeType.AddNode : ConfChangeType.AddLearnerNode, nodeId })),
      ...learners.map((nodeId) => ({ type: ConfChangeType.AddNode, nodeId })),
      ...removable.map((nodeId) => ({ type: this.rng.chance(0.7) ? ConfChangeType.RemoveNode : ConfChangeType.AddLearnerNode, nodeId })),
    ];
    if (options.length === 0) return;
    const cc = this.rng.pick(options);
    try {
      const pos = leader.raw.proposeConfChange(cc);
      this.log(`${leader.id} proposeConfChange ${ConfChangeType[cc.type]} ${cc.nodeId} -> ${pos === null ? 'forwarded' : `${pos.index}@${pos.term}`}`);
    } catch (err) {
      if (!isCode(err, 'RAFT_PROPOSAL_DROPPED')) throw err;
      this.log(`${leader.id} proposeConfChange ${ConfChangeType[cc.type]} ${cc.nodeId} dropped: ${(err as Error).message}`);
    }
    this.settle(leader);
  }

  /**
   * Several changes at once through a joint configuration: add two and remove two, replace the
   * leader, or demote a voter to learner. False when the configuration allows none of them.
   */
  private jointChange(leader: SimNode): boolean {
    const { voters } = leader.conf;
    const addable = [...this.nodes.keys()].filter((id) => !voters.includes(id));
    const followers = voters.filter((id) => id !== leader.id);
    const canShrink = voters.length > Math.max(2, Math.ceil(this.options.nodes / 2));
    let transition: ConfChangeV2['transition'] = this.rng.chance(0.7) ? 'auto' : 'explicit';
    const add = (nodeId: number): ConfChange => ({ type: ConfChangeType.AddNode, nodeId });
    const remove = (nodeId: number): ConfChange => ({ type: ConfChangeType.RemoveNode, nodeId });
    const kinds: Array<() => ConfChange[]> = [];
    if (addable.length >= 2 && followers.length >= 2) {
      kinds.push(() => [...this.pickTwo(addable).map(add), ...this.pickTwo(followers).map(remove)]);
    }
    if (addable.length >= 1) kinds.push(() => [remove(leader.id), add(this.rng.pick(addable))]);
    if (followers.length >= 1 && (canShrink || addable.length >= 1)) {
      kinds.push(() => {
        const demoted: ConfChange = { type: ConfChangeType.AddLearnerNode, nodeId: this.rng.pick(followers) };
        return canShrink && (addable.length === 0 || this.rng.chance(0.5)) ? [demoted] : [demoted, add(this.rng.pick(addable))];
      });
    }
    if (kinds.length === 0) return false;
    const changes = this.rng.pick(kinds)();
    // A lone demotion applies directly under 'auto'; mostly take it through a joint state (learnersNext).
    if (changes.length === 1 && this.rng.chance(0.6)) transition = 'explicit';
    this.proposeJoint(leader, { transition, changes });
    return true;
  }

  private pickTwo(ids: readonly number[]): number[] {
    const a = this.rng.pick(ids);
    return [a, this.rng.pick(ids.filter((id) => id !== a))];
  }

  private proposeJoint(leader: SimNode, cc: ConfChangeV2): void {
    const what = cc.changes.length === 0 ? 'leave joint' : `${cc.transition} [${cc.changes.map((c) => `${ConfChangeType[c.type]} ${c.nodeId}`).join(', ')}]`;
    try {
      const pos = leader.raw.proposeConfChange(cc);
      this.log(`${leader.id} proposeConfChange ${what} -> ${pos === null ? 'forwarded' : `${pos.index}@${pos.term}`}`);
    } catch (err) {
      if (!isCode(err, 'RAFT_PROPOSAL_DROPPED')) throw err;
      this.log(`${leader.id} proposeConfChange ${what} dropped: ${(err as Error).message}`);
    }
    this.settle(leader);
  }

  private propose(n: SimNode, batch: Uint8Array[]): boolean {
    try {
      const pos = n.raw.propose(batch.length === 1 ? batch[0]! : batch);
      this.log(`${n.id} propose ${batch.length} -> ${pos === null ? 'forwarded' : `${pos.index}@${pos.term}`}`);
      return true;
    } catch (err) {
      if (!isCode(err, 'RAFT_PROPOSAL_DROPPED')) throw err;
      this.log(`${n.id} propose ${batch.length} dropped`);
      return false;
    } finally {
      this.settle(n);
    }
  }

  private fault(): void {
    const ids = [...this.nodes.keys()];
    const r = this.rng.next();
    if (r < 0.08) {
      const [a, b] = [...ids].sort(() => this.rng.next() - 0.5);
      this.net.cutOneWay(a!, b!);
      this.stats.partitions++;
      this.log(`one-way cut ${a}>${b}: ${this.net.describe()}`);
      this.queue.push({ kind: 'heal', at: this.now + this.rng.range(50, 1500) });
    } else if (r < 0.3) {
      const shuffled = [...ids].sort(() => this.rng.next() - 0.5);
      const cut = this.rng.range(1, ids.length - 1);
      this.net.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      this.stats.partitions++;
      this.log(`partition ${this.net.describe()}`);
      this.queue.push({ kind: 'heal', at: this.now + this.rng.range(50, 1500) });
    } else if (r < 0.47 || (r < 0.55 && this.options.lease === true)) {
      const up = this.up();
      if (up.length === 0) return;
      const n = this.rng.pick(up);
      this.crash(n);
      this.queue.push({ kind: 'restart', at: this.now + this.rng.range(10, 1000), node: n.id });
    } else if (r < 0.55) {
      // A process stall (GC, VM freeze). Not with lease reads: a lease counted in ticks cannot see a stall.
      const up = this.up();
      if (up.length === 0) return;
      const n = this.rng.pick(up);
      n.pausedUntil = this.now + this.rng.range(20, 400);
      this.log(`${n.id} paused until ${n.pausedUntil}`);
    } else if (r < 0.85) {
      const f: LinkFaults = {
        drop: this.rng.chance(0.5) ? this.rng.next() * 0.2 : 0,
        duplicate: this.rng.chance(0.5) ? this.rng.next() * 0.1 : 0,
        delay: this.rng.chance(0.5) ? this.rng.next() * 0.1 : 0,
      };
      this.net.faults = f;
      this.log(`link faults drop=${f.drop.toFixed(3)} dup=${f.duplicate.toFixed(3)} delay=${f.delay.toFixed(3)}`);
    } else {
      this.net.faults = reliable;
      this.net.heal();
      this.log('network healed');
    }
  }

  /** One fault of the kind this seed's mix drew. */
  private swarmFault(kind: FaultKind): void {
    const ids = [...this.nodes.keys()];
    const up = this.up();
    const leader = up.find((n) => n.state === StateType.StateLeader);
    switch (kind) {
      case 'cut': {
        const [a, b] = [...ids].sort(() => this.rng.next() - 0.5);
        this.net.cutOneWay(a!, b!);
        this.stats.partitions++;
        this.log(`one-way cut ${a}>${b}: ${this.net.describe()}`);
        this.queue.push({ kind: 'heal', at: this.now + this.rng.range(50, 1500) });
        return;
      }
      case 'partition': {
        const shuffled = [...ids].sort(() => this.rng.next() - 0.5);
        const cut = this.rng.range(1, ids.length - 1);
        this.net.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        this.stats.partitions++;
        this.log(`partition ${this.net.describe()}`);
        this.queue.push({ kind: 'heal', at: this.now + this.rng.range(50, 1500) });
        return;
      }
      case 'crash':
      case 'crash-leader': {
        const n = kind === 'crash-leader' ? leader : up.length > 0 ? this.rng.pick(up) : undefined;
        if (n === undefined) return;
        this.crash(n);
        this.queue.push({ kind: 'restart', at: this.now + this.rng.range(10, kind === 'crash' ? 1000 : 300), node: n.id });
        return;
      }
      case 'pause': {
        if (up.length === 0) return;
        const n = this.rng.pick(up);
        n.pausedUntil = this.now + this.rng.range(20, 400);
        this.log(`${n.id} paused until ${n.pausedUntil}`);
        return;
      }
      case 'links': {
        const f: LinkFaults = {
          drop: this.rng.chance(0.5) ? this.rng.next() * 0.2 : 0,
          duplicate: this.rng.chance(0.5) ? this.rng.next() * 0.1 : 0,
          delay: this.rng.chance(0.5) ? this.rng.next() * 0.1 : 0,
        };
        this.net.faults = f;
        this.log(`link faults drop=${f.drop.toFixed(3)} dup=${f.duplicate.toFixed(3)} delay=${f.delay.toFixed(3)}`);
        return;
      }
      case 'heal':
        this.net.faults = reliable;
        this.net.heal();
        this.log('network healed');
        return;
      case 'isolate-leader':
        if (leader !== undefined) this.isolate(leader);
        return;
      case 'isolate-follower': {
        const followers = up.filter((n) => n !== leader);
        if (followers.length > 0) this.isolate(this.rng.pick(followers));
        return;
      }
      case 'campaign': {
        if (up.length === 0) return;
        const n = this.rng.pick(up);
        this.log(`${n.id} campaign() (term churn)`);
        n.raw.campaign();
        this.settle(n);
        return;
      }
      case 'false-unreachable': {
        if (leader === undefined) return;
        const others = leader.conf.voters.filter((id) => id !== leader.id);
        if (others.length === 0) return;
        this.queue.push({ kind: 'unreachable', at: this.now, node: leader.id, incarnation: leader.incarnation, to: this.rng.pick(others) });
        return;
      }
      case 'transfer-lagging': {
        if (leader === undefined) return;
        const others = leader.conf.voters.filter((id) => id !== leader.id);
        if (others.length === 0) return;
        const to = others.reduce((a, b) => (this.checker.lastIndex(b) < this.checker.lastIndex(a) ? b : a));
        this.log(`${leader.id} transferLeader(${to}), the voter that lags most (log ends at ${this.checker.lastIndex(to)})`);
        try {
          leader.raw.transferLeader(to);
        } catch (err) {
          if (!isCode(err, 'RAFT_LEADER_TRANSFER', 'RAFT_NO_LEADER')) throw err;
        }
        this.settle(leader);
        return;
      }
    }
  }

  /** Cuts `n` off from everyone for a short while: a new term starts without it, and it comes back. */
  private isolate(n: SimNode): void {
    this.net.partition([[n.id], [...this.nodes.keys()].filter((id) => id !== n.id)]);
    this.stats.partitions++;
    this.log(`isolate ${n.id}: ${this.net.describe()}`);
    this.queue.push({ kind: 'heal', at: this.now + this.rng.range(30, 400) });
  }

  private crash(n: SimNode): void {
    this.log(`${n.id} crash (losing ${n.disk.length} unfinished writes)`);
    this.stats.crashes++;
    n.up = false;
    n.disk.length = 0;
    if (this.persistentStateMachine) {
      // The state machine had synced some applied prefix of its own (never beyond what the log made durable).
      const hs = n.storage.initialState().hardState;
      const lo = Math.max(n.storage.firstIndex() - 1, n.base);
      const hi = Math.min(n.applied, hs.commit, n.storage.lastIndex());
      if (hi > lo) {
        const index = this.rng.range(lo, hi);
        n.smDurable = { index, hash: n.hashAt(index), conf: n.confAt(index) };
      }
    }
    if (this.options.mutation === 'lying-disk') n.storage = forgetTail(n.storage, this.rng.range(1, 5));
  }

  private restart(n: SimNode): void {
    this.start(n);
    this.log(`${n.id} restart term ${n.term} applied ${n.applied}`);
    this.handleReady(n);
  }

  private send(from: SimNode, msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (m.type === MessageType.MsgSnap) {
        this.stats.snapshotsSent++;
        if (m.snapshot !== undefined) this.checker.snapshotSent(from.id, from.conf, m.to, m.snapshot.meta, this.now, STALE_SNAPSHOT_TICKS * TICK);
        if (this.mix !== undefined && this.faulting && this.rng.chance(this.mix.snapshotInterrupt)) {
          this.queue.push({ kind: 'interrupt', at: this.now + this.rng.range(0, 8), node: from.id, incarnation: from.incarnation });
        }
      }
      // m.from may name another node only in MsgTransferLeader, where it is the transferee: TcpTransport
      // closes a connection that carries a proposal or read claiming another sender.
      if ((m.type === MessageType.MsgProp || m.type === MessageType.MsgReadIndex) && m.from !== from.id)
        throw new Error(`node ${from.id} relayed a ${MessageType[m.type]} of node ${m.from}`);
      if (m.to === from.id) throw new Error(`node ${from.id} handed out a message to itself: ${MessageType[m.type]}`);
      if ((m.type === MessageType.MsgVoteResp || m.type === MessageType.MsgPreVoteResp) && !m.reject) this.checkVoteGrant(from, m);
      const copies = this.net.route(from.id, m.to);
      if (copies.length === 0 && m.type === MessageType.MsgSnap) {
        this.queue.push({ kind: 'snapStatus', at: this.now + 1, node: from.id, incarnation: from.incarnation, to: m.to, ok: false });
      } else if (copies.length === 0 && !this.net.connected(from.id, m.to) && this.rng.chance(0.3)) {
        // The transport noticed the peer is unreachable (a failed connection), as etcd's does.
        this.queue.push({ kind: 'unreachable', at: this.now + 1, node: from.id, incarnation: from.incarnation, to: m.to });
      }
      for (const delay of copies) this.queue.push({ kind: 'deliver', at: this.now + delay, sender: from.id, msg: cloneMessage(m) });
    }
  }

  private deliver(from: number, m: Message): void {
    const n = this.nodes.get(m.to);
    const ok = n !== undefined && n.up && this.net.connected(from, m.to);
    if (m.type === MessageType.MsgSnap) {
      const sender = this.nodes.get(from)!;
      if (sender.up) {
        this.queue.push({ kind: 'snapStatus', at: this.now + 1, node: sender.id, incarnation: sender.incarnation, to: m.to, ok });
      }
    }
    if (!ok || n === undefined) return;
    const snap = m.snapshot === undefined ? '' : ` snap ${m.snapshot.meta.index}@${m.snapshot.meta.term} ${confText(m.snapshot.meta.conf)}`;
    this.log(
      `${m.from}->${m.to} ${MessageType[m.type]} t${m.term} i${m.index} lt${m.logTerm} c${m.commit} n${m.entries.length}${m.reject ? ' reject' : ''}${snap}`,
    );
    if (this.rng.chance(this.garbage)) this.stepGarbage(n, m);
    if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) this.noteVoteRequest(n, m);
    try {
      n.raw.step(m);
    } catch (err) {
      // A response from a peer the node no longer knows is refused, as etcd's ErrStepPeerNotFound; a forwarded
      // proposal or read that cannot be served is lost, as if the network had dropped it; a snapshot that
      // overtook the leader's first heartbeat (or reached a restarted node) waits for the leader's retry.
      if (!isCode(err, 'RAFT_STEP_PEER_NOT_FOUND', 'RAFT_PROPOSAL_DROPPED', 'RAFT_READ_INDEX_DROPPED', 'RAFT_SNAPSHOT_REFUSED')) throw err;
    }
    this.settle(n);
  }

  /**
   * Whether the candidate's log is at least as up to date as the voter's, judged now, before the voter steps
   * the request (§5.4.1); send() holds every granted vote and pre-vote to it. Duplicates of a request may meet
   * different logs: a grant is wrong only if no copy found the candidate up to date.
   */
  private noteVoteRequest(n: SimNode, m: Message): void {
    const own = logPosition(n.raw);
    const ok = m.logTerm > own.lastTerm || (m.logTerm === own.lastTerm && m.index >= own.lastIndex);
    const key = `${m.type}/${n.id}/${m.from}/${m.term}`;
    this.voteAsks.set(key, (this.voteAsks.get(key) ?? false) || ok);
  }

  private checkVoteGrant(from: SimNode, m: Message): void {
    const request = m.type === MessageType.MsgVoteResp ? MessageType.MsgVote : MessageType.MsgPreVote;
    if (this.voteAsks.get(`${request}/${from.id}/${m.to}/${m.term}`) === false) {
      throw new InvariantViolation(
        request === MessageType.MsgVote ? 'vote-up-to-date' : 'prevote-up-to-date',
        `node ${from.id} grants ${m.to} its ${request === MessageType.MsgVote ? 'vote' : 'pre-vote'} for term ${m.term}, but its own log is more up to date`,
      );
    }
  }

  /** A leader hands leadership over only to a node that durably holds its whole log (§3.10 of the Raft thesis). */
  private timeoutNowSent(seen: TimeoutNowSeen): void {
    const t = this.nodes.get(seen.to);
    if (t === undefined) return;
    // A newer leader may since have rewritten the transferee's log: the old leader's send no longer matters.
    if (t.storage.initialState().hardState.term > seen.term) return;
    if (!this.durablyHas(seen.to, seen.lastIndex, seen.lastTerm)) {
      const s = t.storage;
      throw new InvariantViolation(
        'transfer-caught-up',
        `leader ${seen.from} of term ${seen.term} hands leadership to ${seen.to} whose durable log (up to ${s.lastIndex()}) lacks its last entry ${seen.lastIndex}@${seen.lastTerm}`,
      );
    }
  }

  /** A malformed copy of `m` must be refused with RAFT_INVALID_MESSAGE and change nothing in the node. */
  private stepGarbage(n: SimNode, m: Message): void {
    const bad = corrupt(m, this.rng);
    const before = JSON.stringify(n.raw.status());
    const hadReady = n.raw.hasReady();
    try {
      n.raw.step(bad.msg as Message);
    } catch (err) {
      if (!isCode(err, 'RAFT_INVALID_MESSAGE')) {
        throw new InvariantViolation('malformed-message', `node ${n.id} refused a message with ${bad.what} by ${String(err)}, not RAFT_INVALID_MESSAGE`);
      }
      if (JSON.stringify(n.raw.status()) !== before || n.raw.hasReady() !== hadReady) {
        throw new InvariantViolation('malformed-message', `node ${n.id} changed state on a refused message with ${bad.what}`);
      }
      this.stats.malformedRefused++;
      return;
    }
    throw new InvariantViolation('malformed-message', `node ${n.id} accepted a ${MessageType[m.type]} with ${bad.what}`);
  }

  /** Drive the Ready protocol: send, queue the write, advance, apply. */
  private handleReady(n: SimNode): void {
    while (n.up && n.raw.hasReady()) {
      const rd = n.raw.ready();
      const id = n.id;
      if (rd.snapshot !== undefined) this.checker.snapshotInstalled(id, rd.snapshot.meta.index, rd.snapshot.meta.term);
      this.checker.logAppended(id, rd.entries);
      const durable = (node: number, index: number, term: number): boolean => this.durablyHas(node, index, term);
      // One Ready may carry a commit the node made as leader and its stepping down after it (several inputs
      // between two Readys): then the commit is judged as the leader's, before the change of role. Not when the
      // term moved on and the commit is one a later leader had already decided: that leader's append brought it.
      const steppedDown =
        n.state === StateType.StateLeader &&
        rd.softState !== undefined &&
        rd.softState.state !== StateType.StateLeader &&
        (rd.hardState === undefined || rd.hardState.term === n.term || rd.hardState.commit > this.checker.commitIndex);
      if (steppedDown && rd.hardState !== undefined) this.checker.commitObserved(id, rd.hardState.commit, n.conf.voters, durable, n.conf.votersOutgoing);
      if (rd.hardState !== undefined) n.term = rd.hardState.term;
      if (rd.softState !== undefined) {
        if (rd.softState.state === StateType.StateLeader && n.state !== StateType.StateLeader) {
          this.stats.leaderChanges++;
          this.log(`${id} becomes leader of term ${n.term}`);
        }
        n.state = rd.softState.state;
      }
      this.checker.roleObserved(id, n.term, n.state === StateType.StateLeader);
      if (!steppedDown && rd.hardState !== undefined) this.checker.commitObserved(id, rd.hardState.commit, n.conf.voters, durable, n.conf.votersOutgoing);
      for (const rs of rd.readStates) this.checkRead(n, rs.index, rs.context);
      for (const ctx of rd.readsRefused ?? []) this.checkRefusedRead(n, ctx);
      this.checkReadyContract(n, rd);
      this.send(n, rd.messages);
      if (this.options.mutation === 'ack-before-persist') this.send(n, rd.messagesAfterPersist);
      this.queueWrite(n, rd);
      n.raw.advance(rd);
      if (rd.snapshot !== undefined) this.restoreState(n, rd.snapshot);
      for (const e of rd.committedEntries) this.apply(n, e);
      this.maybeCompact(n);
    }
  }

  /** What must wait for the disk never goes out early, and what must be synced says so. */
  private checkReadyContract(n: SimNode, rd: Ready): void {
    for (const m of rd.messages) {
      if (m.type === MessageType.MsgAppResp || m.type === MessageType.MsgVoteResp) {
        throw new InvariantViolation('ready-contract', `node ${n.id} put a ${MessageType[m.type]} in Ready.messages instead of messagesAfterPersist`);
      }
    }
    if ((rd.entries.length > 0 || rd.snapshot !== undefined) && !rd.mustSync) {
      throw new InvariantViolation('ready-contract', `node ${n.id} handed out entries or a snapshot with mustSync false`);
    }
  }

  /** Asks `n` for a read point tagged `ctx`; false if it refused at once (no leader known). */
  private readIndex(n: SimNode, ctx: string): boolean {
    this.reads.set(ctx, this.checker.commitIndex);
    this.log(`${n.id} readIndex(${ctx})`);
    try {
      n.raw.readIndex(new TextEncoder().encode(ctx));
      return true;
    } catch (err) {
      if (!isCode(err, 'RAFT_READ_INDEX_DROPPED')) throw err;
      return false;
    } finally {
      this.settle(n);
    }
  }

  private checkRead(n: SimNode, index: number, context: Uint8Array): void {
    const ctx = new TextDecoder().decode(context);
    this.answeredReads.add(ctx);
    const issued = this.reads.get(ctx);
    if (issued === undefined) throw new InvariantViolation('read-index', `node ${n.id} answered a read ${ctx} nobody issued`);
    if (index < issued) {
      throw new InvariantViolation('read-index', `node ${n.id} serves read ${ctx} at ${index}, but ${issued} was committed before it was issued`);
    }
  }

  /** A leader refuses a read only to the node that asked it. */
  private checkRefusedRead(n: SimNode, context: Uint8Array): void {
    const ctx = new TextDecoder().decode(context);
    if (!this.reads.has(ctx)) throw new InvariantViolation('read-index', `node ${n.id} reports refused a read ${ctx} nobody issued`);
  }

  private durablyHas(node: number, index: number, term: number): boolean {
    const s = this.nodes.get(node)!.storage;
    if (index < s.firstIndex()) return true;
    if (index > s.lastIndex()) return false;
    return s.term(index) === term;
  }

  private queueWrite(n: SimNode, rd: Ready): void {
    const doneAt = Math.max(this.now + this.rng.range(1, 15), n.lastDiskDone);
    n.lastDiskDone = doneAt;
    n.disk.push({ rd, doneAt });
    this.queue.push({ kind: 'disk', at: doneAt, node: n.id, incarnation: n.incarnation });
  }

  /** Writes complete in order; sometimes several at once, reported with one persisted() for the last. */
  private diskDone(n: SimNode): void {
    const horizon = this.rng.chance(this.groupCommit) ? this.now + 5 : this.now;
    const group: PendingWrite[] = [];
    while (n.disk.length > 0 && n.disk[0]!.doneAt <= horizon) group.push(n.disk.shift()!);
    if (group.length === 0) return; // completed earlier, with a group
    for (const { rd } of group) {
      if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) n.storage.append(rd.entries);
      if (rd.hardState !== undefined) {
        n.storage.setHardState(rd.hardState);
        this.checker.durableHardStateObserved(n.id, rd.hardState);
      }
    }
    const cut =
      this.mix !== undefined &&
      this.faulting &&
      n.state !== StateType.StateLeader &&
      group.some(({ rd }) => rd.entries.length > 0) &&
      this.rng.chance(this.mix.cutAfterPersist);
    if (cut) this.isolate(n);
    // Acks are checked when they leave: after the whole group, whose later writes may have overwritten what they name.
    const out = this.rng.chance(0.5) ? n.raw.persisted(group[group.length - 1]!.rd) : group.flatMap(({ rd }) => n.raw.persisted(rd));
    if (this.options.mutation !== 'ack-before-persist') {
      checkAcksDurable(n.id, n.storage, out);
      this.send(n, out);
    }
    this.settle(n);
  }

  /** Take the node's Ready now, or (sometimes) a moment later so that several inputs share one Ready. */
  private settle(n: SimNode): void {
    if (n.readyScheduled) return;
    if (!this.rng.chance(this.deferReady)) return this.handleReady(n);
    n.readyScheduled = true;
    this.queue.push({ kind: 'ready', at: this.now + this.rng.range(0, 3), node: n.id, incarnation: n.incarnation });
  }

  private restoreState(n: SimNode, snap: Snapshot): void {
    const s = decodeState(snap.data);
    if (s.index !== snap.meta.index) throw new InvariantViolation('applied-prefix', `snapshot ${snap.meta.index} carries state of ${s.index}`);
    this.checker.stateRestored(n.id, s.index, s.hash);
    n.base = s.index;
    n.hashes = [s.hash];
    n.conf = snap.meta.conf;
    n.confHistory = [{ index: s.index, conf: snap.meta.conf }];
  }

  private apply(n: SimNode, e: Entry): void {
    // The core promises committedEntries only holds entries durable on this node.
    if (!this.durablyHas(n.id, e.index, e.term)) {
      throw new InvariantViolation('ready-contract', `node ${n.id} handed out ${e.index}@${e.term} to apply before it was durable locally`);
    }
    const hash = mixHash(n.hashAt(n.applied), entryKey(e));
    this.checker.applied(n.id, e, hash);
    n.hashes.push(hash);
    if (e.type === EntryType.ConfChange && e.data.length > 0) {
      const cc = decodeConfChangeEntry(e.data);
      n.conf = n.raw.applyConfChange(cc);
      if (isJoint(n.conf)) this.stats.jointChangesApplied++;
      n.confHistory.push({ index: e.index, conf: n.conf });
      this.checker.confApplied(n.id, n.conf);
      if (this.options.mutation !== 'no-snapshot-for-new-member') n.confSnapshotDue = e.index;
      this.stats.confChangesApplied++;
      const what = cc.changes.length === 0 ? 'leave joint' : cc.changes.map((c) => `${ConfChangeType[c.type]} ${c.nodeId}`).join(', ');
      this.log(`${n.id} applied conf change ${what} at ${e.index} -> ${confText(n.conf)}`);
    }
    if (this.probes.size > 0 && e.type === EntryType.Normal && this.probes.has(new TextDecoder().decode(e.data))) {
      this.probeApplied.add(n.id);
    }
  }

  /**
   * Snapshot and compact now and then, so lagging and restarted followers need MsgSnap. A driver must also
   * snapshot soon after a membership change: a node added after the latest snapshot refuses a snapshot
   * whose configuration does not name it (as in etcd), and could never catch up.
   */
  private maybeCompact(n: SimNode): void {
    const s = n.storage;
    const hs = s.initialState().hardState;
    const upTo = Math.min(n.applied, hs.commit, s.lastIndex());
    const confDue = n.confSnapshotDue > 0 && upTo >= n.confSnapshotDue;
    if (!confDue && (upTo - s.firstIndex() < this.compactEvery || !this.rng.chance(this.compactChance))) return;
    const at = confDue ? upTo : upTo - this.rng.int(10);
    // A received snapshot not yet durable leaves storage behind the state machine: wait for it.
    if (at < s.firstIndex() || at < n.base || n.disk.some((w) => w.rd.snapshot !== undefined)) return;
    s.createSnapshot(at, n.confAt(at), encodeState(at, n.hashAt(at)));
    s.compact(at);
    if (at >= n.confSnapshotDue) n.confSnapshotDue = 0;
    this.log(`${n.id} snapshot+compact at ${at}`);
  }
}

function confText(c: ConfState): string {
  return `voters [${c.voters}] outgoing [${c.votersOutgoing ?? []}] learners [${c.learners}] next [${c.learnersNext ?? []}]`;
}

function isCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && codes.includes(err.code);
}

/** What a transport does: the receiver gets its own copy. */
function cloneMessage(m: Message): Message {
  return { ...m, entries: m.entries.map((e) => ({ ...e })) };
}

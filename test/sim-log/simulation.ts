// One seeded run of the real ReplicatedLog: N nodes on MemoryDisks and a
// SimNetwork, clients appending on random nodes, and a nemesis that crashes
// and restarts nodes, stalls their processes, partitions the network (at
// times in one direction only) and makes disks slow or fail.
// Then the faults stop and the cluster must elect a leader and commit a fresh
// append in bounded simulated time, and every node must catch up; the
// LogChecker judges the whole history.
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import type { LogError } from '../../src/log/errors.js';
import type { MembershipChange } from '../../src/log/replicated-log.js';
import { Prng } from '../sim/prng.js';
import { LogChecker, position, type Applied } from './log-checker.js';
import { MemoryDisk, type DiskFaults, type MemoryWal } from './memory-wal.js';
import { RecordMachine } from './record-machine.js';
import { Lifetime, Scheduler } from './scheduler.js';
import { SimNetwork, type NetFaults, type SimTransport } from './sim-network.js';
import { plantLogMutation, type LogMutation } from './mutations.js';
import { observeTimeoutNow, observeVoteGrants, type TimeoutNowSeen } from '../sim/core-probes.js';

export interface SimOptions {
  seed: number;
  /** Cluster size (3 or 5 in CI). */
  nodes: number;
  /** Simulated ms of workload under faults. */
  faultMs?: number;
  /** After the faults stop, the cluster must commit a fresh append and catch every node up within this many simulated ms. */
  settleMs?: number;
  snapshotEvery?: number;
  clients?: number;
  /** Also change membership under the faults: add a fourth (or sixth) node, then remove one of the first ones. */
  membership?: boolean;
  /**
   * Also change membership in one joint change under the faults: add two new nodes and remove two of the
   * first ones (the leader among them at times) at once.
   */
  jointMembership?: boolean;
  /** Chance that a process stalls at each turn of the nemesis (default STALL_CHANCE). */
  stallChance?: number;
  /** Test the tester: disks that acknowledge writes but sync only every this many (see MemoryDisk.lieEvery). */
  lyingDisks?: number;
  /** Every trace line as it happens (the CLI's --verbose). */
  trace?: (line: string) => void;
  /** Plant a bug on purpose (test/sim-log/mutations.ts), to prove the checkers catch it. */
  mutation?: LogMutation;
  /**
   * Swarm testing: the seed also draws which faults happen and how often, how often nodes snapshot, and
   * whether membership changes (unless `membership` says), with leader isolation and transfers to a lagging node.
   */
  swarm?: boolean;
}

export interface SimStats {
  simMs: number;
  events: number;
  appends: number;
  acked: number;
  notCommitted: number;
  outcomeUnknown: number;
  /** Appends whose node died before they settled. */
  unsettled: number;
  /** barrier() calls that resolved (each checked against the appends acknowledged before it). */
  barriers: number;
  /** Records read through log.entries() and checked against the common sequence. */
  streamed: number;
  /** Leadership transfers that completed. */
  transfers: number;
  /** Entries read off the event loop (older than a disk keeps in memory), to catch a follower up. */
  catchUpReads: number;
  crashes: number;
  /** Nodes added to or removed from the cluster. */
  membershipChanges: number;
  /** Clean restarts: close(), then open from the disk. */
  closes: number;
  /** Whole-cluster crashes. */
  powerCuts: number;
  fsyncFailures: number;
  tornWrites: number;
  partitions: number;
  /** Partitions that cut one direction only (counted in `partitions` too). */
  oneWayCuts: number;
  /** Process stalls: a node's events held back, then run at once. */
  pauses: number;
  snapshotRestores: number;
  commitIndex: number;
  messages: number;
  /** Simulated ms from the end of the faults to the first fresh commit. */
  recoveryMs: number;
}

export interface SimReport {
  seed: number;
  nodes: number;
  ok: boolean;
  violations: string[];
  stats: SimStats;
  /** A hash of the committed sequence and the run's shape: equal for equal seeds. */
  digest: string;
  /** The last trace lines, for a failure report. */
  tail: string[];
}

export function replayCommand(seed: number, nodes: number, extra: Pick<SimOptions, 'membership' | 'mutation' | 'swarm'> = {}): string {
  const flags = `${extra.membership === true ? ' --membership' : ''}${extra.swarm === true ? ' --swarm' : ''}${extra.mutation !== undefined ? ` --mutation ${extra.mutation}` : ''}`;
  return `npx tsx test/sim-log/cli.ts --seed ${seed} --nodes ${nodes}${flags} --verbose`;
}

const TICK_MS = 10;
/** Every node's timeoutMs: how long a membership change asked of a leader may wait to be proposed. */
const CHANGE_TIMEOUT_MS = 1000;
const enc = new TextEncoder();

const NET_LEVELS: NetFaults[] = [
  { latencyMs: [1, 4], slow: 0, slowMs: [1, 1], drop: 0, duplicate: 0 },
  { latencyMs: [1, 6], slow: 0.05, slowMs: [20, 120], drop: 0.03, duplicate: 0.03 },
  { latencyMs: [1, 10], slow: 0.15, slowMs: [20, 300], drop: 0.15, duplicate: 0.1 },
];

const DISK_LEVELS: DiskFaults[] = [
  { syncMs: [0, 2], slowSync: 0, slowSyncMs: [0, 0], failSync: 0 },
  { syncMs: [0, 3], slowSync: 0.05, slowSyncMs: [10, 80], failSync: 0.002 },
  { syncMs: [1, 5], slowSync: 0.2, slowSyncMs: [20, 200], failSync: 0.01 },
];

const CALM_DISK = DISK_LEVELS[0]!;
const CALM_NET = NET_LEVELS[0]!;

/** Share of partitions that cut one direction only (as a peer whose dials fail, still heard by those it cannot reach). */
const ONE_WAY_SHARE = 1 / 3;
/** Chance that a process stalls at each turn of the nemesis. */
const STALL_CHANCE = 0.15;

/** Codes an append may end with in a faulty cluster; anything else is a bug. */
const EXPECTED_CODES = new Set(['APPEND_NOT_COMMITTED', 'NO_LEADER', 'APPEND_OUTCOME_UNKNOWN', 'LOG_CLOSED', 'LOG_FATAL', 'NOT_MEMBER']);

interface SimNode {
  id: number;
  disk: MemoryDisk;
  rng: Prng;
  state: 'down' | 'up';
  life: Lifetime | null;
  wal: MemoryWal | null;
  transport: SimTransport | null;
  log: ReplicatedLog<string> | null;
  machine: RecordMachine | null;
  /** The simulated time at which a scheduled restart may happen. */
  restartAt: number;
  /** close() was called on the current lifetime: its transport closing is expected. */
  closing: boolean;
  /** What the node is opened with: the cluster as it was when the node joined. */
  peers: Record<number, string>;
  /** Removed from the cluster: never started again. */
  removed: boolean;
}

export async function runSimulation(options: SimOptions): Promise<SimReport> {
  // A planted bug patches a prototype for this run only: runs in one process never overlap.
  const unplant = options.mutation === undefined ? () => {} : plantLogMutation(options.mutation);
  try {
    const sim = new Simulation(options);
    // The probes patch the core's prototype: they see every core in the process, and judge only this run's.
    const unobserve = [
      observeTimeoutNow((seen) => {
        if (sim.owns(seen.raft)) sim.timeoutNowSent(seen);
      }),
      observeVoteGrants((bad) => {
        if (!sim.owns(bad.raft)) return;
        sim.violation(
          `${bad.type}-up-to-date: node ${bad.voter} granted its ${bad.type} for term ${bad.term} to ${bad.candidate} (log ends ${bad.candidateLast.join('@')}), its own log ends ${bad.voterLast.join('@')}`,
        );
      }),
    ];
    const restore = captureConsole((line) => sim.note(line));
    const onRejection = (err: unknown): void => sim.unhandled(err);
    process.on('unhandledRejection', onRejection);
    try {
      return await sim.run();
    } finally {
      process.off('unhandledRejection', onRejection);
      restore();
      for (const u of unobserve.reverse()) u();
    }
  } finally {
    unplant();
  }
}

/** This seed's own blend of faults, in swarm runs: a weight per kind (0: never) and a pace. */
interface SwarmMix {
  weights: Record<NemesisKind, number>;
  interval: [number, number];
}

const NEMESIS_KINDS = [
  'power-cut',
  'crash',
  'partition',
  'heal',
  'transfer',
  'close',
  'net-level',
  'disk-level',
  'isolate-leader',
  'transfer-lagging',
] as const;
type NemesisKind = (typeof NEMESIS_KINDS)[number];

class Simulation {
  private readonly sched = new Scheduler();
  private readonly rng: Prng;
  /**
   * Draws which partitions cut one direction only, apart from `rng`: a partition that cuts both
   * ways is drawn, and followed, as it was before one-way cuts existed.
   */
  private readonly oneWay: Prng;
  /** Draws process stalls, apart from `rng` too. */
  private readonly stalls: Prng;
  private readonly net: SimNetwork;
  private readonly checker: LogChecker;
  private readonly nodes: SimNode[] = [];
  private readonly peers: Record<number, string> = {};
  private readonly opts: Required<Omit<SimOptions, 'trace' | 'lyingDisks' | 'stallChance' | 'membership' | 'jointMembership' | 'mutation' | 'swarm'>>;
  /** The two nodes that join, and the two that leave, in a joint membership run. */
  private jointSpares: SimNode[] = [];
  private jointVictims: SimNode[] = [];
  private jointDone = false;
  /** When the harness last asked a membership change: it may be proposed until its timeout. */
  private lastChangeAskedAt = -Infinity;
  /** The leader reconcileMembers judges by, and its last index when first seen (see there). */
  private reconcileMark: { leader: number; term: number; index: number } | undefined;
  private readonly mix: SwarmMix | null = null;
  /** Every node that ever ran, removed ones included: their disks still count for durability. */
  private readonly everyone: SimNode[] = [];
  /** Indexes already checked to be durable on a majority when first applied. */
  private durableChecked = 0;
  /** When the spare is added, in swarm runs (drawn with the mix). */
  private readonly addAt: number | undefined;
  /** The node that joins in a membership run. */
  private spare: SimNode | null = null;
  private readonly tail: string[] = [];
  private faulting = true;
  private clientsOn = true;
  private readonly inFlight = new Set<string>();
  /** The highest index of any append acknowledged so far: a barrier begun now must see it. */
  private maxAcked = 0;
  private readonly stats: SimStats = {
    simMs: 0,
    events: 0,
    appends: 0,
    acked: 0,
    notCommitted: 0,
    outcomeUnknown: 0,
    unsettled: 0,
    barriers: 0,
    streamed: 0,
    transfers: 0,
    catchUpReads: 0,
    crashes: 0,
    closes: 0,
    membershipChanges: 0,
    powerCuts: 0,
    fsyncFailures: 0,
    tornWrites: 0,
    partitions: 0,
    oneWayCuts: 0,
    pauses: 0,
    snapshotRestores: 0,
    commitIndex: 0,
    messages: 0,
    recoveryMs: -1,
  };

  constructor(private readonly options: SimOptions) {
    this.opts = {
      seed: options.seed,
      nodes: options.nodes,
      faultMs: options.faultMs ?? 3000,
      settleMs: options.settleMs ?? 20_000,
      snapshotEvery: options.snapshotEvery ?? 50,
      clients: options.clients ?? 4,
    };
    this.rng = new Prng(options.seed);
    this.oneWay = new Prng(options.seed ^ 0x2545f491);
    this.stalls = new Prng(options.seed ^ 0x68e31da4);
    let membership = options.membership === true;
    if (options.swarm === true) {
      // Drawn from a generator of its own, so the rest of the run draws as it would without the swarm.
      const r = new Prng(options.seed ^ 0x5bd1e995);
      const weights = {} as Record<NemesisKind, number>;
      for (const k of NEMESIS_KINDS) weights[k] = r.chance(0.3) ? 0 : r.pick([1, 2, 4, 8]);
      if (NEMESIS_KINDS.every((k) => weights[k] === 0)) weights.crash = 1;
      const fast = r.pick([20, 50, 100]);
      this.mix = { weights, interval: [fast, fast * r.pick([2, 4, 8])] };
      this.opts.snapshotEvery = options.snapshotEvery ?? r.pick([3, 10, 50, 200]);
      // A member added late has less traffic after it to bring a snapshot that names it.
      this.addAt = r.range(200, this.opts.faultMs);
      if (options.membership === undefined) membership = r.chance(0.5);
    }
    if (options.jointMembership === true) {
      // One membership scenario per run: the joint change's spares take the ids after the
      // original nodes, as the single change's spare does, and two nodes with one id would
      // each answer for the other.
      if (options.membership === true) throw new Error('membership and jointMembership cannot be combined in one run');
      membership = false;
    }
    this.net = new SimNetwork(this.sched, this.rng.fork());
    this.checker = new LogChecker(() => this.sched.now);
    this.sched.onError = (err, life) => {
      const n = this.nodes.find((x) => x.life === life);
      this.violation(`uncaught exception ${n === undefined ? 'in the simulator' : `in node ${n.id} (it would kill the process)`}: ${describe(err)}`);
      if (err instanceof Error && err.stack !== undefined) this.note(err.stack.split('\n').slice(0, 8).join(' | '));
      if (n !== undefined) this.crash(n, 'uncaught exception');
    };
    for (let id = 1; id <= this.opts.nodes; id++) {
      this.peers[id] = `sim:${id}`;
      const disk = new MemoryDisk(this.rng.fork(), CALM_DISK);
      disk.lieEvery = options.lyingDisks ?? 0;
      if (options.trace !== undefined) disk.trace = (line) => this.note(`node ${id} ${line}`);
      this.nodes.push(this.newNode(id, disk, this.peers));
    }
    if (membership) {
      const id = this.opts.nodes + 1;
      this.spare = this.newNode(id, new MemoryDisk(this.rng.fork(), CALM_DISK), { ...this.peers, [id]: `sim:${id}` });
    }
    this.everyone.push(...this.nodes, ...(this.spare === null ? [] : [this.spare]));
    if (this.mix !== null)
      this.note(
        `swarm: ${NEMESIS_KINDS.filter((k) => this.mix!.weights[k] > 0)
          .map((k) => `${k}:${this.mix!.weights[k]}`)
          .join(' ')} every ${this.mix.interval[0]}-${this.mix.interval[1]} ms, snapshotEvery ${this.opts.snapshotEvery}, membership ${membership}`,
      );
  }

  private newNode(id: number, disk: MemoryDisk, peers: Record<number, string>): SimNode {
    return {
      id,
      disk,
      rng: this.rng.fork(),
      state: 'down',
      life: null,
      wal: null,
      transport: null,
      log: null,
      machine: null,
      restartAt: 0,
      closing: false,
      peers,
      removed: false,
    };
  }

  note(line: string): void {
    const l = `[${this.sched.now}ms] ${line}`;
    this.options.trace?.(l);
    this.tail.push(l);
    if (this.tail.length > 60) this.tail.shift();
  }

  async run(): Promise<SimReport> {
    const { faultMs, settleMs } = this.opts;
    for (const n of this.nodes) this.start(n);
    for (let c = 1; c <= this.opts.clients; c++) this.client(c, 0);
    this.sched.after(this.rng.range(100, 400), () => this.nemesis());
    if (this.spare !== null) this.sched.after(this.addAt ?? this.rng.range(200, 1000), () => this.changeMembership('add'));
    if (this.options.jointMembership === true) this.sched.after(this.rng.range(200, 1000), () => this.jointChange());
    await this.sched.runUntil(faultMs);

    // The faults stop; everything comes back.
    this.faulting = false;
    this.clientsOn = false;
    this.net.heal();
    this.net.faults = CALM_NET;
    for (const n of this.nodes) n.disk.faults = CALM_DISK;
    for (const n of this.nodes) if (n.state === 'down') this.start(n);
    this.note('faults stop: network healed, disks calm, every node started');

    const deadline = faultMs + settleMs;
    const fresh = await this.freshCommit(deadline);
    if (fresh === null) {
      this.violation(`liveness: no fresh append committed within ${settleMs} ms after the faults stopped (${this.describeNodes()})`);
    } else {
      this.stats.recoveryMs = fresh.at - faultMs;
      this.reconcileMembers();
      const caughtUp = (): boolean => this.nodes.every((n) => n.log !== null && n.log.status().applied >= fresh.index);
      await this.sched.runUntil(deadline, caughtUp);
      if (!caughtUp()) this.violation(`liveness: not every node applied index ${fresh.index} by ${deadline} ms (${this.describeNodes()})`);
      else {
        const upTo = Math.min(...this.nodes.map((n) => n.log!.status().applied));
        this.checker.finish(new Map(this.nodes.map((n) => [n.id, n.machine!.records] as [number, Applied[]])), upTo);
      }
    }
    for (const n of this.nodes) n.life?.end();

    this.stats.simMs = this.sched.now;
    this.stats.events = this.sched.steps;
    this.stats.commitIndex = this.checker.commitIndex;
    this.stats.unsettled = this.inFlight.size;
    this.stats.messages = this.net.stats.sent;
    for (const n of this.everyone) this.stats.catchUpReads += n.disk.diskReads;
    const violations = this.checker.violations;
    return {
      seed: this.opts.seed,
      nodes: this.opts.nodes,
      ok: violations.length === 0,
      violations,
      stats: this.stats,
      digest: digest(JSON.stringify([this.checker.sequence(), this.stats])),
      tail: this.tail,
    };
  }

  /**
   * The first time any node applies an index, the entry is committed: it must then be durable, with its
   * term, on a majority of the cluster's disks (or under a durable snapshot there). Counted over every disk
   * that ever served, against a majority of the initial size, so membership changes cannot raise false alarms.
   */
  private checkDurable(index: number, term: number): void {
    if (index <= this.durableChecked) return;
    this.durableChecked = index;
    let holders = 0;
    for (const n of this.everyone) if (n.disk.durablyHolds(index, term)) holders++;
    const need = Math.floor(this.opts.nodes / 2) + 1;
    if (holders < need) this.violation(`index ${index} (term ${term}) was applied while durable on only ${holders} disks (a majority is ${need})`);
  }

  unhandled(err: unknown): void {
    this.violation(`unhandled promise rejection (it would kill the process): ${describe(err)}`);
  }

  /** Whether `raft` is the core of one of this run's nodes. */
  owns(raft: object): boolean {
    return this.everyone.some((n) => n.log !== null && (n.log as unknown as { node: { raft: object } }).node.raft === raft);
  }

  /** A leader hands leadership over only to a node whose disk holds its whole log (Raft thesis §3.10). */
  timeoutNowSent(seen: TimeoutNowSeen): void {
    const t = this.everyone.find((n) => n.id === seen.to);
    // A newer term on the transferee's disk: a newer leader may have rewritten its log since.
    if (t === undefined || t.disk.durableTerm > seen.term) return;
    if (!t.disk.durablyHolds(seen.lastIndex, seen.lastTerm)) {
      this.violation(
        `transfer-caught-up: leader ${seen.from} of term ${seen.term} handed leadership to ${seen.to}, whose disk lacks its last entry ${seen.lastIndex}@${seen.lastTerm}`,
      );
    }
  }

  violation(what: string): void {
    // The checker keeps the list, so every failure is in one place.
    (this.checker.violations as string[]).push(`t=${this.sched.now}ms ${what}`);
    this.note(`VIOLATION ${what}`);
  }

  // ---- nodes ----

  private start(n: SimNode): void {
    if (n.state === 'up' || n.removed) return;
    n.state = 'up';
    n.closing = false;
    const life = new Lifetime();
    n.life = life;
    this.checker.lifetime(n.id);
    // Each process's timers run a little fast or slow, now and then very much so.
    const rate = this.rng.chance(0.1) ? 0.5 + this.rng.next() * 1.5 : 0.9 + this.rng.next() * 0.2;
    const clock = this.sched.clock(life, rate);
    const wal = n.disk.open(clock);
    n.wal = wal;
    const transport = this.net.transport(n.id, () => this.sched.after(0, () => this.stopped(n, life)), life);
    n.transport = transport;
    const machine = new RecordMachine({
      apply: (index, offset, term, payload) => {
        this.checkDurable(index, term);
        this.checker.apply(n.id, position(index, offset), term, payload);
      },
      restore: (index, records) => {
        this.stats.snapshotRestores++;
        this.checker.restore(n.id, index, records);
      },
    });
    n.machine = machine;
    const rng = n.rng.fork();
    this.note(`node ${n.id} starts (disk: last ${wal.lastIndex}, snapshot ${wal.snapshot?.index ?? 0}, term ${wal.hardState.term})`);
    ReplicatedLog.open<string>(
      {
        dataDir: `sim://node${n.id}`,
        id: n.id,
        peers: n.peers,
        // A node added after the start opens as `raftlog serve --join` does: it never bootstraps its own configuration.
        join: n.id > this.opts.nodes,
        stateMachine: machine,
        snapshotEvery: this.opts.snapshotEvery,
        // Lying-disk runs keep the catch-up path they were written against (a follower past the
        // snapshot gets it whole): with the catch-up window, seeds 1..40 surface no violation in budget.
        ...(this.options.lyingDisks !== undefined && this.options.lyingDisks > 0 ? { snapshotCatchUpEntries: 0 } : {}),
        tickMs: TICK_MS,
        electionTicks: 10,
        heartbeatTicks: 2,
        timeoutMs: CHANGE_TIMEOUT_MS,
      },
      { wal, snapshots: n.disk.snapshots, transport, clock, random: () => rng.next() },
    ).then(
      (log) => {
        if (n.life !== life) return;
        n.log = log;
        void this.read(n, log, life);
      },
      (err: unknown) => {
        this.violation(`node ${n.id} failed to open from its disk: ${describe(err)}`);
        this.crash(n, 'open failed');
      },
    );
  }

  /** The process dies: timers, disk completions and deliveries with it. */
  private crash(n: SimNode, why: string): void {
    if (n.state === 'down') return;
    n.state = 'down';
    n.life?.end();
    n.transport?.detach();
    const r = n.disk.crash();
    if (r.tornEntries >= 0) this.stats.tornWrites++;
    n.log = null;
    n.wal = null;
    this.note(
      `node ${n.id} crashes (${why}); unacknowledged writes: ${r.survived} survive, ${r.tornEntries >= 0 ? `1 torn at ${r.tornEntries} entries, ` : ''}${r.lost} lost`,
    );
    const at = this.sched.now + this.rng.range(20, 1500);
    n.restartAt = at;
    this.sched.after(at - this.sched.now, () => {
      if (n.state === 'down' && n.restartAt === at) this.start(n);
    });
  }

  /** The node closed its transport by itself: the driver stopped after a storage failure. Find out why, then restart it. */
  private stopped(n: SimNode, life: Lifetime): void {
    if (n.life !== life || life.ended || n.closing) return;
    const log = n.log;
    const injected = n.wal?.injectedFailure === true;
    const settle = (err: unknown): void => {
      const e = err as LogError & { cause?: { code?: string } };
      if (injected && e.code === 'LOG_FATAL' && e.cause?.code === 'WAL_IO') {
        this.stats.fsyncFailures++;
        this.note(`node ${n.id} stopped after an injected fsync failure`);
      } else {
        this.violation(`node ${n.id} stopped by itself: ${describe(err)}`);
      }
      if (n.life === life) this.crash(n, 'restart after stop');
    };
    if (log === null) settle(new Error('closed before open() resolved'));
    else log.append(new Uint8Array(0)).then(() => settle(new Error('append on a stopped log resolved')), settle);
  }

  // ---- workload ----

  private client(c: number, nextSeq: number): void {
    const think = this.rng.range(0, 50);
    this.sched.after(think, () => {
      if (!this.clientsOn) return;
      const up = this.nodes.filter((n) => n.log !== null);
      if (up.length > 0) {
        const n = this.rng.pick(up);
        if (this.rng.chance(0.1)) this.barrier(n);
        const burst = this.rng.chance(0.3) ? this.rng.range(2, 6) : 1; // one turn: one proposal
        for (let k = 0; k < burst; k++) this.append(n, `c${c}-${++nextSeq}`);
      }
      this.client(c, nextSeq);
    });
  }

  private append(n: SimNode, payload: string): Promise<{ index: number } | null> {
    this.stats.appends++;
    this.inFlight.add(payload);
    return this.call(n, (log) => log.append(enc.encode(payload))).then(
      (r) => {
        this.inFlight.delete(payload);
        this.stats.acked++;
        const pos = position(r.index, r.offset);
        this.maxAcked = Math.max(this.maxAcked, pos);
        this.checker.ack(payload, pos, r.term);
        if (r.result !== `${r.index}.${r.offset}:${payload}`) this.violation(`append ${payload} resolved with the result ${String(r.result)}, not its own`);
        return { index: r.index };
      },
      (err: unknown) => {
        this.inFlight.delete(payload);
        const code = (err as LogError).code;
        // NO_LEADER and NOT_MEMBER (the node was removed), like APPEND_NOT_COMMITTED, promise the record was never committed: the checker holds them to that.
        if (code === 'APPEND_NOT_COMMITTED' || code === 'NO_LEADER' || code === 'NOT_MEMBER') {
          this.stats.notCommitted++;
          this.checker.rejectedNotCommitted(payload);
        } else if (code === 'APPEND_OUTCOME_UNKNOWN') this.stats.outcomeUnknown++;
        if (!EXPECTED_CODES.has(code)) this.violation(`append ${payload} on node ${n.id} failed unexpectedly: ${describe(err)}`);
        return null;
      },
    );
  }

  /** Follows log.entries() for the node's lifetime: committed records, in order, then new ones as they apply. */
  private async read(n: SimNode, log: ReplicatedLog<string>, life: Lifetime): Promise<void> {
    const dec = new TextDecoder();
    let from = log.status().firstIndex;
    for (;;) {
      // Each stream owes every committed record from `from` on: a gap is a lost record.
      let prev = position(from, 0) - 1;
      try {
        for await (const e of log.entries({ from })) {
          if (life.ended) return;
          this.stats.streamed++;
          this.checker.streamed(n.id, position(e.index, e.offset), prev, dec.decode(e.data));
          prev = position(e.index, e.offset);
          from = e.index + 1;
        }
        return; // the log closed
      } catch (err) {
        if (life.ended) return;
        const code = (err as LogError).code;
        // The node stopped, or is closing: stopped() and gracefulRestart() check that it should have.
        if (code === 'LOG_FATAL' || code === 'LOG_CLOSED') return;
        if (code !== 'LOG_COMPACTED') {
          this.violation(`entries() on node ${n.id} failed: ${describe(err)}`);
          return;
        }
        // A snapshot overtook the reader: a real reader would restore from it; go on after it.
        const s = log.status();
        const next = Math.max(s.firstIndex, s.snapshotIndex + 1);
        if (next <= from) {
          this.violation(`entries() on node ${n.id}: LOG_COMPACTED at ${from}, but the log starts at ${next}`);
          return;
        }
        from = next;
      }
    }
  }

  /** A linearizable read point: once it resolves, the node has applied every append acknowledged before the call. */
  private barrier(n: SimNode): void {
    const readPoint = this.maxAcked;
    const life = n.life;
    this.call(n, (log) => log.barrier()).then(
      () => {
        if (n.life !== life) return;
        this.stats.barriers++;
        this.checker.barrier(n.id, readPoint);
      },
      (err: unknown) => {
        const code = (err as LogError).code;
        if (code !== 'TIMEOUT' && code !== 'NO_LEADER' && code !== 'NOT_MEMBER' && code !== 'LOG_CLOSED' && code !== 'LOG_FATAL')
          this.violation(`barrier on node ${n.id} failed unexpectedly: ${describe(err)}`);
      },
    );
  }

  /** Appends fresh records until one commits; null if none does by `deadline`. */
  private async freshCommit(deadline: number): Promise<{ index: number; at: number } | null> {
    let done: { index: number; at: number } | null = null;
    let attempt = 0;
    const tryOnce = (): void => {
      if (done !== null || this.sched.now > deadline) return;
      const up = this.nodes.filter((n) => n.log !== null);
      if (up.length > 0) {
        const payload = `fresh-${++attempt}`;
        void this.append(this.rng.pick(up), payload).then((r) => {
          if (r !== null && done === null) {
            done = { index: r.index, at: this.sched.now };
            this.note(`fresh append ${payload} committed at ${r.index}`);
          }
        });
      }
      this.sched.after(100, tryOnce);
    };
    tryOnce();
    await this.sched.runUntil(deadline, () => done !== null);
    return done;
  }

  // ---- faults ----

  private nemesis(): void {
    if (!this.faulting) return;
    if (this.stalls.chance(this.options.stallChance ?? STALL_CHANCE)) this.pause();
    if (this.mix !== null) {
      this.swarmNemesis(this.mix);
      this.sched.after(this.rng.range(...this.mix.interval), () => this.nemesis());
      return;
    }
    const r = this.rng.next();
    const up = this.nodes.filter((n) => n.state === 'up');
    const down = this.nodes.length - up.length;
    if (r < 0.04) {
      // A power cut: every node at once. Only what each disk acknowledged may be relied on.
      this.stats.powerCuts++;
      this.note('power cut: every node crashes');
      for (const n of up) this.crash(n, 'power cut');
    } else if (r < 0.35) {
      // Mostly a minority down; now and then a majority, so that nothing can commit for a while.
      const limit = this.rng.chance(0.1) ? this.nodes.length : Math.floor((this.nodes.length - 1) / 2);
      if (down < limit && up.length > 0) {
        this.stats.crashes++;
        // Usually strike a node with writes in flight: that is where torn and lost writes come from.
        const busy = up.filter((n) => (n.wal?.pendingWrites ?? 0) > 0);
        this.crash(this.rng.pick(busy.length > 0 && this.rng.chance(0.7) ? busy : up), 'nemesis');
      }
    } else if (r < 0.6) {
      const ids = this.nodes.map((n) => n.id);
      for (let i = ids.length - 1; i > 0; i--) {
        const j = this.rng.int(i + 1);
        [ids[i], ids[j]] = [ids[j]!, ids[i]!];
      }
      this.partitionFor([ids.slice(0, this.rng.range(1, ids.length - 1))], this.rng.range(50, 1500));
    } else if (r < 0.65) {
      this.net.heal();
      this.note('network healed');
    } else if (r < 0.7) {
      this.transfer();
    } else if (r < 0.74) {
      const n = up.find((x) => x.log !== null && !x.closing && !this.paused(x));
      if (n !== undefined) this.gracefulRestart(n);
    } else if (r < 0.85) {
      const level = this.rng.int(NET_LEVELS.length);
      this.net.faults = NET_LEVELS[level]!;
      this.note(`network fault level ${level}`);
    } else {
      const n = this.rng.pick(this.nodes);
      const level = this.rng.int(DISK_LEVELS.length);
      n.disk.faults = DISK_LEVELS[level]!;
      this.note(`node ${n.id} disk fault level ${level}`);
    }
    this.sched.after(this.rng.range(50, 400), () => this.nemesis());
  }

  private swarmNemesis(mix: SwarmMix): void {
    let total = 0;
    for (const k of NEMESIS_KINDS) total += mix.weights[k];
    let pick = this.rng.next() * total;
    const kind = NEMESIS_KINDS.find((k) => (pick -= mix.weights[k]) < 0) ?? 'crash';
    const up = this.nodes.filter((n) => n.state === 'up');
    const leader = this.nodes.find((n) => n.log !== null && n.log.status().role === 'leader');
    switch (kind) {
      case 'power-cut':
        this.stats.powerCuts++;
        this.note('power cut: every node crashes');
        for (const n of up) this.crash(n, 'power cut');
        return;
      case 'crash': {
        const limit = this.rng.chance(0.1) ? this.nodes.length : Math.floor((this.nodes.length - 1) / 2);
        if (this.nodes.length - up.length >= limit || up.length === 0) return;
        this.stats.crashes++;
        const busy = up.filter((n) => (n.wal?.pendingWrites ?? 0) > 0);
        this.crash(this.rng.pick(busy.length > 0 && this.rng.chance(0.7) ? busy : up), 'nemesis');
        return;
      }
      case 'partition': {
        const ids = this.nodes.map((n) => n.id);
        for (let i = ids.length - 1; i > 0; i--) {
          const j = this.rng.int(i + 1);
          [ids[i], ids[j]] = [ids[j]!, ids[i]!];
        }
        this.partitionFor([ids.slice(0, this.rng.range(1, ids.length - 1))], this.rng.range(50, 1500));
        return;
      }
      case 'isolate-leader':
        // Term churn: the leader is cut off alone for a while; a new term starts and it comes back.
        if (leader !== undefined) this.partitionFor([[leader.id]], this.rng.range(30, 400));
        return;
      case 'heal':
        this.net.heal();
        this.note('network healed');
        return;
      case 'transfer':
        this.transfer();
        return;
      case 'transfer-lagging': {
        // Hand leadership to the voter that has applied least: it must be caught up first.
        if (leader === undefined) return;
        const voters = leader.log!.status().conf.voters;
        const others = this.nodes.filter((n) => n !== leader && n.log !== null && voters.includes(n.id));
        if (others.length === 0) return;
        const lagging = others.reduce((a, b) => (b.log!.status().applied < a.log!.status().applied ? b : a));
        this.transfer(lagging.id);
        return;
      }
      case 'close': {
        const n = up.find((x) => x.log !== null && !x.closing && !this.paused(x));
        if (n !== undefined) this.gracefulRestart(n);
        return;
      }
      case 'net-level': {
        const level = this.rng.int(NET_LEVELS.length);
        this.net.faults = NET_LEVELS[level]!;
        this.note(`network fault level ${level}`);
        return;
      }
      case 'disk-level': {
        const n = this.rng.pick(this.nodes);
        const level = this.rng.int(DISK_LEVELS.length);
        n.disk.faults = DISK_LEVELS[level]!;
        this.note(`node ${n.id} disk fault level ${level}`);
        return;
      }
    }
  }

  /**
   * Cuts the given groups off from the rest for `ms`, then heals (if the faults still run). Now and
   * then one group is cut in one direction only: it cannot reach the others, or they cannot reach it.
   */
  private partitionFor(groups: number[][], ms: number): void {
    const inGroups = new Set(groups.flat());
    const all = [...groups, this.nodes.map((n) => n.id).filter((id) => !inGroups.has(id))];
    if (this.oneWay.chance(ONE_WAY_SHARE)) {
      const side = new Set(this.oneWay.pick(all));
      const mute = this.oneWay.chance(0.5);
      for (const a of side) {
        for (const n of this.nodes) {
          if (side.has(n.id)) continue;
          if (mute) this.net.cutOneWay(a, n.id);
          else this.net.cutOneWay(n.id, a);
        }
      }
      this.stats.oneWayCuts++;
    } else {
      this.net.partition(all);
    }
    this.stats.partitions++;
    this.note(`partition ${this.net.describe()}`);
    this.sched.after(ms, () => {
      if (this.faulting && this.net.partitioned) {
        this.net.heal();
        this.note('network healed');
      }
    });
  }

  /** close() must settle, leave everything acknowledged on the disk and release it for the next open. */
  private gracefulRestart(n: SimNode): void {
    const life = n.life!;
    n.closing = true;
    this.note(`node ${n.id} closes`);
    const deadline = this.sched.after(5000, () => this.violation(`node ${n.id}: close() did not settle within 5000 ms`), life);
    n.log!.close().then(
      () => {
        deadline();
        if (n.life !== life) return;
        this.stats.closes++;
        life.end();
        n.transport?.detach();
        n.state = 'down';
        n.log = null;
        n.wal = null;
        const at = this.sched.now + this.rng.range(10, 500);
        n.restartAt = at;
        this.sched.after(at - this.sched.now, () => {
          if (n.state === 'down' && n.restartAt === at) this.start(n);
        });
      },
      (err: unknown) => {
        deadline();
        this.violation(`node ${n.id}: close() failed: ${describe(err)}`);
      },
    );
  }

  /** Adds the spare node, then (once it runs) removes one of the original nodes; retried until it takes. */
  private changeMembership(step: 'add' | 'remove', victim: SimNode | null = null): void {
    const spare = this.spare!;
    if (step === 'remove') victim ??= this.rng.pick(this.nodes.filter((n) => n !== spare));
    // The same change until it takes: an earlier attempt may still commit after its caller gave up.
    const retry = (): void => {
      if (this.faulting) this.sched.after(200, () => this.changeMembership(step, victim));
    };
    const target = victim ?? spare;
    if (target.removed || (step === 'add' && this.nodes.includes(spare))) return;
    const leader = this.liveLeader();
    if (leader === undefined) return retry();
    const done = (): void => {
      if (step === 'add') {
        this.joined(spare);
        this.sched.after(this.rng.range(300, 1500), () => this.changeMembership('remove'));
      } else {
        this.left(target);
      }
    };
    const inConf = (): boolean => {
      const voters = leader.log?.status().conf.voters ?? [];
      return voters.includes(target.id) === (step === 'add');
    };
    this.note(`${step} node ${target.id} (asked of leader ${leader.id})`);
    this.lastChangeAskedAt = this.sched.now;
    const op = step === 'add' ? leader.log!.addMember(spare.id, `sim:${spare.id}`) : leader.log!.removeMember(target.id);
    op.then(done, (err: unknown) => {
      const code = (err as LogError).code;
      // ALREADY_MEMBER, NOT_MEMBER: a retry of a change that took effect. MAJORITY_UNAVAILABLE: a
      // removal while a fault keeps a voter that stays silent, retried once it answers.
      const tookEffect = step === 'add' ? 'ALREADY_MEMBER' : 'NOT_MEMBER';
      if (!EXPECTED_CODES.has(code) && code !== 'TIMEOUT' && code !== 'NOT_LEADER' && code !== tookEffect && code !== 'MAJORITY_UNAVAILABLE') {
        this.violation(`${step} node ${target.id} on node ${leader.id} failed unexpectedly: ${describe(err)}`);
      }
      // A change whose answer was lost may have committed all the same.
      if (leader.log !== null && inConf()) done();
      else retry();
    });
  }

  private joined(n: SimNode): void {
    if (this.nodes.includes(n)) return;
    this.note(`node ${n.id} added; it starts`);
    this.stats.membershipChanges++;
    this.nodes.push(n);
    this.start(n);
  }

  private left(n: SimNode): void {
    if (n.removed) return;
    this.note(`node ${n.id} removed; it stops for good`);
    this.stats.membershipChanges++;
    n.removed = true;
    // Between events, as every crash: not inside the driver's own promise callbacks.
    this.sched.after(0, () => this.crash(n, 'removed from the cluster'));
    this.nodes.splice(this.nodes.indexOf(n), 1);
  }

  /**
   * Adds the two spare nodes and removes two original ones in one changeMembership: a joint configuration.
   * The spares run before the change (the incoming majority needs them); retried until the change took.
   */
  private jointChange(): void {
    // Once the faults stopped, reconcileMembers decides who stays: a retry still scheduled must not
    // ask for a change it may already have judged, or bring back spares it stopped for good.
    if (this.jointDone || !this.faulting || this.jointSpares.some((n) => n.removed)) return;
    if (this.jointSpares.length === 0) {
      const base = this.opts.nodes;
      // The spares' own view of the cluster (the originals' stays as it was: it is their bootstrap configuration).
      const peers = { ...this.peers, [base + 1]: `sim:${base + 1}`, [base + 2]: `sim:${base + 2}` };
      this.jointVictims = this.pickVictims();
      for (const id of [base + 1, base + 2]) {
        const n = this.newNode(id, new MemoryDisk(this.rng.fork(), CALM_DISK), peers);
        this.jointSpares.push(n);
        this.nodes.push(n);
        this.everyone.push(n); // their disks count toward durability like any member's
        this.start(n);
      }
    }
    const retry = (): void => {
      if (this.faulting) this.sched.after(200, () => this.jointChange());
    };
    const leader = this.liveLeader();
    if (leader === undefined) return retry();
    // As an operator judges it (README, Membership): a leader that is a voter of the new
    // configuration reports it, joint state left. A removed leader applies the change before the
    // new voters know it committed; stopping the removed nodes before they do could leave them
    // joint, without a quorum of the old half.
    const finished = (): boolean => {
      const now = this.nodes.find((n) => n.log !== null && n.log.status().role === 'leader');
      if (now === undefined || this.jointVictims.includes(now)) return false;
      const conf = now.log!.status().conf;
      if ((conf.votersOutgoing?.length ?? 0) > 0) return false;
      return this.jointSpares.every((n) => conf.voters.includes(n.id)) && this.jointVictims.every((n) => !conf.voters.includes(n.id));
    };
    const done = (): void => {
      if (this.jointDone) return;
      this.jointDone = true;
      this.stats.membershipChanges++;
      this.note(`joint change done: ${this.jointSpares.map((n) => n.id).join(',')} in, ${this.jointVictims.map((n) => n.id).join(',')} out`);
      for (const n of this.jointVictims) this.left(n);
    };
    if (finished()) return done();
    const changes: MembershipChange[] = [
      ...this.jointSpares.map((n) => ({ add: n.id, address: `sim:${n.id}` })),
      ...this.jointVictims.map((n) => ({ remove: n.id })),
    ];
    this.note(`joint change ${JSON.stringify(changes)} (asked of leader ${leader.id})`);
    // Resolved, the change is applied on the leader; the removed nodes stop once the operator's
    // check passes (a removed leader whose new voters did not answer within an election timeout
    // steps down and resolves before they may know the change committed).
    const whenFinished = (): void => {
      if (this.jointDone) return;
      if (finished()) done();
      else this.sched.after(50, whenFinished);
    };
    this.lastChangeAskedAt = this.sched.now;
    leader.log!.changeMembership(changes).then(whenFinished, (err: unknown) => {
      const code: string = (err as LogError).code;
      // RAFT_INVALID_CONF_CHANGE: an earlier attempt is still joint (its leave is on the way);
      // ALREADY_MEMBER, NOT_MEMBER: it took effect, and its removed leader is still handing off.
      // MAJORITY_UNAVAILABLE: a voter that stays is silent under a fault.
      const retried = ['RAFT_INVALID_CONF_CHANGE', 'ALREADY_MEMBER', 'NOT_MEMBER', 'MAJORITY_UNAVAILABLE'];
      if (!EXPECTED_CODES.has(code) && code !== 'TIMEOUT' && code !== 'NOT_LEADER' && !retried.includes(code)) {
        this.violation(`joint change on node ${leader.id} failed unexpectedly: ${describe(err)}`);
      }
      if (finished()) done();
      else retry();
    });
  }

  /** Two of the original nodes, the current leader among them half of the time. */
  private pickVictims(): SimNode[] {
    const originals = this.nodes.filter((n) => n.id <= this.opts.nodes);
    const leader = originals.find((n) => n.log !== null && n.log.status().role === 'leader');
    const first = leader !== undefined && this.rng.chance(0.5) ? leader : this.rng.pick(originals);
    return [first, this.rng.pick(originals.filter((n) => n !== first))];
  }

  /** After the faults: the members are what the leader's configuration says, whatever answers the harness got. */
  private reconcileMembers(): void {
    // A change asked before the faults stopped may not be in any log yet: while another change is
    // pending, the leader proposes it later, up to its timeout. Judged before then, the spares it
    // adds would be stopped just before it makes them voters, and the cluster left without a quorum.
    const proposedBy = this.lastChangeAskedAt + CHANGE_TIMEOUT_MS + TICK_MS;
    if (this.sched.now < proposedBy) {
      this.sched.after(proposedBy - this.sched.now, () => this.reconcileMembers());
      return;
    }
    if (this.jointSpares.length > 0) {
      // Only a leader that is a voter of its own configuration, out of the joint state, says who may
      // stop (see jointChange): not one the change removed, still handing off.
      const leader = this.nodes.find((n) => n.log !== null && n.log.status().role === 'leader');
      const status = leader?.log?.status();
      // A change asked before the faults stopped may sit in the leader's log unapplied, its
      // configuration not yet the leader's: judged before it applies, the spares it adds would be
      // stopped just as it makes them voters. What the leader held when it was first seen is applied first.
      if (status !== undefined && (this.reconcileMark?.leader !== leader!.id || this.reconcileMark.term !== status.term))
        this.reconcileMark = { leader: leader!.id, term: status.term, index: status.lastIndex };
      const conf = status?.conf;
      if (conf === undefined || status!.applied < this.reconcileMark!.index || !conf.voters.includes(leader!.id) || (conf.votersOutgoing?.length ?? 0) > 0) {
        this.sched.after(50, () => this.reconcileMembers());
        return;
      }
      for (const n of [...this.nodes]) if (!conf.voters.includes(n.id)) this.left(n);
      return;
    }
    if (this.spare === null) return;
    const leader = this.nodes.find((n) => n.log !== null && n.log.status().role === 'leader');
    const voters = leader?.log?.status().conf.voters;
    // Only a leader that is a voter of its own configuration says who may stop: not one the change
    // removed, still handing off.
    if (voters !== undefined && voters.includes(leader!.id)) {
      if (voters.includes(this.spare.id)) this.joined(this.spare);
      for (const n of [...this.nodes]) if (!voters.includes(n.id)) this.left(n);
    }
    // A change asked for before the faults stopped may commit after this look (its leader crashed
    // with the answer, say): look again until the run ends, as an operator would.
    this.sched.after(50, () => this.reconcileMembers());
  }

  private transfer(target?: number): void {
    const leader = this.liveLeader();
    if (leader === undefined) return;
    const voters = leader.log!.status().conf.voters;
    const others = this.nodes.filter((n) => n !== leader && voters.includes(n.id));
    if (others.length === 0) return;
    const to = target ?? this.rng.pick(others).id;
    const life = leader.life;
    this.note(`transfer leadership ${leader.id} -> ${to}`);
    leader.log!.transferLeadership(to).then(
      () => {
        if (leader.life !== life) return;
        this.stats.transfers++;
        this.note(`leadership transferred to ${to}`);
      },
      (err: unknown) => {
        const code = (err as LogError).code;
        // Removed or demoted while the transfer waited: only then may it name the node so.
        const gone = (code === 'NOT_MEMBER' || code === 'INVALID_ARGUMENT') && !leader.log?.status().conf.voters.includes(to);
        // NO_LEADER: the node was cut off for two election timeouts while the transfer waited.
        if (code !== 'TIMEOUT' && code !== 'NO_LEADER' && code !== 'LOG_CLOSED' && code !== 'LOG_FATAL' && !gone)
          this.violation(`transferLeadership(${to}) on node ${leader.id} failed unexpectedly: ${describe(err)}`);
      },
    );
  }

  /** A client's call into node `n`: one that reaches a stalled process waits for it to wake, and dies with it. */
  private call<T>(n: SimNode, fn: (log: ReplicatedLog<string>) => Promise<T>): Promise<T> {
    const log = n.log!;
    if (!this.paused(n)) return fn(log);
    return new Promise<T>((resolve, reject) => {
      this.sched.after(0, () => fn(log).then(resolve, reject), n.life);
    });
  }

  /** The leader, unless its process is stalled: the harness's calls into a node run in its process. */
  private liveLeader(): SimNode | undefined {
    return this.nodes.find((n) => n.log !== null && !this.paused(n) && n.log.status().role === 'leader');
  }

  private paused(n: SimNode): boolean {
    return n.life !== null && n.life.pausedUntil > this.sched.now;
  }

  /** A process stalls (a long GC, a frozen VM): its timers, disk completions and messages wait until it wakes. */
  private pause(): void {
    const up = this.nodes.filter((n) => n.log !== null && !this.paused(n));
    if (up.length === 0) return;
    // Often the leader: a leader that wakes from a stall is where stale reads and stale writes come from.
    const leader = up.find((x) => x.log!.status().role === 'leader');
    const n = leader !== undefined && this.stalls.chance(0.5) ? leader : this.stalls.pick(up);
    n.life!.pausedUntil = this.sched.now + this.stalls.range(20, 1500);
    this.stats.pauses++;
    this.note(`node ${n.id} stalls until ${n.life!.pausedUntil}ms`);
  }

  private describeNodes(): string {
    return this.nodes
      .map((n) => {
        if (n.log === null) return `${n.id}: down`;
        const s = n.log.status();
        return `${n.id}: ${s.role} term ${s.term} lead ${s.lead} commit ${s.commit} applied ${s.applied} last ${s.lastIndex}`;
      })
      .join('; ');
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const cause = err.cause instanceof Error ? ` <- ${describe(err.cause)}` : '';
  return `${err.name}${typeof code === 'string' ? `(${code})` : ''}: ${err.message}${cause}`;
}

/** The driver logs fatal stops and dropped messages; in a run they belong to the trace, not the terminal. */
function captureConsole(sink: (line: string) => void): () => void {
  const { warn, error } = console;
  console.warn = (...args: unknown[]) => sink(`console.warn: ${args.map(String).join(' ')}`);
  console.error = (...args: unknown[]) => sink(`console.error: ${args.map(String).join(' ')}`);
  return () => {
    console.warn = warn;
    console.error = error;
  };
}

function digest(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

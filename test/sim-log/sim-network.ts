// The simulated network: one Transport per node lifetime, delivering deep
// copies of messages after a random delay, with loss, reordering,
// duplication (never of MsgProp: TCP never duplicates, and the driver counts
// on forwarded appends arriving at most once), partitions and links cut in one
// direction only (TcpTransport's connections each carry one direction, so a
// peer whose dial fails is still heard by the node it cannot reach).
import { MessageType, type Message } from '../../src/raft/types.js';
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';
import type { Prng } from '../sim/prng.js';
import type { Lifetime, Scheduler } from './scheduler.js';

export interface NetFaults {
  /** Usual one-way latency in simulated ms, [min, max]. */
  latencyMs: [number, number];
  /** Probability that a message is held back much longer (which also reorders it). */
  slow: number;
  slowMs: [number, number];
  drop: number;
  /** Probability that a message (other than MsgProp) arrives twice. */
  duplicate: number;
}

export const perfectNet: NetFaults = { latencyMs: [1, 1], slow: 0, slowMs: [1, 1], drop: 0, duplicate: 0 };

export interface NetStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
}

export class SimNetwork {
  faults: NetFaults = perfectNet;
  readonly stats: NetStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };
  private readonly endpoints = new Map<number, SimTransport>();
  /** Partition group of each node; empty when healed. Nodes not listed are alone. */
  private readonly group = new Map<number, number>();
  /** Links cut in one direction only ("from>to"), until heal(). */
  private readonly cut = new Set<string>();

  constructor(
    private readonly sched: Scheduler,
    private readonly rng: Prng,
  ) {}

  /** A fresh endpoint for node `id` (its previous one, if any, is detached); `life`: the process it serves, when it can stall. */
  transport(id: number, onClose?: () => void, life: Lifetime | null = null): SimTransport {
    this.endpoints.get(id)?.detach();
    const t = new SimTransport(this, id, onClose, life);
    this.endpoints.set(id, t);
    return t;
  }

  partition(groups: number[][]): void {
    this.group.clear();
    groups.forEach((g, i) => g.forEach((id) => this.group.set(id, i)));
  }

  /** Cuts the link from `from` to `to` only: `to` still reaches `from`. */
  cutOneWay(from: number, to: number): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.group.clear();
    this.cut.clear();
  }

  get partitioned(): boolean {
    return this.group.size > 0 || this.cut.size > 0;
  }

  /** Whether a message from `a` reaches `b`. */
  connected(a: number, b: number): boolean {
    if (a === b) return true;
    if (this.cut.has(`${a}>${b}`)) return false;
    if (this.group.size === 0) return true;
    const ga = this.group.get(a);
    return ga !== undefined && ga === this.group.get(b);
  }

  describe(): string {
    if (!this.partitioned) return 'healed';
    const groups = new Map<number, number[]>();
    for (const [id, g] of this.group) groups.set(g, [...(groups.get(g) ?? []), id]);
    return [...[...groups.values()].map((g) => `{${g.sort((a, b) => a - b).join(',')}}`), ...[...this.cut].map((c) => `cut ${c}`)].join(' ');
  }

  /** @internal */
  route(from: SimTransport, m: Message): void {
    // TcpTransport closes a connection that carries a proposal or read claiming another sender.
    if ((m.type === MessageType.MsgProp || m.type === MessageType.MsgReadIndex) && m.from !== from.id)
      throw new Error(`node ${from.id} relayed a ${MessageType[m.type]} of node ${m.from}`);
    this.stats.sent++;
    const to = m.to;
    const reachable = this.connected(from.id, to) && this.endpoints.get(to)?.running === true;
    if (m.type === MessageType.MsgSnap) from.snapshotSent(to, reachable);
    if (!reachable) {
      this.stats.dropped++;
      from.unreachable(to);
      return;
    }
    if (this.rng.chance(this.faults.drop)) {
      this.stats.dropped++;
      return;
    }
    const copies = m.type !== MessageType.MsgProp && this.rng.chance(this.faults.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let c = 0; c < copies; c++) {
      const [lo, hi] = this.rng.chance(this.faults.slow) ? this.faults.slowMs : this.faults.latencyMs;
      const copy = structuredClone(m); // nodes share no objects, as over a real wire
      this.sched.after(this.rng.range(lo, hi), () => this.deliver(from.id, copy));
    }
  }

  private deliver(from: number, m: Message): void {
    // A partition that formed while the message was in flight cuts it too.
    const target = this.endpoints.get(m.to);
    if (target === undefined || !target.running || !this.connected(from, m.to)) {
      this.stats.dropped++;
      return;
    }
    const life = target.life;
    if (life !== null && life.pausedUntil > this.sched.now) {
      // Arrived while the process is stalled: it is read when the process wakes, unless it dies first.
      this.sched.after(
        0,
        () => {
          if (!target.running) {
            this.stats.dropped++;
            return;
          }
          this.stats.delivered++;
          target.receive(m);
        },
        life,
      );
      return;
    }
    this.stats.delivered++;
    target.receive(m);
  }
}

/** One node lifetime's view of the simulated network. */
export class SimTransport implements Transport {
  private handlers: TransportHandlers | null = null;
  private closed = false;
  private readonly peers = new Set<number>();
  private readonly removed = new Set<number>();
  private readonly unreachablePending = new Set<number>();
  private readonly snapStatusPending: Array<[number, boolean]> = [];
  private flushScheduled = false;

  /** @internal Use SimNetwork.transport. */
  constructor(
    private readonly net: SimNetwork,
    readonly id: number,
    private readonly onClose?: () => void,
    readonly life: Lifetime | null = null,
  ) {}

  get running(): boolean {
    return this.handlers !== null && !this.closed;
  }

  async start(handlers: TransportHandlers): Promise<void> {
    if (this.closed) throw new Error(`sim transport of node ${this.id} is closed`);
    this.handlers = handlers;
  }

  send(messages: Message[]): void {
    if (!this.running) return;
    for (const m of messages) {
      if (!this.peers.has(m.to)) {
        this.unreachable(m.to);
        continue;
      }
      this.net.route(this, m);
    }
  }

  addPeer(id: number): void {
    this.removed.delete(id);
    this.peers.add(id);
  }

  removePeer(id: number): void {
    this.removed.add(id);
    this.peers.delete(id);
  }

  /** Called by the node itself (close, or a fatal error): the harness hears of it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
  }

  /** The node's lifetime ended (crash) or a new one took over: silent, no callback. */
  detach(): void {
    this.closed = true;
  }

  /** @internal */
  receive(m: Message): void {
    // As TcpTransport learns a dialer's address from its handshake: a node can answer a
    // peer that joined while it was away, unless its driver removed that peer.
    if (!this.peers.has(m.from) && !this.removed.has(m.from)) this.peers.add(m.from);
    this.handlers?.onMessage(m);
  }

  /** @internal Reported later, once per peer per turn, never from inside send(). */
  unreachable(peer: number): void {
    this.unreachablePending.add(peer);
    this.scheduleFlush();
  }

  /** @internal Like a TCP transport: true once written to the socket, even if the connection then loses it. */
  snapshotSent(peer: number, ok: boolean): void {
    this.snapStatusPending.push([peer, ok]);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      const h = this.handlers;
      if (h === null || this.closed) return;
      const peers = [...this.unreachablePending];
      this.unreachablePending.clear();
      const snaps = this.snapStatusPending.splice(0);
      for (const p of peers) h.onUnreachable?.(p);
      for (const [p, ok] of snaps) h.onSnapshotStatus?.(p, ok);
    });
  }
}

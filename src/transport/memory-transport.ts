// An in-process network for tests and the simulator: a hub with one endpoint per
// node, and knobs to drop, delay, cut and partition. Given a seeded random and a
// virtual-time schedule it is deterministic: the same sends in the same order
// meet the same fate. Links are FIFO like the TCP transport's connections, but for
// a MsgSnap: like TCP's, it is delivered once its bytes are copied (outside the
// schedule), and what the link delivers meanwhile overtakes it.
import { codeOf } from '../errors.js';
import { MessageType } from '../raft/types.js';
import type { Message, Snapshot } from '../raft/types.js';
import { SnapshotSourceMismatchError, TransportClosedError } from './errors.js';
import { inMemorySnapshots, type IncomingSnapshot, type SnapshotStreams } from './snapshot-streams.js';
import type { Transport, TransportHandlers, TransportLogger } from './transport.js';
import { rememberRemoval } from './removed-peers.js';

export interface LinkFaults {
  /** Probability (0..1) that a message on the link is lost. */
  drop?: number;
  /** Delivery delay range in ms, drawn uniformly per message. */
  delayMs?: [number, number];
}

export interface MemoryNetworkOptions {
  /** Seeded generator in [0, 1) for drops and delays. Default Math.random. */
  random?: () => number;
  /** Runs `fn` after `delayMs` (virtual time in a simulator). Default setImmediate / setTimeout. */
  schedule?: (fn: () => void, delayMs: number) => void;
  /** Faults on every link without its own. */
  faults?: LinkFaults;
}

export interface MemoryNetworkStats {
  sent: number;
  delivered: number;
  /** Lost to drop rates, cut links, partitions, filters, or a receiver that went away. */
  dropped: number;
  /** Addressed to a node without a started endpoint, or one its sender removed. */
  unreachable: number;
}

interface Link {
  queue: Message[];
}

export class MemoryNetwork {
  readonly stats: MemoryNetworkStats = { sent: 0, delivered: 0, dropped: 0, unreachable: 0 };
  /** Return false to drop a message (after cuts and partitions, before drop rates). */
  filter: ((m: Message) => boolean) | undefined;
  private readonly endpoints = new Map<number, MemoryTransport>();
  private readonly links = new Map<string, Link>();
  private readonly linkFaults = new Map<string, LinkFaults>();
  private readonly cutLinks = new Set<string>();
  private readonly isolated = new Set<number>();
  private faults: LinkFaults;
  private readonly random: () => number;
  readonly schedule: (fn: () => void, delayMs: number) => void;

  constructor(o: MemoryNetworkOptions = {}) {
    this.random = o.random ?? Math.random;
    this.schedule = o.schedule ?? ((fn, ms) => (ms > 0 ? setTimeout(fn, ms) : setImmediate(fn)));
    this.faults = o.faults ?? {};
  }

  /** The endpoint of node `id`, created on first use. */
  endpoint(id: number): MemoryTransport {
    let e = this.endpoints.get(id);
    if (e === undefined) {
      e = new MemoryTransport(id, this);
      this.endpoints.set(id, e);
    }
    return e;
  }

  /** Faults for messages from `from` to `to` (one direction). */
  setLink(from: number, to: number, faults: LinkFaults): void {
    this.linkFaults.set(key(from, to), faults);
  }

  setFaults(faults: LinkFaults): void {
    this.faults = faults;
  }

  /** Loses every message between a and b (both directions unless oneWay). */
  cut(a: number, b: number, oneWay = false): void {
    this.cutLinks.add(key(a, b));
    if (!oneWay) this.cutLinks.add(key(b, a));
  }

  /** Cuts every link between nodes of different groups. Nodes in no group keep their links. */
  partition(...groups: number[][]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.cut(a, b, true);
      }
    }
  }

  /** Cuts node `id` off from every other node, present or future. */
  isolate(id: number): void {
    this.isolated.add(id);
  }

  /** Restores every link and clears per-link faults (the global faults and the filter stay). */
  heal(): void {
    this.cutLinks.clear();
    this.linkFaults.clear();
    this.isolated.clear();
  }

  /** Called by endpoints. */
  route(m: Message, sender: MemoryTransport): void {
    this.stats.sent++;
    const target = this.endpoints.get(m.to);
    if (target === undefined || !target.started || sender.removed.has(m.to)) {
      this.stats.unreachable++;
      sender.notifyUnreachable(m);
      return;
    }
    if (this.isLost(m)) {
      this.stats.dropped++;
      if (m.type === MessageType.MsgSnap) sender.notifySnapshot(m.to, false);
      return;
    }
    const f = this.linkFaults.get(key(m.from, m.to)) ?? this.faults;
    const delay = f.delayMs === undefined ? 0 : f.delayMs[0] + this.random() * (f.delayMs[1] - f.delayMs[0]);
    const k = key(m.from, m.to);
    let link = this.links.get(k);
    if (link === undefined) {
      link = { queue: [] };
      this.links.set(k, link);
    }
    link.queue.push(cloneMessage(m));
    // Each timer delivers the link's oldest message, not "its own": delays vary
    // per message but a link never reorders, like a TCP connection.
    const l = link;
    this.schedule(() => this.deliverHead(l, sender), delay);
  }

  private isLost(m: Message): boolean {
    if (this.isolated.has(m.from) || this.isolated.has(m.to) || this.cutLinks.has(key(m.from, m.to))) return true;
    if (this.filter !== undefined && !this.filter(m)) return true;
    const drop = (this.linkFaults.get(key(m.from, m.to)) ?? this.faults).drop ?? 0;
    return drop > 0 && this.random() < drop;
  }

  private deliverHead(link: Link, sender: MemoryTransport): void {
    const m = link.queue.shift()!;
    const target = this.endpoints.get(m.to);
    if (target === undefined || !target.started) return this.lost(m, sender);
    if (m.snapshot !== undefined) {
      const copy = this.carry(m, m.snapshot, sender, target);
      sender.track(copy);
      target.track(copy);
      return;
    }
    this.stats.delivered++;
    target.deliver(m);
  }

  private lost(m: Message, sender: MemoryTransport): void {
    this.stats.dropped++;
    if (m.type === MessageType.MsgSnap) sender.notifySnapshot(m.to, false);
  }

  /**
   * Copies the bytes behind a MsgSnap's snapshot from the sender's streams into the receiver's,
   * as TCP does: a log's `data` names a file in its own directory, which the receiver lacks.
   */
  private async carry(m: Message, snapshot: Snapshot, sender: MemoryTransport, target: MemoryTransport): Promise<void> {
    let spool: IncomingSnapshot | undefined;
    let chunks: AsyncIterator<Uint8Array> | undefined;
    // Every step races the endpoints' close: a source or a spool that never settles must not
    // hold close() (TCP's close() destroys the socket a stream is on, whatever it waits for).
    const closed = Promise.race([sender.closedSignal, target.closedSignal]);
    const step = <T>(p: Promise<T>): Promise<T> => Promise.race([p, closed]);
    try {
      const out = await step(sender.snapshots.open(snapshot));
      chunks = out.chunks[Symbol.asyncIterator]();
      let copied = 0;
      // The spool is opened once the source has yielded: a source never started may never let go
      // of what it holds.
      for (let r = await step(chunks.next()); r.done !== true; r = await step(chunks.next())) {
        spool ??= await step(target.snapshots.spool(snapshot.meta, out.size));
        copied += r.value.byteLength;
        if (copied > out.size) throw new SnapshotSourceMismatchError(snapshot.meta.index, snapshot.meta.term, out.size, `held at least ${copied}`);
        await step(spool.write(r.value.slice()));
      }
      if (copied < out.size) throw new SnapshotSourceMismatchError(snapshot.meta.index, snapshot.meta.term, out.size, `ended after ${copied}`);
      chunks = undefined;
      spool ??= await step(target.snapshots.spool(snapshot.meta, out.size));
      const data = await step(spool.finish());
      spool = undefined;
      this.stats.delivered++;
      sender.notifySnapshot(m.to, true);
      target.deliver({ ...m, snapshot: { meta: snapshot.meta, data } });
    } catch (err) {
      // Not awaited: a source stuck in a read lets go only once that read ends.
      chunks?.return?.().catch(() => undefined);
      if (!(err instanceof TransportClosedError)) {
        sender.logger?.warn(
          { code: codeOf(err), peer: m.to, index: snapshot.meta.index },
          `transport: snapshot ${snapshot.meta.index} to node ${m.to} not copied: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      await spool?.abort().catch(() => undefined);
      this.lost(m, sender);
    }
  }

  /** `from` refuses `to` as removed; as TCP's refusal, it travels on the link: a cut one loses it. */
  refuseRemoved(from: number, to: number): void {
    if (this.isolated.has(from) || this.isolated.has(to) || this.cutLinks.has(key(from, to))) return;
    const target = this.endpoints.get(to);
    if (target?.started === true) target.notifyRemoved(from);
  }

  /** Called by an endpoint on close, so a later endpoint(id) is a fresh node (a restart). */
  forget(e: MemoryTransport): void {
    if (this.endpoints.get(e.id) === e) this.endpoints.delete(e.id);
  }
}

/** One node's side of a MemoryNetwork. Any started endpoint is reachable unless removePeer'd. */
export class MemoryTransport implements Transport {
  /** Peers removed (and not added again), the latest REMOVALS_REMEMBERED. */
  readonly removed = new Set<number>();
  private handlers: TransportHandlers | undefined;
  private closed = false;
  /** Snapshots being copied to or from this endpoint: close() waits for them to let go. */
  private readonly copies = new Set<Promise<void>>();
  private endCopies: (err: TransportClosedError) => void = () => undefined;
  /** Rejects once close() is called: every step of a snapshot copy races it. */
  readonly closedSignal = new Promise<never>((_, reject) => (this.endCopies = reject));

  constructor(
    readonly id: number,
    private readonly network: MemoryNetwork,
  ) {
    // Only copies race it: a close() with none under way is no rejection to report.
    this.closedSignal.catch(() => undefined);
  }

  get started(): boolean {
    return this.handlers !== undefined && !this.closed;
  }

  /** Where this node's snapshots are read and its peers' spooled: the log's, given at start(). */
  get snapshots(): SnapshotStreams {
    return this.handlers?.snapshots ?? inMemorySnapshots;
  }

  async start(handlers: TransportHandlers): Promise<void> {
    if (this.closed) throw new TransportClosedError();
    this.handlers = handlers;
  }

  send(messages: Message[]): void {
    if (!this.started) return;
    for (const m of messages) this.network.route(m, this);
  }

  addPeer(id: number, _address: string): void {
    this.removed.delete(id);
  }

  removePeer(id: number): void {
    rememberRemoval(this.removed, id);
  }

  refuseRemoved(peer: number): void {
    if (this.started && this.removed.has(peer)) this.network.refuseRemoved(this.id, peer);
  }

  /** The log's logger, given at start(). */
  get logger(): TransportLogger | undefined {
    return this.handlers?.logger;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.endCopies(new TransportClosedError());
    this.network.forget(this);
    await Promise.all(this.copies);
  }

  /** Called by the network for a snapshot it copies to or from this endpoint. */
  track(copy: Promise<void>): void {
    this.copies.add(copy);
    void copy.then(() => this.copies.delete(copy));
  }

  deliver(m: Message): void {
    if (this.started) this.handlers!.onMessage(m);
  }

  notifyUnreachable(m: Message): void {
    this.network.schedule(() => {
      // A peer removed meanwhile is unknown to raft: reporting it would be an error there.
      if (!this.started || this.removed.has(m.to)) return;
      this.handlers!.onUnreachable?.(m.to);
      if (m.type === MessageType.MsgSnap) this.handlers!.onSnapshotStatus?.(m.to, false);
    }, 0);
  }

  /** `peer` applied this node's removal and refused a message from it. */
  notifyRemoved(peer: number): void {
    this.network.schedule(() => {
      if (this.started) this.handlers!.onRemoved?.(peer);
    }, 0);
  }

  notifySnapshot(peer: number, ok: boolean): void {
    this.network.schedule(() => {
      if (this.started && !this.removed.has(peer)) this.handlers!.onSnapshotStatus?.(peer, ok);
    }, 0);
  }
}

function key(from: number, to: number): string {
  return `${from}>${to}`;
}

/** Sender and receiver must share no mutable memory, as across a real network. */
function cloneMessage(m: Message): Message {
  const c: Message = { ...m, entries: m.entries.map((e) => ({ ...e, data: e.data.slice() })) };
  if (m.context !== undefined) c.context = m.context.slice();
  if (m.snapshot !== undefined) {
    const conf = m.snapshot.meta.conf;
    c.snapshot = { meta: { ...m.snapshot.meta, conf: structuredClone(conf) }, data: m.snapshot.data.slice() };
  }
  return c;
}

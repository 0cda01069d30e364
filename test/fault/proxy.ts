// An in-process TCP proxy between raftlog nodes, one listener per directed link.
//
// raftlog connections are one-way: node A dials B and writes its raft messages
// on that connection; B only answers the handshake and pings on it. So the link
// A->B is exactly the connections A opens to B, and node A's `peers` map points
// B at the proxy's port for A->B (see `peersFor`). What the proxy does to a
// link:
//
//   cut(a, b)            'hold' (default): a partition. Nothing crosses, in either
//                        direction of A's connections to B, and the connections stay
//                        open: the proxy stops reading them, so TCP backpressure
//                        fills A's send buffer as a lost-packet network would. New
//                        connections are accepted but not carried on to B. On heal
//                        the held bytes flow (as TCP retransmission would deliver
//                        them), unless an end gave up on the connection meanwhile.
//   cut(a, b, 'reset')   every connection of the link is reset at once, and new ones
//                        are reset as they arrive: a peer that is down, a firewall
//                        that rejects.
//   delay(a, b, ms, j)   each chunk from A to B is held ms + [0, j) ms (jitter from the
//                        seeded `random`); order is kept, as TCP keeps it. The answers
//                        on the connection (B's pings) are not delayed.
//   heal(a, b)           back to a plain forwarder (delay included).
//
// A two-way partition between A and B is cut(a, b) and cut(b, a); `isolate` and
// `partition` do that for groups.
//
// A connection belongs to the link its dialer's hello names (from -> to), whatever
// port it came in on: a node that installs its leader's snapshot dials its peers at
// the addresses the snapshot names, which are the leader's ports here, and its
// traffic must still be cut as its own. Bytes that are not a raftlog hello (TLS, a
// test's raw socket) belong to the port's link.
import net from 'node:net';
import { FrameDecoder } from '../../src/transport/frame.js';
import { decodeFrame } from '../../src/transport/wire.js';

export type CutMode = 'hold' | 'reset';

export interface LinkStats {
  /** Connections accepted on this link's port. */
  connections: number;
  /** Bytes carried from the dialer to its peer. */
  bytesForward: number;
  /** Bytes carried back (handshake answers, pings). */
  bytesBack: number;
  /** Connections reset by a 'reset' cut. */
  resets: number;
}

export interface FaultProxyOptions {
  /** Each node's real listen address, 'host:port'. */
  nodes: Record<number, string>;
  /** In [0, 1): the delay jitter (pass test/seeded.ts's seeded(seed)). */
  random: () => number;
  /** Where the proxy listens. Default 127.0.0.1. */
  host?: string;
}

/** A hello is small; anything longer, or nothing within SNIFF_MS, is not one. */
const HELLO_MAX_BYTES = 4096;
// Long enough for a loaded machine: a raftlog dialer sends its hello at once, and routing it by
// the port instead would put it on the wrong link.
const SNIFF_MS = 1_000;

/** Bytes waiting in one pipe's delay queue beyond which the dialer is no longer read. */
const MAX_DELAYED_BYTES = 4 * 1024 * 1024;

interface LinkState {
  cut: CutMode | null;
  delayMs: number;
  jitterMs: number;
}

/** One dialer's connection and the proxy's connection onward to the peer. */
class Pipe {
  upstream: net.Socket | null = null;
  private delayed: Array<{ due: number; chunk: Buffer }> = [];
  private delayedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastDue = 0;
  private clientEnded = false;
  private closed = false;
  /** The upstream socket asked us to wait for 'drain'. */
  private blockedUp = false;
  private blockedDown = false;

  /** Until the dialer's hello names the link: what it sent so far, and the decoder reading it. */
  private sniffed: Buffer[] | null = [];
  private readonly hello = new FrameDecoder(HELLO_MAX_BYTES);
  private sniffTimer: NodeJS.Timeout | undefined;

  /** `route(from, to)`: the link between two nodes, if the proxy has one. */
  constructor(
    public link: Link,
    readonly client: net.Socket,
    private readonly route: (from: number, to: number) => Link | undefined,
  ) {
    client.on('data', (chunk: Buffer) => (this.sniffed === null ? this.forward(chunk) : this.sniff(chunk)));
    client.on('end', () => {
      this.clientEnded = true;
      this.settle(this.link); // a dialer that ends before a hello: its bytes still go on the port's link
      this.maybeEndUpstream();
    });
    client.on('error', () => this.destroy());
    client.on('close', () => this.destroy());
    client.on('drain', () => {
      this.blockedDown = false;
      this.update();
    });
    link.pipes.add(this); // closed with the proxy even before its link is known
    // Not a raftlog dialer (or one that says nothing): the port's link.
    this.sniffTimer = setTimeout(() => this.settle(this.link), SNIFF_MS);
  }

  /** Reads the dialer's hello, which says which link this connection belongs to, whatever port it came in on. */
  private sniff(chunk: Buffer): void {
    this.sniffed!.push(chunk);
    this.hello.push(chunk);
    let to = this.link;
    try {
      const payload = this.hello.next();
      if (payload === undefined) return;
      const f = decodeFrame(payload);
      if (f.kind === 'hello') to = this.route(f.from, f.to) ?? this.link;
    } catch {
      // not a frame: the port's link
    }
    this.settle(to);
  }

  private settle(link: Link): void {
    if (this.sniffed === null || this.closed) return;
    clearTimeout(this.sniffTimer);
    const bytes = Buffer.concat(this.sniffed);
    this.sniffed = null;
    this.link.pipes.delete(this);
    this.link = link;
    link.pipes.add(this);
    link.stats.connections++;
    this.client.pause();
    if (bytes.length > 0) this.forward(bytes);
    else this.update();
  }

  /** Brings reading, connecting and delivery in line with the link's state. */
  update(): void {
    if (this.closed || this.sniffed !== null) return;
    const s = this.link.state;
    if (s.cut === 'reset') return this.reset();
    if (s.cut === 'hold') {
      this.client.pause();
      this.upstream?.pause();
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    if (this.upstream === null) {
      this.connectUpstream();
      return; // resumed once connected
    }
    if (this.upstream.connecting) return;
    if (this.blockedUp || this.delayedBytes > MAX_DELAYED_BYTES) this.client.pause();
    else this.client.resume();
    if (this.blockedDown) this.upstream.pause();
    else this.upstream.resume();
    this.schedule();
  }

  private connectUpstream(): void {
    const up = net.connect(this.link.target.port, this.link.target.host);
    this.upstream = up;
    up.setNoDelay(true);
    up.pause();
    up.on('connect', () => this.update());
    up.on('data', (chunk: Buffer) => {
      this.link.stats.bytesBack += chunk.length;
      if (!this.client.write(chunk)) this.blockedDown = true;
      this.update();
    });
    up.on('drain', () => {
      this.blockedUp = false;
      this.update();
    });
    up.on('end', () => this.client.end());
    up.on('error', () => this.destroy());
    up.on('close', () => this.destroy());
  }

  private forward(chunk: Buffer): void {
    const s = this.link.state;
    const wait = s.delayMs + (s.jitterMs > 0 ? Math.floor(this.link.random() * s.jitterMs) : 0);
    // TCP keeps order: a chunk never overtakes the one before it, whatever its own jitter.
    const due = Math.max(this.lastDue, Date.now() + wait);
    this.lastDue = due;
    this.delayed.push({ due, chunk });
    this.delayedBytes += chunk.length;
    this.update();
  }

  /** Delivers what is due and arms a timer for the rest. */
  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const up = this.upstream;
    if (up === null || up.connecting || this.closed) return;
    const now = Date.now();
    while (this.delayed.length > 0 && this.delayed[0]!.due <= now) {
      const { chunk } = this.delayed.shift()!;
      this.delayedBytes -= chunk.length;
      this.link.stats.bytesForward += chunk.length;
      if (!up.write(chunk)) this.blockedUp = true;
    }
    if (this.delayed.length > 0) {
      this.timer = setTimeout(() => this.update(), this.delayed[0]!.due - now);
    } else this.maybeEndUpstream();
  }

  private maybeEndUpstream(): void {
    if (this.clientEnded && this.delayed.length === 0 && this.upstream !== null && !this.upstream.connecting) this.upstream.end();
    else if (this.clientEnded && this.upstream === null) this.destroy();
  }

  reset(): void {
    if (this.closed) return;
    this.link.stats.resets++;
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.sniffTimer);
    this.client.resetAndDestroy();
    if (this.upstream !== null && !this.upstream.destroyed) this.upstream.resetAndDestroy();
    this.link.pipes.delete(this);
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.sniffTimer);
    this.client.destroy();
    this.upstream?.destroy();
    this.link.pipes.delete(this);
  }
}

class Link {
  readonly state: LinkState = { cut: null, delayMs: 0, jitterMs: 0 };
  readonly stats: LinkStats = { connections: 0, bytesForward: 0, bytesBack: 0, resets: 0 };
  readonly pipes = new Set<Pipe>();
  readonly server: net.Server;

  constructor(
    readonly from: number,
    readonly to: number,
    readonly target: { host: string; port: number },
    readonly random: () => number,
    route: (from: number, to: number) => Link | undefined,
  ) {
    // Counted, cut and forwarded on the link the dialer's hello names (see Pipe).
    this.server = net.createServer((socket) => {
      socket.setNoDelay(true);
      new Pipe(this, socket, route);
    });
  }

  apply(): void {
    for (const p of [...this.pipes]) p.update();
  }
}

function parse(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new RangeError(`not a host:port address: '${addr}'`);
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

export class FaultProxy {
  private readonly links = new Map<string, Link>();

  private constructor(
    private readonly nodes: Record<number, string>,
    private readonly host: string,
  ) {}

  /** Listens for every directed link between the nodes. */
  static async start(o: FaultProxyOptions): Promise<FaultProxy> {
    const host = o.host ?? '127.0.0.1';
    const proxy = new FaultProxy({ ...o.nodes }, host);
    const ids = Object.keys(o.nodes).map(Number);
    try {
      for (const from of ids) {
        for (const to of ids) {
          if (from === to) continue;
          const link = new Link(from, to, parse(o.nodes[to]!), o.random, (f, t) => proxy.links.get(`${f}>${t}`));
          proxy.links.set(`${from}>${to}`, link);
          await new Promise<void>((resolve, reject) => {
            link.server.once('error', reject);
            link.server.listen(0, host, () => resolve());
          });
        }
      }
    } catch (err) {
      await proxy.close();
      throw err;
    }
    return proxy;
  }

  /** The `peers` option for node `id`: itself at its real address, every other node through the proxy. */
  peersFor(id: number): Record<number, string> {
    if (this.nodes[id] === undefined) throw new RangeError(`unknown node ${id}`);
    const out: Record<number, string> = { [id]: this.nodes[id] };
    for (const other of Object.keys(this.nodes).map(Number)) {
      if (other !== id) out[other] = `${this.host}:${(this.link(id, other).server.address() as net.AddressInfo).port}`;
    }
    return out;
  }

  /** Nothing from `from` reaches `to` (see the file comment for the two modes). */
  cut(from: number, to: number, mode: CutMode = 'hold'): void {
    const l = this.link(from, to);
    l.state.cut = mode;
    l.apply();
  }

  /** Holds each chunk from `from` to `to` for ms + [0, jitterMs) ms. */
  delay(from: number, to: number, ms: number, jitterMs = 0): void {
    if (!(ms >= 0 && jitterMs >= 0)) throw new RangeError('delay and jitter must be >= 0');
    const l = this.link(from, to);
    l.state.delayMs = ms;
    l.state.jitterMs = jitterMs;
    l.apply();
  }

  /** Cuts every link to and from `id`. */
  isolate(id: number, mode: CutMode = 'hold'): void {
    for (const other of this.ids()) {
      if (other === id) continue;
      this.cut(id, other, mode);
      this.cut(other, id, mode);
    }
  }

  /** Cuts every link between nodes of different groups; a node in no group is cut from all. */
  partition(groups: number[][], mode: CutMode = 'hold'): void {
    const group = new Map<number, number>();
    groups.forEach((g, i) => g.forEach((id) => group.set(id, i)));
    for (const a of this.ids()) {
      for (const b of this.ids()) {
        if (a !== b && (group.get(a) === undefined || group.get(a) !== group.get(b))) this.cut(a, b, mode);
      }
    }
  }

  /** Ends the cut and the delay on one link, or on every link with no arguments. */
  heal(from?: number, to?: number): void {
    const links = from === undefined || to === undefined ? [...this.links.values()] : [this.link(from, to)];
    for (const l of links) {
      l.state.cut = null;
      l.state.delayMs = 0;
      l.state.jitterMs = 0;
      l.apply();
    }
  }

  stats(from: number, to: number): LinkStats {
    return { ...this.link(from, to).stats };
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const l of this.links.values()) {
      for (const p of [...l.pipes]) p.destroy();
      if (l.server.listening) closing.push(new Promise((resolve) => l.server.close(() => resolve())));
    }
    await Promise.all(closing);
  }

  private ids(): number[] {
    return Object.keys(this.nodes).map(Number);
  }

  private link(from: number, to: number): Link {
    const l = this.links.get(`${from}>${to}`);
    if (l === undefined) throw new RangeError(`no link ${from}->${to}`);
    return l;
  }
}

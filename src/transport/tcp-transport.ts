// Raft messages between processes over TCP (optionally TLS with mutual
// authentication): one outbound connection per peer, frames batched per flush,
// a bounded queue under back-pressure, reconnects with jittered backoff.
import net from 'node:net';
import tls from 'node:tls';
import type { Message } from '../raft/types.js';
import { formatAddress, parseAddress } from './address.js';
import type { BackoffOptions } from './backoff.js';
import { BadOptionError, ListenFailedError, TransportClosedError } from './errors.js';
import { Inbound } from './inbound.js';
import { Outbound } from './outbound.js';
import type { OutboundConfig, OutboundStats, TlsOptions } from './outbound.js';
import { silentLogger } from '../logger.js';
import type { Transport, TransportHandlers, TransportLogger } from './transport.js';
import { newPacker } from './wire.js';

export type { TlsOptions, OutboundStats };

export interface TcpTransportOptions {
  id: number;
  /** Every node of a cluster must use the same id; a connection from another cluster is refused. */
  clusterId: string;
  /** 'host:port' to accept peers on; port 0 picks a free port (see `address`). */
  listen: string;
  peers?: Record<number, string>;
  /** Largest frame accepted or sent. Default 16 MiB. Keep raft's max message size below it. */
  maxFrameBytes?: number;
  /** Queued bytes per peer beyond which the oldest messages are dropped. Default 32 MiB. */
  maxQueueBytes?: number;
  /** Snapshot data per frame. Default min(1 MiB, maxFrameBytes / 2). */
  snapshotChunkBytes?: number;
  /** Largest snapshot accepted from a peer. Default 1 GiB. */
  maxSnapshotBytes?: number;
  tls?: TlsOptions;
  logger?: TransportLogger;
  /** Reconnect delays. Default 50 ms doubling to 2 s. */
  backoff?: Partial<BackoffOptions>;
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** Jitter source for the backoff. Default Math.random. */
  random?: () => number;
}

export interface TcpTransportStats {
  peers: Record<number, OutboundStats>;
  framesReceived: number;
  messagesReceived: number;
  /** Inbound connections closed for a bad handshake, frame or message. */
  connectionsRefused: number;
}

const MiB = 1024 * 1024;

export class TcpTransport implements Transport {
  private readonly outbound = new Map<number, Outbound>();
  private readonly inbound = new Set<Inbound>();
  private readonly sockets = new Set<net.Socket>();
  /** Peers removed (and not added again): raft has forgotten them, so nothing is reported about them. */
  private readonly removed = new Set<number>();
  private readonly config: OutboundConfig;
  private readonly peerAddresses: Map<number, string>;
  private readonly logger: TransportLogger;
  private server: net.Server | undefined;
  private handlers: TransportHandlers | undefined;
  private closed = false;
  private listenAddress: string;
  private framesFromClosed = 0;
  private messagesReceived = 0;
  private connectionsRefused = 0;
  private pendingUnreachable = new Set<number>();
  private pendingSnapshotStatus: Array<[number, boolean]> = [];
  private notifyScheduled = false;

  constructor(private readonly o: TcpTransportOptions) {
    if (!Number.isSafeInteger(o.id) || o.id <= 0) throw new BadOptionError(`node id must be a positive integer, got ${o.id}`);
    parseAddress(o.listen);
    const maxFrameBytes = o.maxFrameBytes ?? 16 * MiB;
    // A snapshot chunk carries its header too; leave room for it within the frame.
    if (o.snapshotChunkBytes !== undefined && o.snapshotChunkBytes > maxFrameBytes - 4096) {
      throw new BadOptionError(`snapshotChunkBytes ${o.snapshotChunkBytes} must be at least 4 KiB below maxFrameBytes ${maxFrameBytes}`);
    }
    this.logger = o.logger ?? silentLogger;
    this.listenAddress = o.listen;
    this.peerAddresses = new Map(Object.entries(o.peers ?? {}).map(([id, a]) => [Number(id), a]));
    this.config = {
      self: o.id,
      clusterId: o.clusterId,
      ...(o.tls !== undefined ? { tls: o.tls } : {}),
      maxFrameBytes,
      maxQueueBytes: o.maxQueueBytes ?? 32 * MiB,
      snapshotChunkBytes: o.snapshotChunkBytes ?? Math.min(MiB, Math.floor(maxFrameBytes / 2)),
      connectTimeoutMs: o.connectTimeoutMs ?? 5_000,
      backoff: { initialMs: o.backoff?.initialMs ?? 50, maxMs: o.backoff?.maxMs ?? 2_000 },
      random: o.random ?? Math.random,
      logger: this.logger,
      packer: newPacker(),
      advertise: () => this.listenAddress,
      unreachable: (peer) => this.notify(() => this.pendingUnreachable.add(peer)),
      snapshotStatus: (peer, ok) => this.notify(() => this.pendingSnapshotStatus.push([peer, ok])),
    };
  }

  /** The address actually listened on ('host:port'), useful after listening on port 0. */
  get address(): string {
    return this.listenAddress;
  }

  async start(handlers: TransportHandlers): Promise<void> {
    if (this.closed) throw new TransportClosedError();
    this.handlers = handlers;
    const t = this.o.tls;
    const server = t === undefined
      ? net.createServer((s) => this.accept(s))
      : // rejectUnauthorized stays false only so that we, not Node, close an unauthorized peer:
        // Node would close it silently, and the reason (unknown CA, expired, no certificate) would be lost.
        tls.createServer({ key: t.key, cert: t.cert, ca: t.ca, requestCert: true, rejectUnauthorized: false }, (s) => {
          if (s.authorized) return this.accept(s);
          this.connectionsRefused++;
          const why = Object.keys(s.getPeerCertificate()).length === 0 ? 'no client certificate' : String(s.authorizationError ?? 'not authorized');
          this.logger.warn({}, `transport: TLS peer at ${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'} refused: ${why}`);
          s.destroy();
        });
    if (t !== undefined) {
      server.on('tlsClientError', (err, s) => {
        this.connectionsRefused++;
        this.logger.warn({}, `transport: TLS handshake from ${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'} refused: ${err.message}`);
      });
    }
    // Every accepted socket, including TLS ones still in their handshake, so close() never waits on them.
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    const { host, port } = parseAddress(this.o.listen);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ListenFailedError(this.o.listen, err)));
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.warn({}, `transport: listener error: ${err.message}`));
    const a = server.address() as net.AddressInfo;
    this.listenAddress = formatAddress(host, a.port);
    for (const [id, address] of this.peerAddresses) this.connectPeer(id, address);
  }

  send(messages: Message[]): void {
    if (this.handlers === undefined || this.closed) return;
    for (const m of messages) {
      const peer = this.outbound.get(m.to);
      if (peer !== undefined) peer.send(m);
      else this.config.unreachable(m.to);
    }
  }

  addPeer(id: number, address: string): void {
    if (id === this.o.id || this.closed) return;
    this.removed.delete(id);
    this.peerAddresses.set(id, address);
    if (this.handlers === undefined) return;
    const peer = this.outbound.get(id);
    if (peer !== undefined) peer.setAddress(address);
    else this.connectPeer(id, address);
  }

  /** Also cancels pending onUnreachable/onSnapshotStatus for the peer: the driver no longer knows it. */
  removePeer(id: number): void {
    this.removed.add(id);
    this.peerAddresses.delete(id);
    this.outbound.get(id)?.close();
    this.outbound.delete(id);
  }

  stats(): TcpTransportStats {
    const peers: Record<number, OutboundStats> = {};
    for (const [id, p] of this.outbound) peers[id] = p.stats;
    let framesReceived = this.framesFromClosed;
    for (const c of this.inbound) framesReceived += c.framesReceived;
    return { peers, framesReceived, messagesReceived: this.messagesReceived, connectionsRefused: this.connectionsRefused };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.outbound.values()) p.close();
    this.outbound.clear();
    for (const c of this.inbound) c.destroy();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private connectPeer(id: number, address: string): void {
    this.outbound.set(id, new Outbound(id, address, this.config));
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const c = new Inbound(socket, {
      self: this.o.id,
      clusterId: this.o.clusterId,
      maxFrameBytes: this.config.maxFrameBytes,
      maxSnapshotBytes: this.o.maxSnapshotBytes ?? 1024 * MiB,
      handshakeTimeoutMs: this.o.handshakeTimeoutMs ?? 10_000,
      logger: this.logger,
      packer: this.config.packer,
      deliver: (m) => {
        this.messagesReceived++;
        this.handlers?.onMessage(m);
      },
      // A peer this node has no address for (it joined while this node was away) can be
      // answered at the address it dialed from; one the driver removed stays removed.
      learned: (peer, address) => {
        if (!this.peerAddresses.has(peer) && !this.removed.has(peer)) this.addPeer(peer, address);
      },
      refused: () => {
        this.connectionsRefused++;
      },
    });
    this.inbound.add(c);
    socket.on('close', () => {
      this.framesFromClosed += c.framesReceived;
      this.inbound.delete(c);
    });
  }

  /** Handler callbacks run in a later turn, never inside the driver's call to send(). */
  private notify(record: () => void): void {
    if (this.closed) return;
    record();
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    setImmediate(() => {
      this.notifyScheduled = false;
      if (this.closed) return;
      const unreachable = this.pendingUnreachable;
      const statuses = this.pendingSnapshotStatus;
      this.pendingUnreachable = new Set();
      this.pendingSnapshotStatus = [];
      for (const peer of unreachable) if (!this.removed.has(peer)) this.handlers?.onUnreachable?.(peer);
      for (const [peer, ok] of statuses) if (!this.removed.has(peer)) this.handlers?.onSnapshotStatus?.(peer, ok);
    });
  }
}

// Raft messages between processes over TCP (optionally TLS with mutual
// authentication): one outbound connection per peer, frames batched per flush,
// a bounded queue under back-pressure, reconnects with jittered backoff.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { MessageType, type Message } from '../raft/types.js';
import { clientAddress, clientFields, formatAddress, parseAddress } from './address.js';
import type { BackoffOptions } from './backoff.js';
import {
  AuthFailedError,
  BadOptionError,
  HandshakeTimeoutError,
  InsecureTransportError,
  ListenFailedError,
  ConnectionReplacedError,
  TooManyConnectionsError,
  TransportClosedError,
  PeerRefusalCounts,
  RefusalCounts,
  type TransportError,
} from './errors.js';
import { certNodeIds, normalizeSecrets } from './auth.js';
import type { Secret } from './auth.js';
import { Inbound } from './inbound.js';
import { Outbound } from './outbound.js';
import type { OutboundConfig, OutboundStats, TlsOptions } from './outbound.js';
import { guardedLogger, silentLogger } from '../logger.js';
import { RefusalLog, logServerErrors, type RefusalLogClock } from '../refusal-log.js';
import type { Transport, TransportHandlers, TransportLogger } from './transport.js';
import { newPacker } from './wire.js';
import { CLUSTER_ID_RULE, isClusterId } from './cluster-id.js';
import { MAX_FRAME_LENGTH } from './frame.js';
import { inMemorySnapshots, type SnapshotStreams } from './snapshot-streams.js';
import { PendingReleases } from './pending-releases.js';
import { HandshakeSlots } from './handshake-slots.js';
import { rememberRemoval } from './removed-peers.js';
import type { PeerInstances } from './peer-instances.js';
import { MAX_TIMER_MS } from '../timer-limit.js';

export type { TlsOptions, OutboundStats };

export interface TcpTransportOptions {
  id: number;
  /** Every node of a cluster must use the same id; a connection from another cluster is refused. */
  clusterId: string;
  /** 'host:port' to accept peers on; port 0 picks a free port (see `address`). */
  listen: string;
  /** Each peer's 'host:port'; a name without a port is dialled once the peer's handshake says where it listens. */
  peers?: Record<number, string>;
  /** Largest frame accepted or sent. Default 16 MiB. Keep raft's max message size below it. */
  maxFrameBytes?: number;
  /**
   * Queued bytes per peer beyond which the oldest messages are dropped (entries first).
   * Default 32 MiB. Messages other than entries sent while the peer is not keeping up
   * (heartbeats, votes, acknowledgements) are written ahead of the queued entries.
   */
  maxQueueBytes?: number;
  /** Snapshot data per frame. Default min(1 MiB, maxFrameBytes / 2). */
  snapshotChunkBytes?: number;
  /** Largest snapshot accepted from a peer. Default 1 GiB. */
  maxSnapshotBytes?: number;
  /**
   * Where the snapshots sent are read and those received are written: one stream at
   * a time per peer, and only from peers this transport knows (given in `peers` or
   * added). Default: in memory (`data` is the snapshot itself).
   */
  snapshots?: SnapshotStreams;
  /**
   * Shared secret(s) every node of the cluster holds (at least 16 bytes each). Each connection runs a
   * mutual challenge-response over it; the secret never crosses the wire. Give a list to rotate: the
   * first proves this node, any of them verifies a peer.
   */
  clusterSecret?: Secret | Secret[];
  /** Mutual TLS; each certificate names its node as a SAN URI `raftlog://node/<id>`. */
  tls?: TlsOptions;
  /** Run without clusterSecret or tls: anyone who reaches the port can act as any node. */
  insecure?: boolean;
  /** This node's instance id (32 lowercase hex digits: its data directory's), told to every peer in the handshake. */
  instanceId?: string;
  /**
   * With instanceId: the instance first met for each peer id, kept across restarts. A peer met
   * before with another instance (its data directory wiped or replaced) is refused, both ways,
   * with TRANSPORT_PEER_REPLACED; nothing is read from, or proved to, an instance met for the
   * first time before its record is durable. Without it, peers' instances are not checked.
   */
  peerInstances?: PeerInstances;
  /**
   * The raft election timeout in ms; a connection silent for 3 of them is closed, and close() waits
   * no longer than that for snapshot sources and spools to be closed or deleted. Default 1000.
   */
  electionTimeoutMs?: number;
  /** A ping goes out on every open connection this often. Default electionTimeoutMs / 5. */
  heartbeatIntervalMs?: number;
  /**
   * Accepted connections at once. At the cap the oldest one still in its handshake is closed for a
   * new one, which is refused only when authenticated ones hold them all. Default 256.
   */
  maxInboundConnections?: number;
  /**
   * Accepted connections still in their handshake (with TLS, counted from the TCP accept on). At the
   * cap the oldest is closed for a new one: a member needs a slot for a round trip or two, so a
   * stranger holding them all keeps it out only by opening this many more within that time. Default 16.
   */
  maxUnauthenticatedConnections?: number;
  /**
   * Of those, the most from one address (an IPv4-mapped IPv6 address counts as its IPv4 form, and an
   * IPv6 address as its /64, which one host can draw addresses from); one more is refused at once,
   * without taking a slot. Default 4: a node dials each peer over one
   * connection and redials only once the last attempt is over, so one address has as many
   * handshakes at once as nodes share it (a cluster on one machine, nodes behind one NAT), and 4
   * lets up to four of them dial this node at the same moment (a fifth is refused once and redials
   * after its backoff), while one address reconnecting fast holds at most a quarter of the
   * default 16 slots and leaves the rest to the other peers.
   */
  maxHandshakesPerAddress?: number;
  logger?: TransportLogger;
  /**
   * The timer of the rate limit on warnings about refused connections (those not yet authenticated)
   * and about dials peers refused:
   * at most 10 every 10 s, then one line with the count of the rest. Default: real timers.
   */
  refusalLogClock?: RefusalLogClock;
  /** Reconnect delays. Default 50 ms doubling to the election timeout, at most 2 s. */
  backoff?: Partial<BackoffOptions>;
  /** Time for a dial, including the TLS handshake and ours. Default 5 s. */
  connectTimeoutMs?: number;
  /** Time an accepted connection has to complete the handshake (with TLS, the TLS handshake included). Default 5 s. */
  handshakeTimeoutMs?: number;
  /** Jitter source for the backoff. Default Math.random. */
  random?: () => number;
}

export interface TcpTransportStats {
  peers: Record<number, OutboundStats>;
  framesReceived: number;
  /** Bytes received from each peer the transport was given (addPeer), closed connections included. */
  bytesReceived: Record<number, number>;
  messagesReceived: number;
  /** Inbound connections closed for a bad handshake, frame or message. */
  connectionsRefused: number;
  /**
   * Connections this node refused or closed for a peer's fault, by code: inbound ones (each of
   * connectionsRefused), and dials it gave up on its own check of the peer (a proof that fails, a
   * malformed or oversized frame, silence). Keys are TransportErrorCode values only.
   */
  refused: Record<string, number>;
  /**
   * Dials a peer refused: by the code it gave once it had proved itself (with its challenge, or,
   * with TLS and no secret, its certificate; a TransportErrorCode, or 'OTHER' for any other), as
   * 'UNPROVEN' for a refusal sent before, whatever its code.
   */
  refusedByPeers: Record<string, number>;
  /** Inbound connections in their handshake now, each holding one of the slots. */
  handshakesInProgress: number;
}

const MiB = 1024 * 1024;
/**
 * Authenticated connections from ids the driver did not add (a node not yet in this one's
 * configuration asking for a vote, say), the newest: each id holds at most one anyway.
 */
export const STRANGER_CONNECTIONS = 8;

export class TcpTransport implements Transport {
  private readonly outbound = new Map<number, Outbound>();
  private readonly inbound = new Set<Inbound>();
  private readonly sockets = new Set<net.Socket>();
  /** Peers removed (and not added again), the latest REMOVALS_REMEMBERED. */
  private readonly removed = new Set<number>();
  private readonly config: OutboundConfig;
  private readonly peerAddresses: Map<number, string>;
  private readonly logger: TransportLogger;
  /** Where what strangers cause is logged: their connections cost them little, so the lines are rationed. */
  private readonly refusals: RefusalLog;
  /** Where peers refused as new instances are logged, at error level: lines an operator must act on, rationed alike. */
  private readonly replacedPeers: RefusalLog;
  /** Where refusals of this node's dials are logged (those without a row in PEER_REFUSALS), rationed alike. */
  private readonly refusedDials: RefusalLog;
  /** The record of peers' instances as accepted connections use it: only those of peers the driver added are recorded. */
  private readonly strangerAware: PeerInstances | undefined;
  private server: net.Server | undefined;
  private serverErrors: RefusalLog | undefined;
  private handlers: TransportHandlers | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private listenAddress: string;
  private framesFromClosed = 0;
  /** By peer, until it is removed: members replaced by new ids would otherwise each leave an entry for good. */
  private readonly bytesFromClosed = new Map<number, number>();
  private messagesReceived = 0;
  private connectionsRefused = 0;
  private pendingUnreachable = new Set<number>();
  private pendingSnapshotStatus: Array<[number, boolean]> = [];
  /** Peers that refused this node as removed, told the driver in a later turn. */
  private pendingRemovedBy = new Set<number>();
  private notifyScheduled = false;
  private secrets: Buffer[];
  /** With TLS, the CAs peers are verified against, as given: a reload that changes them closes every connection. */
  private cas: Buffer;
  /** The TLS credentials in force: start() builds the server from them, so a reload before it is not lost. */
  private tls: TlsOptions | undefined;
  private readonly idleTimeoutMs: number;
  private readonly maxInbound: number;
  private readonly slots: HandshakeSlots;
  private readonly handshakeTimeoutMs: number;
  /** TLS connections accepted and not yet handed to accept(), by `endpoints`: what releases each one's handshake slot. */
  private readonly admitted = new Map<string, () => void>();
  /**
   * The authenticated connection from each peer id, oldest first: a newer one from the same id
   * replaces it, so a peer's reconnect is served while its old link lingers, and one holding the
   * secret (or anyone, insecure) gains nothing by opening more.
   */
  private readonly byPeer = new Map<number, Inbound>();
  /**
   * Deletions of abandoned spools and releases of the sources of snapshots cut off, under way:
   * close() waits for them, so the directory is left as it will stay, with no file of it open.
   */
  private readonly releases: PendingReleases;
  /** Snapshot stores given up on (as hung, or with their connection), until each settles: while any has not, no chunk is stored. */
  private readonly abandonedStores = new Set<Promise<void>>();

  private readonly o: TcpTransportOptions;

  constructor(options: TcpTransportOptions) {
    const o = readOptions(options);
    this.o = o;
    if (!Number.isSafeInteger(o.id) || o.id <= 0) throw new BadOptionError(`node id must be a positive integer, got ${o.id}`);
    if (typeof o.listen !== 'string') throw new BadOptionError(`listen must be a 'host:port' string, got ${typeof o.listen}`);
    parseAddress(o.listen);
    for (const [k, v, methods] of [
      ['logger', o.logger, ['trace', 'debug', 'info', 'warn', 'error']],
      ['snapshots', o.snapshots, ['open', 'spool']],
    ] as const) {
      if (v !== undefined && !(typeof v === 'object' && v !== null && methods.every((m) => typeof (v as unknown as Record<string, unknown>)[m] === 'function')))
        throw new BadOptionError(`${k} must have the methods ${methods.join(', ')}`);
    }
    if (o.random !== undefined && typeof o.random !== 'function') throw new BadOptionError('random must be a function');
    checkClusterId(o.clusterId);
    for (const [k, v, most] of [
      ['maxFrameBytes', o.maxFrameBytes, MAX_FRAME_LENGTH],
      ['maxQueueBytes', o.maxQueueBytes, Number.MAX_SAFE_INTEGER],
      ['snapshotChunkBytes', o.snapshotChunkBytes, Number.MAX_SAFE_INTEGER],
      ['maxSnapshotBytes', o.maxSnapshotBytes, Number.MAX_SAFE_INTEGER],
      ['maxInboundConnections', o.maxInboundConnections, Number.MAX_SAFE_INTEGER],
      ['maxUnauthenticatedConnections', o.maxUnauthenticatedConnections, Number.MAX_SAFE_INTEGER],
    ] as const) {
      // NaN compares false with everything: as maxFrameBytes it bounded no frame, not even a stranger's hello.
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1 && v <= most)) throw new BadOptionError(`${k} must be an integer from 1 to ${most}, got ${v}`);
    }
    for (const [id, address] of Object.entries(o.peers ?? {})) checkPeer(o.id, id, address);
    const maxFrameBytes = o.maxFrameBytes ?? 16 * MiB;
    // A snapshot chunk carries its header too; leave room for it within the frame.
    if (o.snapshotChunkBytes !== undefined && o.snapshotChunkBytes > maxFrameBytes - 4096) {
      throw new BadOptionError(`snapshotChunkBytes ${o.snapshotChunkBytes} must be at least 4 KiB below maxFrameBytes ${maxFrameBytes}`);
    }
    const secrets = normalizeSecrets(o.clusterSecret);
    if (secrets.length === 0 && o.tls === undefined && o.insecure !== true) throw new InsecureTransportError();
    const electionTimeoutMs = o.electionTimeoutMs ?? 1_000;
    if (!(electionTimeoutMs > 0)) throw new BadOptionError(`electionTimeoutMs must be positive, got ${electionTimeoutMs}`);
    // Node fires a longer timer (or NaN) after 1 ms: every handshake, dial or quiet connection
    // would be cut off at once. A connection is idle after three election timeouts.
    for (const [k, v, most] of [
      ['electionTimeoutMs', electionTimeoutMs, Math.floor(MAX_TIMER_MS / 3)],
      ['handshakeTimeoutMs', o.handshakeTimeoutMs, MAX_TIMER_MS],
      ['connectTimeoutMs', o.connectTimeoutMs, MAX_TIMER_MS],
      ['heartbeatIntervalMs', o.heartbeatIntervalMs, MAX_TIMER_MS],
      ['backoff.initialMs', o.backoff?.initialMs, MAX_TIMER_MS],
      ['backoff.maxMs', o.backoff?.maxMs, MAX_TIMER_MS],
    ] as const) {
      if (v !== undefined && !(typeof v === 'number' && v > 0 && v <= most))
        throw new BadOptionError(`${k} must be more than 0 and at most ${most} ms, got ${v}`);
    }
    this.idleTimeoutMs = 3 * electionTimeoutMs;
    this.maxInbound = o.maxInboundConnections ?? 256;
    const maxPerAddress = o.maxHandshakesPerAddress ?? 4;
    if (!Number.isSafeInteger(maxPerAddress) || maxPerAddress < 1) {
      throw new BadOptionError(`maxHandshakesPerAddress must be a positive integer, got ${maxPerAddress}`);
    }
    this.slots = new HandshakeSlots(o.maxUnauthenticatedConnections ?? 16, maxPerAddress);
    this.handshakeTimeoutMs = o.handshakeTimeoutMs ?? 5_000;
    this.secrets = secrets;
    this.logger = guardedLogger(o.logger ?? silentLogger);
    this.refusals = new RefusalLog(this.logger, 'transport: refused connections', o.refusalLogClock);
    this.replacedPeers = new RefusalLog({ warn: (f, m) => this.logger.error(f, m) }, 'transport: peers refused as new instances', o.refusalLogClock);
    this.refusedDials = new RefusalLog(this.logger, 'transport: dials refused by peers', o.refusalLogClock);
    if (o.instanceId !== undefined && !/^[0-9a-f]{32}$/.test(o.instanceId))
      throw new BadOptionError(`instanceId must be 32 lowercase hex digits, got '${o.instanceId}'`);
    if (o.peerInstances !== undefined && o.instanceId === undefined) throw new BadOptionError('peerInstances needs instanceId');
    const book = o.peerInstances;
    // A removed member is forgotten, and may still be running until its operator stops it:
    // were its next dial recorded, the empty directory it is to be added back with would be refused.
    this.strangerAware =
      book === undefined
        ? undefined
        : {
            recorded: (peer) => book.recorded(peer),
            record: (peer, instance) => (this.peerAddresses.has(peer) ? book.record(peer, instance) : Promise.resolve(instance)),
          };
    this.releases = new PendingReleases(this.logger);
    this.listenAddress = o.listen;
    this.peerAddresses = new Map(Object.entries(o.peers ?? {}).map(([id, a]) => [Number(id), a]));
    this.config = {
      self: o.id,
      clusterId: o.clusterId,
      ...(o.tls !== undefined ? { tls: secureContext(o.tls, o.id) } : {}),
      secrets,
      ...(o.instanceId !== undefined ? { instance: Buffer.from(o.instanceId, 'hex') } : {}),
      ...(o.peerInstances !== undefined ? { peerInstances: o.peerInstances } : {}),
      replacedPeers: this.replacedPeers,
      refusedDials: this.refusedDials,
      pingIntervalMs: o.heartbeatIntervalMs ?? Math.max(1, Math.floor(electionTimeoutMs / 5)),
      idleTimeoutMs: this.idleTimeoutMs,
      maxFrameBytes,
      maxQueueBytes: o.maxQueueBytes ?? 32 * MiB,
      snapshotChunkBytes: o.snapshotChunkBytes ?? Math.min(MiB, Math.floor(maxFrameBytes / 2)),
      snapshots: o.snapshots ?? inMemorySnapshots,
      releases: this.releases,
      connectTimeoutMs: o.connectTimeoutMs ?? 5_000,
      // After a long partition heals, a peer must be redialled within an election timeout,
      // or the node it leads catches up only when the grown backoff lets it.
      backoff: { initialMs: o.backoff?.initialMs ?? 50, maxMs: o.backoff?.maxMs ?? Math.min(2_000, electionTimeoutMs) },
      random: o.random ?? Math.random,
      logger: this.logger,
      refused: new RefusalCounts(),
      refusedByPeers: new PeerRefusalCounts(),
      packer: newPacker(),
      advertise: () => this.listenAddress,
      unreachable: (peer) => this.notify(() => this.pendingUnreachable.add(peer)),
      sendingLater: () => this.handlers?.sendingLater?.() === true,
      snapshotStatus: (peer, ok) => this.notify(() => this.pendingSnapshotStatus.push([peer, ok])),
      removedBy: (peer) => this.notify(() => this.pendingRemovedBy.add(peer)),
      deliver: (m) => {
        this.messagesReceived++;
        this.handlers?.onMessage(m);
      },
    };
    // Once secureContext() has found the CAs readable.
    this.cas = o.tls === undefined ? Buffer.alloc(0) : caBytes(o.tls);
    this.tls = o.tls;
  }

  /** The address actually listened on ('host:port'), useful after listening on port 0. */
  get address(): string {
    return this.listenAddress;
  }

  async start(handlers: TransportHandlers): Promise<void> {
    if (this.closed) throw new TransportClosedError();
    this.handlers = handlers;
    const t = this.tls;
    const server =
      t === undefined
        ? net.createServer()
        : // rejectUnauthorized stays false only so that we, not Node, close an unauthorized peer:
          // Node would close it silently, and the reason (unknown CA, expired, no certificate) would be lost.
          tls.createServer({ key: t.key, cert: t.cert, ca: t.ca, requestCert: true, rejectUnauthorized: false }, (s) => {
            const key = endpoints(s);
            const release = key === undefined ? undefined : this.admitted.get(key);
            if (key !== undefined) this.admitted.delete(key);
            if (release === undefined) {
              // Its TCP connection is gone, and its slot with it.
              s.destroy();
              return;
            }
            if (s.authorized) return this.accept(s, certNodeIds(s.getPeerCertificate()), release);
            this.countRefusal('TRANSPORT_AUTH_FAILED');
            const why = Object.keys(s.getPeerCertificate()).length === 0 ? 'no client certificate' : String(s.authorizationError ?? 'not authorized');
            this.refusals.warn({ code: 'TRANSPORT_AUTH_FAILED', ...clientFields(s) }, `transport: TLS peer at ${clientAddress(s)} refused: ${why}`);
            s.destroy();
          });
    if (t !== undefined) {
      server.on('tlsClientError', (err, s) => {
        // A handshake close() cut off fails too, once close() has resolved: it was not refused.
        if (!this.closed) {
          this.countRefusal('TRANSPORT_AUTH_FAILED');
          this.refusals.warn(
            { code: 'TRANSPORT_AUTH_FAILED', ...clientFields(s) },
            `transport: TLS handshake from ${clientAddress(s)} refused: ${err.message}`,
          );
        }
        // Once this event has a listener, Node no longer closes the socket on its own handshake timeout.
        s.destroy();
      });
    }
    server.on('connection', (s: net.Socket) => this.admitSocket(s, t !== undefined));
    this.server = server;
    const { host, port } = parseAddress(this.o.listen);
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error): void => reject(new ListenFailedError(this.o.listen, err));
      // close() while the address is being bound: the server never listens, nor says so.
      const closed = (): void => reject(new TransportClosedError());
      server.once('error', failed);
      server.once('close', closed);
      server.listen(port, host, () => {
        server.off('error', failed);
        server.off('close', closed);
        resolve();
      });
    });
    // One line per failed accept would flood the log when they repeat (EMFILE fails every one).
    this.serverErrors = logServerErrors(server, this.logger, 'transport', this.o.refusalLogClock);
    const a = server.address() as net.AddressInfo;
    this.listenAddress = formatAddress(host, a.port);
    for (const [id, address] of this.peerAddresses) this.connectPeer(id, address);
  }

  flush(): void {
    for (const peer of this.outbound.values()) peer.flushNow();
  }

  send(messages: Message[]): void {
    if (this.handlers === undefined || this.closed) return;
    for (const m of messages) {
      const peer = this.outbound.get(m.to);
      if (peer !== undefined) peer.send(m);
      else if (!this.answer(m)) this.config.unreachable(m.to);
    }
  }

  /**
   * A message to a peer this node has no address for goes back on a connection that peer dialed,
   * if one is open: a node whose configuration predates a candidate's addition can still answer
   * its vote request, without dialing an address the driver never gave.
   */
  private answer(m: Message): boolean {
    if (m.type === MessageType.MsgSnap || this.removed.has(m.to)) return false;
    for (const c of this.inbound) if (c.answer(m)) return true;
    return false;
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

  refuseRemoved(peer: number): void {
    if (this.removed.has(peer)) this.byPeer.get(peer)?.refuseRemoved();
  }

  /** Also cancels pending onUnreachable/onSnapshotStatus for the peer: the driver no longer knows it. */
  removePeer(id: number): void {
    rememberRemoval(this.removed, id);
    this.peerAddresses.delete(id);
    this.bytesFromClosed.delete(id);
    this.outbound.get(id)?.close();
    this.outbound.delete(id);
  }

  stats(): TcpTransportStats {
    const peers: Record<number, OutboundStats> = {};
    for (const [id, p] of this.outbound) peers[id] = p.stats;
    let framesReceived = this.framesFromClosed;
    for (const c of this.inbound) framesReceived += c.framesReceived;
    // Per peer only: an id is what a connection claims, and without a secret anyone may claim any,
    // each of which would be kept for good and become a metric's label.
    const bytesReceived: Record<number, number> = Object.fromEntries(this.bytesFromClosed);
    for (const c of this.inbound) if (this.peerAddresses.has(c.peer)) bytesReceived[c.peer] = (bytesReceived[c.peer] ?? 0) + c.bytesReceived;
    return {
      peers,
      framesReceived,
      bytesReceived,
      messagesReceived: this.messagesReceived,
      connectionsRefused: this.connectionsRefused,
      refused: this.config.refused.toRecord(),
      refusedByPeers: this.config.refusedByPeers.toRecord(),
      handshakesInProgress: this.slots.inProgress,
    };
  }

  /** Each proved, at its handshake, the instance recorded for it (with peerInstances). */
  connectedPeers(): Set<number> {
    const ids = new Set<number>();
    for (const [id, o] of this.outbound) if (o.stats.connected) ids.add(id);
    for (const c of this.inbound) if (c.peer !== 0) ids.add(c.peer);
    return ids;
  }

  /**
   * Resolves once every connection is closed and what they left behind deleted: a second call waits as long as the first.
   * A snapshot source or spool that has not let go within the idle timeout (3 election timeouts) is logged and left.
   */
  close(): Promise<void> {
    this.closing ??= this.shut();
    return this.closing;
  }

  private async shut(): Promise<void> {
    this.closed = true;
    for (const p of this.outbound.values()) p.close();
    this.outbound.clear();
    for (const c of this.inbound) c.destroy();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    // The owner's streams: one that never settles must not keep close() from ending.
    await this.releases.settled(this.idleTimeoutMs);
    this.refusals.flush();
    this.replacedPeers.flush();
    this.refusedDials.flush();
    this.serverErrors?.flush();
  }

  /**
   * New cluster secrets, TLS credentials, or both, as reloadSecrets and reloadTls take them: all
   * are checked before any is put in force, so credentials refused leave all those in force as
   * they were (a secret list put in force beside refused certificates closed the connections its
   * old secret proved, under an error that said nothing was reloaded).
   */
  reloadCredentials(c: { clusterSecret?: Secret | Secret[]; tls?: TlsOptions }): void {
    const secrets = c.clusterSecret === undefined ? undefined : this.checkSecrets(c.clusterSecret);
    const context = c.tls === undefined ? undefined : this.checkTls(c.tls);
    if (secrets !== undefined) this.useSecrets(secrets);
    if (c.tls !== undefined) this.useTls(c.tls, context!);
  }

  /**
   * New TLS credentials (e.g. renewed certificates): used for every connection made or accepted
   * from now on (called before start(), the server start() builds takes them); open connections
   * keep theirs, unless the CAs changed: then every connection,
   * either way, is closed (TRANSPORT_AUTH_FAILED) and peers the new CAs verify redial. Credentials
   * that cannot be used, or a certificate that does not name this node, are refused
   * (TRANSPORT_BAD_OPTION) and those in force stay.
   */
  reloadTls(t: TlsOptions): void {
    this.useTls(t, this.checkTls(t));
  }

  private checkTls(t: TlsOptions): tls.SecureContext {
    if (this.o.tls === undefined) throw new BadOptionError('reloadTls on a transport started without tls');
    return secureContext(t, this.o.id);
  }

  private useTls(t: TlsOptions, context: tls.SecureContext): void {
    if (this.server instanceof tls.Server) this.server.setSecureContext({ key: t.key, cert: t.cert, ca: t.ca });
    this.tls = t;
    this.config.tls = context;
    const cas = caBytes(t);
    if (cas.equals(this.cas)) return;
    this.cas = cas;
    // Which peer a replaced CA verified is not known here: every connection goes, those still in
    // their TLS handshake too, so a rotation away from a leaked CA leaves nothing it let in.
    const err = new AuthFailedError('the CAs that verified the peer were replaced');
    for (const c of this.inbound) c.replace(err);
    for (const s of this.sockets) s.destroy();
    for (const p of this.outbound.values()) p.disconnect(err);
  }

  /**
   * New cluster secrets (a rotation step: `[old, new]`, then `[new, old]`, then `[new]`): used for
   * every handshake from now on, those under way included. A connection, either way, whose peer
   * proved a secret no longer in the list is closed (TRANSPORT_AUTH_FAILED): a rotation away from a
   * leaked secret leaves nothing open that it let in, and a peer holding the new list redials.
   */
  reloadSecrets(s: Secret | Secret[]): void {
    this.useSecrets(this.checkSecrets(s));
  }

  private checkSecrets(s: Secret | Secret[]): Buffer[] {
    if (this.secrets.length === 0) throw new BadOptionError('reloadSecrets on a transport started without clusterSecret');
    // normalizeSecrets reads undefined as "no secret": here that would admit anyone from now on.
    if (s === undefined) throw new BadOptionError('reloadSecrets needs at least one secret');
    return normalizeSecrets(s);
  }

  private useSecrets(secrets: Buffer[]): void {
    this.secrets = secrets;
    this.config.secrets = secrets;
    for (const p of this.outbound.values()) p.retire(secrets);
    for (const c of this.inbound) c.retire(secrets);
  }

  private countRefusal(code: TransportError['code']): void {
    this.connectionsRefused++;
    this.config.refused.add(code);
  }

  private refuseConnection(s: net.Socket, err: TransportError): void {
    this.countRefusal(err.code);
    this.refusals.warn({ code: err.code, ...clientFields(s) }, `transport: connection from ${clientAddress(s)} refused: ${err.code}: ${err.message}`);
    s.destroy();
    // Gone now, though its close comes later: a burst of refused connections must not fill the cap.
    this.sockets.delete(s);
  }

  /**
   * Every accepted socket, TLS ones still in their handshake included (so close() never waits on
   * them): it takes a handshake slot, and one of maxInboundConnections. At either cap the oldest
   * connection not yet proven goes rather than the new one: unproven connections are what anyone
   * can open, and only proven ones may keep a member's new connection out.
   */
  private admitSocket(s: net.Socket, startsTls: boolean): void {
    if (this.closed || s.remoteAddress === undefined) {
      // Without its address the connection is already reset.
      s.destroy();
      return;
    }
    const release = this.slots.take(s.remoteAddress, (err) => this.refuseConnection(s, err));
    if (release instanceof TooManyConnectionsError) {
      this.refuseConnection(s, release);
      return;
    }
    if (this.sockets.size >= this.maxInbound && !this.slots.evictOldest(release, new TooManyConnectionsError('inbound', this.maxInbound, undefined, true))) {
      release();
      this.refuseConnection(s, new TooManyConnectionsError('inbound', this.maxInbound));
      return;
    }
    this.sockets.add(s);
    s.on('close', () => {
      this.sockets.delete(s);
      release();
    });
    if (startsTls) this.admitTls(s, release);
    else this.accept(s, undefined, release);
  }

  private connectPeer(id: number, address: string): void {
    this.outbound.set(id, new Outbound(id, address, this.config));
  }

  /**
   * A TCP connection that is to start TLS. Node runs the TLS handshake before accept() sees the
   * connection, so the slot and the deadline start here: otherwise a peer that never starts TLS
   * holds an inbound connection for Node's 120 s, and enough of them lock every peer out.
   */
  private admitTls(raw: net.Socket, release: () => void): void {
    const key = endpoints(raw);
    if (key === undefined) {
      // Without its addresses the connection is already reset.
      raw.destroy();
      return;
    }
    // One deadline from the TCP accept to an authenticated peer, for both handshakes: accept()'s
    // own timer, which starts later, never fires first.
    const timer = setTimeout(() => this.refuseConnection(raw, new HandshakeTimeoutError(this.handshakeTimeoutMs)), this.handshakeTimeoutMs);
    timer.unref();
    const settle = (): void => {
      clearTimeout(timer);
      release();
    };
    this.admitted.set(key, settle);
    raw.on('close', () => {
      settle();
      if (this.admitted.get(key) === settle) this.admitted.delete(key);
    });
  }

  /** `authenticatedOrGone`: gives back the handshake slot admitSocket took for this connection. */
  private accept(socket: net.Socket, certIds: number[] | undefined, authenticatedOrGone: () => void): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const c = new Inbound(socket, {
      self: this.o.id,
      clusterId: this.o.clusterId,
      maxFrameBytes: this.config.maxFrameBytes,
      maxSnapshotBytes: this.o.maxSnapshotBytes ?? 1024 * MiB,
      snapshots: this.config.snapshots,
      isMember: (peer) => this.peerAddresses.has(peer),
      handshakeTimeoutMs: this.handshakeTimeoutMs,
      idleTimeoutMs: this.idleTimeoutMs,
      secrets: () => this.secrets,
      ...(certIds !== undefined ? { certIds } : {}),
      ...(this.config.instance !== undefined ? { instance: this.config.instance } : {}),
      ...(this.strangerAware !== undefined ? { peerInstances: this.strangerAware } : {}),
      replacedPeers: this.replacedPeers,
      authenticated: () => {
        authenticatedOrGone();
        this.admitPeer(c);
      },
      logger: this.logger,
      refusals: this.refusals,
      packer: this.config.packer,
      deliver: this.config.deliver,
      // Only the driver decides whom this node dials: an announced address is used solely for a
      // peer the driver added without a dialable one (never for a stranger, never to move a peer).
      learned: (peer, address) => {
        const known = this.peerAddresses.get(peer);
        if (known === undefined || dialable(known)) return;
        this.addPeer(peer, address);
      },
      refused: (err) => this.countRefusal(err.code),
      releases: this.releases,
      abandonedStores: this.abandonedStores,
    });
    this.inbound.add(c);
    socket.on('close', () => {
      authenticatedOrGone();
      this.framesFromClosed += c.framesReceived;
      if (this.peerAddresses.has(c.peer)) this.bytesFromClosed.set(c.peer, (this.bytesFromClosed.get(c.peer) ?? 0) + c.bytesReceived);
      this.inbound.delete(c);
      if (this.byPeer.get(c.peer) === c) this.byPeer.delete(c.peer);
    });
  }

  /** `c` is now the connection from its peer: the older one from that id goes, and the oldest stranger's past the cap. */
  private admitPeer(c: Inbound): void {
    const older = this.byPeer.get(c.peer);
    this.byPeer.delete(c.peer);
    this.byPeer.set(c.peer, c);
    older?.replace(new ConnectionReplacedError(`node ${c.peer} opened a newer connection`));
    const strangers = [...this.byPeer.keys()].filter((id) => !this.peerAddresses.has(id));
    if (strangers.length <= STRANGER_CONNECTIONS) return;
    const oldest = strangers[0]!;
    const conn = this.byPeer.get(oldest)!;
    this.byPeer.delete(oldest);
    conn.replace(new ConnectionReplacedError(`connections from nodes this node was not given at the limit of ${STRANGER_CONNECTIONS}`));
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
      const removedBy = this.pendingRemovedBy;
      this.pendingUnreachable = new Set();
      this.pendingSnapshotStatus = [];
      this.pendingRemovedBy = new Set();
      for (const peer of unreachable) if (!this.removed.has(peer)) this.handlers?.onUnreachable?.(peer);
      for (const [peer, ok] of statuses) if (!this.removed.has(peer)) this.handlers?.onSnapshotStatus?.(peer, ok);
      for (const peer of removedBy) if (!this.removed.has(peer)) this.handlers?.onRemoved?.(peer);
    });
  }
}

/**
 * What identifies a live TCP connection: its addresses and ports. A TLS socket reports those of the
 * connection it wraps, so this finds the TLS socket's TCP connection without Node's private fields.
 */
function endpoints(s: net.Socket): string | undefined {
  const { localAddress, localPort, remoteAddress, remotePort } = s;
  if (localAddress === undefined || localPort === undefined || remoteAddress === undefined || remotePort === undefined) return undefined;
  return `${localAddress}|${localPort}|${remoteAddress}|${remotePort}`;
}

function caBytes(t: TlsOptions): Buffer {
  return Buffer.concat([t.ca].flat().map((c) => Buffer.from(c)));
}

/**
 * The credentials as one context, or TRANSPORT_BAD_OPTION saying why they cannot be used: Node's
 * own errors carried no code of ours, a CA that holds no certificate was taken (and then no peer
 * could be verified), and so was a certificate that names another node than `self` (and then
 * every peer refused this one). Without `self`, the certificate may name any node.
 */
export function secureContext(t: TlsOptions, self?: number): tls.SecureContext {
  let context: tls.SecureContext;
  let ids: number[];
  try {
    context = tls.createSecureContext({ key: t.key, cert: t.cert, ca: t.ca });
    for (const ca of [t.ca].flat()) new X509Certificate(ca);
    ids = certNodeIds({ subjectaltname: new X509Certificate(t.cert).subjectAltName ?? '' });
  } catch (err) {
    throw new BadOptionError(`tls (key, cert, ca) cannot be used: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (self !== undefined && !ids.includes(self)) {
    const named = ids.length === 0 ? 'no node' : `node ${ids.join(', ')}`;
    throw new BadOptionError(`the tls certificate names ${named}, not this node: it needs the SAN URI raftlog://node/${self}`);
  }
  return context;
}

/**
 * The options as own properties, each read once: what is checked is what is used, and a getter
 * that throws is refused as an option rather than thrown as it is. The peers are copied too.
 */
function readOptions(o: TcpTransportOptions): TcpTransportOptions {
  if (typeof o !== 'object' || o === null) throw new BadOptionError('options must be an object');
  try {
    const copy = { ...o };
    if (copy.peers !== undefined) {
      // A Map or an array has no own entries to read peers from: the transport would dial no one.
      if (typeof copy.peers !== 'object' || copy.peers === null || ![Object.prototype, null].includes(Object.getPrototypeOf(copy.peers)))
        throw new BadOptionError("peers must be an object of id: 'host:port'");
      copy.peers = { ...copy.peers };
    }
    if (copy.backoff !== undefined) copy.backoff = { ...copy.backoff };
    return copy;
  } catch (err) {
    if (err instanceof BadOptionError) throw err;
    throw new BadOptionError(`the options cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function checkClusterId(id: unknown): void {
  if (!isClusterId(id)) {
    throw new BadOptionError(`clusterId must be ${CLUSTER_ID_RULE}, got ${typeof id === 'string' ? `${Buffer.byteLength(id, 'utf8')} bytes` : typeof id}`);
  }
}

/**
 * A peer the transport is given: a positive integer id other than its own, at 'host:port', or at
 * a name without a port (a log opened without a peer port is 'embedded'), which is dialled only
 * once the peer's own handshake says where it listens.
 */
function checkPeer(self: number, id: string, address: unknown): void {
  const bad = (why: string): BadOptionError => new BadOptionError(`bad peer ${id.slice(0, 32)}: ${why}`);
  if (!/^[1-9][0-9]*$/.test(id) || !Number.isSafeInteger(Number(id))) throw bad('an id must be a positive integer');
  if (Number(id) === self) throw bad('a node is not its own peer');
  if (typeof address !== 'string' || (address.includes(':') && !dialable(address))) {
    throw bad(`want 'host:port' with a port up to 65535, got ${typeof address === 'string' ? `'${address.slice(0, 300)}'` : typeof address}`);
  }
}

function dialable(address: string): boolean {
  try {
    parseAddress(address);
    return true;
  } catch {
    return false;
  }
}

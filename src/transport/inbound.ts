// A connection a peer opened to us: a handshake, then frames we decode, check and
// hand to the driver. Anything wrong closes this connection only, with the
// reason logged here and sent back to the peer.
import { codeOf } from '../errors.js';
import type * as net from 'node:net';
import type { Packr } from 'msgpackr';
import { MessageType } from '../raft/types.js';
import type { Message, SnapshotMeta } from '../raft/types.js';
import { clientAddress, clientFields, formatAddress, parseAddress } from './address.js';
import {
  AuthFailedError,
  FrameTooLargeError,
  ClusterMismatchError,
  HandshakeTimeoutError,
  IdleTimeoutError,
  MalformedFrameError,
  peerText,
  SnapshotRejectedError,
  SnapshotStalledError,
  SnapshotTooLargeError,
  TransportError,
  WrongNodeError,
  PeerReplacedError,
  PeerRemovedError,
} from './errors.js';
import { FrameDecoder, encodeFrames } from './frame.js';
import {
  CHUNK_HEAD_BYTES,
  HANDSHAKE_MAX_BYTES,
  WIRE_VERSION,
  chunkHead,
  decodeFrame,
  encodeChallenge,
  encodeMessage,
  encodePing,
  encodeRefuse,
} from './wire.js';
import type { ChunkFrame, Frame, HelloFrame } from './wire.js';
import { NONCE_BYTES, holds, nonce, proof, verify } from './auth.js';
import type { HandshakeFacts } from './auth.js';
import type { TransportLogger } from './transport.js';
import type { IncomingSnapshot, SnapshotStreams } from './snapshot-streams.js';
import type { PendingReleases } from './pending-releases.js';
import { admitInstance, type PeerInstances } from './peer-instances.js';

export interface InboundConfig {
  self: number;
  clusterId: string;
  maxFrameBytes: number;
  maxSnapshotBytes: number;
  /** Where arriving snapshots are written (never gathered in memory here). */
  snapshots: SnapshotStreams;
  /** Whether `peer` is a member the driver told of: only a member may send a snapshot, or a transfer request naming another. */
  isMember(peer: number): boolean;
  handshakeTimeoutMs: number;
  /** A connection that carries no complete frame, and not STALL_WINDOW_BYTES, this long is closed. */
  idleTimeoutMs: number;
  /**
   * The secrets now in force, to verify the dialer's proof with; the first also proves this node.
   * Empty: no secret. Read at each step, so a handshake under way at a reload uses the new list.
   */
  secrets(): Buffer[];
  /** With mutual TLS: the node ids the peer's certificate names; the hello must claim one of them. */
  certIds?: number[];
  /** This node's instance id, sent in the challenge. */
  instance?: Uint8Array;
  /** The record a dialer's instance is checked against (and first recorded in) before its frames are read. */
  peerInstances?: PeerInstances;
  logger: TransportLogger;
  /** Where what happens to a connection before its peer is authenticated is logged (a stranger's, at a rationed rate). */
  refusals: Pick<TransportLogger, 'warn'>;
  /** Where a peer refused as a new instance is logged (at error level, rationed); default: as other refusals. */
  replacedPeers?: Pick<TransportLogger, 'warn'>;
  packer: Packr;
  deliver(m: Message): void;
  refused(err: TransportError): void;
  /** An authenticated peer said where it listens (its host as this connection sees it when it listens on every interface). */
  learned(peer: number, address: string): void;
  /** The handshake completed: the connection now counts as authenticated, as the one from its peer. */
  authenticated(): void;
  /** Where the deletion of an abandoned stream's spool is tracked while under way: the owner's close() waits for it. */
  releases: PendingReleases;
  /** Stores given up on (as hung, or with their connection) and not yet settled, on any connection of the owner's: shared, as the disk is. */
  abandonedStores: Set<Promise<void>>;
}

const ANSWER_MAX_BUFFERED = 1024 * 1024;

interface Assembly {
  streamId: number;
  message: Message;
  meta: SnapshotMeta;
  total: number;
  /** Bytes accepted in sequence (their write may still be under way). */
  received: number;
  spool: IncomingSnapshot | undefined;
  /** The last write of a chunk (with the spool's open before the first, its finish after the last). */
  writing: Promise<void> | undefined;
  /** The stream was given up: whatever was spooled is deleted. */
  abandoned: boolean;
  /** `received` when the stall window under way began, and the time it has left (what writes took not counted). */
  windowFrom: number;
  windowLeftMs: number;
  /** When the window under way ends, while its timer runs (0 otherwise). */
  windowEndsAt: number;
}

/**
 * What a snapshot stream must bring within each idle limit (or the rest of it, if less): with
 * one chunk per idle limit enough, a byte per chunk kept a stream, its spool and its open file
 * for as long as its announced size took at that pace. At the default 1.5 s this is 43 KiB/s,
 * far below what a whole 1 MiB chunk needs to arrive within the idle limit, as every frame
 * must; a stream's life is then at most its size over that rate.
 */
export const STALL_WINDOW_BYTES = 64 * 1024;

/**
 * Idle limits a chunk's store may take at least before the disk is taken as hung. Generous: a
 * write also waits for the spool's open or sync, and a busy or network disk may take seconds on
 * a whole chunk. Without a bound, the pongs sent meanwhile would keep for good a connection
 * whose frames (the leader's heartbeats included) are no longer read, and the dialer would never
 * learn the snapshot failed to try it again.
 */
const HUNG_WRITE_LIMITS = 20;

export class Inbound {
  /** The peer's id, once its handshake is accepted. */
  peer = 0;
  framesReceived = 0;
  /** Bytes read from the socket (framing included), for the per-peer traffic counters. */
  bytesReceived = 0;
  private readonly decoder: FrameDecoder;
  private assembly: Assembly | undefined;
  private closed = false;
  /** A snapshot write is under way: frames wait in the decoder and the socket is paused. */
  private writing = false;
  private readonly handshakeTimer: NodeJS.Timeout;
  private idleTimer: NodeJS.Timeout | undefined;
  /** After a refusal, until the socket closes: what destroys it if its peer never reads the refusal. */
  private graceTimer: NodeJS.Timeout | undefined;
  /** While a chunk is stored: pongs the dialer (which hears nothing else from us then), and gives up on a hung write. */
  private writeTimers: { pong: NodeJS.Timeout; hung: NodeJS.Timeout } | undefined;
  /** `bytesReceived`, and the time, when the idle limit was last restarted. */
  private progressFrom = 0;
  private armedAt = 0;
  /**
   * Armed while a snapshot stream waits for more of it: other frames (pings, heartbeats)
   * keep the connection alive, and would keep a stalled stream's spool and fd for good.
   */
  private stallTimer: NodeJS.Timeout | undefined;
  /** Between the hello and the proof: what the proof must be computed over. */
  private pending: { hello: HelloFrame; facts: HandshakeFacts } | undefined;
  /** The secret the dialer proved (none without one): the connection is trusted only while the list holds it. */
  private provenBy: Buffer | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly c: InboundConfig,
  ) {
    // Until a peer has identified itself it gets no more than a handshake's worth of buffer.
    this.decoder = new FrameDecoder(Math.min(HANDSHAKE_MAX_BYTES, c.maxFrameBytes));
    socket.setNoDelay(true);
    this.handshakeTimer = setTimeout(() => this.refuse(new HandshakeTimeoutError(c.handshakeTimeoutMs)), c.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      if (!this.closed) this.log().warn({ code: codeOf(err), ...this.fields() }, `transport: connection from ${this.describe()} failed: ${err.message}`);
    });
    socket.on('close', () => {
      this.closed = true;
      this.stopTimers();
      this.abandon();
    });
  }

  destroy(): void {
    this.closed = true;
    this.stopTimers();
    this.abandon();
    this.socket.destroy();
  }

  /**
   * Writes `m` back to the dialer when it is the authenticated peer of this open connection and
   * reads what it is sent (a dialer that does not is not answered: unsent bytes stay bounded).
   */
  answer(m: Message): boolean {
    if (this.closed || this.peer === 0 || m.to !== this.peer || this.socket.writableLength > ANSWER_MAX_BUFFERED) return false;
    const payload = encodeMessage(this.c.packer, m);
    if (payload.length > this.c.maxFrameBytes) return false; // the dialer, with the same limit, would drop its connection
    this.socket.write(encodeFrames([payload]));
    return true;
  }

  /**
   * Closes the connection if its dialer proved a secret that `secrets` no longer holds: whoever
   * held only that secret (one that leaked, say) must not keep a connection it opened with it.
   */
  retire(secrets: Buffer[]): void {
    if (this.closed || this.provenBy === undefined || holds(secrets, this.provenBy)) return;
    this.replace(new AuthFailedError('the cluster secret it proved is no longer in the list'));
  }

  /** Closes the connection of an authenticated peer the driver removed, telling it so (PeerRemovedError). */
  refuseRemoved(): void {
    if (this.peer !== 0) this.refuse(new PeerRemovedError(this.peer));
  }

  /** Closed for a newer connection, or a secret retired: a snapshot stream under way on it is dropped, with its spool. */
  replace(err: TransportError): void {
    this.refuse(err);
    // Not left to linger until its peer reads the refusal: until closed it holds one of the inbound
    // connections, and a peer replacing its connections faster than it reads could hold them all.
    // The refusal is already with the kernel unless the peer had stopped reading; it dials anew anyway.
    this.socket.destroy();
  }

  private stopTimers(): void {
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.stallTimer);
    clearTimeout(this.graceTimer);
    this.stopWriteTimers();
  }

  private stopWriteTimers(): void {
    clearInterval(this.writeTimers?.pong);
    clearTimeout(this.writeTimers?.hung);
    this.writeTimers = undefined;
  }

  /**
   * The dialer closes a connection it hears nothing on for the idle limit, and while a chunk is
   * stored this side reads nothing, so sends nothing unasked either: it is told the connection is
   * alive by a pong each third of the limit, as for a frame crossing a slow link. The store may
   * take its time, as the link may, at the same bar: STALL_WINDOW_BYTES per idle limit (the last
   * chunk's also syncs and checks the whole stream), but no less than HUNG_WRITE_LIMITS of them.
   */
  private startWriteTimers(bytes: number): void {
    const ms = this.c.idleTimeoutMs * Math.max(HUNG_WRITE_LIMITS, Math.ceil(bytes / STALL_WINDOW_BYTES));
    const pong = setInterval(() => this.pong(), this.c.idleTimeoutMs / 3);
    const hung = setTimeout(() => this.refuse(new SnapshotRejectedError(`storing a chunk took over ${ms} ms`)), ms);
    pong.unref();
    hung.unref();
    this.writeTimers = { pong, hung };
  }

  /**
   * Each STALL_WINDOW_BYTES of the stream (or its rest) must come within the idle limit: a
   * stream is bounded by its progress, not by a total, so a slow but honest sender gets
   * through. The window's clock stops while a chunk is written (a slow disk here is not a stall).
   * `at`: where the stream is, the part of its next chunk already here included.
   */
  private armStall(a: Assembly, at = a.received): void {
    clearTimeout(this.stallTimer);
    if (at - a.windowFrom >= Math.min(STALL_WINDOW_BYTES, a.total - a.windowFrom)) {
      a.windowFrom = at;
      a.windowLeftMs = this.c.idleTimeoutMs;
    }
    a.windowEndsAt = performance.now() + a.windowLeftMs;
    const err = new SnapshotStalledError(a.streamId, STALL_WINDOW_BYTES, this.c.idleTimeoutMs);
    this.stallTimer = setTimeout(() => this.refuse(err), a.windowLeftMs);
    this.stallTimer.unref();
  }

  /** Stops the stall window's clock, keeping what it has left. */
  private pauseStall(a: Assembly): void {
    clearTimeout(this.stallTimer);
    if (a.windowEndsAt === 0) return; // before its first chunk is stored
    a.windowLeftMs = Math.max(0, a.windowEndsAt - performance.now());
    a.windowEndsAt = 0;
  }

  /**
   * Restarted at every complete frame and every STALL_WINDOW_BYTES (progress()): a silent peer, or
   * one that leaves a frame half-sent or trickles it, is dropped.
   */
  private armIdle(): void {
    this.progressFrom = this.bytesReceived;
    this.armedAt = performance.now();
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.refuse(new IdleTimeoutError(this.c.idleTimeoutMs)), this.c.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.bytesReceived += chunk.length;
    try {
      this.decoder.push(chunk);
    } catch (e) {
      if (!(e instanceof TransportError)) throw e;
      this.refuse(e);
      return;
    }
    this.drain();
    this.progress();
  }

  /**
   * A frame may take longer than the idle limit to cross a slow link: STALL_WINDOW_BYTES within
   * it keep the connection alive, the bar a snapshot stream has, so any link above that rate
   * delivers every frame in time, while a peer that trickles still falls short. Not while a chunk
   * is being stored: the idle timer is stopped then, as a slow disk here is not a silent peer.
   * The dialer cannot see its own bytes move (Node counts a write's bytes as written, and leaves
   * them in writableLength, until the whole write is done, however long it takes to drain), so it
   * is told with a pong, which it takes as having heard from us: one per window and per third of
   * the limit at most, and not while anything waits unsent here, as for a ping. A snapshot
   * stream's window likewise counts the part of its next chunk already here: a chunk, too, may
   * take longer than the window.
   */
  private progress(): void {
    if (this.closed || this.writing || this.peer === 0) return;
    const a = this.assembly;
    if (a !== undefined) {
      const at = a.received + this.arriving(a);
      if (at - a.windowFrom >= STALL_WINDOW_BYTES) this.armStall(a, at);
    }
    // On a fast link frames complete, and restart the limit, far more often than a window arrives:
    // a pong per window there would cost the dialer a read (and this node a write) per 64 KiB.
    if (this.bytesReceived - this.progressFrom < STALL_WINDOW_BYTES || performance.now() - this.armedAt < this.c.idleTimeoutMs / 3) return;
    this.armIdle();
    this.pong();
  }

  /**
   * Bytes here of the frame under way when it is the stream's next chunk (another frame is no
   * progress of it), its framing included but never past the stream's end.
   */
  private arriving(a: Assembly): number {
    const head = this.decoder.head(CHUNK_HEAD_BYTES);
    const c = head === undefined ? undefined : chunkHead(head);
    return c !== undefined && c.streamId === a.streamId && c.offset === a.received ? Math.min(this.decoder.pending, a.total - a.received) : 0;
  }

  private pong(): void {
    if (this.socket.writableLength === 0) this.socket.write(encodeFrames([encodePing(this.c.packer, true)]));
  }

  /** Handles the frames decoded so far, stopping at a snapshot write until it completes. */
  private drain(): void {
    try {
      while (!this.closed && !this.writing) {
        const payload = this.decoder.next();
        if (payload === undefined) return;
        this.framesReceived++;
        if (this.peer !== 0) this.armIdle();
        this.onFrame(decodeFrame(payload));
      }
    } catch (e) {
      // Only the peer's bytes are judged here; a throw from the driver's handler is a bug and propagates.
      if (!(e instanceof TransportError)) throw e;
      this.refuse(e);
    }
  }

  private learn(peer: number, advertised: string): void {
    let address: { host: string; port: number };
    try {
      address = parseAddress(advertised);
    } catch {
      throw new MalformedFrameError(`handshake names an impossible address '${peerText(advertised)}'`);
    }
    const anyHost = address.host === '0.0.0.0' || address.host === '::';
    const host = anyHost ? this.socket.remoteAddress : address.host;
    if (host !== undefined) this.c.learned(peer, formatAddress(host, address.port));
  }

  private onFrame(f: Frame): void {
    if (this.peer === 0) {
      if (this.pending === undefined) return this.onHello(f);
      if (f.kind !== 'proof') throw new MalformedFrameError(`expected the handshake proof, got a ${f.kind} frame`);
      const { hello, facts } = this.pending;
      const secrets = this.c.secrets();
      if (secrets.length > 0) {
        this.provenBy = verify(secrets, 'dialer', facts, f.proof);
        if (this.provenBy === undefined) throw new AuthFailedError(`node ${hello.from} did not prove it holds the cluster secret`);
      }
      this.pending = undefined;
      const recording = admitInstance(this.c.peerInstances, hello.from, hello.instance);
      if (recording === undefined) return this.admit(hello);
      // No frame of an instance met for the first time is read before its record is durable:
      // after a crash in between, another instance of the same id would be taken for it.
      this.writing = true;
      this.socket.pause();
      recording.then(
        () => {
          this.writing = false;
          if (this.closed) return;
          this.admit(hello);
          this.socket.resume();
          this.drain();
        },
        (err: unknown) => {
          this.writing = false;
          if (err instanceof TransportError) return this.refuse(err);
          if (this.closed) return;
          this.c.logger.error(
            { code: codeOf(err) },
            `transport: cannot record the instance of node ${hello.from}, closing its connection: ${(err as Error).message}`,
          );
          this.destroy();
        },
      );
      return;
    }
    switch (f.kind) {
      case 'message':
        this.check(f.message);
        this.c.deliver(f.message);
        return;
      case 'chunk':
        return this.onChunk(f);
      case 'ping':
        // Answered so the dialer sees traffic both ways and can tell a dead acceptor; not while
        // anything waits unsent (which it will see first): a dialer that pings and reads nothing
        // would otherwise queue a pong here per 6 bytes it sends, for as long as it pings.
        this.pong();
        return;
      default:
        throw new MalformedFrameError(`unexpected ${f.kind} frame after the handshake`);
    }
  }

  private admit(hello: HelloFrame): void {
    clearTimeout(this.handshakeTimer);
    this.peer = hello.from;
    this.decoder.limit = this.c.maxFrameBytes;
    this.c.authenticated();
    this.armIdle();
    if (hello.address !== undefined) this.learn(hello.from, hello.address);
  }

  private onHello(f: Frame): void {
    if (f.kind !== 'hello') throw new MalformedFrameError(`expected a handshake, got a ${f.kind} frame`);
    if (f.version !== WIRE_VERSION) throw new MalformedFrameError(`wire version ${f.version}, this node speaks ${WIRE_VERSION}`);
    if (f.clusterId !== this.c.clusterId) throw new ClusterMismatchError(this.c.clusterId, f.clusterId);
    if (f.to !== this.c.self) throw new WrongNodeError(`handshake addressed to node ${f.to}, this is node ${this.c.self}`);
    if (f.from === 0 || f.from === this.c.self) throw new WrongNodeError(`handshake from impossible node id ${f.from}`);
    if (this.c.certIds !== undefined && !this.c.certIds.includes(f.from)) {
      throw new AuthFailedError(
        `hello claims node ${f.from}, the certificate names ${this.c.certIds.length === 0 ? 'no node' : `node ${this.c.certIds.join(', ')}`}`,
      );
    }
    const secrets = this.c.secrets();
    if (secrets.length > 0 && (f.nonce === undefined || f.nonce.length !== NONCE_BYTES)) throw new AuthFailedError('hello carries no challenge');
    const mine = nonce();
    const facts: HandshakeFacts = {
      version: WIRE_VERSION,
      clusterId: this.c.clusterId,
      dialer: f.from,
      acceptor: this.c.self,
      dialerNonce: f.nonce ?? new Uint8Array(0),
      acceptorNonce: mine,
      ...(f.instance !== undefined ? { dialerInstance: f.instance } : {}),
      ...(this.c.instance !== undefined ? { acceptorInstance: this.c.instance } : {}),
    };
    const p = secrets.length > 0 ? proof(secrets[0]!, 'acceptor', facts) : new Uint8Array(0);
    this.pending = { hello: f, facts };
    this.socket.write(encodeFrames([encodeChallenge(this.c.packer, mine, p, this.c.instance)]));
  }

  private check(m: Message): void {
    // A transfer request names the transferee as `from`, so it may arrive over any member's connection
    // (even bounced back to the transferee), asking no more than any member's API may. Not over a
    // stranger's: the core checks the transferee, not who asks, and would move the leadership as
    // often as one sent it. All else comes from the sender: a proposal carries its maker's records,
    // and a read's answer goes to its `from`, where an answer to a read asked earlier by another
    // would look like a fresh one.
    const forwarded = m.type === MessageType.MsgTransferLeader && this.c.isMember(this.peer);
    if (m.to !== this.c.self || (m.from !== this.peer && !forwarded)) {
      throw new WrongNodeError(`message ${m.from}->${m.to} on the connection from node ${this.peer} to node ${this.c.self}`);
    }
  }

  private onChunk(f: ChunkFrame): void {
    let a = this.assembly;
    const first = f.offset === 0;
    if (first) {
      if (a !== undefined) throw new MalformedFrameError(`snapshot stream ${f.streamId} starts before stream ${a.streamId} ended`);
      if (f.header === undefined) throw new MalformedFrameError('first snapshot chunk has no header');
      this.check(f.header.message);
      if (f.total > this.c.maxSnapshotBytes) throw new SnapshotTooLargeError(f.total, this.c.maxSnapshotBytes);
      a = {
        streamId: f.streamId,
        message: f.header.message,
        meta: f.header.meta,
        total: f.total,
        received: 0,
        spool: undefined,
        abandoned: false,
        writing: undefined,
        windowFrom: 0,
        windowLeftMs: this.c.idleTimeoutMs,
        windowEndsAt: 0,
      };
      // Spools on disk are bounded by the members, each with its one connection.
      if (!this.c.isMember(this.peer)) throw new SnapshotRejectedError(`node ${this.peer} is not a known peer`);
      this.assembly = a;
    } else if (a === undefined || a.streamId !== f.streamId || a.received !== f.offset || a.total !== f.total || f.header !== undefined) {
      throw new MalformedFrameError(`snapshot chunk at offset ${f.offset} of stream ${f.streamId} out of sequence`);
    }
    a.received += f.data.length;
    const last = a.received === a.total;
    this.write(a, f.data, first, last);
  }

  /**
   * Writes one chunk to the spool while the connection waits: nothing more is read
   * from this peer until it is stored, so memory holds at most a frame per connection.
   */
  private write(a: Assembly, data: Uint8Array, first: boolean, last: boolean): void {
    if (this.c.abandonedStores.size > 0) {
      throw new SnapshotRejectedError('a snapshot chunk given up on is still being stored: nothing more is stored until it is');
    }
    this.writing = true;
    this.socket.pause();
    clearTimeout(this.idleTimer); // a slow disk is not a silent peer
    this.pauseStall(a);
    // Once abandoned, abandon() deletes the spool.
    const run = async (): Promise<void> => {
      if (first) a.spool = await this.c.snapshots.spool(a.meta, a.total);
      if (a.abandoned) return;
      await a.spool!.write(data);
      if (!last || a.abandoned) return;
      const ref = await a.spool!.finish();
      if (a.abandoned) return;
      this.assembly = undefined;
      this.c.deliver({ ...a.message, snapshot: { meta: a.meta, data: ref } });
    };
    a.writing = run();
    this.startWriteTimers(data.byteLength + (last ? a.total : 0));
    a.writing.then(
      () => {
        this.writing = false;
        this.stopWriteTimers();
        if (this.closed) return;
        this.armIdle();
        if (this.assembly === a) this.armStall(a);
        this.socket.resume();
        this.drain();
      },
      (err: unknown) => {
        this.writing = false;
        this.stopWriteTimers();
        if (a.abandoned) return;
        this.refuse(new SnapshotRejectedError((err as Error).message, { cause: err }));
      },
    );
  }

  /** Gives up the stream under way, if any: its spool is deleted once the write under way is over. */
  private abandon(): void {
    const a = this.assembly;
    if (a === undefined) return;
    this.assembly = undefined;
    clearTimeout(this.stallTimer);
    a.abandoned = true;
    if (this.writing && a.writing !== undefined) {
      // The write keeps its chunk until it settles, which a hung disk may never do, whether it was
      // given up on or its connection was lost: until then write() stores nothing else, or each
      // retry of the leader's, or each new connection, would hold one more chunk.
      const stores = this.c.abandonedStores;
      const writing = a.writing;
      stores.add(writing);
      const settled = (): boolean => stores.delete(writing);
      writing.then(settled, settled);
    }
    const discard = async (): Promise<void> => {
      // Never beside a write or a finish: one that ended later could store again what abort() deleted.
      await a.writing?.catch(() => undefined);
      await a.spool?.abort();
    };
    this.c.releases.add(`deleting an abandoned snapshot from peer ${this.peer}`, discard());
  }

  private refuse(err: TransportError): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    this.abandon();
    // Refusals a peer brings on itself again at each reconnection are rationed as a stranger's are: a
    // member whose maxRecordBytes is larger than this node's sends the same entries again, and a
    // removed node still running dials again and again until its operator stops it.
    const rationed = err instanceof FrameTooLargeError || err instanceof PeerRemovedError;
    const log = err instanceof PeerReplacedError ? (this.c.replacedPeers ?? this.log()) : rationed ? this.c.refusals : this.log();
    log.warn({ code: err.code, ...this.fields() }, `transport: closing connection from ${this.describe()}: ${err.code}: ${err.message}`);
    this.c.refused(err);
    this.socket.end(encodeFrames([encodeRefuse(this.c.packer, err.code, err.message)]));
    // Do not wait on a peer that stops reading.
    this.graceTimer = setTimeout(() => this.socket.destroy(), 1_000);
    this.graceTimer.unref();
  }

  /** A member's connection is logged in full; a stranger can open them faster than anyone reads. */
  private log(): Pick<TransportLogger, 'warn'> {
    return this.peer === 0 ? this.c.refusals : this.c.logger;
  }

  /** Who is at the other end, as fields: `peer` once its hello named it. */
  private fields(): Record<string, unknown> {
    return { ...(this.peer === 0 ? {} : { peer: this.peer }), ...clientFields(this.socket) };
  }

  private describe(): string {
    const who = this.peer === 0 ? 'unidentified peer' : `peer ${this.peer}`;
    return `${who} at ${clientAddress(this.socket)}`;
  }
}

// The one connection this node opens to a peer, and the queue in front of it.
// Connections are one-way: we only write on the sockets we open and only read on
// the sockets we accept, so there is never a question of which of two crossing
// connections wins.
import { codeOf } from '../errors.js';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Packr } from 'msgpackr';
import { MessageType } from '../raft/types.js';
import type { Message, Snapshot } from '../raft/types.js';
import { parseAddress } from './address.js';
import { backoffDelay } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import {
  AuthFailedError,
  DialTimeoutError,
  IdleTimeoutError,
  PeerRefusedError,
  PeerReplacedError,
  SnapshotSendFailedError,
  SnapshotSourceMismatchError,
  TransportError,
  type PeerRefusalCounts,
  type RefusalCounts,
} from './errors.js';
import { HANDSHAKE_MAX_BYTES, WIRE_VERSION, encodeChunk, encodeHello, encodeMessageParts, encodePing, encodeProof, decodeFrame } from './wire.js';
import type { Frame } from './wire.js';
import { certNodeIds, holds, nonce, proof, verify, type HandshakeFacts } from './auth.js';
import { FrameDecoder, encodeFrames, frameChunks } from './frame.js';
import type { TransportLogger } from './transport.js';
import type { SnapshotStreams } from './snapshot-streams.js';
import type { PendingReleases } from './pending-releases.js';
import { STALL_WINDOW_BYTES } from './inbound.js';
import { admitInstance, type PeerInstances } from './peer-instances.js';
import { PEER_REFUSALS, type PeerRefusal, type RefusalFacts, type StreamedSnapshot } from './peer-refusals.js';

export interface TlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /**
   * The CA that signed every peer's certificate. Peers must present one (mutual authentication)
   * naming their node id as a SAN URI `raftlog://node/<id>`; that, not the host name, is checked.
   */
  ca: string | Buffer | Array<string | Buffer>;
}

export interface OutboundConfig {
  self: number;
  clusterId: string;
  /** This node's listen address, told to every peer it dials. */
  advertise(): string;
  /**
   * With TLS, this node's credentials, built once per set (a context per dial parsed the key and
   * certificates again each time); replaced when they are reloaded.
   */
  tls?: tls.SecureContext;
  /** Cluster secrets (the first proves this node; any verifies the peer). Empty: no secret. */
  secrets: Buffer[];
  /** This node's instance id, sent in the hello. */
  instance?: Uint8Array;
  /** The record an acceptor's instance is checked against (and first recorded in) before this node proves itself. */
  peerInstances?: PeerInstances;
  /** Where a peer refused as a new instance, or refusing this one as such, is logged: at error level, rationed. */
  replacedPeers: Pick<TransportLogger, 'warn'>;
  /** Where a refusal of this node's dial without a row in PEER_REFUSALS is logged: rationed as refused connections are. */
  refusedDials: Pick<TransportLogger, 'warn'>;
  /** A ping goes out this often on an open connection. */
  pingIntervalMs: number;
  /**
   * A connection the peer sends nothing on for this long is closed. While a write drains, no pings
   * go out, but the peer pongs unasked for each 64 KiB it receives, and while it stores a
   * snapshot chunk, and each 64 KiB read here counts as hearing from it: a slow link or a slow
   * disk there keeps the connection open, a trickle does not.
   */
  idleTimeoutMs: number;
  maxFrameBytes: number;
  maxQueueBytes: number;
  snapshotChunkBytes: number;
  /** Where the bytes behind a MsgSnap's snapshot are read, a chunk ahead of the socket. */
  snapshots: SnapshotStreams;
  /** Where snapshot reads under way and sources being closed are tracked: the owner's close() waits for them. */
  releases: PendingReleases;
  connectTimeoutMs: number;
  backoff: BackoffOptions;
  random: () => number;
  logger: TransportLogger;
  /** Dials this node gave up on its own check of the peer (its proof, its frames), by code. */
  refused: RefusalCounts;
  /** Dials the peer refused: by the code it gave once it had proved itself (Outbound.peerProven), as UNPROVEN before. */
  refusedByPeers: PeerRefusalCounts;
  packer: Packr;
  /** Deferred by the owner: never re-entrant into the caller of send(). */
  unreachable(peer: number): void;
  /** The driver will send more in this turn (TransportHandlers.sendingLater). */
  sendingLater(): boolean;
  snapshotStatus(peer: number, ok: boolean): void;
  /** The peer, proven, refused this node as removed (TRANSPORT_PEER_REMOVED). Deferred by the owner. */
  removedBy(peer: number): void;
  /** A message the peer answered on this connection (it has no address for this node). */
  deliver(m: Message): void;
}

export interface OutboundStats {
  /** socket.write calls: one per flush of queued messages, one per snapshot chunk. */
  writes: number;
  framesSent: number;
  bytesSent: number;
  /** Messages dropped: not connected, queue over maxQueueBytes, connection lost, too large. */
  dropped: number;
  /** MsgApps with no entries left unsent because a MsgApp with entries queued after them said the same and more. */
  coalesced: number;
  /** Successful connections (the first one included). */
  connects: number;
  /** Bytes queued now, waiting for a connection or for the socket to drain. */
  queuedBytes: number;
  /** The connection is open and the peer has proved itself. */
  connected: boolean;
}

interface SnapshotJob {
  message: Message;
  snapshot: Snapshot;
  streamId: number;
  offset: number;
  started: boolean;
  reported: boolean;
  /** Known once the source is open. */
  size: number | undefined;
  source: AsyncIterator<Uint8Array> | undefined;
  /** Read from the source and not yet sent. */
  pending: Uint8Array | undefined;
  /** An open or a read is under way: flush runs again when it completes. */
  reading: boolean;
}

/** recording: the acceptor proved itself, and its instance, met for the first time, is being recorded. */
type State = 'connecting' | 'handshake' | 'recording' | 'open' | 'backoff' | 'closed';

const SHED: Uint8Array[] = [];

/** How often a flush is put off for a driver that says it will send more (flushAtTurnEnd). */
const MAX_FLUSH_DEFERRALS = 4;

const bytesOf = (parts: readonly Uint8Array[]): number => parts.reduce((n, p) => n + p.length, 0);

export class Outbound {
  private readonly counters = { writes: 0, framesSent: 0, bytesSent: 0, dropped: 0, connects: 0, coalesced: 0 };
  /** The last MsgApp queued, if it carries no entries: a MsgApp with entries may make it redundant (coalesce). */
  private lastEmptyApp: { m: Message; payload: Uint8Array[]; bytes: number } | null = null;
  private state: State = 'backoff';
  private socket: net.Socket | undefined;
  /** Each message's payload, in the parts it was packed in. */
  private queue: Uint8Array[][] = [];
  /**
   * Messages other than MsgApp sent while the connection cannot take them (blocked, or not
   * open yet): written ahead of the queue, so that a heartbeat, a vote or an acknowledgement
   * never waits behind up to maxQueueBytes of entries to a slow peer. Raft allows any order.
   */
  private control: Uint8Array[][] = [];
  /** Messages before this index in `queue` were shed; kept as an offset so shedding stays O(1). */
  private head = 0;
  private queueBytes = 0;
  private blocked = false;
  private flushScheduled = false;
  /** flushAtTurnEnd is queued (setImmediate): one at a time, whoever scheduled it. */
  private flushQueued = false;
  /** Times the scheduled flush was put off because the driver will send more (sendingLater). */
  private flushDeferrals = 0;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private jobs: SnapshotJob[] = [];
  /** Jobs whose last chunk is written but whose write callback has not run. */
  private finishing = new Set<SnapshotJob>();
  private nextStreamId = 1;
  private lastError: Error | undefined;
  /**
   * The codes of the failed dials other than refusals logged since a connection last ended
   * otherwise than refused: this node's and the system's codes, a short list, never a peer's words.
   */
  private loggedFailures = new Set<string>();
  /** The reason (the peer's code) of the last refusal logged in the same span: one with another is logged too. */
  private loggedRefusal: string | undefined;
  /** No line about a lost or failed connection came after the last "connected" line: the next one says nothing new. */
  private saidConnected = false;
  private openedAt = 0;
  /** The secret the peer proved on the connection under way (none before its proof, or without one). */
  private provenBy: Buffer | undefined;
  /** The last snapshot whose stream began on the connection under way: the one a refusal of its size refers to. */
  private streamed: StreamedSnapshot | undefined;
  /**
   * The snapshot the peer refused (a row of PEER_REFUSALS with `snapshot`): it is not streamed
   * again (the leader asks for it again at every heartbeat) until a connection to the peer ends
   * for another reason, as its restart does.
   */
  private refusedSnapshot: StreamedSnapshot | undefined;
  /** The last refused snapshot logged: each is logged once, however often it is offered again. */
  private loggedSnapshot: StreamedSnapshot | undefined;
  /**
   * The code of the refusal (a row of PEER_REFUSALS) that ended the last connection to the peer,
   * and each one since: a line logged once per episode is not logged again until a connection
   * ends for another reason.
   */
  private episode: string | undefined;
  /**
   * The refusal the peer sent on the connection under way once it had proved itself (peerProven):
   * only such a refusal means what its row in PEER_REFUSALS says (anyone answering at the address
   * can send one before, to stop this node's line about it, or to have it logged as advice to
   * remove this node).
   */
  private provenRefusal: PeerRefusedError | undefined;

  constructor(
    readonly peer: number,
    private address: string,
    private readonly c: OutboundConfig,
  ) {
    this.connect();
  }

  get stats(): OutboundStats {
    return { ...this.counters, queuedBytes: this.queueBytes, connected: this.state === 'open' };
  }

  send(m: Message): void {
    if (this.state === 'closed') return;
    if (m.type === MessageType.MsgSnap) return this.sendSnapshot(m);
    if (this.state === 'backoff') return this.drop(1);
    const payload = encodeMessageParts(this.c.packer, m);
    const bytes = bytesOf(payload);
    if (bytes > this.c.maxFrameBytes) {
      this.c.logger.warn(
        { code: 'TRANSPORT_FRAME_TOO_LARGE' },
        `transport: dropping a ${MessageType[m.type]} of ${bytes} bytes to peer ${this.peer}: over maxFrameBytes ${this.c.maxFrameBytes} (lower the raft max message size)`,
      );
      return this.drop(1);
    }
    if (m.type === MessageType.MsgApp) this.coalesce(m, payload, bytes);
    (m.type !== MessageType.MsgApp && (this.blocked || this.state !== 'open') ? this.control : this.queue).push(payload);
    this.queueBytes += bytes;
    if (this.queueBytes > this.c.maxQueueBytes) this.shed();
    this.scheduleFlush();
  }

  /**
   * A leader tells its followers of a new commit index as soon as it moves, in a MsgApp with
   * no entries, and its clients' next appends follow in the same turn, in a MsgApp from the
   * same place with entries and that commit index or a later one. That one says all the first
   * does: the first, still the last message waiting, is not sent, which spares the follower a
   * message and an answer, and the leader the answer.
   */
  private coalesce(m: Message, payload: Uint8Array[], bytes: number): void {
    const last = this.lastEmptyApp;
    this.lastEmptyApp = m.entries.length === 0 && m.context === undefined ? { m, payload, bytes } : null;
    if (last === null || m.entries.length === 0 || this.queue.length <= this.head || this.queue[this.queue.length - 1] !== last.payload) return;
    const e = last.m;
    if (m.term !== e.term || m.from !== e.from || m.index !== e.index || m.logTerm !== e.logTerm || m.commit < e.commit || m.context !== undefined) return;
    this.queue.pop();
    this.queueBytes -= last.bytes;
    this.counters.coalesced++;
  }

  /** Points this peer at a new address; reconnects at once if it changed. */
  setAddress(address: string): void {
    if (address === this.address || this.state === 'closed') return;
    this.address = address;
    this.attempt = 0;
    // Switch at once, keeping the queue for the new address; the old socket's close is ignored.
    const old = this.socket;
    this.socket = undefined;
    old?.destroy();
    this.blocked = false;
    this.failSnapshots();
    // Another address: perhaps another process, with its own limits, whose refusals are news.
    this.refusedSnapshot = undefined;
    this.loggedSnapshot = undefined;
    this.episode = undefined;
    clearTimeout(this.timer);
    this.connect();
  }

  /**
   * Closes the connection if the peer proved a secret that `secrets` no longer holds: one that
   * leaked must not keep trusted what answered with it. The redial comes at the first backoff
   * step, as after a connection that lasted: a peer that holds the new list answers it.
   */
  retire(secrets: Buffer[]): void {
    if (this.provenBy === undefined || holds(secrets, this.provenBy)) return;
    this.disconnect(new AuthFailedError(`the cluster secret node ${this.peer} proved is no longer in the list`));
  }

  /** Closes the connection, open or under way, for `why`; it is dialled again at the first backoff step. */
  disconnect(why: TransportError): void {
    const s = this.socket;
    if (s === undefined) return;
    this.lastError = why;
    this.attempt = 0;
    s.destroy();
  }

  /** The sources of snapshots cut off are released in the background, tracked in `releases`. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = undefined;
    this.clearQueue();
    this.failSnapshots();
  }

  private track(p: Promise<void>): void {
    this.c.releases.add(`releasing a snapshot being sent to peer ${this.peer}`, p);
  }

  private clearQueue(): void {
    this.queue = [];
    this.control = [];
    this.head = 0;
    this.queueBytes = 0;
  }

  private sendSnapshot(m: Message): void {
    if (m.snapshot === undefined) {
      this.c.logger.warn({ code: 'INTERNAL' }, `transport: MsgSnap to peer ${this.peer} has no snapshot; dropped`);
      this.c.snapshotStatus(this.peer, false);
      return;
    }
    if (this.state === 'backoff') {
      this.c.snapshotStatus(this.peer, false);
      return this.drop(1);
    }
    if (sameSnapshot(this.refusedSnapshot, m.snapshot.meta)) {
      this.c.snapshotStatus(this.peer, false);
      return;
    }
    const { snapshot, ...message } = m;
    this.jobs.push({
      message,
      snapshot,
      streamId: this.nextStreamId++,
      offset: 0,
      started: false,
      reported: false,
      size: undefined,
      source: undefined,
      pending: undefined,
      reading: false,
    });
    this.scheduleFlush();
  }

  /** Drops the oldest messages until the queue fits again: under back-pressure the newest state matters most. */
  private shed(): void {
    let n = 0;
    while (this.queueBytes > this.c.maxQueueBytes && this.head < this.queue.length) {
      this.queueBytes -= bytesOf(this.queue[this.head]!);
      this.queue[this.head++] = SHED; // let the payload be collected
      n++;
    }
    // Control messages only once no entries are left to shed.
    while (this.queueBytes > this.c.maxQueueBytes && this.control.length > 0) {
      this.queueBytes -= bytesOf(this.control.shift()!);
      n++;
    }
    // Compact now and then, so a peer that stays blocked cannot grow the array of slots either.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.drop(n);
  }

  private drop(n: number): void {
    if (n === 0) return;
    this.counters.dropped += n;
    this.c.unreachable(this.peer);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.flushDeferrals = 0;
    // setImmediate, not a microtask: everything the driver sends in this turn,
    // across several awaits, joins the same write.
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(this.flushAtTurnEnd);
  }

  /** Writes the queue now if a flush is pending (the one scheduled then finds it empty). */
  flushNow(): void {
    if (this.flushScheduled) this.flush();
  }

  /**
   * Put off while the driver will send more: it flushes once it has (the proposal at the end
   * of its turn), so this finds the queue written, or written and filled again by a later turn
   * (then it looks again). A driver that never flushes waits a few turns at most.
   */
  private readonly flushAtTurnEnd = (): void => {
    this.flushQueued = false;
    if (!this.flushScheduled) return;
    if (this.c.sendingLater() && this.flushDeferrals++ < MAX_FLUSH_DEFERRALS) {
      this.flushQueued = true;
      setImmediate(this.flushAtTurnEnd);
    } else {
      this.flush();
    }
  };

  private flush(): void {
    this.flushScheduled = false;
    const s = this.socket;
    if (this.state !== 'open' || s === undefined || this.blocked) return;
    if (this.head < this.queue.length || this.control.length > 0) {
      const queued = this.head === 0 ? this.queue : this.queue.slice(this.head);
      const frames = this.control.length === 0 ? queued : this.control.concat(queued);
      this.clearQueue();
      this.write(s, frameChunks(frames), frames.length);
    }
    while (!this.blocked && this.jobs.length > 0) {
      const job = this.jobs[0]!;
      if (!this.readAhead(job)) return;
      this.writeChunk(s, job);
    }
  }

  /** True when the job's next chunk is at hand; otherwise starts reading it, and flushes again once it is. */
  private readAhead(job: SnapshotJob): boolean {
    if (job.size !== undefined && (job.pending !== undefined || (job.size === 0 && !job.started))) return true;
    if (job.reading) return false;
    job.reading = true;
    const next = async (): Promise<void> => {
      if (job.source === undefined) {
        const out = await this.c.snapshots.open(job.snapshot);
        job.source = out.chunks[Symbol.asyncIterator]();
        job.size = out.size;
        if (out.size === 0) return;
      }
      const r = await job.source.next();
      const { index, term } = job.snapshot.meta;
      if (r.done === true) throw new SnapshotSourceMismatchError(index, term, job.size!, `ended after ${job.offset}`);
      if (job.offset + r.value.byteLength > job.size!)
        throw new SnapshotSourceMismatchError(index, term, job.size!, `held at least ${job.offset + r.value.byteLength}`);
      job.pending = r.value;
    };
    this.track(
      next().then(
        () => {
          job.reading = false;
          if (job.reported) return closeSource(job);
          this.scheduleFlush();
        },
        (err: unknown) => {
          job.reading = false;
          if (job.reported) return closeSource(job);
          this.c.logger.warn(
            { code: codeOf(err) },
            `transport: snapshot ${job.snapshot.meta.index}/${job.snapshot.meta.term} to peer ${this.peer} not sent: ${(err as Error).message}`,
          );
          this.jobs = this.jobs.filter((j) => j !== job);
          this.report(job, false);
          // The peer holds half a stream: a new connection starts clean.
          if (this.socket === undefined) return;
          this.lastError = new SnapshotSendFailedError(job.snapshot.meta.index, job.snapshot.meta.term, err);
          this.socket.destroy();
        },
      ),
    );
    return false;
  }

  private writeChunk(s: net.Socket, job: SnapshotJob): void {
    const size = job.size!;
    const pending = job.pending ?? new Uint8Array(0);
    const data = pending.subarray(0, this.c.snapshotChunkBytes);
    job.pending = data.byteLength < pending.byteLength ? pending.subarray(data.byteLength) : undefined;
    const end = job.offset + data.byteLength;
    const header = job.started ? undefined : { message: job.message, meta: job.snapshot.meta };
    const payload = encodeChunk(this.c.packer, job.streamId, job.offset, size, data, header);
    if (payload.length > this.c.maxFrameBytes) {
      this.jobs.shift();
      this.c.logger.warn(
        { code: 'TRANSPORT_FRAME_TOO_LARGE' },
        `transport: snapshot chunk of ${payload.length} bytes to peer ${this.peer} exceeds maxFrameBytes ${this.c.maxFrameBytes}; snapshot not sent`,
      );
      this.report(job, false);
      return;
    }
    if (!job.started) this.streamed = { index: job.snapshot.meta.index, term: job.snapshot.meta.term, size };
    job.started = true;
    job.offset = end;
    if (end < size) {
      this.write(s, frameChunks([[payload]]), 1);
      return;
    }
    this.jobs.shift();
    this.track(closeSource(job));
    this.finishing.add(job);
    this.write(s, frameChunks([[payload]]), 1, (err) => {
      this.finishing.delete(job);
      this.report(job, err == null);
    });
  }

  /** One write of `chunks`: corked, several still leave in one vectored write. `cb` runs after the last. */
  private write(s: net.Socket, chunks: readonly Uint8Array[], frames: number, cb?: (err?: Error | null) => void): void {
    this.counters.writes++;
    this.counters.framesSent += frames;
    const corked = chunks.length > 1;
    if (corked) s.cork();
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!;
      this.counters.bytesSent += c.length;
      if (!s.write(c, i === chunks.length - 1 ? cb : undefined)) this.blocked = true;
    }
    if (corked) s.uncork();
  }

  private report(job: SnapshotJob, ok: boolean): void {
    if (job.reported) return;
    job.reported = true;
    if (!job.reading) this.track(closeSource(job));
    this.c.snapshotStatus(this.peer, ok);
  }

  private failSnapshots(): void {
    for (const job of [...this.finishing, ...this.jobs]) this.report(job, false);
    this.finishing.clear();
    this.jobs = [];
  }

  private connect(): void {
    this.state = 'connecting';
    this.lastError = undefined;
    this.provenBy = undefined;
    this.provenRefusal = undefined;
    this.streamed = undefined;
    let host: string;
    let port: number;
    try {
      ({ host, port } = parseAddress(this.address));
    } catch (e) {
      // Not retried: the address would fail alike at every backoff step (and be logged at each, for
      // as long as a peer named without a port does not dial in); setAddress brings another.
      this.c.logger.warn({ code: codeOf(e) }, `transport: peer ${this.peer}: ${(e as Error).message}`);
      this.state = 'backoff';
      return;
    }
    const t = this.c.tls;
    const peer = this.peer;
    const s =
      t === undefined
        ? net.connect({ host, port })
        : tls.connect({
            host,
            port,
            secureContext: t,
            // The peer's certificate must name the node we mean to reach; its host name proves nothing here.
            checkServerIdentity: (_host, cert) =>
              certNodeIds(cert).includes(peer) ? undefined : new AuthFailedError(`the certificate at ${this.address} does not name node ${peer}`),
          });
    this.socket = s;
    s.setNoDelay(true);
    s.setKeepAlive(true, 5_000);
    // Covers the TCP connect, the TLS handshake and ours: a peer that never answers is dropped.
    const connectTimer = setTimeout(() => s.destroy(new DialTimeoutError(this.c.connectTimeoutMs)), this.c.connectTimeoutMs);
    let idleTimer: NodeJS.Timeout | undefined;
    let pingTimer: NodeJS.Timeout | undefined;
    // Bytes read, and where the last window of them began: an answer may take longer than the idle
    // limit to cross a slow link, and the acceptor's pongs wait behind it, so its progress counts,
    // with the bar the acceptor sets (a window per idle limit).
    let received = 0;
    let windowFrom = 0;
    const heard = (): void => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => s.destroy(new IdleTimeoutError(this.c.idleTimeoutMs)), this.c.idleTimeoutMs);
      idleTimer.unref();
    };
    const myNonce = nonce();
    s.once(t === undefined ? 'connect' : 'secureConnect', () => {
      if (this.socket !== s) return;
      this.state = 'handshake';
      s.write(encodeFrames([encodeHello(this.c.packer, this.c.clusterId, this.c.self, peer, this.c.advertise(), myNonce, this.c.instance)]));
    });
    const onChallenge = (f: Frame): void => {
      if (f.kind !== 'challenge' || this.state !== 'handshake')
        throw new TransportError('TRANSPORT_MALFORMED_FRAME', `unexpected ${f.kind} frame from the accepting side`);
      const facts = {
        version: WIRE_VERSION,
        clusterId: this.c.clusterId,
        dialer: this.c.self,
        acceptor: peer,
        dialerNonce: myNonce,
        acceptorNonce: f.nonce,
        ...(this.c.instance !== undefined ? { dialerInstance: this.c.instance } : {}),
        ...(f.instance !== undefined ? { acceptorInstance: f.instance } : {}),
      };
      if (this.c.secrets.length > 0) {
        this.provenBy = verify(this.c.secrets, 'acceptor', facts, f.proof);
        if (this.provenBy === undefined) throw new AuthFailedError(`node ${peer} at ${this.address} did not prove it holds the cluster secret`);
      }
      const recording = admitInstance(this.c.peerInstances, peer, f.instance);
      if (recording === undefined) return opened(facts);
      // This node proves itself, and so sends and reads anything, only once the record is durable.
      this.state = 'recording';
      recording.then(
        () => {
          if (this.socket === s && this.state === 'recording') opened(facts);
        },
        (err: unknown) => {
          if (this.socket !== s) return;
          this.lastError = err as Error;
          s.destroy();
        },
      );
    };
    const opened = (facts: HandshakeFacts): void => {
      clearTimeout(connectTimer);
      const p = this.c.secrets.length > 0 ? proof(this.c.secrets[0]!, 'dialer', facts) : new Uint8Array(0);
      s.write(encodeFrames([encodeProof(this.c.packer, p)]));
      decoder.limit = this.c.maxFrameBytes; // the acceptor proved itself: it may answer messages
      this.state = 'open';
      this.openedAt = performance.now();
      this.counters.connects++;
      // Its losses are logged: without this line, nothing said the peer was reachable again. Not
      // when nothing said it was lost since: a peer closing every connection at once is not news at every dial.
      if (!this.saidConnected) this.c.logger.info({ peer }, `transport: connected to peer ${peer} at ${this.address}`);
      this.saidConnected = true;
      windowFrom = received;
      heard();
      pingTimer = setInterval(() => {
        if (this.socket === s && !this.blocked) s.write(encodeFrames([encodePing(this.c.packer, false)]));
      }, this.c.pingIntervalMs);
      pingTimer.unref();
      this.flush();
    };
    // Until the acceptor has proved it holds the secret, whoever answers at the address may
    // make this node buffer no more than a handshake frame.
    const decoder = new FrameDecoder(Math.min(HANDSHAKE_MAX_BYTES, this.c.maxFrameBytes));
    // A refusal is the acceptor's last frame: whatever follows it is not acted on.
    let refusedHere = false;
    s.on('data', (chunk: Buffer) => {
      if (refusedHere) return;
      // The accepting side writes its challenge, answers pings, says why it is closing on us, and
      // answers messages here when it has no address for this node.
      received += chunk.length;
      if (this.state === 'open' && received - windowFrom >= STALL_WINDOW_BYTES) {
        windowFrom = received;
        heard();
      }
      try {
        decoder.push(chunk);
        for (let payload = decoder.next(); payload !== undefined; payload = decoder.next()) {
          const f = decodeFrame(payload);
          if (f.kind === 'refuse') {
            refusedHere = true;
            this.refused(new PeerRefusedError(peer, f.code, f.reason));
            s.destroy();
            return;
          } else if (f.kind === 'pong' && this.state === 'open') heard();
          else if (f.kind === 'message' && this.state === 'open') {
            const m = f.message;
            // A follower with no address for its leader forwards a transfer request here, and the
            // request names the transferee as its sender; this peer is a member: it was dialed.
            const forwarded = m.type === MessageType.MsgTransferLeader;
            if ((m.from !== peer && !forwarded) || m.to !== this.c.self || m.type === MessageType.MsgSnap)
              throw new TransportError('TRANSPORT_MALFORMED_FRAME', `message ${m.from}->${m.to} answered on the connection to node ${peer}`);
            heard();
            this.c.deliver(m);
          } else onChallenge(f);
        }
      } catch (e) {
        if (!(e instanceof TransportError)) throw e;
        this.lastError = e;
        s.destroy();
      }
    });
    s.on('drain', () => {
      if (this.socket !== s) return;
      this.blocked = false;
      this.flush();
    });
    s.on('error', (err) => {
      if (!(this.lastError instanceof PeerRefusedError) && !(this.lastError instanceof AuthFailedError)) this.lastError = err;
    });
    s.on('close', () => {
      clearTimeout(connectTimer);
      clearTimeout(idleTimer);
      clearInterval(pingTimer);
      if (this.socket !== s) return;
      this.onClosed();
    });
  }

  private onClosed(): void {
    const wasOpen = this.state === 'open';
    // A connection counts as healthy (and resets the backoff) only once it has
    // lasted: a peer that accepts and then refuses us must not be redialed in a hot loop.
    // On the monotonic clock: a wall clock stepped forward would make any connection look long-lived.
    if (wasOpen && performance.now() - this.openedAt >= this.c.backoff.maxMs) this.attempt = 0;
    this.socket = undefined;
    this.blocked = false;
    const lost = this.queue.length - this.head;
    this.clearQueue();
    this.failSnapshots();
    if (this.state === 'closed') return;
    const e = this.lastError;
    if (e instanceof PeerRefusedError) this.c.refusedByPeers.add(e.remoteCode, e === this.provenRefusal);
    else if (e instanceof TransportError) this.c.refused.add(e.code);
    const refusal = e instanceof PeerRefusedError ? this.meaning(e) : undefined;
    const episode = this.episode;
    this.episode = refusal?.facts.error.remoteCode;
    this.refusedSnapshot = refusal?.rule.snapshot === true ? refusal.facts.snapshot : undefined;
    if (lost > 0 || wasOpen) {
      this.counters.dropped += lost;
      this.c.unreachable(this.peer);
    }
    if (refusal !== undefined) this.logRefusal(refusal, episode);
    else this.logFailure(e, wasOpen);
    this.state = 'backoff';
    this.retry();
  }

  /** The peer says why it closes this connection: the driver's handler for it, if any, is told at once. */
  private refused(e: PeerRefusedError): void {
    this.lastError = e;
    if (!this.peerProven()) return;
    this.provenRefusal = e;
    const tell = PEER_REFUSALS.get(e.remoteCode)?.tell;
    if (tell !== undefined) this.c[tell](this.peer);
  }

  /**
   * The acceptor has passed every check of who it is that this node makes: its challenge, whose
   * proof covers both nonces, so it is no replay (recording only waits on this node's own disk),
   * or, with TLS and no secret, the certificate verified before any byte was read. With a secret
   * too, a certificate alone is not enough: the secret is what a node must also hold.
   */
  private peerProven(): boolean {
    if (this.state === 'open' || this.state === 'recording') return true;
    return this.state === 'handshake' && this.c.tls !== undefined && this.c.secrets.length === 0;
  }

  /** The row of the peer's refusal, with what its line is made of; none for a refusal like any other. */
  private meaning(error: PeerRefusedError): Refusal | undefined {
    const rule = PEER_REFUSALS.get(error.remoteCode);
    if (rule === undefined || error !== this.provenRefusal || (rule.snapshot === true && this.streamed === undefined)) return undefined;
    const { self, maxFrameBytes } = this.c;
    return { rule, facts: { self, peer: this.peer, address: this.address, maxFrameBytes, error, snapshot: this.streamed } };
  }

  /** `episode`: the code of the refusals that ended every connection since one ended otherwise. */
  private logRefusal({ rule, facts }: Refusal, episode: string | undefined): void {
    if (rule.once === 'episode' && episode === facts.error.remoteCode) return;
    if (rule.once === 'snapshot') {
      if (sameSnapshot(this.loggedSnapshot, facts.snapshot!)) return;
      this.loggedSnapshot = facts.snapshot;
    }
    const { fields, message } = rule.line(facts);
    this.saidConnected = false;
    if (rule.log === 'replaced') this.c.replacedPeers.warn(fields, message);
    else this.c.logger[rule.log](fields, message);
  }

  /**
   * Each loss of a working connection is logged, but a peer that stays down or refuses every dial
   * only once, not at every retry: once per reason (the peer's code, for a refusal), since a peer
   * refused at first and then up with another secret or certificate must not stay logged as
   * refused. Whatever answers at the address can make dials fail in turn for several reasons (a
   * refusal, a close, a bad frame): each is logged once until a connection ends otherwise, not
   * at each change. Refusals go through the rationed log, once until the code changes: whoever
   * answers chooses their codes, and one that changes at every dial must not buy a line per
   * backoff step, nor a place in a list held here. A connection lost before it lasted (as long as
   * the longest backoff step) is no more news than a failed dial: a peer that closes each one as
   * soon as it is open is logged as lost once, not at every dial.
   */
  private logFailure(e: Error | undefined, wasOpen: boolean): void {
    const why = e?.message ?? 'closed by peer';
    if (e instanceof PeerReplacedError) {
      this.saidConnected = false;
      this.c.replacedPeers.warn({ code: e.code, peer: this.peer }, `transport: connection to peer ${this.peer} at ${this.address} refused: ${why}`);
      return;
    }
    // Only a connection that lasted (onClosed then restarted the backoff) closes the episode.
    if (this.attempt === 0) {
      this.loggedFailures.clear();
      this.loggedRefusal = undefined;
    }
    const line = `transport: connection to peer ${this.peer} at ${this.address} ${wasOpen ? 'lost' : 'failed'}: ${why}`;
    if (e instanceof PeerRefusedError) {
      if (e.remoteCode === this.loggedRefusal) return;
      this.loggedRefusal = e.remoteCode;
      this.saidConnected = false;
      this.c.refusedDials.warn({ code: e.code, remoteCode: e.remoteCode }, line);
      return;
    }
    const code = e === undefined ? 'TRANSPORT_CONNECTION_CLOSED' : codeOf(e);
    if (this.loggedFailures.has(code)) return;
    this.loggedFailures.add(code);
    this.saidConnected = false;
    this.c.logger.warn({ code }, line);
  }

  private retry(): void {
    const delay = backoffDelay(this.attempt++, this.c.backoff, this.c.random);
    this.timer = setTimeout(() => {
      if (this.state === 'backoff') this.connect();
    }, delay);
    this.timer.unref();
  }
}

/** A refusal that has a row in PEER_REFUSALS. */
interface Refusal {
  rule: PeerRefusal;
  facts: RefusalFacts;
}

function sameSnapshot(a: StreamedSnapshot | undefined, b: { index: number; term: number }): boolean {
  return a !== undefined && a.index === b.index && a.term === b.term;
}

/** Releases what the job's source holds open (a file); a failure there changes nothing for the peer. */
async function closeSource(job: SnapshotJob): Promise<void> {
  const src = job.source;
  job.source = undefined;
  job.pending = undefined;
  await src?.return?.(undefined);
}

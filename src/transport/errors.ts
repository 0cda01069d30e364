// Every way a peer connection can go wrong gets a class and a stable code, so the
// logged reason for closing a connection is greppable and tests can assert on it.
import { CodedError, codeOf, type CodedErrorOptions } from '../errors.js';
import { printable } from '../printable.js';

/** Every code a TransportError carries, and so every label the refusal metrics can show but OTHER. */
export const TRANSPORT_ERROR_CODES = [
  'TRANSPORT_FRAME_TOO_LARGE',
  'TRANSPORT_MALFORMED_FRAME',
  'TRANSPORT_CLUSTER_MISMATCH',
  'TRANSPORT_WRONG_NODE',
  'TRANSPORT_HANDSHAKE_TIMEOUT',
  'TRANSPORT_PEER_REFUSED',
  'TRANSPORT_BAD_ADDRESS',
  'TRANSPORT_BAD_OPTION',
  'TRANSPORT_CLOSED',
  'TRANSPORT_CONNECTION_CLOSED',
  'TRANSPORT_LISTEN_FAILED',
  'TRANSPORT_AUTH_FAILED',
  'TRANSPORT_INSECURE',
  'TRANSPORT_IDLE_TIMEOUT',
  'TRANSPORT_TOO_MANY_CONNECTIONS',
  'TRANSPORT_SNAPSHOT_TOO_LARGE',
  'TRANSPORT_SNAPSHOT_REJECTED',
  'TRANSPORT_CONNECTION_REPLACED',
  'TRANSPORT_SNAPSHOT_STALLED',
  'TRANSPORT_PEER_REPLACED',
  'TRANSPORT_PEER_REMOVED',
  'TRANSPORT_SNAPSHOT_SOURCE_MISMATCH',
] as const;

export type TransportErrorCode = (typeof TRANSPORT_ERROR_CODES)[number];

export class TransportError extends CodedError<TransportErrorCode> {}

/** The codes a connection or frame can be refused with, for a peer's fault: what the refusal counters are labelled with. */
export const REFUSAL_CODES: readonly TransportErrorCode[] = [
  'TRANSPORT_AUTH_FAILED',
  'TRANSPORT_CLUSTER_MISMATCH',
  'TRANSPORT_WRONG_NODE',
  'TRANSPORT_HANDSHAKE_TIMEOUT',
  'TRANSPORT_MALFORMED_FRAME',
  'TRANSPORT_FRAME_TOO_LARGE',
  'TRANSPORT_IDLE_TIMEOUT',
  'TRANSPORT_TOO_MANY_CONNECTIONS',
  'TRANSPORT_CONNECTION_REPLACED',
  'TRANSPORT_SNAPSHOT_TOO_LARGE',
  'TRANSPORT_SNAPSHOT_REJECTED',
  'TRANSPORT_SNAPSHOT_STALLED',
  'TRANSPORT_PEER_REPLACED',
  'TRANSPORT_PEER_REMOVED',
];

/** What a code that is none of this transport's is counted as (a code a peer sent, say). */
export const OTHER_CODE = 'OTHER';
const KNOWN_CODES = new Set<string>(TRANSPORT_ERROR_CODES);

/**
 * Counts by code, for the metrics: a code is a metric's label. With `known`, any other code
 * folds into OTHER_CODE, so a peer's words cannot add labels. Bumped only when something is
 * refused or fails, never on the path of what is accepted.
 */
export class CodeCounts {
  private readonly counts = new Map<string, number>();

  constructor(private readonly known?: ReadonlySet<string>) {}

  add(code: string): void {
    const key = this.known === undefined || this.known.has(code) ? code : OTHER_CODE;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  toRecord(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}

/** Refusals by code: only this transport's codes are kept as they are. */
export class RefusalCounts extends CodeCounts {
  constructor() {
    super(KNOWN_CODES);
  }
}

/**
 * What a refusal of this node's dial is counted as when the peer had not proved itself when it
 * sent it: whoever answers at the address may send any code, and counted under it, it would make
 * that code's count say the peer did.
 */
export const UNPROVEN_CODE = 'UNPROVEN';

/** Dials refused by peers: a proven peer's by the code it gave (or OTHER_CODE), any other's as UNPROVEN_CODE. */
export class PeerRefusalCounts {
  private readonly counts = new RefusalCounts();
  private unproven = 0;

  add(remoteCode: string, proven: boolean): void {
    if (proven) this.counts.add(remoteCode);
    else this.unproven++;
  }

  toRecord(): Record<string, number> {
    const r = this.counts.toRecord();
    if (this.unproven > 0) r[UNPROVEN_CODE] = this.unproven;
    return r;
  }
}

/** A frame's length prefix exceeds maxFrameBytes. */
export class FrameTooLargeError extends TransportError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super('TRANSPORT_FRAME_TOO_LARGE', `frame of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** Bytes that are not msgpack, or msgpack that is not a valid frame or Message. */
export class MalformedFrameError extends TransportError {
  constructor(reason: string) {
    super('TRANSPORT_MALFORMED_FRAME', `malformed frame: ${reason}`);
  }
}

/** The most characters of a string a peer sent before it was authenticated that a message quotes. */
const PEER_TEXT_CHARS = 128;

/**
 * A string a peer sent before it was authenticated (its cluster id, address, refusal), as an
 * error message or a log line may quote it: a stranger's bytes must neither forge log lines nor
 * reach a terminal as escape sequences, nor fill a line with a handshake's worth of text.
 */
export function peerText(text: string): string {
  return printable(text, PEER_TEXT_CHARS);
}

/** The handshake names another cluster. */
export class ClusterMismatchError extends TransportError {
  /** The peer's cluster id, as peerText() quotes it. */
  readonly got: string;
  constructor(
    readonly expected: string,
    got: string,
  ) {
    const quoted = peerText(got);
    super('TRANSPORT_CLUSTER_MISMATCH', `peer belongs to cluster '${quoted}', this node to '${expected}'`);
    this.got = quoted;
  }
}

/** The handshake is addressed to another node id, or comes from an impossible one. */
export class WrongNodeError extends TransportError {
  constructor(reason: string) {
    super('TRANSPORT_WRONG_NODE', reason);
  }
}

export class HandshakeTimeoutError extends TransportError {
  constructor(ms: number) {
    super('TRANSPORT_HANDSHAKE_TIMEOUT', `no handshake within ${ms} ms`);
  }
}

/**
 * A dial that did not connect and finish the handshake within `connectTimeoutMs`. Coded as the
 * system's connect timeout, not a transport refusal: a peer that is down, or a network that drops
 * its packets, is no peer's fault, and is not counted as one.
 */
export class DialTimeoutError extends CodedError<'ETIMEDOUT'> {
  constructor(ms: number) {
    super('ETIMEDOUT', `no completed handshake after ${ms} ms`);
  }
}

/**
 * This node closed its connection to a peer because its own snapshot store failed while a
 * snapshot was being sent: the peer held half a stream. Coded as the store's failure, and no
 * TransportError: it is not counted as any peer's refusal.
 */
export class SnapshotSendFailedError extends CodedError {
  constructor(index: number, term: number, cause: unknown) {
    super(codeOf(cause), `closed by this node: its snapshot store failed sending snapshot ${index}/${term}: ${(cause as Error).message}`, { cause });
  }
}

/** The remote side told us why it closed our outbound connection. */
export class PeerRefusedError extends TransportError {
  /** The code and the reason the peer gave, as peerText() quotes them: it refused before it was authenticated. */
  readonly remoteCode: string;
  readonly remoteReason: string;
  constructor(
    readonly peer: number,
    remoteCode: string,
    remoteReason: string,
  ) {
    const code = peerText(remoteCode);
    const reason = peerText(remoteReason);
    super('TRANSPORT_PEER_REFUSED', `peer ${peer} refused the connection: ${code} ${reason}`);
    this.remoteCode = code;
    this.remoteReason = reason;
  }
}

export class BadAddressError extends TransportError {
  constructor(address: string) {
    super('TRANSPORT_BAD_ADDRESS', `bad address '${address}': expected host:port`);
  }
}

export class BadOptionError extends TransportError {
  constructor(message: string) {
    super('TRANSPORT_BAD_OPTION', message);
  }
}

export class TransportClosedError extends TransportError {
  constructor() {
    super('TRANSPORT_CLOSED', 'transport is closed');
  }
}

/** The listener could not bind its address (in use, not this machine's, no permission). */
export class ListenFailedError extends TransportError {
  constructor(address: string, cause: Error) {
    super('TRANSPORT_LISTEN_FAILED', `cannot listen on ${address}: ${cause.message}`);
    this.cause = cause;
  }
}

/** The peer could not prove it holds the cluster secret, or its certificate names another node. */
export class AuthFailedError extends TransportError {
  constructor(reason: string) {
    super('TRANSPORT_AUTH_FAILED', `peer not authenticated: ${reason}`);
  }
}

/** Neither a cluster secret nor TLS was configured, and `insecure: true` was not given. */
export class InsecureTransportError extends TransportError {
  constructor() {
    super(
      'TRANSPORT_INSECURE',
      'the TCP transport needs clusterSecret or tls to authenticate peers; pass insecure: true to run without (anyone who can reach the port can then rewrite the log)',
    );
  }
}

/** Neither a frame nor the progress window's bytes arrived within the idle limit (on the dialing side: no pong or answer). */
export class IdleTimeoutError extends TransportError {
  constructor(ms: number) {
    super('TRANSPORT_IDLE_TIMEOUT', `no complete frame, nor 64 KiB, for ${ms} ms`);
  }
}

export class TooManyConnectionsError extends TransportError {
  /** `from`: the address, when the cap is the one per address; `oldest`: the connection was closed, the oldest, for a newer one. */
  constructor(what: string, limit: number, from?: string, oldest = false) {
    const at = `${what} connections${from === undefined ? '' : ` from ${from}`} at the limit of ${limit}`;
    super('TRANSPORT_TOO_MANY_CONNECTIONS', oldest ? `${at}: the oldest closed for a newer one` : at);
  }
}

/** A peer announced a snapshot larger than maxSnapshotBytes: refused before any byte of it is stored. */
export class SnapshotTooLargeError extends TransportError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      'TRANSPORT_SNAPSHOT_TOO_LARGE',
      `snapshot of ${size} bytes exceeds this node's maxSnapshotBytes ${limit}: it takes the snapshot once it runs with maxSnapshotBytes of at least ${size}, which every node needs`,
    );
  }
}

/** A received snapshot failed its check (size, format, checksum) or could not be stored: deleted, never delivered. */
export class SnapshotRejectedError extends TransportError {
  constructor(reason: string, options?: CodedErrorOptions) {
    super('TRANSPORT_SNAPSHOT_REJECTED', `snapshot refused: ${reason}`);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * The stream this node's snapshot store opened for a snapshot to send held fewer or more bytes
 * than the size it announced with it: the store broke its contract (the snapshot store given to
 * the log, or the `snapshots` given to the transport), not the peer nor the application's state
 * machine, whose snapshot the store had already written.
 */
export class SnapshotSourceMismatchError extends TransportError {
  constructor(index: number, term: number, announced: number, held: string) {
    super('TRANSPORT_SNAPSHOT_SOURCE_MISMATCH', `the snapshot store's stream of snapshot ${index}/${term} announced ${announced} bytes and ${held}`);
  }
}

/**
 * An authenticated connection closed for a newer one: from the same peer id, or, from ids the
 * transport was not given, past their cap. A snapshot stream under way on it is dropped, with its spool.
 */
export class ConnectionReplacedError extends TransportError {
  constructor(reason: string) {
    super('TRANSPORT_CONNECTION_REPLACED', reason);
  }
}

/**
 * A snapshot stream did not bring its next 64 KiB (or its rest) within the idle limit, while
 * the connection stayed alive (pings, heartbeats): the stream is dropped, with its spool.
 */
export class SnapshotStalledError extends TransportError {
  constructor(streamId: number, bytes: number, ms: number) {
    super('TRANSPORT_SNAPSHOT_STALLED', `snapshot stream ${streamId} sent less than ${bytes} bytes (or its rest) in ${ms} ms`);
  }
}

/**
 * A peer id this node met before came with another instance id: its data directory was wiped or
 * replaced, so it may no longer hold what it acknowledged, and as a voter it could elect a leader
 * without those entries. Refused until it is removed from the cluster and added back.
 */
export class PeerReplacedError extends TransportError {
  constructor(readonly peer: number) {
    super(
      'TRANSPORT_PEER_REPLACED',
      `node ${peer} came back as a new instance (its data directory was wiped or replaced, and it may have lost entries it acknowledged): ` +
        `this node will not talk to it; remove it (\`raftlog member remove\`) and add it back (\`member add\`, \`serve --join\`)`,
    );
  }
}

/**
 * A peer this node saw removed from the configuration sent it a message. The peer missed the
 * commit of its removal (no leader addresses a removed node): told so, its log refuses its
 * callers as removed.
 */
export class PeerRemovedError extends TransportError {
  constructor(readonly peer: number) {
    super('TRANSPORT_PEER_REMOVED', `node ${peer} was removed from the cluster: this node applied its removal`);
  }
}

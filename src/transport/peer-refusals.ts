// What a peer's coded refusal of this node's dial means to this node, one row per code that means
// more than "refused": where and how often it is logged, what is held back until the peer can take
// it, and which of the driver's handlers is told. A row applies only to a refusal from a peer that
// proved itself: before that, whoever answers at the address may send any code. A refusal without
// a row is logged at each dial, with the peer's reason.
import type { PeerRefusedError } from './errors.js';

/** A snapshot by what identifies it, and its size as streamed. */
export interface StreamedSnapshot {
  index: number;
  term: number;
  size: number;
}

/** What a refusal's line is made of. */
export interface RefusalFacts {
  self: number;
  peer: number;
  /** The peer's address, as dialed. */
  address: string;
  maxFrameBytes: number;
  error: PeerRefusedError;
  /** The snapshot whose stream began on the connection refused: always there for a row with `snapshot`. */
  snapshot: StreamedSnapshot | undefined;
}

export interface RefusalLine {
  fields: Record<string, unknown>;
  message: string;
}

export interface PeerRefusal {
  /**
   * Where the line goes: the logger at warn or debug, or `replaced`, the log of peers replaced
   * (at error level, rationed).
   */
  log: 'warn' | 'debug' | 'replaced';
  /**
   * How often the line is logged: at each refusal (unset); once per snapshot refused, however
   * often it is offered again; or once per episode, until a connection to the peer ends for
   * another reason (as at its restart), since the same cause is met at every redial until then.
   */
  once?: 'snapshot' | 'episode';
  /**
   * The refusal is of the snapshot streamed on the connection: without one it is a refusal like
   * any other; with one, that snapshot is not streamed to the peer again until a connection to it
   * ends for another reason (the peer cannot take it before it restarts with another limit).
   */
  snapshot?: true;
  /** The driver's handler told at once. */
  tell?: 'removedBy';
  line(f: RefusalFacts): RefusalLine;
}

/** Keyed by the code the peer sent: a Map, since that code is the peer's to choose (`constructor`, say). */
export const PEER_REFUSALS: ReadonlyMap<string, PeerRefusal> = new Map<string, PeerRefusal>([
  [
    'TRANSPORT_FRAME_TOO_LARGE',
    {
      log: 'warn',
      // Raft sends the same entries again at each reconnection.
      once: 'episode',
      line: ({ peer, maxFrameBytes, error: e }) => ({
        fields: { code: e.code, remoteCode: e.remoteCode, peer, maxFrameBytes },
        message:
          `transport: peer ${peer} refuses a frame of this node's as over its limit (it said: ${e.remoteReason}); ` +
          `this node's limit is ${maxFrameBytes}: the peer's is smaller (a log's is its maxRecordBytes + 2 MiB), and it cannot ` +
          'take the entries this node sends until it runs with the same maxRecordBytes as every other node; logged again only ' +
          'once a connection to it ends otherwise',
      }),
    },
  ],
  [
    'TRANSPORT_SNAPSHOT_TOO_LARGE',
    {
      log: 'warn',
      // The leader offers the snapshot again at every heartbeat.
      once: 'snapshot',
      snapshot: true,
      line: ({ peer, error: e, snapshot }) => {
        const { index, term, size } = snapshot!;
        return {
          fields: { code: 'TRANSPORT_PEER_REFUSED', remoteCode: 'TRANSPORT_SNAPSHOT_TOO_LARGE', peer, index, term, bytes: size },
          message:
            `transport: peer ${peer} refuses snapshot ${index}/${term} of ${size} bytes as over its maxSnapshotBytes ` +
            `(it said: ${e.remoteReason}); it cannot catch up until it runs with maxSnapshotBytes of at least ${size} ` +
            '(the same on every node); the snapshot is not sent to it again until a connection to it ends otherwise, as at its restart',
        };
      },
    },
  ],
  [
    'TRANSPORT_PEER_REMOVED',
    {
      // Refused at each redial (each election timeout, as it campaigns) until its operator stops
      // it: the driver, told once, says it once.
      log: 'debug',
      tell: 'removedBy',
      line: ({ self, peer, address, error: e }) => ({
        fields: { code: e.code, remoteCode: e.remoteCode, peer },
        message: `transport: peer ${peer} at ${address} refuses this node (${self}) as removed from the cluster: stop this node, or add it back (\`raftlog member add\`)`,
      }),
    },
  ],
  [
    'TRANSPORT_PEER_REPLACED',
    {
      log: 'replaced',
      line: ({ self, peer, address, error: e }) => ({
        fields: { code: e.code, remoteCode: e.remoteCode, peer },
        message:
          `transport: peer ${peer} at ${address} refuses this node as a new instance of node ${self} (this data directory is not the one it knew): ` +
          'remove this node (`raftlog member remove`) and add it back (`member add`, `serve --join`)',
      }),
    },
  ],
]);

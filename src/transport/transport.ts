// The driver's view of the network: fire-and-forget delivery of raft messages.
// Raft tolerates loss, duplication and reordering between terms, so a transport
// may drop; it must only say so (onUnreachable) so the leader falls back to probing.
import type { Logger } from '../logger.js';
import type { Message } from '../raft/types.js';
import type { SnapshotStreams } from './snapshot-streams.js';

export interface TransportHandlers {
  /**
   * A raft message for this node. A MsgSnap arrives once its whole stream is stored and
   * checked; its `snapshot.data` is what the transport's SnapshotStreams made of it.
   */
  onMessage(m: Message): void;
  /**
   * Messages to this peer were dropped (not connected, queue overflow, connection lost). Called at most once
   * per peer per event-loop turn, never re-entrantly from send(), never for a peer since removed with removePeer()
   * (TcpTransport: one of the latest 1024 removed).
   */
  onUnreachable?(peer: number): void;
  /**
   * A MsgSnap was fully written to the peer's socket (true: handed to the kernel, not acknowledged by the peer)
   * or could not be (false). Never re-entrant from send(), never for a peer since removed.
   */
  onSnapshotStatus?(peer: number, ok: boolean): void;
  /**
   * A peer that applied this node's removal (one it was told with removePeer()) refused what this
   * node sent it (its refuseRemoved()): no leader addresses a removed node, so a node that missed the commit of its
   * removal learns it only so. Only from a peer that proved itself (TcpTransport: past the
   * handshake). Not durable: a peer that has not yet applied a change adding this node back says
   * the same, so it holds only until a leader is heard again.
   */
  onRemoved?(peer: number): void;
  /**
   * The driver will send more before this turn of the event loop is over (say, the proposal it
   * makes at the end of every turn), and then calls flush(). The messages of a turn go out once
   * it is over; while this says so, they wait for that flush (a few turns at most), so that
   * what goes to a peer moments apart shares one write and one wake-up of the peer.
   */
  sendingLater?(): boolean;
  /**
   * Where the snapshots this node sends are read and those it receives are spooled, for a
   * transport made without its own (MemoryTransport; TcpTransport takes them as an option).
   * The replicated log gives its snapshot store's: a file store's `snapshot.data` names a file
   * only its own node holds, so what travels must be the bytes behind it.
   */
  snapshots?: SnapshotStreams;
  /**
   * Where a transport made without its own logger (MemoryTransport; TcpTransport takes one as an
   * option) reports what went wrong: the replicated log gives its own.
   */
  logger?: Logger;
}

export interface Transport {
  start(handlers: TransportHandlers): Promise<void>;
  /** Never blocks, never throws for an unreachable or unknown peer. */
  send(messages: Message[]): void;
  /**
   * Writes what send() queued now, instead of once the turn is over. The driver calls it
   * before it may hold its event loop (a short write synced inline), so that a leader's
   * entries travel to its followers while its own write syncs. Optional: a transport that
   * delivers on its own schedule need not have it.
   */
  flush?(): void;
  /** address: 'host:port' ('[::1]:port' for IPv6). Replaces the address of a known peer. */
  addPeer(id: number, address: string): void;
  removePeer(id: number): void;
  /**
   * The driver refused a message from `peer`, which it removed (removePeer) and whose messages its
   * core refuses: the peer is told so (its TransportHandlers.onRemoved), on the connection it
   * dialed. Nothing for a peer not removed. Optional: a transport without it leaves the peer
   * to learn its removal from a leader.
   */
  refuseRemoved?(peer: number): void;
  /**
   * The peers this node holds an authenticated connection with, either way. Optional: a
   * transport that checks no peer's instance need not have it.
   */
  connectedPeers?(): ReadonlySet<number>;
  close(): Promise<void>;
}

/** Where transports report what they did to a connection and why. */
export type { Logger as TransportLogger } from '../logger.js';

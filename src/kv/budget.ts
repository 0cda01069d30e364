// What all clients together may hold: bytes of commands read and not started (past
// maxBufferedBytes a client is evicted), reply bytes unsent (past maxWriteBufferedBytes a
// connection is held back), and reads waiting for a barrier (past maxPendingReads one is
// refused). Each connection's own marks bound only its share, and there may be many.
import type * as net from 'node:net';
import { silentLogger, type Logger } from '../logger.js';
import { RefusalLog, type RefusalLogClock } from '../refusal-log.js';
import { clientAddress } from '../transport/address.js';

/** The codes a connection is refused with, as it connects or at an AUTH (RespServerStats.refusedBy). */
export const RESP_REFUSAL_CODES = ['KV_PROTECTED_MODE', 'KV_MAX_CLIENTS', 'KV_CROSS_PROTOCOL', 'KV_AUTH_THROTTLED', 'KV_TOO_MANY_CONNECTIONS'] as const;

export type RespRefusalCode = (typeof RESP_REFUSAL_CODES)[number];

/** What the memory budget needs of each client: the bytes of its commands read and not started, and whether it authenticated. */
export interface Held {
  bytes: number;
  authed: boolean;
  /** Bytes of its replies finished and waiting for those before them, not yet written: copies (see answer()). */
  queued: number;
}

export interface BudgetOptions {
  maxBufferedBytes: number;
  maxWriteBufferedBytes: number;
  maxPendingReads: number;
  /** Where evictions are told. */
  refusals: RefusalLog;
  logger: Logger | undefined;
  clock: RefusalLogClock | undefined;
}

export class Budget {
  readonly clients = new Map<net.Socket, Held>();
  readonly counters = {
    refused: 0,
    readsRefused: 0,
    idleClosed: 0,
    evicted: 0,
    dropped: 0,
    authFailures: 0,
    pauses: 0,
    paused: 0,
    maxInflight: 0,
    maxWriteBuffered: 0,
  };
  /** counters.refused by code, every code there from the start. */
  readonly refusedBy = Object.fromEntries(RESP_REFUSAL_CODES.map((c) => [c, 0])) as Record<RespRefusalCode, number>;
  buffered = 0;
  /** Reply bytes unsent over all connections, as each last saw its own (see maxWriteBufferedBytes). */
  writeBuffered = 0;
  /** Reads waiting for a barrier, over all connections (see maxPendingReads). */
  pendingReads = 0;
  readonly maxBufferedBytes: number;
  readonly maxWriteBufferedBytes: number;
  private readonly maxPendingReads: number;
  private readonly refusals: RefusalLog;
  // A client sends reads faster than it opens connections: its own line for them.
  private readonly readRefusals: RefusalLog;

  constructor(o: BudgetOptions) {
    this.maxBufferedBytes = o.maxBufferedBytes;
    this.maxWriteBufferedBytes = o.maxWriteBufferedBytes;
    this.maxPendingReads = o.maxPendingReads;
    this.refusals = o.refusals;
    this.readRefusals = new RefusalLog(o.logger ?? silentLogger, 'RESP server: refused reads', o.clock);
  }
  /** A connection refused, as it connected or at an AUTH. */
  refused(code: RespRefusalCode): void {
    this.counters.refused++;
    this.refusedBy[code]++;
  }

  /** The reply refusing a read when maxPendingReads wait already, or null after counting it in. */
  admitRead(socket: net.Socket): Error | null {
    if (this.pendingReads < this.maxPendingReads) {
      this.pendingReads++;
      return null;
    }
    this.counters.readsRefused++;
    const why = `${this.maxPendingReads} reads wait for a read barrier, the most the server holds (maxPendingReads): retry later`;
    this.readRefusals.warn(
      { code: 'KV_TOO_MANY_READS', remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
      `RESP server refused a read from ${clientAddress(socket)}: ${why}`,
    );
    return new Error(`ERR KV_TOO_MANY_READS ${why}`);
  }

  /**
   * Closes clients until all hold no more than maxBufferedBytes together: those that have not
   * authenticated first, then the one holding the most. A scan of every client, but only when
   * the total passes the budget. A client already destroyed, its close event still to come, is
   * not one: it runs none of its commands, so what it holds is given back (its close then finds
   * nothing to give), and closed again it would free nothing; each scan then closes a live
   * client unless that was enough.
   */
  evict(): void {
    while (this.buffered > this.maxBufferedBytes) {
      let victim: net.Socket | undefined;
      let most: Held | undefined;
      for (const [s, h] of this.clients) {
        if (h.bytes === 0) continue;
        if (s.destroyed) {
          this.buffered -= h.bytes;
          h.bytes = 0;
          continue;
        }
        if (most === undefined || (most.authed && !h.authed) || (most.authed === h.authed && h.bytes > most.bytes)) {
          victim = s;
          most = h;
        }
      }
      // What destroyed clients gave back may be enough; and the total is the sum of the live clients' bytes.
      if (this.buffered <= this.maxBufferedBytes || victim === undefined || most === undefined) return;
      this.counters.evicted++;
      this.refusals.warn(
        { code: 'KV_MAX_BUFFERED', remoteAddress: victim.remoteAddress, remotePort: victim.remotePort },
        `RESP server closed the connection from ${clientAddress(victim)}: clients held ${this.buffered} bytes of commands not started, more than maxBufferedBytes (${this.maxBufferedBytes}), and it held ${most.bytes}${most.authed ? '' : ' before authenticating'}`,
      );
      this.buffered -= most.bytes;
      most.bytes = 0;
      victim.destroy();
    }
  }

  /** Reply bytes unsent now, over all connections: what each socket holds and what waits in its slots. */
  unsentNow(): number {
    let writeBuffered = 0;
    for (const [s, h] of this.clients) writeBuffered += s.writableLength + h.queued;
    return writeBuffered;
  }

  flush(): void {
    this.readRefusals.flush();
  }
}

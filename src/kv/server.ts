// The key-value example served over RESP2, so redis-cli and redis-benchmark work
// against a raftlog node. Writes go through the log (a follower forwards them to
// the leader); reads wait for a barrier first, so they are linearizable.
//
// Every connection is bounded: a client that sends faster than the log answers,
// or that stops reading its replies, is paused (its socket is not read) until
// its replies drain; the number of clients, their idle time, the size of a
// command, and the bytes of commands read and not started and of replies unsent
// over all clients are capped, and a node without a password serves only
// loopback. An HTTP request (a web page's, sent to this port) closes its connection.
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { getDefaultHighWaterMark } from 'node:stream';
import { authThrottleProblem, type AuthThrottleOptions } from '../auth-throttle.js';
import { InvalidArgumentError } from '../log/errors.js';
import { guardedLogger, silentLogger, type Logger } from '../logger.js';
import { RefusalLog, logServerErrors, type RefusalLogClock } from '../refusal-log.js';
import { clientAddress, formatAddress, parseAddress } from '../transport/address.js';
import { Access, PROTECTED_MODE_ERROR, addressKey } from './access.js';
import { Budget, type RespRefusalCode } from './budget.js';
import type { KvLog } from './commands.js';
import { configParameters } from './config.js';
import { serveConnection } from './connection.js';
import type { KvStateMachine } from './kv-state-machine.js';
import { DEFAULT_RESP_LIMITS, encode } from './resp.js';
import { MAX_TIMER_MS } from '../timer-limit.js';

export { RESP_REFUSAL_CODES, type RespRefusalCode } from './budget.js';

export { isLoopbackAddress } from './access.js';
export type { KvLog } from './commands.js';

export interface RespServerOptions {
  log: KvLog;
  kv: KvStateMachine;
  /** 'host:port' to listen on; port 0 picks one. */
  address: string;
  /**
   * Clients served at once; one more is told `-ERR max number of clients reached` and closed.
   * Default 10000, lowered to leave 256 descriptors of the process's open-file limit to the log.
   */
  maxClients?: number;
  /**
   * A connection with no traffic for this long is closed, as is one not read for its unsent
   * replies (highWaterMark) whose client takes none of them for this long, whatever it sends
   * (closed within twice this), and one whose last reply (QUIT, a protocol error) is written
   * and whose client neither takes it nor closes; 0 never closes. Default 300000 (5 min).
   */
  idleTimeoutMs?: number;
  /**
   * With requirepass, a connection that has not authenticated this long after it was accepted
   * is closed, however much it sends: a stranger holds a client slot for no longer. Default 10000.
   */
  authTimeoutMs?: number;
  /**
   * With requirepass, connections from one address (an IPv6 address's /64) that have not
   * authenticated yet; one more is told `-ERR TOO_MANY_CONNECTIONS ...` and closed, so that one
   * stranger cannot take every client slot (each for authTimeoutMs, then again). Default a
   * quarter of maxClients (at least 1).
   */
  maxUnauthenticatedPerAddress?: number;
  /** Arguments in one command, the name included. Default 1024. */
  maxArgs?: number;
  /**
   * The largest command payload: one argument, and all of a command's arguments together
   * (plus 128 bytes each and 192 for the command, what their Buffers and array cost the heap).
   * Set it below the log's record limit, so any accepted write replicates. Default 4 MiB - 64 KiB.
   */
  maxBulkBytes?: number;
  /**
   * Bytes of commands that all clients together may hold read and not started (unfinished, or
   * whole and waiting their turn, at most 64 parsed ahead, the rest kept as the bytes that came),
   * each argument counted 128 bytes more than its length and each command 192 more, what their
   * Buffers and arrays cost the heap.
   * Past it, the client holding the most is closed, those that have not authenticated first:
   * a stranger's bytes never push out a client's that has. Default 256 MiB, or 2 x maxBulkBytes
   * when that is larger; no less than maxBulkBytes.
   */
  maxBufferedBytes?: number;
  /**
   * Reply bytes that all clients together may hold unsent (written and not yet taken by the
   * kernel, or finished and waiting for the replies before them, as an ECHO's or INFO's). Past
   * it, a connection with replies unsent is not read and gets no more written until they are
   * taken, then one reply at a time while the total stays past it: the total stays under this
   * plus a reply per client. Each client's own mark (highWaterMark) bounds only its share,
   * and maxClients clients could each hold theirs. Default 256 MiB.
   */
  maxWriteBufferedBytes?: number;
  /**
   * When set, clients must `AUTH` with it before any other command. A connection is closed at
   * its third wrong password, so guesses cannot be pipelined by the thousand on one.
   */
  requirepass?: string;
  /**
   * With requirepass: once AUTHs from one address (an IPv6 address's /64) have failed `failures`
   * times within `windowMs` (one to two windows), on any number of connections, its connections
   * are refused as they are accepted and its AUTHs answered `-ERR TOO_MANY_AUTH_FAILURES ...`
   * unchecked (the connection then closes), until those failures are that old. Default
   * { failures: 10, windowMs: 60000 }; at most 10,000 addresses are remembered.
   */
  authThrottle?: AuthThrottleOptions;
  /** With no requirepass, refuse clients from non-loopback addresses. Default true. */
  protectedMode?: boolean;
  /**
   * A connection stops being read while it has this many commands awaiting replies, or
   * this many reply bytes not yet taken by the client, or its reads waiting for a barrier
   * hold this many bytes of arguments (each counted 128 bytes more than its length, and each
   * command 192, what their Buffers and arrays cost); it is read again below half of each. Default { commands: 1024, bytes: 1 MiB }.
   * Replies are written while fewer than `bytes` are unsent (and maxWriteBufferedBytes allows); the rest wait, a GET's as the
   * value the map keeps, not a copy, and a command whose reply is a copy (ECHO, INFO) does not start while the unsent
   * bytes and those waiting reach `bytes`. Before AUTH, the mark of reply bytes is 16 KiB (or `bytes`, if lower).
   */
  highWaterMark?: { commands?: number; bytes?: number };
  /**
   * Reads waiting for a barrier (GET, EXISTS, DBSIZE) over all connections; one more is answered
   * `-ERR KV_TOO_MANY_READS ...` at once, without waiting. Each connection's own mark
   * (highWaterMark) bounds only its share, and maxClients connections could each queue theirs.
   * Default 65536.
   */
  maxPendingReads?: number;
  /**
   * The sync the log was opened with (ReplicatedLogOptions.sync), which CONFIG GET appendfsync
   * tells clients: 'always' or, for 'none', 'no'. Default 'always'.
   */
  sync?: 'always' | 'none';
  /** Whether a remote address counts as loopback for protected mode (replaceable for tests). */
  isLoopback?: (remoteAddress: string | undefined) => boolean;
  /**
   * Hears of refused connections (too many clients, too many not authenticated from one
   * address, protected mode, a cross-protocol (HTTP) request, an address whose AUTHs failed too
   * often) and of connections closed at their third wrong password or evicted past
   * maxBufferedBytes: at most 10 every 10 s, then one line with the count of the rest; of reads
   * refused past maxPendingReads apart, at the same rate. Each line carries the log's `node`.
   * Default: silent.
   */
  logger?: Logger;
  /** The timer of that rate limit, and of authThrottle's windows. Default: real timers. */
  refusalLogClock?: RefusalLogClock;
}

/** Counters for operators and tests. */
export interface RespServerStats {
  clients: number;
  maxClients: number;
  /**
   * Connections refused: too many clients, too many from one address before AUTH, protected
   * mode, a cross-protocol (HTTP) request, or an address with too many failed AUTHs
   * (authThrottle), as it connects or at its next AUTH.
   */
  refused: number;
  /** `refused` by the code of the line each left in the log (docs/errors.md), every code there from the start. */
  refusedBy: Record<RespRefusalCode, number>;
  /** Reads answered -ERR KV_TOO_MANY_READS: maxPendingReads were already waiting for a barrier. */
  readsRefused: number;
  /** Connections closed for idleness, or for not authenticating in time. */
  idleClosed: number;
  /** Connections closed because clients together held more than maxBufferedBytes. */
  evicted: number;
  /**
   * Commands read whole that never started: their connection was closed first (evicted, timed
   * out, closed by the client) or had ended (after QUIT). None of them was proposed to the log.
   */
  dropped: number;
  /** AUTHs with a wrong password (or user); a connection is closed at its third. Refused AUTHs are not checked, and not counted. */
  authFailures: number;
  /** Bytes of commands read and not started held now (see maxBufferedBytes), over all connections. */
  buffered: number;
  /** Times a connection stopped being read for backpressure. */
  pauses: number;
  /** Connections not being read right now. */
  paused: number;
  /** The most commands one connection ever had awaiting replies. */
  maxInflight: number;
  /** The most reply bytes one connection ever had unsent, measured before it was paused. */
  maxWriteBuffered: number;
  /** Reply bytes now unsent, written or waiting for those before them, over all connections (see maxWriteBufferedBytes). */
  writeBuffered: number;
}

export interface RespServer {
  /** 'host:port' actually bound (port 0 picks one). */
  address: string;
  stats(): RespServerStats;
  /** Stops listening, closes every client connection; settles when all are gone. */
  close(): Promise<void>;
}

/** 10000, or fewer when the open-file limit would run out first (each client holds a descriptor). */
function defaultMaxClients(): number {
  let limits: string;
  try {
    limits = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return 10_000; // not Linux: the limit is not readable, so the operator's ulimit decides
  }
  const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
  return soft === undefined ? 10_000 : Math.max(1, Math.min(10_000, Number(soft) - 256));
}

export async function serveResp(o: RespServerOptions): Promise<RespServer> {
  if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('serveResp(options): options must be an object');
  // Each reached Node as a raw TypeError: the address in parsing it, a password in hashing it.
  if (typeof o.address !== 'string') throw new InvalidArgumentError(`serveResp: address must be a 'host:port' string`);
  if (o.requirepass !== undefined && typeof o.requirepass !== 'string') throw new InvalidArgumentError('serveResp: requirepass must be a string');
  const { log, kv } = o;
  // Its lines are written from socket and timer callbacks: a throw there would end the process.
  // Each line names the node, as the log's own do.
  const node = log.status().id;
  const logger = guardedLogger(o.logger ?? silentLogger).child(node !== undefined ? { node } : {});
  const maxClients = o.maxClients ?? defaultMaxClients();
  const idleTimeoutMs = o.idleTimeoutMs ?? 300_000;
  const authTimeoutMs = o.authTimeoutMs ?? 10_000;
  const maxBulkBytes = o.maxBulkBytes ?? DEFAULT_RESP_LIMITS.maxBulkBytes;
  const maxBufferedBytes = o.maxBufferedBytes ?? Math.max(256 * 1024 * 1024, 2 * maxBulkBytes);
  const maxWriteBufferedBytes = o.maxWriteBufferedBytes ?? 256 * 1024 * 1024;
  const limits = {
    maxArgs: o.maxArgs ?? DEFAULT_RESP_LIMITS.maxArgs,
    maxBulkBytes,
    maxCommandBytes: maxBulkBytes,
    maxInlineBytes: DEFAULT_RESP_LIMITS.maxInlineBytes,
  };
  const hwCommands = o.highWaterMark?.commands ?? 1024;
  const hwBytes = o.highWaterMark?.bytes ?? 1024 * 1024;
  // The sockets' own mark, after which a write is followed by 'drain' (see createServer below).
  const socketHwBytes = Math.min(hwBytes, getDefaultHighWaterMark(false));
  // A refusal costs the client one connection, so a line for each would let anyone flood the log.
  const refusals = new RefusalLog(logger, 'RESP server: refused connections', o.refusalLogClock);
  const maxStrangersPerAddress = o.maxUnauthenticatedPerAddress ?? Math.max(1, Math.floor(maxClients / 4));
  const maxPendingReads = o.maxPendingReads ?? 65_536;
  const sync = o.sync ?? 'always';
  if (sync !== 'always' && sync !== 'none') throw new InvalidArgumentError(`serveResp: sync must be 'always' or 'none'`);
  for (const [k, v] of Object.entries({
    maxClients,
    maxUnauthenticatedPerAddress: maxStrangersPerAddress,
    maxArgs: limits.maxArgs,
    maxBulkBytes,
    maxBufferedBytes,
    maxWriteBufferedBytes,
    hwCommands,
    hwBytes,
    authTimeoutMs,
    maxPendingReads,
  })) {
    if (!Number.isSafeInteger(v) || v < 1) throw new InvalidArgumentError(`serveResp: ${k} must be a positive integer`);
  }
  if (maxBufferedBytes < maxBulkBytes)
    throw new InvalidArgumentError('serveResp: maxBufferedBytes must be at least maxBulkBytes, or no client could send the largest value');
  if (!Number.isSafeInteger(idleTimeoutMs) || idleTimeoutMs < 0) throw new InvalidArgumentError('serveResp: idleTimeoutMs must be 0 or a positive integer');
  // Node fires a longer timer after 1 ms: every connection would be closed as soon as it opened.
  for (const [k, v] of Object.entries({ idleTimeoutMs, authTimeoutMs }))
    if (v > MAX_TIMER_MS) throw new InvalidArgumentError(`serveResp: ${k} must be at most ${MAX_TIMER_MS} ms`);
  const throttleProblem = authThrottleProblem(o.authThrottle ?? {});
  if (throttleProblem !== null) throw new InvalidArgumentError(`serveResp: ${throttleProblem}`);
  const access = new Access({
    requirepass: o.requirepass,
    protectedMode: o.protectedMode,
    isLoopback: o.isLoopback,
    authThrottle: o.authThrottle,
    clock: o.refusalLogClock,
    maxStrangersPerAddress,
  });
  const budget = new Budget({ maxBufferedBytes, maxWriteBufferedBytes, maxPendingReads, refusals, logger, clock: o.refusalLogClock });
  const { clients, counters } = budget;
  const refusing = new Set<net.Socket>();
  const context = {
    log,
    kv,
    parameters: configParameters(sync),
    limits,
    hwCommands,
    hwBytes,
    socketHwBytes,
    idleTimeoutMs,
    authTimeoutMs,
    access,
    budget,
    refusals,
  };

  /** `why` goes to the client, `code` and `reason` to the log. */
  const refuse = (socket: net.Socket, why: Error, code: RespRefusalCode, reason: string): void => {
    budget.refused(code);
    refusals.warn(
      { code, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
      `RESP server refused a connection from ${clientAddress(socket)}: ${reason}`,
    );
    refusing.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => refusing.delete(socket));
    socket.end(encode(why), () => socket.destroy());
  };

  // Waiting commands start again at 'drain', which follows only a write that left the socket's
  // buffer at its own high-water mark (16 KiB by default): with a lower byte mark, a client that
  // read nothing was paused with its buffer between the two and never served again.
  // Half-open: a client that shut down its sending side gets the replies of what it started (see Connection).
  const server = net.createServer({ highWaterMark: socketHwBytes, allowHalfOpen: true }, (socket) => {
    if (access.refusesInProtectedMode(socket))
      return refuse(socket, PROTECTED_MODE_ERROR, 'KV_PROTECTED_MODE', 'protected mode (no password is set, and only loopback clients are served)');
    if (clients.size >= maxClients)
      return refuse(socket, new Error('ERR max number of clients reached'), 'KV_MAX_CLIENTS', `${maxClients} clients, the limit, are connected`);
    if (access.password === null) return serveConnection(socket, () => undefined, context);
    const refused = access.throttled(socket);
    if (refused !== null) return refuse(socket, refused, 'KV_AUTH_THROTTLED', refused.message.replace(/^ERR /, ''));
    const from = addressKey(socket);
    const stranger = access.admitStranger(from);
    if (stranger === null) {
      const why = `${maxStrangersPerAddress} connections from ${from} have not authenticated, the most one address may hold (maxUnauthenticatedPerAddress)`;
      return refuse(socket, new Error(`ERR TOO_MANY_CONNECTIONS ${why}`), 'KV_TOO_MANY_CONNECTIONS', why);
    }
    serveConnection(socket, stranger, context);
  });

  const { host, port } = parseAddress(o.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const serverErrors = logServerErrors(server, logger, 'RESP server', o.refusalLogClock);
  const bound = server.address() as net.AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    address: formatAddress(host, bound.port),
    stats: () => ({
      clients: clients.size,
      maxClients,
      ...counters,
      refusedBy: { ...budget.refusedBy },
      buffered: budget.buffered,
      writeBuffered: budget.unsentNow(),
    }),
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        // The server's close comes before its sockets' 'close', where each connection gives back
        // what it holds and leaves the count: settling at the server's, stats() still showed them.
        const sockets = [...clients.keys(), ...refusing];
        let left = sockets.length + 1;
        const gone = (): void => {
          if (--left === 0) resolve();
        };
        server.close(gone);
        for (const s of sockets) {
          s.once('close', gone);
          s.destroy();
        }
      }).then(() => {
        access.clear();
        refusals.flush();
        budget.flush();
        serverErrors.flush();
      })),
  };
}

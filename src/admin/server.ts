// The admin endpoint as a server of its own, with the limits every port has: a cap on
// connections, bounded headers and bodies, and timeouts, so that a slow or hostile
// client cannot hold it. Bound to loopback unless a token protects it.
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { InvalidArgumentError } from '../log/errors.js';
import type { ReplicatedLog } from '../log/replicated-log.js';
import { guardedLogger, silentLogger, type Logger } from '../logger.js';
import { RefusalLog, logServerErrors, type RefusalLogClock } from '../refusal-log.js';
import type { StateMachine } from '../log/state-machine.js';
import { clientAddress, isHostPort, networkKey, parseAddress } from '../transport/address.js';
import type { AuthThrottleOptions } from '../auth-throttle.js';
import { adminHandler, sendJson, type AdminRefusalCode } from './handler.js';
import { respMetrics, type RespMetricsSource } from './prometheus.js';

export interface AdminServerOptions {
  log: ReplicatedLog<unknown>;
  /** 'host:port'; port 0 picks a free one. */
  address: string;
  /** Required unless the host is loopback: anyone who reaches the port could otherwise remove members. */
  token?: string;
  stateMachine?: StateMachine<unknown>;
  /** Default 64. */
  maxConnections?: number;
  /**
   * Connections from one address (an IPv6 address's /64) at once; the one past it is answered
   * 503 TOO_MANY_CONNECTIONS and closed, so a stranger cannot take every connection. Default 16:
   * a browser opens at most 6 to a host, the CLI and Prometheus one.
   */
  maxConnectionsPerAddress?: number;
  /** Default 64 KiB. */
  maxBodyBytes?: number;
  /**
   * A request must arrive whole within this (ms) of its first byte, and its headers within this or
   * 10 s, the less; more than 0 and at most a day. Default 10 s. A client that takes none of an
   * answer for 3 times this is dropped (counted and logged as ANSWERS_UNREAD). Between requests a
   * connection is kept 5 s (keep-alive), and a request begun by then has its headers' time: not this.
   */
  requestTimeoutMs?: number;
  /** Hears of refused connections and requests, at a bounded rate (see AdminHandlerOptions), each line with the log's `node`. Default: silent. */
  logger?: Logger;
  /** The timer of that rate limit, and of authThrottle's windows. Default: real timers. */
  refusalLogClock?: RefusalLogClock;
  /** Backups sent at once (see AdminHandlerOptions). Default 1. */
  maxBackups?: number;
  /** Failed tokens tolerated from one address (see AdminHandlerOptions). Default { failures: 10, windowMs: 60000 }. */
  authThrottle?: AuthThrottleOptions;
  /** The node's RESP server (raftlog/kv's serveResp()), whose stats() /metrics shows as raftlog_resp_*. */
  resp?: RespMetricsSource;
}

export interface AdminServer {
  /** The bound 'host:port'. */
  address: string;
  close(): Promise<void>;
}

/** Requests a connection may have sent and not yet been answered; one more is refused, and the connection closed. */
const MAX_UNANSWERED = 8;

/**
 * Requests a connection may have sent and not been answered, those after its refusal included,
 * before it is closed at once: those are dropped unanswered, but each holds its request and
 * response objects until the refusal is taken.
 */
const MAX_UNANSWERED_REFUSED = 8 * MAX_UNANSWERED;

/**
 * Connections from one address being refused at once; past it, one is closed without an answer.
 * A refused connection is kept open a moment, its requests read and dropped: closed with them
 * unread, it is reset, and its client may lose the answer to the reset.
 */
const REFUSING_PER_ADDRESS = 4;
const REFUSAL_LINGER_MS = 1_000;

/** How long a connection may wait for its next request. */
const KEEP_ALIVE_MS = 5_000;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/** An answer written to the socket itself, in the body the handler's refusals have; the connection closes after it. */
function rawRefusal(status: number, code: string, message: string, headers = ''): string {
  const body = JSON.stringify({ code, message });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${headers}connection: close\r\n\r\n${body}`;
}

export async function serveAdmin(o: AdminServerOptions): Promise<AdminServer> {
  if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('serveAdmin(options): options must be an object');
  if (!isHostPort(o.address)) throw new InvalidArgumentError(`admin address must be 'host:port', with a port up to 65535, got '${o.address}'`);
  // Node takes 0 as no limit: requestTimeoutMs 0 left a silent connection open for ever, and
  // maxConnections 0 took any number. Past a day, it is no request's time.
  const timeout = o.requestTimeoutMs ?? 10_000;
  if (!(timeout > 0 && timeout <= 86_400_000)) throw new InvalidArgumentError(`requestTimeoutMs must be more than 0 and at most a day, got ${timeout}`);
  const maxConnections = o.maxConnections ?? 64;
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1)
    throw new InvalidArgumentError(`maxConnections must be a positive integer, got ${maxConnections}`);
  const maxPerAddress = o.maxConnectionsPerAddress ?? 16;
  if (!Number.isSafeInteger(maxPerAddress) || maxPerAddress < 1)
    throw new InvalidArgumentError(`maxConnectionsPerAddress must be a positive integer, got ${maxPerAddress}`);
  const { host, port } = parseAddress(o.address);
  if (!isLoopback(host) && (o.token === undefined || o.token === '')) {
    throw new InvalidArgumentError(`the admin endpoint on ${o.address} is not loopback: it needs a token`);
  }
  // Its lines are written from socket and timer callbacks: a throw there would end the process.
  // Each line names the node, as the log's own do.
  const logger = guardedLogger(o.logger ?? silentLogger).child({ node: o.log.id });
  const handler = adminHandler(o.log, {
    token: o.token,
    stateMachine: o.stateMachine,
    maxBodyBytes: o.maxBodyBytes,
    allowedHosts: [host],
    logger: o.logger,
    refusalLogClock: o.refusalLogClock,
    maxBackups: o.maxBackups,
    authThrottle: o.authThrottle,
  });
  if (o.resp !== undefined) respMetrics(handler.registry, o.resp);
  // Requests of a connection not answered yet. A client may send requests without reading the
  // answers (HTTP pipelining): Node parses every one it receives and queues each answer behind the
  // unread one before it, so 8 such connections sending 1 MiB of GET /metrics held 350 MB. The
  // endpoint's clients (curl, the CLI, Prometheus, browsers) send one request at a time.
  // The connection's answers not sent yet, oldest first: their number is the limit's.
  const unanswered = new WeakMap<Socket, ServerResponse[]>();
  // Connections closed for how their client reads, each counted and logged once.
  const condemned = new WeakSet<Socket>();
  const closes = new RefusalLog(logger, 'admin: closed connections', o.refusalLogClock);
  const condemn = (socket: Socket, code: AdminRefusalCode, message: string): void => {
    condemned.add(socket);
    handler.countRefusal(code);
    closes.warn(
      { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, code },
      `admin: closed a connection from ${clientAddress(socket)}: ${message}`,
    );
  };
  const limited = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    // The rest of what was read with a request over the limit: the connection is gone.
    if (socket.destroyed) return;
    const answers = unanswered.get(socket) ?? [];
    unanswered.set(socket, answers);
    const n = answers.push(res);
    if (condemned.has(socket)) {
      // Sent after its refusal: dropped, as the connection closes once the refusal is taken.
      if (n > MAX_UNANSWERED_REFUSED) socket.destroy();
      return;
    }
    if (n > MAX_UNANSWERED) {
      const message = `this connection sent more than ${MAX_UNANSWERED} requests without reading their answers (pipelining), and is closed: send one at a time`;
      condemn(socket, 'TOO_MANY_PIPELINED', message);
      // Answered after the answers before it, should the client read them; then Node closes the connection.
      sendJson(res, 429, { code: 'TOO_MANY_PIPELINED', message }, { connection: 'close' });
      return;
    }
    res.once('close', () => answers.splice(answers.indexOf(res), 1));
    handler(req, res);
  };
  const headersTimeout = Math.min(timeout, 10_000);
  const server: Server = createServer(
    {
      maxHeaderSize: 16 * 1024,
      requestTimeout: timeout,
      headersTimeout,
      keepAliveTimeout: KEEP_ALIVE_MS,
      // Node looks for requests over their time only this often (30 s by default), so a body
      // trickled without end was answered 408 up to 30 s late, not at the timeout.
      connectionsCheckingInterval: Math.min(1_000, timeout),
      // Node answered a request without Host 400 with no code, uncounted: the handler refuses it.
      requireHostHeader: false,
    },
    limited,
  );
  server.maxConnections = maxConnections;
  // Node dropped the headers past the 2000th, unseen by the checks of Origin, Host and
  // Authorization; 16 KiB of headers bounds their number.
  server.maxHeadersCount = 0;
  // An Expect other than 100-continue was answered 417 by Node, with no code; a server may ignore it (RFC 9110 10.1.1).
  server.on('checkExpectation', limited);
  // Connections served and being refused, by address. Node's own listener, which reads a
  // connection's requests, runs only for those under the cap.
  const fromAddress = new Map<string, { served: number; refusing: number }>();
  // What the client of each served connection has taken of the answers sent to it, and since when.
  const taking = new Map<Socket, { taken: number; since: number }>();
  const refusing = new Set<Socket>();
  const connectionRefusals = new RefusalLog(logger, 'admin: refused connections', o.refusalLogClock);
  const [readRequests] = server.listeners('connection') as Array<(this: Server, socket: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    if (socket.remoteAddress === undefined) return socket.destroy(); // already reset
    const key = networkKey(socket.remoteAddress);
    const n = fromAddress.get(key) ?? { served: 0, refusing: 0 };
    fromAddress.set(key, n);
    const which = n.served < maxPerAddress ? 'served' : 'refusing';
    n[which]++;
    socket.once('close', () => {
      n[which]--;
      if (n.served + n.refusing === 0) fromAddress.delete(key);
    });
    if (which === 'served') {
      taking.set(socket, { taken: 0, since: performance.now() });
      socket.once('close', () => taking.delete(socket));
      return readRequests.call(server, socket);
    }
    handler.countRefusal('TOO_MANY_CONNECTIONS');
    refusing.add(socket);
    socket.once('close', () => refusing.delete(socket));
    socket.on('error', () => socket.destroy());
    if (n.refusing > REFUSING_PER_ADDRESS) return socket.destroy();
    const message = `${n.served} connections from ${key} are open, the most one address may hold (maxConnectionsPerAddress): close one, then retry`;
    connectionRefusals.warn(
      { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, code: 'TOO_MANY_CONNECTIONS' },
      `admin: refused a connection from ${clientAddress(socket)}: ${message}`,
    );
    // Not the socket's idle timeout, which every byte the client sends would put off.
    const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
    socket.once('close', () => clearTimeout(linger));
    socket.once('end', () => socket.destroy());
    socket.resume();
    socket.end(rawRefusal(503, 'TOO_MANY_CONNECTIONS', message, 'retry-after: 1\r\n'));
  });
  // Past maxConnections Node closes a connection before any listener sees it: counted and logged here.
  server.on('drop', (c) => {
    handler.countRefusal('TOO_MANY_CONNECTIONS');
    connectionRefusals.warn(
      { remoteAddress: c?.remoteAddress, remotePort: c?.remotePort, code: 'TOO_MANY_CONNECTIONS' },
      `admin: closed a connection from ${c?.remoteAddress ?? 'an unknown address'} at once: ${maxConnections} connections are open, the most it takes (maxConnections)`,
    );
  });
  /** Closes a connection for what its client sent, telling it why unless an answer is being sent. */
  const refuseClient = (socket: Socket, status: number, code: AdminRefusalCode, message: string): void => {
    if (!condemned.has(socket)) condemn(socket, code, message);
    // Written in the middle of another answer, it would corrupt both.
    if (socket.writable && !(unanswered.get(socket)?.[0]?.headersSent ?? false)) socket.write(rawRefusal(status, code, message));
    socket.destroy();
  };
  // Without a listener Node closed the connection unanswered, and told no one.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => refuseClient(socket, 400, 'MALFORMED_REQUEST', 'it sent CONNECT: this endpoint is no proxy'));
  // Node answered these itself, 408, 431 or 400 without a body, and told no one.
  server.on('clientError', (err: Error & { code?: unknown }, socket: Socket) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
      refuseClient(
        socket,
        408,
        'REQUEST_TIMEOUT',
        `its request was not whole within ${timeout} ms of its first byte (requestTimeoutMs), or its headers within ${headersTimeout} ms`,
      );
    else if (err.code === 'HPE_HEADER_OVERFLOW') refuseClient(socket, 431, 'HEADERS_TOO_LARGE', 'its request line and headers are over 16 KiB');
    else if (typeof err.code === 'string' && err.code.startsWith('HPE_'))
      refuseClient(socket, 400, 'MALFORMED_REQUEST', `it sent what is not an HTTP request (${err.code})`);
    // The connection failed (a reset): there is no one to tell.
    else socket.destroy();
  });
  // No idle timeout on the socket: it also ran while the node worked out an answer, and cut off
  // one that took longer (a /health waiting its 2 s under a small requestTimeoutMs). A request
  // has requestTimeoutMs to arrive (Node's); an answer is the handler's to bound; a client that
  // takes none of one for `idle`, and a connection that asks nothing, are dropped below.
  const idle = timeout * 3;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Every byte a client sends puts the keep-alive timeout off, even the line ends the parser skips
  // between requests: a client that sent one now and then held its connection for ever. One that
  // takes none of an answer for `idle` is dropped, whatever it sends (one that reads slowly takes
  // some): else one that read nothing held a backup's slot and the state machine's snapshot. One
  // whose next request is not whole (its headers) by the keep-alive timeout and the headers timeout
  // after its last answer is dropped too: a request begun within the keep-alive timeout is owed
  // its headers' time, and no more, whatever requestTimeoutMs is.
  const waitingMs = KEEP_ALIVE_MS + headersTimeout;
  const stalls = setInterval(
    () => {
      const now = performance.now();
      for (const [socket, t] of taking) {
        // Bytes the kernel took: those sent, less those still buffered or being written.
        const taken = socket.bytesWritten - socket.writableLength;
        const answering = (unanswered.get(socket)?.length ?? 0) > 0 && socket.writableLength === 0;
        if (answering || taken !== t.taken) {
          t.taken = taken;
          t.since = now;
        } else if (socket.writableLength > 0 && now - t.since >= idle) {
          // One that takes none of what is sent cannot be told why.
          if (!condemned.has(socket)) condemn(socket, 'ANSWERS_UNREAD', `its client took none of its answers for ${idle} ms (3 times requestTimeoutMs)`);
          socket.destroy();
        } else if (socket.writableLength === 0 && now - t.since >= waitingMs) {
          refuseClient(
            socket,
            408,
            'REQUEST_TIMEOUT',
            `its next request was not whole ${waitingMs} ms after its last answer or its opening (the keep-alive and headers timeouts)`,
          );
        }
      }
    },
    Math.min(1_000, timeout),
  );
  stalls.unref();
  const serverErrors = logServerErrors(server, logger, 'admin', o.refusalLogClock);
  const a = server.address() as AddressInfo;
  return {
    address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(stalls);
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of refusing) s.destroy();
      }).then(() => {
        // A process that exits next would never hear the counts.
        handler.close();
        connectionRefusals.flush();
        closes.flush();
        serverErrors.flush();
      }),
  };
}

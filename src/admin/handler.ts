// The admin endpoint's requests: health, status and metrics to read, membership,
// leadership and backups to drive. A plain node:http request listener, so an
// embedder can mount it on a server of its own; serveAdmin() adds the limits.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Registry } from 'prom-client';
import { AuthThrottle, authThrottleProblem, type AuthThrottleOptions } from '../auth-throttle.js';
import { CodedError } from '../errors.js';
import { guardedLogger, silentLogger, type Logger } from '../logger.js';
import { RefusalLog, realTimers, type RefusalLogClock } from '../refusal-log.js';
import { clientAddress, isHostPort, networkKey } from '../transport/address.js';
import { InvalidArgumentError } from '../log/errors.js';
import type { LogStatus, MembershipChange, ReplicatedLog } from '../log/index.js';
import type { StateMachine } from '../log/state-machine.js';
import { crc32c } from '../wal/index.js';
import { ProgressStateType } from '../raft/types.js';
import { takeBackup } from './backup.js';
import { isRemoved } from './removal.js';
import { CodeCounts } from '../transport/errors.js';
import { adminRefusalMetrics, logRegistry } from './prometheus.js';
import { STATUS_PAGE_HEADERS, STATUS_PAGE_HTML } from './status-page.js';

export interface AdminHandlerOptions {
  /** Requests must carry `Authorization: Bearer <token>`; without one, none is asked. */
  token?: string;
  /** The state machine whose backups GET /snapshot serves; without one, that route answers 404. */
  stateMachine?: StateMachine<unknown>;
  /** Largest request body accepted (bytes). Default 64 KiB: operations carry a few fields. */
  maxBodyBytes?: number;
  /**
   * Without a token, the `Host` names served besides `localhost` and IP addresses (serveAdmin
   * passes its listen host). Any other Host is refused with 403 HOST_NOT_ALLOWED.
   */
  allowedHosts?: string[];
  /**
   * Hears of refused requests (403 CROSS_ORIGIN and HOST_NOT_ALLOWED, 401, 429, 413, 415, 400 MALFORMED_REQUEST), at most 10
   * every 10 s, then one line with the count of the rest; and, at error, of requests that failed
   * inside the node (500: INTERNAL, or a storage failure's code). Each line carries the log's
   * `node`. Default: silent.
   */
  logger?: Logger;
  /** The timer of that rate limit, and of authThrottle's windows. Default: real timers. */
  refusalLogClock?: RefusalLogClock;
  /**
   * With a token: once requests from one address (an IPv6 address's /64) have carried a wrong
   * one `failures` times within `windowMs` (one to two windows), its requests are answered 429
   * TOO_MANY_AUTH_FAILURES, with Retry-After, and their token is not checked, until those
   * failures are that old. A request without an Authorization header guesses nothing and is not
   * counted. Default { failures: 10, windowMs: 60000 }; at most 10,000 addresses are remembered.
   */
  authThrottle?: AuthThrottleOptions;
  /**
   * Backups (GET /snapshot) sent at once; one more is answered 503 BACKUP_IN_PROGRESS. Each
   * holds a snapshot of the state machine until its client has read it. Default 1.
   */
  maxBackups?: number;
}

/**
 * The codes a request or connection is refused with before anything is done for it (see
 * AdminHandlerOptions.logger and serveAdmin), and those serveAdmin closes a connection with for
 * how its client reads, each counted in raftlog_admin_refused_total.
 */
export const ADMIN_REFUSAL_CODES = [
  'CROSS_ORIGIN',
  'HOST_NOT_ALLOWED',
  'UNAUTHORIZED',
  'TOO_MANY_AUTH_FAILURES',
  'UNSUPPORTED_MEDIA_TYPE',
  'TOO_MANY_CONNECTIONS',
  'TOO_MANY_PIPELINED',
  'ANSWERS_UNREAD',
  'REQUEST_TIMEOUT',
  'HEADERS_TOO_LARGE',
  'MALFORMED_REQUEST',
  'TOO_LARGE',
] as const;

export type AdminRefusalCode = (typeof ADMIN_REFUSAL_CODES)[number];

export type AdminHandler = ((req: IncomingMessage, res: ServerResponse) => void) & {
  registry: Registry;
  /** Counts a refusal made before the handler sees a request (serveAdmin's of a connection over its caps, or closed for its client's reading). */
  countRefusal(code: AdminRefusalCode): void;
  /**
   * For the server's close: logs the count of refusals not logged yet, now rather than at the
   * interval's end, and forgets the failed tokens counted, with their timer.
   */
  close(): void;
};

const PROGRESS: Record<ProgressStateType, string> = {
  [ProgressStateType.ProgressStateProbe]: 'probe',
  [ProgressStateType.ProgressStateReplicate]: 'replicate',
  [ProgressStateType.ProgressStateSnapshot]: 'snapshot',
};

/** status() with words for every state; what GET /status answers. */
export interface AdminStatus extends Omit<LogStatus, 'state' | 'progress'> {
  progress?: Record<
    number,
    { match: number; next: number; lag: number; state: string; recentActive: boolean; isLearner: boolean; inflight: number; paused: boolean }
  >;
}

export function readableStatus(s: LogStatus): AdminStatus {
  const { state: _state, progress, ...rest } = s;
  const out: AdminStatus = rest;
  if (progress !== undefined) {
    out.progress = Object.fromEntries(
      Object.entries(progress).map(([id, p]) => [
        id,
        {
          match: p.match,
          next: p.next,
          lag: Math.max(0, s.lastIndex - p.match),
          state: PROGRESS[p.state],
          recentActive: p.recentActive,
          isLearner: p.isLearner,
          inflight: p.inflight,
          paused: p.paused,
        },
      ]),
    );
  }
  return out;
}

class HttpError extends CodedError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    /** Sent with the answer. */
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }
}

/** Answers with `v` as JSON; `headers` adds to the content type and length. */
export function sendJson(res: ServerResponse, status: number, v: unknown, headers: OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(v);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** What an error from the log means to an HTTP client. */
function statusOf(code: string): number {
  switch (code) {
    case 'INVALID_ARGUMENT':
    // A change the configuration cannot take (removing the last voter): the request's fault, and nothing changed.
    case 'RAFT_INVALID_CONF_CHANGE':
      return 400;
    case 'NOT_LEADER':
    case 'NOT_CAUGHT_UP':
    // A change that would leave the configuration as it is (a retry of one made, or a mistyped id).
    case 'NOT_MEMBER':
    case 'ALREADY_MEMBER':
    // A removal that would cost the majority: the cluster's state refuses it, not the request.
    case 'MAJORITY_UNAVAILABLE':
      return 409;
    case 'NO_LEADER':
    case 'LOG_CLOSED':
    case 'LOG_FATAL':
    case 'TIMEOUT':
    case 'APPEND_NOT_COMMITTED':
    // A membership change whose leader was lost: it may yet commit, as after a TIMEOUT.
    case 'APPEND_OUTCOME_UNKNOWN':
      return 503;
    default:
      return 500;
  }
}

/** The most of a backup written to its client at once. */
const BACKUP_WRITE_BYTES = 64 * 1024;

/** How long GET /health waits for a linearizable read before answering 503 TIMEOUT. */
export const HEALTH_WAIT_MS = 2_000;

function withinHealthWait(read: Promise<void>, lead: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new HttpError(
            503,
            'TIMEOUT',
            `no linearizable read within ${HEALTH_WAIT_MS} ms: the leader (node ${lead}) did not confirm through this node that it leads a majority, ` +
              'or this node has not applied what is committed (cut off from the leader, or installing a snapshot)',
          ),
        ),
      HEALTH_WAIT_MS,
    );
    read.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Resolves when `res` takes more; rejects once its client has gone, even before the call:
 * a client that left while a chunk was being made closed `res` before write() said to wait.
 * Whichever comes first takes the other's listener away: a backup waits once per chunk.
 */
function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.reject(new Error('the client went away'));
  return new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      res.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      res.off('drain', onDrain);
      reject(new Error('the client went away'));
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** The name or address in a Host header, without the port and brackets; null if it is not one. */
function hostName(host: string): string | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+))(?::\d{1,5})?$/.exec(host);
  if (m === null) return null;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? m[1] : null;
  return m[2]!.toLowerCase();
}

/**
 * The method each route takes: another one is answered 405 with it in Allow. HEAD is answered as
 * GET without the body where a probe or a monitor may send it (RFC 9110 9.3.2): a load balancer's
 * HEAD /health was 405, a node down to it. Not of /snapshot, which takes a backup to answer.
 */
const METHODS = new Map<string, string>([
  ['/', 'GET, HEAD'],
  ['/health', 'GET, HEAD'],
  ['/status', 'GET, HEAD'],
  ['/metrics', 'GET, HEAD'],
  ['/snapshot', 'GET'],
  ['/members/add', 'POST'],
  ['/members/remove', 'POST'],
  ['/members/promote', 'POST'],
  ['/members/change', 'POST'],
  ['/leader/transfer', 'POST'],
]);

const JSON_TYPE = /^application\/json\s*(;|$)/i;

/** The most of what a client sent (a path, a Host header) an answer or a log line repeats. */
const SHOWN_CHARS = 100;

/**
 * What a client sent (a request's path, its Host header) as an answer or a log line repeats it:
 * at most `max` characters, and every one outside printable ASCII written out (\x1b, \u202e).
 * Node's parser admits only printable ASCII in a path, but up to its 16 KiB header limit, which
 * a 404 echoed whole; a header value may also hold tabs and Latin-1 bytes; and a server of one's
 * own that mounts the handler may hand it anything.
 */
function shown(text: string, max = SHOWN_CHARS): string {
  const cut = text.length > max ? `${text.slice(0, max)}... (${text.length - max} more characters)` : text;
  return cut.replace(/[^\x20-\x7e]/g, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Whether `Authorization: Bearer <token>` can carry the token: printable ASCII, without spaces
 * at its ends. A header is read as Latin-1, so a token with other characters never matched
 * what curl sends (its UTF-8), and one with control characters or spaces at its ends could not
 * be sent at all: the endpoint answered every request 401.
 */
export function isSendableToken(token: string): boolean {
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(token);
}

export function adminHandler(log: ReplicatedLog<unknown>, options: AdminHandlerOptions = {}): AdminHandler {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('adminHandler(log, options): options must be an object');
  // A number passed isSendableToken (its digits) and failed hashing, as a raw TypeError.
  if (options.token !== undefined && typeof options.token !== 'string') throw new InvalidArgumentError('the admin token must be a string');
  const hosts: unknown = options.allowedHosts ?? [];
  if (!Array.isArray(hosts) || !hosts.every((h) => typeof h === 'string')) throw new InvalidArgumentError('allowedHosts must be an array of host names');
  // The token is never quoted: the message may reach a log.
  if (options.token !== undefined && !isSendableToken(options.token))
    throw new InvalidArgumentError('the admin token holds a character a request cannot carry: use printable ASCII, without spaces at its ends');
  const maxBody = options.maxBodyBytes ?? 64 * 1024;
  const maxBackups = options.maxBackups ?? 1;
  if (!Number.isSafeInteger(maxBody) || maxBody < 0) throw new InvalidArgumentError(`maxBodyBytes must be a whole number of bytes, got ${maxBody}`);
  if (!Number.isSafeInteger(maxBackups) || maxBackups < 1) throw new InvalidArgumentError(`maxBackups must be a positive integer, got ${maxBackups}`);
  const throttleProblem = authThrottleProblem(options.authThrottle ?? {});
  if (throttleProblem !== null) throw new InvalidArgumentError(throttleProblem);
  const registry = logRegistry(log);
  const refusedCounts = new CodeCounts();
  adminRefusalMetrics(registry, () => refusedCounts.toRecord(), ADMIN_REFUSAL_CODES);
  let backups = 0;
  const want = options.token === undefined ? null : digest(options.token);
  const allowedHosts = new Set((options.allowedHosts ?? []).map((h) => h.replace(/^\[|\]$/g, '').toLowerCase()));
  // Anyone who reaches the port can be refused as often as they send, so the lines are rationed.
  // Each line names the node, as the log's own do.
  const logger = guardedLogger(options.logger ?? silentLogger).child({ node: log.id });
  const refusals = new RefusalLog(logger, 'admin: refused requests', options.refusalLogClock);
  // Without it, a stranger tries tokens as fast as the endpoint answers.
  const throttle = new AuthThrottle(options.authThrottle ?? {}, options.refusalLogClock ?? realTimers);

  /**
   * Refuses what a web page in a browser on this machine could send: without a token, loopback
   * is the only guard, and any page the browser opens is on loopback too. The endpoint's clients
   * are operators' tools (curl, the CLI, Prometheus), which send neither Origin nor a foreign Host.
   */
  const crossSite = (req: IncomingMessage): HttpError | null => {
    // Browsers send Origin on every cross-origin fetch and on every POST; curl and the CLI never do.
    if (req.headers.origin !== undefined)
      return new HttpError(403, 'CROSS_ORIGIN', 'a request with an Origin header (from a web page) is refused: use curl or the raftlog CLI');
    // A GET in no-cors mode (<img src>, a no-cors fetch) carries no Origin, and GET /snapshot
    // takes a barrier and a snapshot. Browsers name the requesting site to loopback, a trustworthy
    // origin, in Sec-Fetch-Site: another site, or another port of localhost ('same-site'), is
    // refused; the status page's own requests are 'same-origin', an address typed in, 'none'.
    // A link to the status page from elsewhere (a wiki, a dashboard) is followed: it holds no data.
    const site = req.headers['sec-fetch-site'];
    const toStatusPage = req.method === 'GET' && /^navigate$/i.test(req.headers['sec-fetch-mode'] ?? '') && (req.url ?? '/').split('?')[0] === '/';
    if (site !== undefined && !/^(same-origin|none)$/i.test(site) && !toStatusPage)
      return new HttpError(403, 'CROSS_ORIGIN', `a request from another site (Sec-Fetch-Site: ${shown(site, 20)}) is refused: use curl or the raftlog CLI`);
    // DNS rebinding: a page whose name now resolves to 127.0.0.1 becomes same-origin with this
    // port, but its requests still carry its own name. A page cannot send the token, so with one
    // the name is not checked, and operators may reach a token-protected endpoint by any name.
    const host = req.headers.host;
    if (want === null && host !== undefined) {
      const name = hostName(host);
      if (name === null || !(name === 'localhost' || isIP(name) !== 0 || allowedHosts.has(name)))
        return new HttpError(
          403,
          'HOST_NOT_ALLOWED',
          `Host '${shown(host)}' is refused: without a token only localhost, an IP address or the listen host is served`,
        );
    }
    return null;
  };

  /**
   * HTTP/1.1 requires exactly one Host (RFC 9112 3.2), and Authorization is one field. Node keeps
   * the first of several, which the checks below and a proxy in front may read differently; and
   * it answered a request without Host 400 itself, with no code, neither counted nor logged.
   */
  const headerCountProblem = (req: IncomingMessage): HttpError | null => {
    let hosts = 0;
    let auths = 0;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!.toLowerCase();
      if (name === 'host') hosts++;
      else if (name === 'authorization') auths++;
    }
    if (hosts > 1 || (hosts === 0 && req.httpVersion === '1.1'))
      return new HttpError(400, 'MALFORMED_REQUEST', `an HTTP/1.1 request carries one Host header, this one ${hosts}`, { connection: 'close' });
    if (auths > 1)
      return new HttpError(400, 'MALFORMED_REQUEST', `a request carries at most one Authorization header, this one ${auths}`, { connection: 'close' });
    return null;
  };

  /** A form or text/plain POST needs no CORS preflight; a JSON one does, and a page gets none. */
  const bodyTypeOk = (req: IncomingMessage): boolean => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    return !hasBody || JSON_TYPE.test(req.headers['content-type'] ?? '');
  };

  /** Why a request without the token is refused: 401, or 429 while its address has guessed too often. */
  const unauthorized = (req: IncomingMessage): HttpError | null => {
    if (want === null) return null;
    const from = networkKey(req.socket.remoteAddress ?? 'an unknown address');
    const wait = throttle.retryAfter(from);
    if (wait > 0)
      return new HttpError(
        429,
        'TOO_MANY_AUTH_FAILURES',
        `requests from ${from} carried a wrong token ${throttle.failures} times in the last ${(2 * throttle.windowMs) / 1000} s at most: retry in ${wait} s`,
        { 'retry-after': String(wait) },
      );
    const sent = req.headers.authorization;
    // The scheme is case-insensitive (RFC 9110 11.1): 'bearer <token>' was refused 401.
    const m = /^Bearer +(.+)$/i.exec(sent ?? '');
    // Compared as digests: equal lengths, constant time, whatever was sent.
    if (m !== null && timingSafeEqual(digest(m[1]!), want)) return null;
    if (sent !== undefined) throttle.fail(from);
    return new HttpError(401, 'UNAUTHORIZED', 'a bearer token is required (--admin-token-file)', { 'www-authenticate': 'Bearer' });
  };

  const body = (req: IncomingMessage): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > maxBody) return reject(new HttpError(413, 'TOO_LARGE', `the request body is over ${maxBody} bytes`));
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        if (size > maxBody) return;
        size += c.length;
        if (size > maxBody) {
          // Not destroyed here: that reset the connection before the 413 went out. The answer
          // closes the connection instead (see the handler), so the rest is never waited for.
          reject(new HttpError(413, 'TOO_LARGE', `the request body is over ${maxBody} bytes`));
          chunks.length = 0;
          return;
        }
        chunks.push(c);
      });
      req.on('error', reject);
      req.on('end', () => {
        if (size === 0) return resolve({});
        let v: unknown;
        try {
          v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reject(new HttpError(400, 'BAD_REQUEST', 'the body is not JSON'));
        }
        if (typeof v !== 'object' || v === null || Array.isArray(v)) return reject(new HttpError(400, 'BAD_REQUEST', 'the body must be a JSON object'));
        resolve(v as Record<string, unknown>);
      });
    });

  const nodeId = (b: Record<string, unknown>): number => {
    const id = b.id;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError('id must be a positive integer');
    return id;
  };

  // One barrier serves every /health asked while it runs: a client asking in a loop must not
  // pile them up. One older than the wait (stuck until the log's own timeout) is not joined,
  // so that a node that recovered says so at once.
  let probe: { done: Promise<void>; started: number } | null = null;
  const readable = (): Promise<void> => {
    const now = performance.now();
    if (probe === null || now - probe.started > HEALTH_WAIT_MS) {
      const p = { done: log.barrier(), started: now };
      const over = (): void => {
        if (probe === p) probe = null;
      };
      p.done.then(over, over);
      probe = p;
    }
    return probe.done;
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    // Node sends no body in answer to a HEAD.
    const method = req.method === 'HEAD' && METHODS.get(path)?.includes('HEAD') === true ? 'GET' : req.method;
    const op = `${method} ${path}`;
    switch (op) {
      case 'GET /health': {
        const s = log.status();
        const unhealthy = (reason: string, message: string): void => sendJson(res, 503, { health: false, reason, message });
        if (s.role === 'fatal') return unhealthy(s.fatal?.code ?? 'LOG_FATAL', s.fatal?.message ?? 'the node stopped');
        if (s.role === 'closed') return unhealthy('LOG_CLOSED', 'the log was closed');
        // A removed node still names the leader it last heard, and its reads wait out the 2 s:
        // TIMEOUT, blaming the leader, hid why.
        // Cut off when its removal committed, it never applies it: a member that did refuses it.
        if (isRemoved(s))
          return unhealthy(
            'NOT_MEMBER',
            s.removedBy !== undefined
              ? `node ${s.removedBy} refuses this node (${s.id}) as removed from the cluster (the change committed unseen here)`
              : `this node (${s.id}) is not in the configuration it applied: it was removed from the cluster`,
          );
        if (s.lead === 0) return unhealthy('NO_LEADER', 'this node knows no leader');
        // Knowing a leader is not serving: a follower the leader cannot hear, or one stuck
        // installing a snapshot, names its leader for as long as heartbeats reach it, and a
        // leader cut off names itself until CheckQuorum deposes it. A linearizable read
        // (what etcd's /health does) needs a majority through the leader and this node's
        // state machine to be current.
        try {
          await withinHealthWait(readable(), s.lead);
        } catch (thrown) {
          const code = (thrown as { code?: unknown } | null)?.code;
          return unhealthy(typeof code === 'string' ? code : 'INTERNAL', thrown instanceof Error ? thrown.message : String(thrown));
        }
        return sendJson(res, 200, { health: true, leader: log.status().lead, id: s.id });
      }
      case 'GET /status':
        return sendJson(res, 200, readableStatus(log.status()));
      case 'GET /metrics': {
        const text = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
        return;
      }
      case 'GET /snapshot': {
        if (options.stateMachine === undefined) throw new HttpError(404, 'NOT_FOUND', 'this node serves no state machine backups');
        // Each backup holds a snapshot of the state machine (a copy of its state, for many) until
        // its client has read it: clients that never read held one each, up to the connection cap.
        if (backups >= maxBackups)
          throw new HttpError(503, 'BACKUP_IN_PROGRESS', `${backups} backup${backups === 1 ? ' is' : 's are'} being sent already: retry once done`);
        backups++;
        try {
          const b = await takeBackup(log, options.stateMachine);
          // Streamed as the state machine yields it; the checksum of what was sent follows as a trailer.
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-raftlog-index': String(b.index), trailer: 'x-raftlog-crc32c' });
          let crc = 0;
          for await (const chunk of b.chunks) {
            crc = crc32c(chunk, crc);
            // A write is taken whole or not at all, and serveAdmin drops a client that takes
            // nothing for its idle timeout: a state machine's one large buffer, sent as one,
            // cut off a client reading it slowly.
            for (let at = 0; at < chunk.length; at += BACKUP_WRITE_BYTES) {
              if (!res.write(chunk.subarray(at, at + BACKUP_WRITE_BYTES))) await drained(res);
            }
          }
          res.addTrailers({ 'x-raftlog-crc32c': String(crc) });
          res.end();
        } finally {
          backups--;
        }
        return;
      }
      case 'POST /members/add': {
        const b = await body(req);
        const id = nodeId(b);
        if (typeof b.address !== 'string' || !isHostPort(b.address)) throw new InvalidArgumentError("address must be 'host:port', with a port up to 65535");
        // Anything but true made a voter: "learner": "true" added one, which a single node then waited for.
        if (b.learner !== undefined && typeof b.learner !== 'boolean') throw new InvalidArgumentError('learner must be true or false');
        if (b.learner === true) await log.addLearner(id, b.address);
        else await log.addMember(id, b.address);
        return sendJson(res, 200, { ok: true });
      }
      case 'POST /members/remove':
        await log.removeMember(nodeId(await body(req)));
        return sendJson(res, 200, { ok: true });
      case 'POST /members/promote':
        await log.promote(nodeId(await body(req)));
        return sendJson(res, 200, { ok: true });
      case 'POST /members/change': {
        // Several changes at once, through a joint configuration when more than one voter
        // changes; the log checks each change before anything is proposed.
        const { changes } = await body(req);
        if (!Array.isArray(changes)) throw new InvalidArgumentError('changes must be an array');
        await log.changeMembership(changes as MembershipChange[]);
        return sendJson(res, 200, { ok: true, voters: log.status().conf.voters, learners: log.status().conf.learners });
      }
      case 'POST /leader/transfer':
        await log.transferLeadership(nodeId(await body(req)));
        return sendJson(res, 200, { ok: true, leader: log.status().lead });
      default: {
        const allow = METHODS.get(path);
        if (allow === undefined) throw new HttpError(404, 'NOT_FOUND', `no route ${method ?? '?'} ${shown(path)}`);
        res.setHeader('allow', allow);
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${path} takes ${allow}, not ${req.method}`);
      }
    }
  };

  const fail = (res: ServerResponse, err: HttpError): void => {
    for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
    sendJson(res, err.status, { code: err.code, message: err.message });
  };

  const countRefused = (req: IncomingMessage, err: HttpError): void => {
    refusedCounts.add(err.code);
    const { remoteAddress, remotePort } = req.socket;
    refusals.warn(
      { remoteAddress, remotePort, status: err.status, code: err.code },
      `admin: refused ${req.method ?? '?'} ${shown((req.url ?? '/').split('?')[0]!)} from ${clientAddress(req.socket)}: ${err.status} ${err.code}: ${err.message}`,
    );
  };

  /** Answers a request refused before anything is read or done for it, and logs why. */
  const refuse = (req: IncomingMessage, res: ServerResponse, err: HttpError): void => {
    countRefused(req, err);
    fail(res, err);
    req.resume();
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const refused = headerCountProblem(req) ?? crossSite(req);
    if (refused !== null) return refuse(req, res, refused);
    // The status page holds no data (it asks for it, with the token, like any client), so it
    // loads without one: open http://host:port/#token=<token> when the endpoint has a token.
    if ((req.method === 'GET' || req.method === 'HEAD') && (req.url ?? '/').split('?')[0] === '/') {
      res.writeHead(200, { ...STATUS_PAGE_HEADERS, 'content-length': Buffer.byteLength(STATUS_PAGE_HTML) });
      res.end(STATUS_PAGE_HTML);
      req.resume();
      return;
    }
    // Nothing is read or done for an unauthenticated request.
    const denied = unauthorized(req);
    if (denied !== null) return refuse(req, res, denied);
    if (!bodyTypeOk(req))
      return refuse(req, res, new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'a request body must be sent as Content-Type: application/json'));
    route(req, res).catch((thrown: unknown) => {
      // A state machine may throw anything: null, read for its code, threw again here, where
      // nothing catches it, and the request was never answered.
      const err = typeof thrown === 'object' && thrown !== null ? thrown : new Error(`${String(thrown)} was thrown, not an Error`);
      const own = (err as { code?: unknown }).code;
      const code = err instanceof HttpError ? err.code : typeof own === 'string' ? own : 'INTERNAL';
      const status = err instanceof HttpError ? err.status : statusOf(code);
      const extra = (err as { leader?: unknown }).leader !== undefined ? { leader: (err as { leader: number }).leader } : {};
      // A failure inside the node reached only the client: the operator's log never heard of it.
      // A client that left mid-answer (the response destroyed already) is no failure.
      if (status === 500 && !res.destroyed) {
        const path = shown((req.url ?? '/').split('?')[0]!);
        logger.error({ err, code }, `admin: ${req.method ?? '?'} ${path} failed: ${(err as Error).message}`);
      }
      if (res.headersSent) res.destroy();
      else {
        // A body too large is not read to its end: the connection closes once the answer is sent.
        if (err instanceof HttpError && code === 'TOO_LARGE') {
          countRefused(req, err);
          res.setHeader('connection', 'close');
        }
        sendJson(res, status, { code, message: (err as Error).message, ...extra });
      }
    });
  };
  const close = (): void => {
    throttle.clear();
    refusals.flush();
  };
  return Object.assign(handler, { registry, close, countRefusal: (code: AdminRefusalCode) => refusedCounts.add(code) });
}

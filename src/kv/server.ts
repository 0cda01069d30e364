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
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { getDefaultHighWaterMark } from 'node:stream';
import { AuthThrottle, authThrottleProblem, type AuthThrottleOptions } from '../auth-throttle.js';
import { CodedError } from '../errors.js';
import { ClosedError, InvalidArgumentError } from '../log/errors.js';
import type { LogMetrics } from '../log/metrics.js';
import type { LogStatus } from '../log/status.js';
import { silentLogger, type Logger } from '../logger.js';
import { RefusalLog, logServerErrors, realTimers, type RefusalLogClock } from '../refusal-log.js';
import { clientAddress, formatAddress, networkKey, parseAddress } from '../transport/address.js';
import { formatInfo } from './info.js';
import { INTEGER, KvStateMachine, encodeCommand, type KvCommand, type KvResult } from './kv-state-machine.js';
import { DEFAULT_RESP_LIMITS, OK, RespParser, RespProtocolError, RespSimple, encode, encodedLength, heapCost, type Reply } from './resp.js';
import { valueBytes, type StoredValue } from './stored-value.js';

/** What the server needs of the log; ReplicatedLog has this shape. */
export interface KvLog {
  append(data: Uint8Array): Promise<{ index: number; term: number; result: unknown }>;
  barrier(): Promise<void>;
  /** What the RESP commands read of it (PING, INFO, RAFT.MEMBERS); a ReplicatedLog gives all of it. */
  status(): Partial<LogStatus>;
  /** For INFO's # WAL section, when the log has them. */
  metrics?(): LogMetrics;
}

/** A command the server refuses; the message is the RESP error line the client gets. */
type CommandErrorCode = 'KV_WRONG_ARITY' | 'KV_NO_SUCH_DB' | 'KV_UNKNOWN_COMMAND';

class CommandError extends CodedError<CommandErrorCode> {}

const arity = (name: string, more = ''): CommandError => new CommandError('KV_WRONG_ARITY', `ERR wrong number of arguments for '${name}' command${more}`);

const WRITES: Record<string, (args: Buffer[]) => KvCommand> = {
  SET: (a) => {
    if (a.length !== 2) throw arity('set', a.length > 2 ? ' (options are not supported)' : '');
    return ['SET', a[0]!, a[1]!];
  },
  DEL: (a) => {
    if (a.length < 1) throw arity('del');
    return ['DEL', ...a];
  },
  INCR: (a) => {
    if (a.length !== 1) throw arity('incr');
    return ['INCR', a[0]!];
  },
};

const commandName = (args: Buffer[]): string => args[0]!.toString('latin1').toUpperCase();

/** At most `max` bytes of `b`, up to its first NUL: what Redis's printf of a C string shows. */
function cString(b: Buffer, max: number): string {
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, Math.min(max, nul === -1 ? b.length : nul));
}

/**
 * Redis 7's words, which clients and people match on: the name and the first arguments, 128
 * bytes of them, each quoted and followed by a space.
 */
function unknownCommand(args: Buffer[]): CommandError {
  let shown = '';
  for (let i = 1; i < args.length && Buffer.byteLength(shown) < 128; i++) shown += `'${cString(args[i]!, 128 - Buffer.byteLength(shown))}' `;
  return new CommandError('KV_UNKNOWN_COMMAND', `ERR unknown command '${cString(args[0]!, 128)}', with args beginning with: ${shown}`);
}

/**
 * The parameters CONFIG GET shows: redis-benchmark asks save and appendonly at start, and warns
 * without them. Every write is in the log, replayed at start, before it is answered: an
 * append-only file, and no RDB snapshots. Whether a write is on disk when answered is the log's
 * sync: 'always' fsyncs first (appendfsync always), 'none' leaves it to the kernel (appendfsync
 * no), and an acknowledged write can be lost with the machine.
 */
const configParameters = (sync: 'always' | 'none'): ReadonlyArray<[string, string]> => [
  ['save', ''],
  ['appendonly', 'yes'],
  ['appendfsync', sync === 'always' ? 'always' : 'no'],
];
const CONFIG_HELP: Reply = [
  'CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'GET <pattern>',
  '    Return parameters matching the glob-like <pattern> and their values.',
  'HELP',
  '    Prints this help.',
].map((line) => new RespSimple(line));

/**
 * Whether `name` matches a glob as Redis matches CONFIG GET's, without case: * any bytes, ? one,
 * \\ the next byte itself. The two-pointer walk that returns to the last star takes at most
 * name x pattern steps, and a pattern comes from the client: no regular expression built from it.
 */
function globMatches(pattern: string, name: string): boolean {
  // null: a star (a run of them is one); true: a question mark; a string: that byte.
  const tokens: Array<string | null | true> = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (tokens.at(-1) !== null) tokens.push(null);
    } else tokens.push(c === '?' ? true : (c === '\\' && i + 1 < pattern.length ? pattern[++i]! : c).toLowerCase());
  }
  const n = name.toLowerCase();
  let t = 0;
  let i = 0;
  let star = -1;
  let resume = 0;
  while (i < n.length) {
    const tok = t < tokens.length ? tokens[t] : undefined;
    if (tok === null) {
      star = t++;
      resume = i;
    } else if (tok === true || tok === n[i]) {
      t++;
      i++;
    } else if (star !== -1) {
      t = star + 1;
      i = ++resume;
    } else return false;
  }
  while (t < tokens.length && tokens[t] === null) t++;
  return t === tokens.length;
}

/** CONFIG GET and HELP, in Redis 7's words; the rest are not there to change. */
function config(rest: Buffer[], parameters: ReadonlyArray<[string, string]>): Reply {
  if (rest.length === 0) throw arity('config');
  const sub = rest[0]!.toString('utf8').toUpperCase();
  if (sub === 'HELP') {
    if (rest.length !== 1) throw arity('config|help');
    return CONFIG_HELP;
  }
  if (sub !== 'GET') throw new CommandError('KV_UNKNOWN_COMMAND', `ERR unknown subcommand '${cString(rest[0]!, 128)}'. Try CONFIG HELP.`);
  if (rest.length < 2) throw arity('config|get');
  const patterns = rest.slice(1).map((p) => p.toString('latin1'));
  return parameters.filter(([name]) => patterns.some((p) => globMatches(p, name))).flat();
}

/**
 * Each command's arguments, its name included, as Redis's command table has them: n exactly n,
 * -n at least n. Redis looks a command up and checks this before AUTH (and a CONFIG's
 * subcommand): a client that tries a command it lacks (HELLO, then falls back) is told it is
 * unknown, not that it must authenticate. The table is public; no answer before AUTH says more.
 */
const ARITY: Record<string, number> = {
  PING: -1,
  ECHO: 2,
  GET: 2,
  EXISTS: -2,
  SET: -3,
  DEL: -2,
  INCR: 2,
  INFO: -1,
  DBSIZE: 1,
  CONFIG: -2,
  SELECT: 2,
  'RAFT.MEMBERS': -1,
};

/** Redis's answer before AUTH, when it is not NOAUTH (see ARITY). */
function refusedBeforeAuth(name: string, args: Buffer[]): Reply | null {
  const n = ARITY[name];
  if (n === undefined) return errorReply(unknownCommand(args));
  if (n >= 0 ? args.length !== n : args.length < -n) return errorReply(arity(name.toLowerCase()));
  if (name !== 'CONFIG') return null;
  try {
    config(args.slice(1), []);
    return null;
  } catch (err) {
    return errorReply(err);
  }
}

/** A failed command's reply: its own message, or the library error's code and message. */
function errorReply(err: unknown): Reply {
  if (err instanceof CommandError) return new Error(err.message);
  const e = err as { code?: string; message?: string };
  return new Error(`ERR ${e.code ?? 'INTERNAL'} ${e.message ?? String(err)}`);
}

function toReply(r: KvResult): Reply {
  if ('error' in r) return new Error(r.error);
  if ('int' in r) return r.int;
  return OK;
}

/**
 * What a node that stopped (closed, or failed: status().role) answers PING with, as its other
 * commands answer: clients and pools check a connection with PING, and PONG said it served.
 */
function stoppedReply(s: Partial<LogStatus>): Reply | null {
  if (s.role === 'fatal') return errorReply(s.fatal ?? { code: 'LOG_FATAL', message: 'the node stopped' });
  return s.role === 'closed' ? errorReply(new ClosedError()) : null;
}

/** RAFT.MEMBERS: one line per member: id, address, voter or learner. */
function members(s: Partial<LogStatus>): Reply {
  const out: Reply[] = [];
  for (const [id, addr] of Object.entries(s.members ?? {})) {
    const n = Number(id);
    const role = s.conf?.learners.includes(n) ? 'learner' : 'voter';
    out.push(`${id} ${addr} ${role}${s.lead === n ? ' leader' : ''}`);
  }
  return out;
}

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
   * Hears of refused connections (too many clients, protected mode, a cross-protocol (HTTP)
   * request), at most 10 every 10 s, then one line with the count of the rest. Default: silent.
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

/** 127.0.0.0/8 and ::1, also in their IPv4-mapped IPv6 form. */
export function isLoopbackAddress(addr: string | undefined): boolean {
  if (addr === undefined) return false;
  const a = addr.toLowerCase().replace(/^::ffff:/, '');
  return a === '::1' || (net.isIPv4(a) && a.startsWith('127.'));
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

const digest = (s: Buffer | string): Buffer => createHash('sha256').update(s).digest();

/** Equal-length digests, so the comparison takes the same time whatever the guess. */
function passwordMatches(guess: Buffer, expected: Buffer): boolean {
  return timingSafeEqual(digest(guess), expected);
}

/**
 * The `code` of the line a refused or closed client leaves in the log. Never thrown: the client
 * is answered in Redis's words (see docs/errors.md).
 */
type KvRefusalErrorCode =
  | 'KV_PROTECTED_MODE'
  | 'KV_MAX_CLIENTS'
  | 'KV_CROSS_PROTOCOL'
  | 'KV_AUTH_FAILED'
  | 'KV_AUTH_THROTTLED'
  | 'KV_TOO_MANY_CONNECTIONS'
  | 'KV_MAX_BUFFERED'
  | 'KV_TOO_MANY_READS';

/** The codes a connection is refused with, as it connects or at an AUTH (RespServerStats.refusedBy). */
export const RESP_REFUSAL_CODES = [
  'KV_PROTECTED_MODE',
  'KV_MAX_CLIENTS',
  'KV_CROSS_PROTOCOL',
  'KV_AUTH_THROTTLED',
  'KV_TOO_MANY_CONNECTIONS',
] as const satisfies readonly KvRefusalErrorCode[];

export type RespRefusalCode = (typeof RESP_REFUSAL_CODES)[number];

const PROTECTED_MODE_ERROR = new Error(
  'DENIED raftlog is in protected mode: no password is set, so only loopback clients are served. ' +
    'Set a password (requirepass), or serve on a loopback address only, or turn protected mode off.',
);

/** Before AUTH a client can send little: AUTH default <password> needs three short arguments. */
const UNAUTHENTICATED_LIMITS = { maxArgs: 8, maxBulkBytes: 16 * 1024, maxCommandBytes: 64 * 1024, maxInlineBytes: 16 * 1024 };
const EMPTY = Buffer.alloc(0);
const PONG = new RespSimple('PONG');
const NOAUTH = new Error('NOAUTH Authentication required.');
const WRONGPASS = new Error('WRONGPASS invalid username-password pair or user is disabled.');
const NO_PASSWORD = new Error('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
/**
 * Commands parsed ahead of those started: enough that a pipeline pays for a parse call once
 * per many commands, few enough that a connection not read holds little parsed (see parse()).
 */
const PARSE_AHEAD = 64;
/** Commands that wait for a barrier before they answer (see maxPendingReads). */
const BARRIER_READS = new Set(['GET', 'EXISTS', 'DBSIZE']);
/** A connection is closed at its third wrong password (answered, like the others, with -WRONGPASS). */
const AUTH_FAILURES_PER_CONNECTION = 3;

/** A bulk reply of at least this many bytes is written as the value itself (values this size are stored as Buffers). */
const UNCOPIED_REPLY_BYTES = 4096;
const CRLF = Buffer.from('\r\n');

/**
 * A GET's value as the map keeps it, made bytes only when written: a reply waiting behind the
 * mark of unsent bytes (see flush) costs a reference, not a copy of a small value.
 */
class ValueReply {
  constructor(readonly value: StoredValue) {}
}

type SlotReply = Reply | ValueReply;

/** A command's place in its connection's replies, which go out in command order. */
interface Slot {
  /** Undefined until the command finishes. */
  reply: SlotReply | undefined;
  /** Nothing after it runs: QUIT, or a protocol error. */
  last: boolean;
  /** What the reply counts as unsent while it waits for those before it (see answer()); 0 for the map's values and the log's results. */
  bytes: number;
}

/**
 * Writes a reply; a large value goes out as the Buffer the map stores (never changed in place)
 * between its header and \r\n, not copied into one reply. Unread replies are held until the
 * client reads them: a copy each let a client that pipelined 1024 GETs of one 4 MiB value and
 * read nothing hold 4 GiB.
 */
function writeReply(socket: net.Socket, slotReply: SlotReply, written: () => void): void {
  const reply = slotReply instanceof ValueReply ? valueBytes(slotReply.value) : slotReply;
  if (!Buffer.isBuffer(reply) || reply.length < UNCOPIED_REPLY_BYTES) {
    socket.write(encode(reply), written);
    return;
  }
  socket.cork();
  socket.write(Buffer.from(`$${reply.length}\r\n`, 'latin1'));
  socket.write(reply);
  socket.write(CRLF, written);
  socket.uncork();
}

export async function serveResp(o: RespServerOptions): Promise<RespServer> {
  const { log, kv } = o;
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
  const password = o.requirepass !== undefined && o.requirepass !== '' ? digest(o.requirepass) : null;
  const protectedMode = password === null && (o.protectedMode ?? true);
  const isLoopback = o.isLoopback ?? isLoopbackAddress;
  // A refusal costs the client one connection, so a line for each would let anyone flood the log.
  const refusals = new RefusalLog(o.logger ?? silentLogger, 'RESP server: refused connections', o.refusalLogClock);
  const maxStrangersPerAddress = o.maxUnauthenticatedPerAddress ?? Math.max(1, Math.floor(maxClients / 4));
  const maxPendingReads = o.maxPendingReads ?? 65_536;
  const sync = o.sync ?? 'always';
  if (sync !== 'always' && sync !== 'none') throw new InvalidArgumentError(`serveResp: sync must be 'always' or 'none'`);
  const parameters = configParameters(sync);
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
  const throttleProblem = authThrottleProblem(o.authThrottle ?? {});
  if (throttleProblem !== null) throw new InvalidArgumentError(`serveResp: ${throttleProblem}`);
  // Closing a connection at its third wrong password bounds the guesses of a connection, not of a
  // stranger, who opens another.
  const throttle = new AuthThrottle(o.authThrottle ?? {}, o.refusalLogClock ?? realTimers);
  /** The reply refusing a client whose address failed AUTH too often, or null while it may try. */
  const throttled = (socket: net.Socket): Error | null => {
    const from = networkKey(socket.remoteAddress ?? 'an unknown address');
    const wait = throttle.retryAfter(from);
    if (wait === 0) return null;
    return new Error(
      `ERR TOO_MANY_AUTH_FAILURES ${throttle.failures} failed AUTH attempts from ${from} in the last ${(2 * throttle.windowMs) / 1000} s at most: retry in ${wait} s`,
    );
  };

  /** What the memory budget needs of each client: the bytes of its commands read and not started, and whether it authenticated. */
  interface Held {
    bytes: number;
    authed: boolean;
    /** Bytes of its replies finished and waiting for those before them, not yet written: copies (see answer()). */
    queued: number;
  }
  const clients = new Map<net.Socket, Held>();
  const refusing = new Set<net.Socket>();
  const counters = {
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
  const refusedBy = Object.fromEntries(RESP_REFUSAL_CODES.map((c) => [c, 0])) as Record<RespRefusalCode, number>;
  const countRefusal = (code: RespRefusalCode): void => {
    counters.refused++;
    refusedBy[code]++;
  };
  let buffered = 0;
  /** Reply bytes unsent over all connections, as each last saw its own (see maxWriteBufferedBytes). */
  let writeBuffered = 0;
  /** Reads waiting for a barrier, over all connections (see maxPendingReads). */
  let pendingReads = 0;
  // A client sends reads faster than it opens connections: its own line for them.
  const readRefusals = new RefusalLog(o.logger ?? silentLogger, 'RESP server: refused reads', o.refusalLogClock);
  /** The reply refusing a read when maxPendingReads wait already, or null after counting it in. */
  const admitRead = (socket: net.Socket): Error | null => {
    if (pendingReads < maxPendingReads) {
      pendingReads++;
      return null;
    }
    counters.readsRefused++;
    const why = `${maxPendingReads} reads wait for a read barrier, the most the server holds (maxPendingReads): retry later`;
    readRefusals.warn(
      { code: 'KV_TOO_MANY_READS', remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
      `RESP server refused a read from ${clientAddress(socket)}: ${why}`,
    );
    return new Error(`ERR KV_TOO_MANY_READS ${why}`);
  };

  /**
   * Closes clients until all hold no more than maxBufferedBytes together: those that have not
   * authenticated first, then the one holding the most. A scan of every client, but only when
   * the total passes the budget, and each closes at least one.
   */
  const evict = (): void => {
    while (buffered > maxBufferedBytes) {
      let victim: net.Socket | undefined;
      let most: Held | undefined;
      for (const [s, h] of clients) {
        if (h.bytes === 0) continue;
        if (most === undefined || (most.authed && !h.authed) || (most.authed === h.authed && h.bytes > most.bytes)) {
          victim = s;
          most = h;
        }
      }
      if (victim === undefined || most === undefined) return; // cannot happen: the total is the sum of these
      counters.evicted++;
      refusals.warn(
        { code: 'KV_MAX_BUFFERED', remoteAddress: victim.remoteAddress, remotePort: victim.remotePort },
        `RESP server closed the connection from ${clientAddress(victim)}: clients held ${buffered} bytes of commands not started, more than maxBufferedBytes (${maxBufferedBytes}), and it held ${most.bytes}${most.authed ? '' : ' before authenticating'}`,
      );
      buffered -= most.bytes;
      most.bytes = 0;
      victim.destroy();
    }
  };

  /** A read of the map (BARRIER_READS): it waits for a barrier, then answers as the map stands. */
  const read = async (name: string, args: Buffer[], lastWrite: Promise<unknown>): Promise<SlotReply> => {
    const rest = args.slice(1);
    if (name === 'DBSIZE') {
      if (rest.length !== 0) throw arity('dbsize');
    } else if (rest.length < 1 || (name === 'GET' && rest.length !== 1)) throw arity(name.toLowerCase());
    // A read follows this connection's earlier writes and everything committed before it.
    await lastWrite.catch(() => undefined);
    await log.barrier();
    if (name === 'DBSIZE') return kv.size;
    if (name === 'EXISTS') return rest.filter((k) => kv.has(k)).length;
    const v = kv.stored(rest[0]!);
    return v === undefined ? null : new ValueReply(v);
  };

  /**
   * Any other command that does not change the map, answered at once: its reply is a copy the
   * map does not keep (an ECHO's argument, INFO's text), counted as unsent from now on, so that
   * a pipeline of them stops at the marks rather than finishing 1024 replies to hold.
   */
  const answer = (name: string, args: Buffer[]): Reply => {
    const rest = args.slice(1);
    switch (name) {
      case 'PING':
        if (rest.length > 1) throw arity('ping');
        return stoppedReply(log.status()) ?? (rest.length === 0 ? PONG : rest[0]!);
      case 'ECHO':
        if (rest.length !== 1) throw arity('echo');
        return rest[0]!;
      case 'INFO':
        return formatInfo(log.status(), log.metrics?.());
      case 'RAFT.MEMBERS':
        return members(log.status());
      case 'CONFIG':
        return config(rest, parameters);
      case 'SELECT':
        if (rest.length !== 1) throw arity('select');
        if (!INTEGER.test(rest[0]!.toString('latin1'))) throw new CommandError('KV_NO_SUCH_DB', 'ERR value is not an integer or out of range');
        if (rest[0]!.toString('latin1') !== '0') throw new CommandError('KV_NO_SUCH_DB', 'ERR only database 0 exists');
        return OK;
      default:
        throw unknownCommand(args);
    }
  };

  /** AUTH password, or AUTH default password (the Redis 6 form with the one user there is). */
  const auth = (args: Buffer[], socket: net.Socket): { reply: Reply; ok: boolean; wrongPassword?: boolean; throttled?: boolean } => {
    if (args.length < 2) return { reply: new Error("ERR wrong number of arguments for 'auth' command"), ok: false };
    if (args.length > 3) return { reply: new Error('ERR syntax error'), ok: false };
    const userOk = args.length === 2 || args[1]!.toString('latin1') === 'default';
    // Without a password the default user is Redis's nopass user: any password is its own, and
    // a client configured with one (AUTH default <password>) connects as it does to Redis.
    if (password === null) {
      if (args.length === 2) return { reply: NO_PASSWORD, ok: false };
      return userOk ? { reply: OK, ok: true } : { reply: WRONGPASS, ok: false };
    }
    const refused = throttled(socket);
    if (refused !== null) return { reply: refused, ok: false, throttled: true };
    const matches = passwordMatches(args[args.length - 1]!, password);
    if (userOk && matches) return { reply: OK, ok: true };
    counters.authFailures++;
    throttle.fail(networkKey(socket.remoteAddress ?? 'an unknown address'));
    return { reply: WRONGPASS, ok: false, wrongPassword: true };
  };

  /** `why` goes to the client, `code` and `reason` to the log. */
  const refuse = (socket: net.Socket, why: Error, code: RespRefusalCode, reason: string): void => {
    countRefusal(code);
    refusals.warn(
      { code, remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
      `RESP server refused a connection from ${clientAddress(socket)}: ${reason}`,
    );
    refusing.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => refusing.delete(socket));
    socket.end(encode(why), () => socket.destroy());
  };

  // Connections not authenticated yet, by address: with a password, each holds a client slot
  // for up to authTimeoutMs, and a stranger reconnecting as fast as it can took them all.
  const strangersFrom = new Map<string, number>();
  /** A place for one more such connection from `key`, and what gives it back (once); null past the cap. */
  const admitStranger = (key: string): (() => void) | null => {
    const n = strangersFrom.get(key) ?? 0;
    if (n >= maxStrangersPerAddress) return null;
    strangersFrom.set(key, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = strangersFrom.get(key)! - 1;
      if (left === 0) strangersFrom.delete(key);
      else strangersFrom.set(key, left);
    };
  };

  /** `stranger`: gives back the connection's place among those not authenticated (see admitStranger). */
  const serve = (socket: net.Socket, stranger: () => void): void => {
    const held: Held = { bytes: 0, authed: password === null, queued: 0 };
    clients.set(socket, held);
    socket.setNoDelay(true);
    const parser = new RespParser(held.authed ? limits : UNAUTHENTICATED_LIMITS);
    // The idle timeout restarts with every byte: a client that trickles a command never
    // reaches it, so before AUTH a deadline counts from the accept.
    const authDeadline = held.authed
      ? undefined
      : setTimeout(() => {
          counters.idleClosed++;
          socket.destroy();
        }, authTimeoutMs);
    let lastWrite: Promise<unknown> = Promise.resolve();
    /**
     * Parsed commands not yet started: at most a batch (see PARSE_AHEAD), the rest of what was
     * read is left in the parser as bytes. Each counts against the budget what it costs the heap.
     */
    let waiting: Buffer[][] = [];
    let waitingHead = 0; // an index, not shift()
    const waitingCount = (): number => waiting.length - waitingHead;
    // What this client holds against the budget (held.bytes): its parser's, and its waiting commands'.
    let parserBytes = 0;
    let waitingBytes = 0;
    /** Adds to what this client holds; a client closed (evicted, or gone) holds nothing more. */
    const charge = (delta: number): void => {
      if (socket.destroyed) return;
      held.bytes += delta;
      buffered += delta;
    };
    /**
     * Forgets the commands not started. A connection that is gone (evicted, timed out, closed by
     * the client) has nobody to answer: as Redis frees a client with its unprocessed commands,
     * those not yet proposed to the log never are. Those already proposed cannot be taken back.
     * Whole commands still unparsed are counted, not kept.
     */
    const drop = (): void => {
      counters.dropped += waitingCount();
      charge(-waitingBytes);
      waitingBytes = 0;
      waiting = [];
      waitingHead = 0;
      while (parser.more && parser.error === null) {
        try {
          counters.dropped += parser.push(EMPTY, PARSE_AHEAD).length;
        } catch (err) {
          if (!(err instanceof RespProtocolError)) throw err;
        }
      }
    };
    const nextWaiting = (): Buffer[] => {
      const cmd = waiting[waitingHead++]!;
      if (waitingHead === waiting.length) {
        waiting = [];
        waitingHead = 0;
      }
      const cost = heapCost(cmd);
      waitingBytes -= cost;
      charge(-cost);
      return cmd;
    };
    // Replies in command order; a slot is filled when its command finishes.
    const slots: Slot[] = [];
    let inflight = 0;
    // Bytes the commands awaiting replies hold (the arguments of reads waiting for a barrier).
    let heldBytes = 0;
    /**
     * This connection's reads waiting for their barrier. A write after them waits until they have
     * read: proposed at once, it could apply first, and a pipelined GET then SET read the SET's value.
     */
    let reading = 0;
    let paused = false;
    let ending = false; // QUIT or a protocol error: nothing after it runs
    let authFailures = 0;
    /**
     * Unsent reply bytes past which this connection is not read. A stranger's replies are
     * -NOAUTH and -WRONGPASS, 33 bytes for a 6-byte PING: under an authenticated client's mark
     * (1 MiB), 10,000 strangers that read nothing held 10 GB until their AUTH deadline.
     */
    const replyMark = (): number => (held.authed ? hwBytes : socketHwBytes);
    // This connection's share of writeBuffered: its unsent reply bytes when it last looked.
    let unsent = 0;
    const recount = (): void => {
      const now = socket.destroyed ? 0 : socket.writableLength;
      writeBuffered += now - unsent;
      unsent = now;
    };
    /** Counts reply bytes finished and waiting in their slots (held.queued) as unsent, over all clients too. */
    const queue = (delta: number): void => {
      held.queued += delta;
      writeBuffered += delta;
    };
    /**
     * Set when the budget over all clients held this connection back. Only one with replies
     * unsent is held back, so one of its writes is still to end and call written, which tries
     * again: no list of those waiting to wake, and no timer.
     */
    let heldBack = false;
    /**
     * Under its own mark, and under the budget over all clients unless it has nothing unsent: then
     * one reply may pass it. `waiting`: the bytes of replies finished and not written, counted too
     * before a command starts (a write moves them, it does not add them).
     */
    const mayWrite = (waiting: number): boolean => {
      recount();
      const mine = unsent + waiting;
      if (mine >= replyMark()) return false;
      if (mine === 0 || writeBuffered < maxWriteBufferedBytes) return true;
      heldBack = true;
      return false;
    };
    // A protocol error, answered once the commands read before it have started.
    let failure: Error | null = null;

    // A paused socket still reads into its buffer, up to its high-water mark, and every byte read
    // puts the idle timeout off: a client that read none of its replies held them, and its
    // connection, for as long as it trickled a byte now and then. While paused, and once the
    // last reply is written, one whose replies the kernel took none of for idleTimeoutMs is
    // closed, whatever it sends; after the last, one that has not closed its end too.
    let unread: NodeJS.Timeout | undefined;
    const watchUnread = (taken: number): void => {
      unread = setTimeout(() => {
        const now = socket.bytesWritten - socket.writableLength;
        if (now === taken && (socket.writableLength > 0 || socket.writableEnded)) {
          counters.idleClosed++;
          socket.destroy();
        } else watchUnread(now);
      }, idleTimeoutMs);
    };

    const setPaused = (p: boolean): void => {
      if (p === paused) return;
      paused = p;
      if (p) {
        counters.pauses++;
        counters.paused++;
        socket.pause();
        if (idleTimeoutMs > 0) watchUnread(socket.bytesWritten - socket.writableLength);
      } else {
        counters.paused--;
        clearTimeout(unread);
        socket.resume();
      }
    };

    /** Stops reading above a high-water mark, reads again below the low-water marks. */
    const regulate = (): void => {
      if (socket.destroyed || socket.writableEnded) return;
      recount();
      const buffered = unsent + held.queued;
      const replyBytes = replyMark();
      // Past the budget, only a client whose replies are unsent stops being read: one that reads them is served.
      const overBudget = buffered > 0 && writeBuffered >= maxWriteBufferedBytes;
      if (overBudget) heldBack = true;
      if (
        !paused &&
        (inflight >= hwCommands || heldBytes >= hwBytes || buffered >= replyBytes || overBudget || ending || failure !== null || waitingCount() > 0)
      ) {
        counters.maxWriteBuffered = Math.max(counters.maxWriteBuffered, buffered);
        setPaused(true);
      } else if (
        paused &&
        !ending &&
        failure === null &&
        waitingCount() === 0 &&
        !parser.more &&
        inflight <= hwCommands >>> 1 &&
        heldBytes <= hwBytes >>> 1 &&
        buffered <= replyBytes >>> 1 &&
        !overBudget
      )
        setPaused(false);
    };

    /**
     * Writes the replies that are ready, in order, while the unsent bytes are under the mark; the
     * rest wait in their slots for 'drain'. The reads a connection has in flight (up to 1024)
     * all answer at once, and written as they came they passed the mark by up to 1024 replies.
     */
    const flush = (): void => {
      while (slots.length > 0 && slots[0]!.reply !== undefined) {
        // At or past the mark, which is at least the socket's own: the last write asked for 'drain'.
        // Held back by the budget: a write of its own is still to end, and call written.
        if (!socket.destroyed && !mayWrite(0)) return;
        const { reply, last, bytes } = slots.shift()!;
        inflight--;
        if (bytes !== 0) queue(-bytes);
        if (socket.destroyed) continue;
        if (last) {
          writeReply(socket, reply!, written);
          recount();
          socket.end();
          // Nothing after it runs, but the socket is read again (what comes is dropped) so that
          // it sees the client close: paused with bytes unread, it stayed open until its idle timeout.
          setPaused(false);
          // What it sends is read, and puts the idle timeout off.
          if (idleTimeoutMs > 0) watchUnread(socket.bytesWritten - socket.writableLength);
          continue;
        }
        writeReply(socket, reply!, written);
        recount();
      }
    };

    // The end of each reply's writes: the kernel took some bytes, and the budget may let this
    // connection go on. One function for all, so that Node schedules one tick for a run of writes
    // that end at once, not one for each.
    const written = (): void => {
      recount();
      if (!heldBack) return;
      heldBack = false;
      flush();
      if (paused || waitingCount() > 0) dispatch();
    };

    // Reply bytes reaching the kernel may let waiting commands start, or reading resume. Only a
    // write that found the buffer above its high-water mark is followed by 'drain'; written sees
    // the others, but goes on only for a connection the budget held back.
    socket.on('drain', () => {
      flush();
      if (paused || waitingCount() > 0) dispatch();
    });

    const settle = (slot: Slot, reply: SlotReply): void => {
      slot.reply = reply;
      flush();
      dispatch();
    };

    /** Starts waiting commands, parsing more, while under the high-water marks; then a protocol error's reply, if one is due. */
    const dispatch = (): void => {
      if (socket.destroyed) return drop();
      while (inflight < hwCommands && heldBytes < hwBytes && !ending && mayWrite(held.queued)) {
        if (waitingCount() === 0) {
          if (!parser.more) break;
          parse(EMPTY);
          if (socket.destroyed) return drop();
          if (waitingCount() === 0) break;
        }
        if (reading > 0 && WRITES[commandName(waiting[waitingHead]!)] !== undefined) break;
        start(nextWaiting());
      }
      if (failure !== null && !ending && waitingCount() === 0) {
        // The stream can no longer be trusted: the commands before it were answered, then this error, and close.
        ending = true;
        slots.push({ reply: failure, last: true, bytes: 0 });
        inflight++;
        flush();
      }
      regulate();
    };

    /**
     * A web page on this host may POST to this port: protected mode serves it as a loopback
     * client, each line of the HTTP head fails as an unknown command, and a command in the body
     * would run. As Redis does, the first 'POST' or 'Host:' closes the connection, before AUTH
     * too, and nothing after it runs.
     */
    const refuseCrossProtocol = (): void => {
      ending = true;
      drop();
      countRefusal('KV_CROSS_PROTOCOL');
      refusals.warn(
        { code: 'KV_CROSS_PROTOCOL', remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
        `RESP server refused a cross-protocol request from ${clientAddress(socket)}: a 'POST' or 'Host:' command, as an HTTP request (a web page's) sends; connection closed, nothing after it runs`,
      );
      socket.destroy();
    };

    const start = (args: Buffer[]): void => {
      const name = commandName(args);
      if (name === 'POST' || name === 'HOST:') return refuseCrossProtocol();
      const slot: Slot = { reply: undefined, last: false, bytes: 0 };
      slots.push(slot);
      inflight++;
      counters.maxInflight = Math.max(counters.maxInflight, inflight);
      if (name === 'QUIT') {
        ending = true;
        slot.last = true;
        slot.reply = OK;
        flush();
        return;
      }
      if (name === 'AUTH') {
        const r = auth(args, socket);
        if (r.ok && !held.authed) {
          held.authed = true;
          clearTimeout(authDeadline);
          stranger();
          parser.setLimits(limits);
        }
        slot.reply = r.reply;
        // A password is guessed a connection at a time, not thousands of guesses pipelined on one.
        const tooMany = r.wrongPassword === true && ++authFailures >= AUTH_FAILURES_PER_CONNECTION;
        if (tooMany || r.throttled === true) {
          ending = true;
          slot.last = true;
          drop();
          if (r.throttled === true) countRefusal('KV_AUTH_THROTTLED');
          refusals.warn(
            { code: tooMany ? 'KV_AUTH_FAILED' : 'KV_AUTH_THROTTLED', remoteAddress: socket.remoteAddress, remotePort: socket.remotePort },
            `RESP server closed the connection from ${clientAddress(socket)}: ${tooMany ? `${authFailures} failed AUTH attempts` : (r.reply as Error).message}`,
          );
        }
        flush();
        return;
      }
      if (!held.authed) {
        slot.reply = refusedBeforeAuth(name, args) ?? NOAUTH;
        flush();
        return;
      }
      const write = WRITES[name];
      if (write === undefined && !BARRIER_READS.has(name)) {
        let reply: Reply;
        try {
          reply = answer(name, args);
        } catch (err) {
          reply = errorReply(err);
        }
        slot.reply = reply;
        slot.bytes = encodedLength(reply);
        queue(slot.bytes);
        flush();
        return;
      }
      if (write === undefined) {
        const refused = admitRead(socket);
        if (refused !== null) {
          slot.reply = refused;
          flush();
          return;
        }
        // A read holds its arguments until the barrier it waits for: counted until it is answered.
        const holds = heapCost(args);
        heldBytes += holds;
        reading++;
        const done = (reply: SlotReply): void => {
          heldBytes -= holds;
          pendingReads--;
          reading--;
          settle(slot, reply);
        };
        void read(name, args, lastWrite).then(done, (err: unknown) => done(errorReply(err)));
        return;
      }
      // A write goes straight to the log, with no promise of its own on the way: these
      // few lines run for every SET a server takes.
      let appended: ReturnType<KvLog['append']>;
      try {
        appended = log.append(encodeCommand(write(args.slice(1))));
      } catch (err) {
        // A wrong arity, or a log that throws rather than rejects: an error reply, never a crash.
        slot.reply = errorReply(err);
        flush();
        return;
      }
      lastWrite = appended.then(
        ({ result }) => settle(slot, toReply(result as KvResult)),
        (err: unknown) => settle(slot, errorReply(err)),
      );
    };

    /**
     * Parses the commands that may start next, a batch of them, and counts what this client then
     * holds against the budget, before any of them starts: a client closed for it proposes none.
     * The rest stays in the parser as the bytes that came, which cost less than parsed commands
     * (a 7-byte GET is some 400 bytes of arrays and Buffers): a connection that is not read while
     * its commands wait held a whole chunk of them parsed, 3.6 MB of heap for 63 KB of GETs.
     * Before AUTH one command at a time, so the limits rise right after an AUTH.
     */
    const parse = (input: Buffer): void => {
      let cmds: Buffer[][] = [];
      try {
        cmds = parser.push(input, held.authed ? PARSE_AHEAD : 1);
      } catch (err) {
        if (!(err instanceof RespProtocolError)) throw err;
      }
      let cost = parser.retainedBytes - parserBytes;
      parserBytes += cost;
      for (const c of cmds) {
        waiting.push(c);
        const each = heapCost(c);
        waitingBytes += each;
        cost += each;
      }
      charge(cost);
      if (buffered > maxBufferedBytes) evict();
      const err = parser.error;
      if (err !== null && !ending && failure === null) failure = new Error(`ERR ${err.message}`);
    };

    socket.on('data', (chunk: Buffer) => {
      if (ending || failure !== null) return;
      parse(chunk);
      dispatch();
    });
    if (idleTimeoutMs > 0) {
      socket.setTimeout(idleTimeoutMs);
      socket.on('timeout', () => {
        // Not idle while commands wait on the log; idle if nothing was read or written meanwhile,
        // replies ready and unsent included: they wait only for the client to read.
        if (slots.length > 0 && slots[0]!.reply === undefined) {
          socket.setTimeout(idleTimeoutMs);
          return;
        }
        counters.idleClosed++;
        socket.destroy();
      });
    }
    socket.on('error', () => socket.destroy()); // the client went away; its pending replies have nowhere to go
    socket.on('close', () => {
      drop();
      clearTimeout(authDeadline);
      clearTimeout(unread);
      recount();
      // Its replies are forgotten: the slots left are dropped as their commands finish.
      for (const slot of slots) slot.bytes = 0;
      queue(-held.queued);
      stranger();
      buffered -= held.bytes;
      held.bytes = 0;
      clients.delete(socket);
      if (paused) counters.paused--;
    });
  };

  // Waiting commands start again at 'drain', which follows only a write that left the socket's
  // buffer at its own high-water mark (16 KiB by default): with a lower byte mark, a client that
  // read nothing was paused with its buffer between the two and never served again.
  const server = net.createServer({ highWaterMark: socketHwBytes }, (socket) => {
    if (protectedMode && !isLoopback(socket.remoteAddress))
      return refuse(socket, PROTECTED_MODE_ERROR, 'KV_PROTECTED_MODE', 'protected mode (no password is set, and only loopback clients are served)');
    if (clients.size >= maxClients)
      return refuse(socket, new Error('ERR max number of clients reached'), 'KV_MAX_CLIENTS', `${maxClients} clients, the limit, are connected`);
    if (password === null) return serve(socket, () => undefined);
    const refused = throttled(socket);
    if (refused !== null) return refuse(socket, refused, 'KV_AUTH_THROTTLED', refused.message.replace(/^ERR /, ''));
    const from = networkKey(socket.remoteAddress ?? 'an unknown address');
    const stranger = admitStranger(from);
    if (stranger === null) {
      const why = `${maxStrangersPerAddress} connections from ${from} have not authenticated, the most one address may hold (maxUnauthenticatedPerAddress)`;
      return refuse(socket, new Error(`ERR TOO_MANY_CONNECTIONS ${why}`), 'KV_TOO_MANY_CONNECTIONS', why);
    }
    serve(socket, stranger);
  });

  const { host, port } = parseAddress(o.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const serverErrors = logServerErrors(server, o.logger ?? silentLogger, 'RESP server', o.refusalLogClock);
  const bound = server.address() as net.AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    address: formatAddress(host, bound.port),
    stats: () => {
      let writeBuffered = 0;
      for (const [s, h] of clients) writeBuffered += s.writableLength + h.queued;
      return { clients: clients.size, maxClients, ...counters, refusedBy: { ...refusedBy }, buffered, writeBuffered };
    },
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of [...clients.keys(), ...refusing]) s.destroy();
      }).then(() => {
        throttle.clear();
        refusals.flush();
        readRefusals.flush();
        serverErrors.flush();
      })),
  };
}

// The options of ReplicatedLog.open(): their types, their defaults (one table,
// which the documentation below refers to) and their validation. Validation
// runs before any file or socket is created, and names the offending key.
import type { Logger } from '../logger.js';
import { secureContext, type TlsOptions } from '../transport/tcp-transport.js';
import { MIN_SECRET_BYTES, type Secret } from '../transport/auth.js';
import { WAL_DEFAULTS } from '../wal/index.js';
import { MAX_PAYLOAD } from '../wal/record.js';
import { InvalidArgumentError } from './errors.js';
import type { StateMachine } from './state-machine.js';
import { MAX_HOST_LENGTH, isHostPort } from '../transport/address.js';
import { CLUSTER_ID_RULE, isClusterId } from '../transport/cluster-id.js';
import { MAX_TIMER_MS } from '../timer-limit.js';

export const DEFAULTS = {
  id: 1,
  clusterId: 'raftlog',
  /**
   * etcd's SnapshotCount. A snapshot costs a file, its fsync, a rename, a directory sync
   * and a WAL marker, whatever the state's size, and its journal commits slow the WAL's
   * own fdatasyncs: every 10,000 small records it cost a sixth of the embedded log's
   * throughput at 256 clients. Compaction frees whole WAL segments only, so snapshotting
   * more often than a segment fills frees nothing sooner.
   */
  snapshotEvery: 100_000,
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 2,
  timeoutMs: 10_000,
  sync: 'always',
  /** The WAL's own defaults (src/wal/defaults.ts), so that a bare Wal and a ReplicatedLog agree. */
  preallocate: WAL_DEFAULTS.preallocate,
  cacheBytes: WAL_DEFAULTS.cacheBytes,
  /** etcd takes 1.5 MiB requests by default; a record here may be a little larger. */
  maxRecordBytes: 4 * 1024 * 1024,
  maxPendingAppends: 100_000,
  maxPendingBytes: 256 * 1024 * 1024,
  maxSnapshotBytes: 1024 * 1024 * 1024,
  /**
   * Everything in a new window is read from the WAL and encoded in one turn of the event
   * loop, at about 15 ms per MiB on a small machine: a follower far behind, coming back,
   * made a 64 MiB window hold the leader's loop for 1.3-1.7 s, long enough to lose its
   * leadership. A 4 MiB window holds it about a tenth of that, and still caught a follower
   * 200 MB behind (its own process, on loopback) up in 1.5-1.7 s while 16 clients appended
   * on the leader, as the README says: after the first window, each acknowledgement frees
   * room for about one more message.
   */
  maxInflightBytes: 4 * 1024 * 1024,
  /** A learner is promoted only once within this many entries of the leader's last index. */
  promoteMaxLag: 1_000,
  /** Entries kept readable below a local snapshot so that slightly lagging followers catch up from the log (etcd's SnapshotCatchUpEntries). */
  snapshotCatchUpEntries: 5_000,
} as const;

export interface ReplicatedLogOptions<R = unknown> {
  /** Where the WAL and the snapshots live (`wal/`, `snapshots/`). Required, even when `deps` supplies the storage. */
  dataDir: string;
  /** This node's id (positive integer). Default `DEFAULTS.id`. */
  id?: number;
  /** Every member of a new cluster, this node included: { id: 'host:port' }. None: a single-node embedded log. */
  peers?: Record<number, string>;
  /** 'host:port' to accept peers on. Default: this node's entry in `peers`. */
  listen?: string;
  /** Nodes of different clusters refuse each other. At most 256 UTF-8 bytes, not blank, without control characters. Default `DEFAULTS.clusterId`. */
  clusterId?: string;
  stateMachine?: StateMachine<R>;
  /** Take a snapshot (and release the WAL below it) every this many applied records. Default `DEFAULTS.snapshotEvery`. */
  snapshotEvery?: number;
  /**
   * After a local snapshot, keep this many entries below it readable (in memory, at most
   * 8 MiB of them: they are read when the snapshot is taken) so that a follower a little
   * behind catches up from the log rather than by a whole snapshot.
   * 0 releases everything the snapshot covers. Default `DEFAULTS.snapshotCatchUpEntries`.
   */
  snapshotCatchUpEntries?: number;
  /**
   * promote() (and a promotion inside changeMembership) refuses with NOT_CAUGHT_UP while the
   * learner is more than this many entries behind the leader's last index. Default `DEFAULTS.promoteMaxLag`.
   */
  promoteMaxLag?: number;
  /** Milliseconds per raft tick; `electionTicks × tickMs` must be at least 100 ms. Default `DEFAULTS.tickMs`. */
  tickMs?: number;
  /** Election timeout in ticks (randomized up to twice this); `electionTicks × tickMs` must be at least 100 ms. Default `DEFAULTS.electionTicks`. */
  electionTicks?: number;
  /** Heartbeat interval in ticks, below electionTicks. Default `DEFAULTS.heartbeatTicks`. */
  heartbeatTicks?: number;
  /**
   * An append, barrier or membership change not settled by then is rejected (an append
   * already proposed, at the first tick after it: within `tickMs`). Default `DEFAULTS.timeoutMs`.
   */
  timeoutMs?: number;
  /** WAL segment size, 4 KiB to 1 GiB. Default the WAL's (64 MiB; a small log takes far less: see `preallocate`). */
  segmentBytes?: number;
  /** 'none' skips fdatasync: for tests and benchmarks only, it loses acknowledged records on power loss. Default `DEFAULTS.sync`. */
  sync?: 'always' | 'none';
  /**
   * How the WAL prepares segments. Default `DEFAULTS.preallocate` (the WAL's, 'zeros': a
   * segment is zeroed a few MiB ahead of the records, about 2 MiB for a fresh log). 'none':
   * files grow with the appends (a few KiB for a fresh log); 'fallocate' reserves whole
   * segments (128 MiB from the first append).
   */
  preallocate?: 'zeros' | 'fallocate' | 'none';
  /**
   * Memory the WAL's cache of recent entries may hold (bytes). Reads of recent entries,
   * a follower's catch-up and a snapshot's catch-up window come from it; what it no
   * longer holds is read from disk. Lower it where one process embeds many logs.
   * 0 caches nothing. Default `DEFAULTS.cacheBytes` (the WAL's, 16 MiB).
   */
  cacheBytes?: number;
  /**
   * The largest record append() accepts (bytes). The peer frame limit derives from it,
   * so every record accepted can replicate. At most 1 GiB less 1 MiB (the WAL's largest entry,
   * less room for a batch's header). Default `DEFAULTS.maxRecordBytes`.
   */
  maxRecordBytes?: number;
  /** Appends in flight on this node beyond which append() rejects at once with OVERLOADED. Default `DEFAULTS.maxPendingAppends`. */
  maxPendingAppends?: number;
  /** Bytes of appends in flight on this node beyond which append() rejects at once with OVERLOADED; at least `maxRecordBytes`. Default `DEFAULTS.maxPendingBytes`. */
  maxPendingBytes?: number;
  /**
   * The largest snapshot accepted from a peer (bytes of its file). A snapshot arriving
   * is written to the snapshot directory, never held in memory, and checked before it
   * is installed; one larger than this is refused as soon as it is announced. Default
   * `DEFAULTS.maxSnapshotBytes`.
   */
  maxSnapshotBytes?: number;
  /**
   * Entry bytes a leader keeps in flight to one follower, sent and not yet acknowledged.
   * Raise it where the round trip to a follower is long (its bandwidth times its round-trip
   * time); each window is encoded in one turn of the leader's event loop. Default
   * `DEFAULTS.maxInflightBytes`.
   */
  maxInflightBytes?: number;
  /**
   * The secret peers prove to each other (at least 16 bytes; the same on every node).
   * A list accepts any of them and proves with the first: rotate by deploying
   * `[old, new]`, then `[new, old]`, then `[new]`. A log that uses the TCP transport
   * needs this, `tls`, or `insecure: true`.
   */
  clusterSecret?: Secret | Secret[];
  /** Mutual TLS between peers; each certificate names its node (SAN URI `raftlog://node/<id>`). */
  tls?: TlsOptions;
  /**
   * Run the TCP transport without authenticating peers: anyone who can reach the port
   * can then rewrite the log. For a trusted network only; a warning is logged at open.
   */
  insecure?: boolean;
  /**
   * Start as a member just added to a running cluster (`addMember`/`addLearner` on its
   * leader first): the node does not bootstrap a configuration of its own from `peers`,
   * it takes the cluster's from the leader. `peers` names the existing members (whose
   * messages it accepts) and this node. Keep it on every restart of that node.
   */
  join?: boolean;
  /**
   * Aborts the open: open() then rejects with LOG_OPEN_ABORTED once what it took is released.
   * A state machine's restore() runs inside open() and may take long, or never settle:
   * `AbortSignal.timeout(ms)` bounds it. Aborting after open() resolved does nothing.
   */
  signal?: AbortSignal;
  /**
   * Where the node reports what an operator needs to know (a pino logger fits:
   * `trace/debug/info/warn/error(fields, message)` and `child(bindings)`). Default: silent.
   * A call that throws or returns a promise that rejects loses its line, and nothing else.
   */
  logger?: Logger;
}

type Check = (v: unknown) => string | null;

const positiveInt: Check = (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? null : 'must be a positive integer');
const timerMs: Check = (v) => (positiveInt(v) === null && (v as number) <= MAX_TIMER_MS ? null : `must be a positive integer of at most ${MAX_TIMER_MS} ms`);
/**
 * A record goes into the WAL as one entry (with its batch's few header bytes), and the WAL
 * takes an entry of at most MAX_PAYLOAD: a larger record would be accepted by append() and
 * then stop the node when written. A MiB is left for the header, with room to spare.
 */
const MAX_RECORD_BYTES = MAX_PAYLOAD - 1024 * 1024;
const recordBytes: Check = (v) =>
  positiveInt(v) === null && (v as number) <= MAX_RECORD_BYTES
    ? null
    : `must be a positive integer of at most ${MAX_RECORD_BYTES} (the WAL's largest entry, less a MiB)`;
/** The WAL's bounds: it would refuse another size too, but as WAL_INVALID_ARGUMENT. */
const segmentBytes: Check = (v) =>
  positiveInt(v) === null && (v as number) >= 4096 && (v as number) <= 2 ** 30 ? null : 'must be an integer from 4096 to 2^30';
const nonNegativeInt: Check = (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? null : 'must be a non-negative integer');
const nonEmptyString: Check = (v) => (typeof v === 'string' && v !== '' ? null : 'must be a non-empty string');
const clusterId: Check = (v) => (isClusterId(v) ? null : `must be ${CLUSTER_ID_RULE}`);
const oneOf =
  (...allowed: string[]): Check =>
  (v) =>
    typeof v === 'string' && allowed.includes(v) ? null : `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`;
const isSecret = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);
const isPlainObject = (v: unknown): boolean => typeof v === 'object' && v !== null && [Object.prototype, null].includes(Object.getPrototypeOf(v));
const isPem = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);
/** Without its key, certificate or CA a TLS listener opens, and no peer can ever complete a handshake with it. */
const tlsMaterial: Check = (v) => {
  const t = v as Record<string, unknown>;
  const ok =
    isPlainObject(v) &&
    Object.keys(t).every((k) => k === 'key' || k === 'cert' || k === 'ca') &&
    isPem(t.key) &&
    isPem(t.cert) &&
    (isPem(t.ca) || (Array.isArray(t.ca) && t.ca.length > 0 && t.ca.every(isPem)));
  return ok ? null : 'must have key, cert and ca (each a string or a Buffer; ca may be a list of them), and nothing else';
};
/** A Map or an array has no own entries to read peers from: the node would open alone. */
const peerTable: Check = (v) => (isPlainObject(v) ? null : "must be an object of id: 'host:port'");
const address: Check = (v) =>
  typeof v === 'string' && isHostPort(v) ? null : `must be 'host:port', with a port up to 65535 and a host of at most ${MAX_HOST_LENGTH} characters`;
const hasMethods =
  (...names: string[]): Check =>
  (v) =>
    typeof v === 'object' && v !== null && names.every((n) => typeof (v as Record<string, unknown>)[n] === 'function')
      ? null
      : `must have the methods ${names.join(', ')}`;

const CHECKS: Record<keyof ReplicatedLogOptions, Check> = {
  dataDir: nonEmptyString,
  id: positiveInt,
  peers: peerTable,
  listen: address,
  clusterId,
  stateMachine: hasMethods('apply', 'snapshot', 'restore'),
  snapshotEvery: positiveInt,
  snapshotCatchUpEntries: nonNegativeInt,
  promoteMaxLag: nonNegativeInt,
  tickMs: timerMs,
  electionTicks: positiveInt,
  heartbeatTicks: positiveInt,
  timeoutMs: timerMs,
  segmentBytes,
  sync: oneOf('always', 'none'),
  preallocate: oneOf('zeros', 'fallocate', 'none'),
  cacheBytes: nonNegativeInt,
  maxRecordBytes: recordBytes,
  maxPendingAppends: positiveInt,
  maxPendingBytes: positiveInt,
  maxSnapshotBytes: positiveInt,
  maxInflightBytes: positiveInt,
  clusterSecret: (v) =>
    isSecret(v) || (Array.isArray(v) && v.length > 0 && v.every(isSecret)) ? null : 'must be a string, a Buffer, or a non-empty list of them',
  tls: tlsMaterial,
  insecure: (v) => (typeof v === 'boolean' ? null : 'must be a boolean'),
  join: (v) => (typeof v === 'boolean' ? null : 'must be a boolean'),
  logger: hasMethods('trace', 'debug', 'info', 'warn', 'error', 'child'),
  signal: (v) => (v instanceof AbortSignal ? null : 'must be an AbortSignal'),
};

/**
 * The shortest election timeout open() takes. A follower that hears nothing for one campaigns,
 * and a leader's heartbeat reaches it only after the leader's turn, the network and the
 * follower's own turn, any of them held up by an fsync, a garbage collection or a descheduled
 * process: a turn held up 85 ms was seen on a shared 2-vCPU machine. 100 ms is the shortest
 * timeout the cluster tests run with there.
 */
export const MIN_ELECTION_MS = 100;

/** Refuses unknown keys, wrong types and inconsistent values, naming the key. */
export function validateOptions<R>(options: ReplicatedLogOptions<R>): ReplicatedLogOptions<R> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('ReplicatedLog.open(options): options must be an object');
  try {
    // Own keys, each read once: what is checked is what is used, whatever the prototype holds
    // (a polluted Object.prototype's dataDir or heartbeatTicks) and whatever a getter returns next.
    return checkOptions({ ...options });
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`ReplicatedLog.open: the options cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function checkOptions<R>(o: ReplicatedLogOptions<R>): ReplicatedLogOptions<R> {
  if (o.dataDir === undefined) throw new InvalidArgumentError('ReplicatedLog.open: dataDir is required');
  for (const [key, value] of Object.entries(o)) {
    // An own '__proto__' or 'constructor' key (JSON.parse makes them) names no option, whatever Object.prototype has.
    const check = Object.hasOwn(CHECKS, key) ? (CHECKS as Record<string, Check>)[key] : undefined;
    if (check === undefined) throw new InvalidArgumentError(`ReplicatedLog.open: unknown option '${key}'`);
    if (value === undefined) continue;
    const why = check(value);
    if (why !== null) throw new InvalidArgumentError(`ReplicatedLog.open: ${key} ${why}, got ${shown(key, value)}`);
  }
  if (o.peers !== undefined) {
    for (const [k, v] of Object.entries(o.peers)) {
      if (!/^[1-9]\d*$/.test(k) || !Number.isSafeInteger(Number(k)) || address(v) !== null) {
        throw new InvalidArgumentError(`ReplicatedLog.open: bad peer ${k}=${describe(v)} (want a positive id and 'host:port')`);
      }
    }
  }
  checkCredentials(o, 'ReplicatedLog.open', o.id ?? DEFAULTS.id);
  const record = o.maxRecordBytes ?? DEFAULTS.maxRecordBytes;
  const pending = o.maxPendingBytes ?? DEFAULTS.maxPendingBytes;
  // A record over maxPendingBytes would be refused as OVERLOADED ('retry later') even on an idle log.
  if (pending < record) throw new InvalidArgumentError(`ReplicatedLog.open: maxPendingBytes (${pending}) must be at least maxRecordBytes (${record})`);
  const heartbeat = o.heartbeatTicks ?? DEFAULTS.heartbeatTicks;
  const election = o.electionTicks ?? DEFAULTS.electionTicks;
  if (heartbeat >= election) throw new InvalidArgumentError(`ReplicatedLog.open: heartbeatTicks (${heartbeat}) must be below electionTicks (${election})`);
  // The transport closes a peer connection quiet for three election timeouts, on a Node timer.
  const electionMs = election * (o.tickMs ?? DEFAULTS.tickMs);
  if (electionMs < MIN_ELECTION_MS)
    throw new InvalidArgumentError(
      `ReplicatedLog.open: electionTicks × tickMs (${electionMs} ms) must be at least ${MIN_ELECTION_MS} ms: a shorter election timeout is outlasted by a loaded node's pauses, and its followers elect over and over`,
    );
  if (3 * electionMs > MAX_TIMER_MS)
    throw new InvalidArgumentError(
      `ReplicatedLog.open: electionTicks × tickMs (${electionMs} ms) must be at most ${Math.floor(MAX_TIMER_MS / 3)} ms: three of them must fit a Node timer`,
    );
  const id = o.id ?? DEFAULTS.id;
  const memberIds = Object.keys(o.peers ?? {}).map(Number);
  if (memberIds.length > 0 && !memberIds.includes(id)) throw new InvalidArgumentError(`peers must include this node's id ${id}`);
  if (o.join === true && memberIds.length < 2) throw new InvalidArgumentError('join: peers must name the members to join as well as this node');
  return o;
}

/** The methods open() calls on each part a caller may supply (see ReplicatedLogDeps). */
const DEP_CHECKS: Record<string, Check> = {
  wal: hasMethods('append', 'entriesSync', 'entries', 'term', 'dataLength', 'saveSnapshot', 'releaseTo', 'close'),
  snapshots: hasMethods('save', 'install', 'load', 'read', 'open', 'spool', 'discard', 'prune'),
  transport: (v) => (v === null ? null : hasMethods('start', 'send', 'addPeer', 'removePeer', 'close')(v)),
  clock: hasMethods('setTimeout', 'defer'),
  random: (v) => (typeof v === 'function' ? null : 'must be a function'),
  logger: CHECKS.logger,
  peerInstances: (v) => (v === null ? null : hasMethods('forget', 'settled')(v)),
};

/**
 * Refuses a part open() would fail on only later, deep inside and uncoded (a number for the
 * WAL, a misspelt key that leaves the default in place), before anything is opened.
 * Returns the copy to use.
 */
export function validateDeps<D extends object>(deps: D | undefined): D | undefined {
  if (deps === undefined) return undefined;
  if (!isPlainObject(deps)) throw new InvalidArgumentError(`ReplicatedLog.open(options, deps): deps must be an object, got ${describe(deps)}`);
  try {
    // Own keys, read once, as for the options.
    const copy = { ...deps };
    for (const [key, value] of Object.entries(copy)) {
      const check = Object.hasOwn(DEP_CHECKS, key) ? DEP_CHECKS[key] : undefined;
      if (check === undefined) throw new InvalidArgumentError(`ReplicatedLog.open: unknown dependency '${key}'`);
      if (value === undefined) continue;
      const why = check(value);
      if (why !== null) throw new InvalidArgumentError(`ReplicatedLog.open: deps.${key} ${why}, got ${describe(value)}`);
    }
    return copy;
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`ReplicatedLog.open: the deps cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export interface Credentials {
  clusterSecret?: Secret | Secret[];
  tls?: TlsOptions;
}

/**
 * What reloadCredentials() takes, checked as open() checks it: a misspelt key or nothing to
 * reload would leave the old credentials in force and say nothing.
 */
export function validateCredentials(c: Credentials): void {
  const where = 'reloadCredentials';
  if (!isPlainObject(c)) throw new InvalidArgumentError(`${where}(credentials): credentials must be an object, got ${describe(c)}`);
  for (const [key, value] of Object.entries(c)) {
    if (key !== 'clusterSecret' && key !== 'tls') throw new InvalidArgumentError(`${where}: unknown option '${key}'`);
    const why = value === undefined ? null : CHECKS[key](value);
    if (why !== null) throw new InvalidArgumentError(`${where}: ${key} ${why}, got ${shown(key, value)}`);
  }
  if (c.clusterSecret === undefined && c.tls === undefined) throw new InvalidArgumentError(`${where} needs clusterSecret or tls`);
  checkCredentials(c, where);
}

/**
 * The values of clusterSecret and tls, once their types are checked. `id`: the node the
 * certificate must name, when known (a reload's transport checks its own).
 */
function checkCredentials(c: Credentials, where: string, id?: number): void {
  for (const secret of c.clusterSecret === undefined ? [] : [c.clusterSecret].flat()) {
    if (Buffer.byteLength(secret) < MIN_SECRET_BYTES)
      throw new InvalidArgumentError(`${where}: every clusterSecret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  if (c.tls !== undefined) {
    // Unreadable key or certificate material fails here, named, before any file or socket exists.
    try {
      secureContext(c.tls, id);
    } catch (err) {
      throw new InvalidArgumentError(`${where}: ${(err as Error).message}`);
    }
  }
}

type Defaulted = keyof typeof DEFAULTS;

/** The options with every default filled in from DEFAULTS. */
export type ResolvedOptions<R = unknown> = Omit<ReplicatedLogOptions<R>, Defaulted | 'peers'> & {
  [K in Defaulted]-?: NonNullable<ReplicatedLogOptions<R>[K]>;
} & { peers: Record<number, string> };

/** Validates the options (see validateOptions) and fills in the defaults. */
export function resolveOptions<R>(options: ReplicatedLogOptions<R>): ResolvedOptions<R> {
  const o = validateOptions(options);
  const resolved: Record<string, unknown> = { ...o, peers: o.peers ?? {} };
  for (const [key, value] of Object.entries(DEFAULTS)) resolved[key] ??= value;
  return resolved as ResolvedOptions<R>;
}

/** Credentials: a value of the wrong type may still be the secret or the key itself (a number, a PEM string). */
const SECRET_OPTIONS = new Set(['clusterSecret', 'tls']);

/** `v` as an error message shows it; the value of a credential never, since the message may reach a log. */
function shown(key: string, v: unknown): string {
  if (!SECRET_OPTIONS.has(key)) return describe(v);
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a value of type ${typeof v}`;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v !== 'object' || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  const name = isPlainObject(v) ? undefined : (v as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
}

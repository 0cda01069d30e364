// `raftlog serve`: one node of a cluster, with the example key-value store
// served over the Redis protocol.
import { statSync } from 'node:fs';
import { codeOf } from '../errors.js';
import { DEFAULTS } from '../log/options.js';
import { ReplicatedLog } from '../log/replicated-log.js';
import { NullStateMachine, type StateMachine } from '../log/state-machine.js';
import { KvStateMachine, serveResp } from '../kv/index.js';
import { serveAdmin, isLoopback } from '../admin/server.js';
import { isPeerAddress } from '../transport/address.js';
import { CLUSTER_ID_RULE, isClusterId } from '../transport/cluster-id.js';
import { UsageError, addressArg, fileArg, firstLineOf, intArg, linesOf, parseArgs, parsePeers, strArg } from './args.js';
import { adminTokenOf, badPortReason, fetchRefusesPort } from './admin-client.js';
import { runCommand } from './failure.js';
import { refuseUnlistenable } from './ports.js';
import { cliLogger, parseLogOptions } from './logging.js';
import type { Logger } from '../logger.js';

const USAGE = `usage: raftlog serve --id N --data DIR [--listen HOST:PORT] [--peers 1=HOST:PORT,...] [--resp HOST:PORT]
                     [--cluster-id ID] [--sync always|none] [--preallocate zeros|fallocate|none]
                     [--snapshot-every N] [--state-machine kv|none] [--requirepass-file FILE] [--max-clients N]
                     [--cluster-secret-file FILE] [--tls-cert FILE --tls-key FILE --tls-ca FILE] [--insecure]
                     [--join] [--admin HOST:PORT [--admin-token-file FILE]]
                     [--log-level trace|debug|info|warn|error|fatal|silent] [--log-format pretty|json] [--debug]
Runs one node. Without --peers it is a single-node log. Its peers reach it at the port
--peers names, for good: port 0 (a new free port at every start) is refused there and for
--listen, but for a node alone. With --peers or --listen, peers
authenticate with a shared secret (--cluster-secret-file, the same file on every node: each
line a secret of at least 16 bytes that is accepted, the first the one this node proves),
mutual TLS (certificates naming the node as SAN URI raftlog://node/<id>), or both (the
secret proved over TLS); --insecure runs without either, for a trusted network only (given
with one, it changes nothing). A secret file's line ends at LF or CRLF and the rest
of it is the secret, byte for byte: a line that is empty or begins or ends with whitespace
is refused, not trimmed. SIGHUP re-reads the secret and certificate files
(rotation without a restart: lines old+new, then new+old, then new; a node without them
logs that it has none and goes on). --resp serves the key-value
example over the Redis protocol (redis-cli works); without a password (the first line of
--requirepass-file) it serves only loopback clients. Prints 'leader N term T' when the
leader it knows changes. SIGINT/SIGTERM stop it cleanly, while it starts too (another
while it stops is ignored: SIGKILL stops it at once). If the node stops on a
storage failure or a corrupt entry (LOG_FATAL, LOG_CORRUPT) it exits with status 1,
so that a supervisor restarts it (its --admin endpoint, closed last, answers /health 503 with
the reason until the log is closed); any other failure to start is one line on stderr with
its code, exit status 1 (2 for bad flags); a port in use or an address not this machine's
is found, naming its flag, before the data directory is made. A flag that qualifies
another is refused without it: --requirepass-file and --max-clients without --resp,
--admin-token-file without --admin, and --cluster-secret-file, --tls-cert, --tls-key,
--tls-ca, --insecure and --cluster-id without --peers or --listen.
--join starts a node that was added with \`raftlog member add\`: --peers names the
existing members and this node; it takes the cluster's configuration from the leader
and never bootstraps its own. Keep --join on its later restarts.
--admin serves /health, /status, /metrics (Prometheus) and the operations of
\`raftlog status|member|leader|snapshot\` over HTTP. Off loopback it requires the bearer
token on the first line of --admin-token-file. A port Node's fetch will not connect to
(6000, 10080, ...: the operator commands could not reach it) is refused.
Logs: pretty lines on stderr (default, level info), or with --log-format json every line
this node prints is a JSON object on stdout.`;

export async function main(args: string[]): Promise<number> {
  return runCommand('serve', USAGE, args, async (a) => {
    const opts = parseArgs(a, {
      id: 'string',
      data: 'string',
      listen: 'string',
      peers: 'string',
      resp: 'string',
      'cluster-id': 'string',
      sync: 'string',
      preallocate: 'string',
      'snapshot-every': 'string',
      'state-machine': 'string',
      help: 'boolean',
      'requirepass-file': 'string',
      'max-clients': 'string',
      'cluster-secret-file': 'string',
      'tls-cert': 'string',
      'tls-key': 'string',
      'tls-ca': 'string',
      insecure: 'boolean',
      join: 'boolean',
      admin: 'string',
      'admin-token-file': 'string',
      'log-level': 'string',
      'log-format': 'string',
    });
    return serve(opts);
  });
}

async function serve(opts: Map<string, string | true>): Promise<number> {
  const id = intArg(opts, 'id', undefined, 1);
  const dataDir = strArg(opts, 'data');
  const peers = opts.has('peers') ? parsePeers(strArg(opts, 'peers')) : undefined;
  if (peers !== undefined && peers[id] === undefined) throw new UsageError(`--peers must include this node's id ${id}`);
  if (opts.has('join') && (peers === undefined || Object.keys(peers).length < 2))
    throw new UsageError('--join needs --peers naming the existing members and this node');
  const logOpts = parseLogOptions(strArg(opts, 'log-level', 'info'), strArg(opts, 'log-format', 'pretty'));
  const json = logOpts.format === 'json';
  const root = cliLogger(logOpts.level, logOpts.format);
  const logger = root.child({ node: id });
  // In pretty mode the node's own announcements stay plain lines on stdout (scripts read them);
  // in json mode they are records like every other line.
  const say = (fields: Record<string, unknown>, message: string): void => {
    if (json) logger.info(fields, message);
    else console.log(message);
  };
  // A flag that only qualifies another does nothing alone: refused, or the operator would
  // believe a password or a token guards a port the node never opens.
  for (const [flag, needs] of [
    ['admin-token-file', 'admin'],
    ['requirepass-file', 'resp'],
    ['max-clients', 'resp'],
  ] as const) {
    if (opts.has(flag) && !opts.has(needs)) throw new UsageError(`--${flag} applies to --${needs}, which is not given`);
  }
  // Without a peer port the node talks to no peer: its secret, certificates or cluster id would go unused.
  for (const flag of ['cluster-secret-file', 'tls-cert', 'tls-key', 'tls-ca', 'insecure', 'cluster-id']) {
    if (opts.has(flag) && !opts.has('peers') && !opts.has('listen'))
      throw new UsageError(`--${flag} applies to --peers or --listen, neither of which is given`);
  }
  // Refused by the log too, but as a failed start: a flag the operator must fix is a usage error.
  if (opts.has('cluster-id') && !isClusterId(strArg(opts, 'cluster-id'))) throw new UsageError(`--cluster-id must be ${CLUSTER_ID_RULE}`);
  warnIfOthersMayRead(opts, logger);
  const adminAddress = opts.has('admin') ? addressArg(opts, 'admin') : undefined;
  const respAddress = opts.has('resp') ? addressArg(opts, 'resp') : undefined;
  const listen = opts.has('listen') ? addressArg(opts, 'listen') : undefined;
  refuseNewPortEachStart(peers, listen, id);
  const adminToken = adminTokenOf(opts);
  if (adminAddress !== undefined) {
    const host = adminAddress.slice(0, adminAddress.lastIndexOf(':'));
    if (!isLoopback(host) && adminToken === undefined) throw new UsageError(`--admin ${adminAddress} is not loopback: give --admin-token-file`);
    const port = Number(adminAddress.slice(adminAddress.lastIndexOf(':') + 1));
    // Refused, not warned of: the node would run, and be found unreachable when it is operated.
    if (fetchRefusesPort(port))
      throw new UsageError(
        `--admin: ${badPortReason(port)}: raftlog status and the other operator commands could not reach the node; serve it on another port`,
      );
  }
  const sync = strArg(opts, 'sync', 'always');
  if (sync !== 'always' && sync !== 'none') throw new UsageError(`--sync must be 'always' or 'none'`);
  const preallocate = strArg(opts, 'preallocate', DEFAULTS.preallocate);
  if (preallocate !== 'zeros' && preallocate !== 'fallocate' && preallocate !== 'none') throw new UsageError(`--preallocate must be zeros, fallocate or none`);
  const machine = strArg(opts, 'state-machine', 'kv');
  if (machine !== 'kv' && machine !== 'none') throw new UsageError(`--state-machine must be 'kv' or 'none'`);
  // Without the store there is nothing to serve: the node came up without the port, and its clients were refused.
  if (machine !== 'kv' && opts.has('resp')) throw new UsageError('--resp serves the key-value store: it needs --state-machine kv');
  const kv = machine === 'kv' ? new KvStateMachine() : null;
  const snapshotEvery = opts.has('snapshot-every') ? intArg(opts, 'snapshot-every', undefined, 1) : undefined;

  const access = respAccess(opts); // checked before the log opens, so a bad flag leaves nothing open
  const credentials = (): PeerCredentials => peerCredentials(opts);
  const peerAuth = credentials();
  if ((peers !== undefined || opts.has('listen')) && peerAuth.clusterSecret === undefined && peerAuth.tls === undefined && !opts.has('insecure')) {
    throw new UsageError('peers must authenticate: give --cluster-secret-file, or --tls-cert/--tls-key/--tls-ca, or --insecure on a trusted network');
  }
  await refuseUnlistenable([
    ...(listen !== undefined ? [['listen', listen] as const] : peers !== undefined ? [['peers', peers[id]!] as const] : []),
    ...(respAddress !== undefined ? [['resp', respAddress] as const] : []),
    ...(adminAddress !== undefined ? [['admin', adminAddress] as const] : []),
  ]);
  // A node still starting is stopped by a signal too (a state machine's restore inside the open
  // may take minutes): unhandled, the signal's default action ended the process mid-open.
  // A SIGHUP meanwhile is answered once the node is up: the files may have changed since they were read.
  const starting = new AbortController();
  let reloadAsked = false;
  const stopStarting = (signal: NodeJS.Signals): void => starting.abort(new Error(`${signal} while the node started`));
  const reloadLater = (): void => void (reloadAsked = true);
  const startingSignals = (on: boolean): void => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process[on ? 'on' : 'off'](signal, stopStarting);
    process[on ? 'on' : 'off']('SIGHUP', reloadLater);
  };
  startingSignals(true);
  let log: ReplicatedLog<unknown>;
  try {
    log = await ReplicatedLog.open<unknown>({
      dataDir,
      id,
      peers,
      listen,
      clusterId: opts.has('cluster-id') ? strArg(opts, 'cluster-id') : undefined,
      stateMachine: (kv ?? new NullStateMachine()) as StateMachine<unknown>,
      snapshotEvery,
      sync,
      preallocate,
      ...peerAuth,
      ...(opts.has('insecure') ? { insecure: true } : {}),
      ...(opts.has('join') ? { join: true } : {}),
      logger: root,
      signal: starting.signal,
    });
  } catch (err) {
    startingSignals(false);
    if (codeOf(err) !== 'LOG_OPEN_ABORTED' || !starting.signal.aborted) throw err;
    say({}, `node ${id} stopped before it was up`);
    return 0;
  }
  let resp: Awaited<ReturnType<typeof serveResp>> | null = null;
  let admin: Awaited<ReturnType<typeof serveAdmin>> | null = null;
  try {
    // Alone at its first start, it has been given members since, who know it at the port it had then.
    const own = listen ?? peers?.[id];
    const members = Object.keys(log.status().members).length;
    if (own !== undefined && !isPeerAddress(own) && members > 1)
      throw new UsageError(
        `--${listen !== undefined ? 'listen' : 'peers'}: ${own} is a new free port at every start, and this node has ${members - 1} other member(s), who know it at the port it had: listen on that port (raftlog status on a member shows it)`,
      );
    resp = respAddress !== undefined && kv !== null ? await serveResp({ log, kv, address: respAddress, ...access, sync, logger: root }) : null;
    admin =
      adminAddress !== undefined
        ? await serveAdmin({ log, address: adminAddress, token: adminToken, stateMachine: kv ?? undefined, logger: root, resp: resp ?? undefined })
        : null;
  } catch (err) {
    startingSignals(false);
    await stopNode({ resp, log, admin: null });
    throw err;
  }
  // The handlers are in place before the node says it is up: a supervisor (or a test) that
  // signals it at once must not meet the default action, which kills it.
  let fatal: { code: string; message: string } | undefined;
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  // Rotation: the operator replaces the files, then signals every node. Handled whether or not
  // this node has files to re-read, and until it has stopped: unhandled, the signal's default
  // action killed the node (a fleet-wide SIGHUP reaching one started with --insecure, or one
  // closing), its log never closed.
  const reloadable = peerAuth.clusterSecret !== undefined || peerAuth.tls !== undefined;
  const reload = (): void => {
    if (!reloadable) {
      logger.warn({ signal: 'SIGHUP' }, 'SIGHUP: this node has no secret or certificate files to re-read; it goes on');
      return;
    }
    try {
      log.reloadCredentials(credentials());
      logger.info({}, 'peer credentials reloaded');
    } catch (err) {
      logger.error({ err, code: codeOf(err) }, `SIGHUP: credentials not reloaded, the old ones stay: ${(err as Error).message}`);
    }
  };
  process.on('SIGHUP', reload);
  // Held until the node has stopped: a signal with no handler meets the default action, and a
  // second SIGTERM (a supervisor's, on a node that stops on LOG_FATAL) killed it mid-close.
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) logger.warn({ signal }, `${signal}: stopping already, once the log is closed (SIGKILL stops at once)`);
    stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  startingSignals(false);
  if (starting.signal.aborted) stop(); // asked while the ports opened
  if (reloadAsked) reload();
  // Started by `raftlog cluster` (an IPC channel): when that parent dies, however it
  // dies, the channel closes and the node stops instead of running on as an orphan.
  // A channel that closed while the node started has already said so: waited for, it never did.
  if (process.send !== undefined) {
    if (process.connected) process.once('disconnect', stop);
    else stop();
  }
  // The peer port is named as the members know it: with --listen on port 0, the port it got.
  const peerAddress = peers !== undefined || listen !== undefined ? log.status().members[id] : undefined;
  say(
    { dataDir, peers: peerAddress, resp: resp?.address, admin: admin?.address },
    `node ${id} up: data ${dataDir}${peerAddress ? `, peers ${peerAddress}` : ''}${resp ? `, resp ${resp.address}` : ''}${admin ? `, admin ${admin.address}` : ''}`,
  );

  const onLeader = (e: { id: number; term: number }): void => say({ leader: e.id, term: e.term }, `leader ${e.id} term ${e.term}`);
  const onFatal = (f: { code: string; message: string }): void => {
    // A dead node must not look alive (answering PING, holding its port): exit and be restarted.
    fatal = f;
    stop();
  };
  log.on('leader', onLeader);
  log.on('fatal', onFatal);
  // The log's timers do not hold the process open (an embedded log must not); a node
  // serving nothing but its data directory must still run until it is stopped.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  // What happened before the listeners were attached (open() elects a single node itself).
  const now = log.status();
  if (now.fatal !== undefined) onFatal(now.fatal);
  else if (now.lead !== 0) onLeader({ id: now.lead, term: now.term });

  await stopped;
  stopping = true;
  process.off('disconnect', stop);
  clearInterval(keepAlive);
  log.off('leader', onLeader);
  log.off('fatal', onFatal);
  try {
    await stopNode({ resp, log, admin });
  } finally {
    process.off('SIGHUP', reload);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (fatal !== undefined) {
    if (json) logger.fatal({ code: fatal.code }, `node ${id} stopped: ${fatal.code}: ${fatal.message}`);
    console.error(`raftlog serve: node ${id} stopped: ${fatal.code}: ${fatal.message}`);
    return 1;
  }
  say({}, `node ${id} stopped`);
  return 0;
}

/**
 * Port 0 is a new free port at every start. A node's peers reach it, for good, at the address
 * --peers names: one given as port 0 could never be reached, and a node that listens on port 0
 * would be lost to them. A node alone may take any port.
 */
function refuseNewPortEachStart(peers: Record<number, string> | undefined, listen: string | undefined, id: number): void {
  if (peers === undefined || Object.keys(peers).length < 2) return;
  for (const [k, address] of Object.entries(peers))
    if (!isPeerAddress(address))
      throw new UsageError(`--peers: node ${k} at ${address} has no port of its own (port 0 is a new free port at every start): its peers could not reach it`);
  if (listen !== undefined && !isPeerAddress(listen))
    throw new UsageError(`--listen: ${listen} is a new free port at every start, not the ${peers[id]} its peers reach it at: listen on that port`);
}

interface Closable {
  close(): Promise<void>;
}

/**
 * Stops a node's parts in the order an operator and a supervisor need. The RESP port first: a
 * node going down must not answer clients (PING least of all) as if it served them. The log
 * next, whole: its grace for appends to commit and the release of its files. The admin
 * endpoint last, also when the log's close fails: until then /health answers 503 with why the
 * node is going (LOG_FATAL and its message, or LOG_CLOSED), where a refused connection would
 * read as a crash or a network fault.
 */
export async function stopNode({ resp, log, admin }: { resp: Closable | null; log: Closable; admin: Closable | null }): Promise<void> {
  try {
    await resp?.close();
    await log.close();
  } finally {
    await admin?.close();
  }
}

/** --requirepass-file (its first line, so the password stays out of `ps`) and --max-clients. */
function respAccess(opts: Map<string, string | true>): { requirepass?: string; maxClients?: number } {
  const out: { requirepass?: string; maxClients?: number } = {};
  const pass = firstLineOf(opts, 'requirepass-file', 'the password');
  if (pass !== undefined) out.requirepass = pass;
  if (opts.has('max-clients')) out.maxClients = intArg(opts, 'max-clients', undefined, 1);
  return out;
}

interface PeerCredentials {
  clusterSecret?: string[];
  tls?: { key: Buffer; cert: Buffer; ca: Buffer };
}

/**
 * A secret in a file other users may read is theirs too. Only a warning: a secret mounted by
 * an orchestrator is often mode 0644 inside a container no other user shares, and refusing
 * it would stop such a node from starting after an upgrade.
 */
function warnIfOthersMayRead(opts: Map<string, string | true>, logger: Logger): void {
  for (const flag of ['cluster-secret-file', 'tls-key', 'requirepass-file', 'admin-token-file']) {
    if (!opts.has(flag)) continue;
    const file = strArg(opts, flag);
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch {
      continue; // reading it reports what is wrong, as a usage error
    }
    if ((mode & 0o077) !== 0) {
      const octal = (mode & 0o777).toString(8).padStart(4, '0');
      logger.warn({ flag, file, mode: octal }, `--${flag} ${file} may be read by other users (mode ${octal}): chmod 600 it`);
    }
  }
}

/**
 * --cluster-secret-file (its lines are the secrets accepted, the first proves this node:
 * a rotation writes "old\nnew", then "new\nold", then "new") and --tls-cert/--tls-key/--tls-ca.
 */
function peerCredentials(opts: Map<string, string | true>): PeerCredentials {
  const out: PeerCredentials = {};
  const secrets = linesOf(opts, 'cluster-secret-file', 'a secret');
  if (secrets !== undefined) {
    for (const s of secrets) if (Buffer.byteLength(s) < 16) throw new UsageError('--cluster-secret-file: every secret must be at least 16 bytes');
    out.clusterSecret = secrets;
  }
  const tlsFlags = ['tls-cert', 'tls-key', 'tls-ca'].filter((f) => opts.has(f));
  if (tlsFlags.length > 0) {
    if (tlsFlags.length < 3) throw new UsageError('--tls-cert, --tls-key and --tls-ca go together');
    out.tls = { cert: fileArg(opts, 'tls-cert'), key: fileArg(opts, 'tls-key'), ca: fileArg(opts, 'tls-ca') };
  }
  return out;
}

// The command table: which commands there are, their arities, and the replies of those that
// need nothing of a connection (a read's barrier, a write's proposal, the answers of PING, INFO,
// CONFIG, SELECT). What a connection does with them, in order and within its bounds, is
// connection.ts's.
import { ClosedError } from '../log/errors.js';
import type { LogMetrics } from '../log/metrics.js';
import type { LogStatus } from '../log/status.js';
import { arity, CommandError, errorReply, unknownCommand } from './command-error.js';
import { config } from './config.js';
import { formatInfo } from './info.js';
import { INTEGER, type KvCommand, type KvResult, type KvStateMachine } from './kv-state-machine.js';
import { OK, RespSimple, type Reply } from './resp.js';
import { ValueReply, type SlotReply } from './write-reply.js';

/** What the server needs of the log; ReplicatedLog has this shape. */
export interface KvLog {
  append(data: Uint8Array): Promise<{ index: number; term: number; result: unknown }>;
  barrier(): Promise<void>;
  /** What the RESP commands read of it (PING, INFO, RAFT.MEMBERS); a ReplicatedLog gives all of it. */
  status(): Partial<LogStatus>;
  /** For INFO's # WAL section, when the log has them. */
  metrics?(): LogMetrics;
}

export const WRITES: Record<string, (args: Buffer[]) => KvCommand> = {
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

export const commandName = (args: Buffer[]): string => args[0]!.toString('latin1').toUpperCase();

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
export function refusedBeforeAuth(name: string, args: Buffer[]): Reply | null {
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

export function toReply(r: KvResult): Reply {
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

const PONG = new RespSimple('PONG');
/** Commands that wait for a barrier before they answer (see maxPendingReads). */
export const BARRIER_READS = new Set(['GET', 'EXISTS', 'DBSIZE']);

/** A read of the map (BARRIER_READS): it waits for a barrier, then answers as the map stands. */
export async function read(log: KvLog, kv: KvStateMachine, name: string, args: Buffer[], lastWrite: Promise<unknown>): Promise<SlotReply> {
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
}

/**
 * Any other command that does not change the map, answered at once: its reply is a copy the
 * map does not keep (an ECHO's argument, INFO's text), counted as unsent from now on, so that
 * a pipeline of them stops at the marks rather than finishing 1024 replies to hold.
 */
export function answer(log: KvLog, parameters: ReadonlyArray<[string, string]>, name: string, args: Buffer[]): Reply {
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
      // What a Redis configured with one database (databases 1) answers: clients know its words.
      if (rest[0]!.toString('latin1') !== '0') throw new CommandError('KV_NO_SUCH_DB', 'ERR DB index is out of range');
      return OK;
    default:
      throw unknownCommand(args);
  }
}

// The operator commands' side of the admin endpoint: requests with a timeout and the
// token, failures as coded CliErrors, and finding the leader among the endpoints given.
import { isSendableToken, type AdminStatus } from '../admin/handler.js';
import type { FatalErrorCode } from '../log/index.js';
import { UsageError, firstLineOf, strArg } from './args.js';
import { CliError, EXIT } from './failure.js';
import { printable } from '../printable.js';
import { isHostPort } from '../transport/address.js';
import { isRemoved, removalReason } from '../admin/removal.js';

export interface AdminTarget {
  endpoints: string[];
  token?: string;
}

export const ADMIN_FLAGS = { admin: 'string', 'admin-token-file': 'string', json: 'boolean' } as const;

/** --admin A[,B,...] and --admin-token-file (its first line). */
export function adminTarget(opts: Map<string, string | true>): AdminTarget {
  const endpoints = strArg(opts, 'admin')
    .split(',')
    .filter((e) => e !== '');
  if (endpoints.length === 0) throw new UsageError('--admin needs at least one HOST:PORT');
  for (const e of endpoints) if (!isHostPort(e)) throw new UsageError(`--admin: '${e}' is not HOST:PORT (a port up to 65535)`);
  const token = adminTokenOf(opts);
  if (token === undefined) return { endpoints };
  return { endpoints, token };
}

/** The first line of --admin-token-file, refused when a request cannot carry it (see isSendableToken). */
export function adminTokenOf(opts: Map<string, string | true>): string | undefined {
  const token = firstLineOf(opts, 'admin-token-file', 'the token');
  if (token !== undefined && !isSendableToken(token))
    throw new UsageError('--admin-token-file: the token holds a character a request cannot carry: use printable ASCII');
  return token;
}

/**
 * The Fetch standard's bad ports, which Node's fetch, and so every operator command, refuses to
 * connect to: an admin endpoint served on one runs and cannot be operated.
 */
export const FETCH_BAD_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137,
  139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049,
  3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

export const fetchRefusesPort = (port: number): boolean => FETCH_BAD_PORTS.has(port);

/** What an admin endpoint on such a port is told, by serve at start and by every command that tries to reach it. */
export const badPortReason = (port: number | string): string => `port ${port} is one Node's fetch refuses to connect to (the Fetch standard's bad ports)`;

export interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
}

export async function request(
  endpoint: string,
  token: string | undefined,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 15_000,
): Promise<Reply> {
  let res: Response;
  try {
    res = await fetch(`http://${endpoint}${path}`, {
      method,
      headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      // The admin API never redirects. Followed, a 307 sent a membership change (and, to the same
      // origin, the token) where it pointed, and the answer from there was taken as the node's.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    // Node's fetch will not connect to the Fetch standard's bad ports (6000, 10080, ...): a node
    // serving there runs, and only another port makes it reachable from this command.
    // The timeout said only "The operation was aborted due to timeout": not which, nor how long.
    const why =
      cause?.message === 'bad port'
        ? `${badPortReason(endpoint.slice(endpoint.lastIndexOf(':') + 1))}: serve the admin endpoint on another port`
        : (err as Error).name === 'TimeoutError'
          ? `no answer within ${timeoutMs / 1000} s (a node that does not run there, a host that does not answer, or a node too busy to)`
          : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw notHttp(endpoint, err) ?? new CliError('ADMIN_UNREACHABLE', `${endpoint}: ${why}`, EXIT.unreachable);
  }
  return { status: res.status, headers: res.headers, body: await readAnswer(endpoint, res) };
}

/**
 * The most of an answer read. The admin API's are small (a status of 1,000 members is about
 * 250 KB); a broken or hostile endpoint's could be without end, and read whole it filled the
 * memory for as long as the timeout let it (2 GB in 15 s on loopback).
 */
export const MAX_ANSWER_BYTES = 4 << 20;

async function readAnswer(endpoint: string, res: Response): Promise<Buffer> {
  const tooLarge = (): CliError => badReply(endpoint, `answered more than ${MAX_ANSWER_BYTES} bytes`);
  if (Number(res.headers.get('content-length')) > MAX_ANSWER_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  if (res.body === null) return Buffer.alloc(0);
  const reader = res.body.getReader();
  try {
    for (let r = await reader.read(); r.done !== true; r = await reader.read()) {
      size += r.value.byteLength;
      if (size > MAX_ANSWER_BYTES) {
        await reader.cancel().catch(() => undefined); // closes the connection
        throw tooLarge();
      }
      parts.push(r.value);
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw notHttp(endpoint, err) ?? connectionLost(endpoint, err);
  }
  return Buffer.concat(parts, size);
}

/**
 * The failure of an endpoint that answered, with something the HTTP parser refused (the RESP
 * port given by mistake, a head over 16 KiB, a broken chunk): it was reached, and it is not the
 * admin API. It was ADMIN_UNREACHABLE, exit 3, which sent the operator to check the node runs.
 */
function notHttp(endpoint: string, err: unknown): CliError | null {
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  if (typeof code !== 'string' || !(code.startsWith('HPE_') || code === 'UND_ERR_HEADERS_OVERFLOW')) return null;
  return badReply(endpoint, `answered something that is not HTTP (${code})`);
}

/** The endpoint began to answer and its connection broke (or the time ran out) before the answer was whole. */
export function connectionLost(endpoint: string, err: unknown): CliError {
  const e = err as { code?: unknown; message?: string; cause?: { message?: string } };
  const why = e.cause?.message ?? (typeof e.code === 'string' ? e.code : e.message);
  return new CliError('ADMIN_CONNECTION_LOST', `${endpoint}: the connection closed before the answer was complete (${why})`);
}

/** The JSON answer of a request that must succeed; a refusal becomes the endpoint's coded error. */
export async function call<T>(endpoint: string, token: string | undefined, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const r = await request(endpoint, token, method, path, body);
  if (r.status === 401) throw new CliError('UNAUTHORIZED', `${endpoint} refused the request without a valid token`);
  if (r.status !== 200) throw refusal(endpoint, r.status, r.body);
  // Every answer of the admin API is a JSON object: anything else (a captive portal, another
  // service on the port) reached the commands as it was, and failed them with a TypeError.
  if (!JSON_TYPE.test(r.headers.get('content-type') ?? '')) throw badReply(endpoint, `answered ${r.status} with something that is not JSON`);
  let v: unknown;
  try {
    v = JSON.parse(r.body.toString('utf8'));
  } catch {
    throw badReply(endpoint, `answered ${r.status} with something that is not JSON`);
  }
  if (!isObject(v)) throw badReply(endpoint, `answered ${r.status} with JSON that is not an object`);
  return v as T;
}

const JSON_TYPE = /^application\/json\s*(;|$)/i;

export function badReply(endpoint: string, what: string): CliError {
  return new CliError('ADMIN_BAD_REPLY', `${endpoint} ${what}: that is not the admin API`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x > 0);
const ROLES = new Set(['follower', 'pre-candidate', 'candidate', 'leader', 'fatal', 'closed']);
const PROGRESS_STATES = new Set(['probe', 'replicate', 'snapshot']);
// A record, so that a code added to the union fails to compile until it is added here.
const FATAL_CODES: Record<FatalErrorCode, true> = { LOG_FATAL: true, LOG_CORRUPT: true };
const isFatal = (v: unknown): boolean => isObject(v) && typeof v.code === 'string' && Object.hasOwn(FATAL_CODES, v.code) && typeof v.message === 'string';

/** A configuration as /status and POST /members/change name it. */
export function isConf(v: unknown): v is AdminStatus['conf'] {
  return isObject(v) && isIds(v.voters) && isIds(v.learners) && [v.votersOutgoing, v.learnersNext].every((ids) => ids === undefined || isIds(ids));
}

/** What the commands read of GET /status, checked before they read it. */
export function isAdminStatus(v: unknown): v is AdminStatus {
  if (!isObject(v)) return false;
  for (const k of ['id', 'term', 'commit', 'applied', 'lead', 'lastIndex'] as const) if (!isIndex(v[k])) return false;
  if (typeof v.role !== 'string' || !ROLES.has(v.role) || !isConf(v.conf)) return false;
  if (v.fatal !== undefined && !isFatal(v.fatal)) return false;
  if (v.removedBy !== undefined && !(isIndex(v.removedBy) && v.removedBy > 0)) return false;
  const { members, progress } = v;
  if (!isObject(members) || !Object.entries(members).every(([id, a]) => /^[1-9]\d*$/.test(id) && typeof a === 'string')) return false;
  if (progress === undefined) return true;
  return (
    isObject(progress) &&
    Object.entries(progress).every(
      ([id, p]) =>
        /^[1-9]\d*$/.test(id) &&
        isObject(p) &&
        isIndex(p.match) &&
        isIndex(p.lag) &&
        typeof p.state === 'string' &&
        PROGRESS_STATES.has(p.state) &&
        typeof p.recentActive === 'boolean',
    )
  );
}

/** A code as the admin endpoint sends it (its own, the log's, the core's). */
export const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * The error an answer other than 200 means: the endpoint's code, or HTTP_<status> when it
 * carries none (a proxy's page, JSON that is not an object; both made a TypeError or
 * ADMIN_BAD_REPLY before, where the docs promise HTTP_<status>).
 */
export function refusal(endpoint: string, status: number, body: Buffer): CliError {
  let e: { code?: unknown; message?: unknown } = {};
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) e = v;
  } catch {
    // not JSON: the status says enough
  }
  const code = typeof e.code === 'string' && CODE.test(e.code) ? e.code : `HTTP_${status}`;
  const what = status >= 300 && status < 400 ? `HTTP ${status}: a redirect, not followed` : `HTTP ${status}`;
  return new CliError(code, `${endpoint}: ${code === e.code && typeof e.message === 'string' ? printable(e.message, 500) : what}`);
}

export interface Seen {
  endpoint: string;
  status?: AdminStatus;
  error?: CliError;
}

/** /status of every endpoint, unreachable ones included (with their error). */
export async function statuses(t: AdminTarget): Promise<Seen[]> {
  return Promise.all(
    t.endpoints.map(async (endpoint) => {
      try {
        const status = await call<unknown>(endpoint, t.token, 'GET', '/status');
        if (!isAdminStatus(status)) throw badReply(endpoint, 'answered GET /status with something that is not a status');
        return { endpoint, status };
      } catch (err) {
        if (err instanceof CliError) return { endpoint, error: err };
        throw err;
      }
    }),
  );
}

/**
 * Whose status speaks for the cluster: the leader's, else a member's. A removed node's only
 * when no member answered (`removed` then says its view is stale).
 */
export function clusterView(seen: Seen[]): { status: AdminStatus; removed: boolean } | undefined {
  const answered = seen.flatMap((s) => (s.status === undefined ? [] : [s.status]));
  const members = answered.filter((s) => !isRemoved(s));
  const status = members.find((s) => s.role === 'leader') ?? members[0];
  if (status !== undefined) return { status, removed: false };
  return answered.length > 0 ? { status: answered[0]!, removed: true } : undefined;
}

/** The endpoint of the leader among those given; otherwise says which node leads. */
export async function leaderEndpoint(t: AdminTarget): Promise<{ endpoint: string; status: AdminStatus }> {
  const seen = await statuses(t);
  const leader = seen.find((s) => s.status?.role === 'leader');
  if (leader !== undefined) return { endpoint: leader.endpoint, status: leader.status! };
  const reachable = seen.filter((s) => s.status !== undefined);
  if (reachable.length === 0) {
    const first = seen[0]!.error!;
    throw first;
  }
  // A removed node runs on knowing no leader: NO_LEADER said to look for a lost majority.
  // One cut off when its removal committed never applies it, and is told by a member that did.
  const removed = reachable.filter(({ status: s }) => isRemoved(s!));
  // A removed node's leader is the last it heard of, never updated: after the leader died, it
  // sent the operator looking for the admin endpoint of a node that was gone, while the members knew none.
  const members = reachable.filter((s) => !removed.includes(s));
  const lead = (members.length > 0 ? members : reachable).map((s) => s.status!.lead).find((l) => l !== 0) ?? 0;
  if (lead === 0 && removed.length === reachable.length)
    throw new CliError(
      'NOT_MEMBER',
      `${removed.map(({ endpoint, status: s }) => `${endpoint} is node ${s!.id}, no longer a member (${removalReason(s!)})`).join('; ')}: give a member's admin endpoint`,
    );
  if (lead === 0) throw new CliError('NO_LEADER', 'no endpoint given knows a leader');
  // The leader's endpoint given and not answering (the leader killed, the others not yet past their
  // election timeout) was "none of the endpoints given is its admin endpoint".
  const failed = seen.filter((s) => s.error !== undefined);
  if (failed.length > 0)
    throw new CliError(
      'NOT_LEADER',
      `node ${lead} leads, as the endpoints that answered say, and these did not answer: ${failed.map((s) => s.error!.message).join('; ')}; if one is node ${lead}'s and it stopped, the others elect a new leader within a few election timeouts: retry`,
    );
  throw new CliError('NOT_LEADER', `node ${lead} leads, and none of the endpoints given is its admin endpoint`);
}

/** Rows as aligned columns; the cells are made printable (they are endpoints' text). */
export function table(header: string[], rows: Array<Array<string | number>>): string {
  const all = [header, ...rows.map((r) => r.map((c) => printable(String(c))))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

// `raftlog status`: every member as the leader sees it, and the health of every
// admin endpoint given.
import type { AdminStatus } from '../admin/handler.js';
import { UsageError, parseCommand } from './args.js';
import { ADMIN_FLAGS, CODE, adminTarget, clusterView, request, statuses, table, type AdminTarget } from './admin-client.js';
import { isRemoved, removalReason } from '../admin/removal.js';
import { printable } from '../printable.js';
import { CliError, EXIT, runCommand } from './failure.js';

const USAGE = `usage: raftlog status --admin HOST:PORT[,HOST:PORT...] [--admin-token-file FILE] [--json]
Shows every member as the leader sees it (id, address, role, match, lag behind the
leader's last index, replication state, recently active) and the health of each admin
endpoint given (GET /health); for each one unhealthy, a line says why: the reason /health
gives (its code and message) or why it could not be asked. A node removed from the cluster
(ROLE removed) is named with what to do: stop it, or add it back. Exit status 0 when every
endpoint given is healthy, 1 otherwise, 3 when none could be reached.`;

export interface Member {
  id: number;
  address: string;
  role: string;
  match: number | null;
  lag: number | null;
  state: string | null;
  active: boolean | null;
}

export interface EndpointHealth {
  endpoint: string;
  healthy: boolean;
  node: number | null;
  role: string | null;
  leader: number | null;
  term: number | null;
  commit: number | null;
  applied: number | null;
  /** The node was removed from the cluster (see isRemoved); null when its status could not be read. */
  removed: boolean | null;
  /** The member that refuses it as removed, when it has not applied its removal itself. */
  removedBy: number | null;
  /** Why it is unhealthy: the code of /health's reason, or of the failure to ask. */
  error?: string;
  message?: string;
}

/** The members as `s` (ideally the leader's status) knows them. */
export function membersOf(s: AdminStatus): Member[] {
  const ids = [...new Set([...s.conf.voters, ...s.conf.learners, ...Object.keys(s.members).map(Number)])].sort((a, b) => a - b);
  return ids.map((id) => {
    const p = s.progress?.[id];
    const learner = s.conf.learners.includes(id);
    const role = id === s.lead ? 'leader' : learner ? 'learner' : s.conf.voters.includes(id) ? 'follower' : 'leaving';
    return {
      id,
      address: s.members[id] ?? '',
      role,
      match: p?.match ?? null,
      lag: p?.lag ?? null,
      state: p?.state ?? null,
      active: p === undefined ? null : id === s.id || p.recentActive,
    };
  });
}

/** What GET /health says of the endpoint: healthy, or the reason it gives (or why it could not be asked). */
async function healthOf(endpoint: string, t: AdminTarget): Promise<{ healthy: boolean; error?: string; message?: string }> {
  let r;
  try {
    r = await request(endpoint, t.token, 'GET', '/health');
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    return { healthy: false, error: err.code, message: err.message };
  }
  if (r.status === 200) return { healthy: true };
  if (r.status === 401) return { healthy: false, error: 'UNAUTHORIZED', message: 'the endpoint wants a token (--admin-token-file)' };
  let v: { reason?: unknown; message?: unknown } = {};
  try {
    const parsed: unknown = JSON.parse(r.body.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) v = parsed;
  } catch {
    // not JSON: the status says enough
  }
  return {
    healthy: false,
    error: typeof v.reason === 'string' && CODE.test(v.reason) ? v.reason : `HTTP_${r.status}`,
    message: typeof v.message === 'string' ? printable(v.message, 500) : `HTTP ${r.status}`,
  };
}

/** What an operator must do about a removed node that still runs. */
function removedLine(endpoint: string, s: AdminStatus): string {
  const address = s.members[s.id] ?? 'HOST:PORT';
  return `${endpoint}: node ${s.id} was removed from the cluster (${removalReason(s)}) and still runs: stop it, or add it back (raftlog member add ${s.id} ${address} --admin <a member's endpoint>)`;
}

export async function main(args: string[]): Promise<number> {
  return runCommand('status', USAGE, args, async (a) => {
    const { opts, positionals } = parseCommand(a, ADMIN_FLAGS);
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const target = adminTarget(opts);
    const seen = await statuses(target);
    const health: EndpointHealth[] = await Promise.all(
      seen.map(async (s) => {
        if (s.status === undefined)
          return {
            endpoint: s.endpoint,
            healthy: false,
            node: null,
            role: null,
            leader: null,
            term: null,
            commit: null,
            applied: null,
            removed: null,
            removedBy: null,
            error: s.error?.code,
            message: s.error?.message,
          };
        const h = await healthOf(s.endpoint, target);
        const st = s.status;
        return {
          endpoint: s.endpoint,
          ...h,
          node: st.id,
          role: st.role,
          leader: st.lead || null,
          term: st.term,
          commit: st.commit,
          applied: st.applied,
          removed: isRemoved(st),
          removedBy: st.removedBy ?? null,
        };
      }),
    );
    const view = clusterView(seen);
    const leader = view?.status;
    const members = leader === undefined ? [] : membersOf(leader);
    if (opts.has('json')) {
      // A removed node's view is not the cluster's: no leader is claimed from it.
      console.log(JSON.stringify({ leader: view === undefined || view.removed ? null : leader!.lead || null, members, endpoints: health }));
    } else {
      if (leader !== undefined) {
        console.log(
          view!.removed
            ? `members (as node ${leader.id}, removed from the cluster, last knew them: give a member's admin endpoint for the cluster's view)`
            : `members (as node ${leader.id}, ${leader.role === 'leader' ? 'the leader' : `a ${leader.role}`}, sees them; term ${leader.term}, last index ${leader.lastIndex})`,
        );
        const dash = (v: unknown): string => (v === null ? '-' : String(v));
        console.log(
          table(
            ['ID', 'ADDRESS', 'ROLE', 'MATCH', 'LAG', 'STATE', 'ACTIVE'],
            members.map((m) => [m.id, m.address, m.role, dash(m.match), dash(m.lag), dash(m.state), dash(m.active)]),
          ),
        );
        console.log('');
      }
      console.log(
        table(
          ['ENDPOINT', 'HEALTH', 'NODE', 'ROLE', 'LEADER', 'TERM', 'COMMIT', 'APPLIED'],
          health.map((h) => [
            h.endpoint,
            h.healthy ? 'healthy' : `unhealthy${h.error ? ` (${h.error})` : ''}`,
            h.node ?? '-',
            h.removed === true ? 'removed' : (h.role ?? '-'),
            // The leader a removed node names is the last it heard of, not the cluster's.
            h.removed === true ? '-' : (h.leader ?? '-'),
            h.term ?? '-',
            h.commit ?? '-',
            h.applied ?? '-',
          ]),
        ),
      );
      for (const h of health) if (h.message !== undefined) console.log(printable(`${h.endpoint}: ${h.error}: ${h.message}`));
      for (const s of seen) if (s.status !== undefined && isRemoved(s.status)) console.log(printable(removedLine(s.endpoint, s.status)));
    }
    // 3 says no endpoint could be reached: one that answered (a wrong token, something not the admin API) was, and fails with 1.
    if (seen.every((s) => s.error?.exitCode === EXIT.unreachable)) return EXIT.unreachable;
    return health.every((h) => h.healthy) ? EXIT.ok : EXIT.failed;
  });
}

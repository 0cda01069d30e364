// `raftlog member list|add|remove|promote|replace|change`: membership, driven on the leader.
import type { MembershipChange } from '../log/index.js';
import { UsageError, nodeIdArg, parseCommand, parsePeers } from './args.js';
import { ADMIN_FLAGS, adminTarget, badReply, call, clusterView, isConf, leaderEndpoint, statuses, table } from './admin-client.js';
import { CliError, EXIT, runCommand } from './failure.js';
import { membersOf } from './status.js';
import { isHostPort, isPeerAddress } from '../transport/address.js';
import { printable } from '../printable.js';

const USAGE = `usage: raftlog member list --admin HOST:PORT[,...] [--admin-token-file FILE] [--json]
       raftlog member add ID HOST:PORT [--learner] --admin ...
       raftlog member remove ID --admin ...
       raftlog member promote ID --admin ...
       raftlog member replace OLD NEW HOST:PORT --admin ...
       raftlog member change [--add ID=HOST:PORT,...] [--add-learner ID=HOST:PORT,...]
                             [--remove ID,...] [--promote ID,...] [--demote ID,...] --admin ...
Changes go to the leader: give its admin endpoint, or every node's (--admin A,B,C).
'add' makes the node a member (with --learner, a non-voting learner) and prints the
\`raftlog serve --join\` line that starts it ('replace' and 'change' too, for the nodes
they add). 'promote' makes a learner a voter once it is within 1000 entries of the leader
(NOT_CAUGHT_UP otherwise). 'replace' adds NEW as a voter and removes OLD in one atomic
change; 'change' applies all the changes it is given atomically. When more than
one voter changes, the cluster passes through a joint configuration in which the old and
the new voters must both agree, and leaves it by itself. A change that takes a voter out
is refused (MAJORITY_UNAVAILABLE) while fewer than a majority of the voters it leaves
answer the leader: bring the silent ones back, or remove them first.`;

const ID_LIST = /^[1-9]\d*(,[1-9]\d*)*$/;

/** The changes `member change` names, in a fixed order: additions before removals. */
export function changesOf(opts: Map<string, string | true>): MembershipChange[] {
  const ids = (flag: string): number[] => {
    const v = opts.get(flag);
    if (v === undefined) return [];
    if (typeof v !== 'string' || !ID_LIST.test(v)) throw new UsageError(`--${flag} needs node ids separated by commas, got '${String(v)}'`);
    return v.split(',').map((x) => nodeIdArg(x));
  };
  const addresses = (flag: string): Array<[number, string]> => {
    const v = opts.get(flag);
    const added: Array<[number, string]> = typeof v === 'string' ? Object.entries(parsePeers(v)).map(([id, address]) => [Number(id), address]) : [];
    for (const [id, address] of added) if (!isPeerAddress(address)) throw new UsageError(`--${flag}: node ${id} at ${address}: ${PORT_0}`);
    return added;
  };
  const changes: MembershipChange[] = [
    ...addresses('add').map(([id, address]) => ({ add: id, address })),
    ...addresses('add-learner').map(([id, address]) => ({ addLearner: id, address })),
    ...ids('promote').map((id) => ({ promote: id })),
    ...ids('demote').map((id) => ({ demote: id })),
    ...ids('remove').map((id) => ({ remove: id })),
  ];
  if (changes.length === 0) throw new UsageError('member change needs at least one of --add, --add-learner, --remove, --promote, --demote');
  return changes;
}

export async function main(args: string[]): Promise<number> {
  return runCommand('member', USAGE, args, async (a) => {
    const { opts, positionals } = parseCommand(a, {
      ...ADMIN_FLAGS,
      learner: 'boolean',
      add: 'string',
      'add-learner': 'string',
      remove: 'string',
      promote: 'string',
      demote: 'string',
    });
    if (positionals[0] !== 'change' && ['add', 'add-learner', 'remove', 'promote', 'demote'].some((f) => opts.has(f)))
      throw new UsageError('--add, --add-learner, --remove, --promote and --demote belong to member change');
    if (positionals[0] !== 'add' && opts.has('learner')) throw new UsageError('--learner belongs to member add');
    const [verb, ...rest] = positionals;
    // One more would be ignored: `member remove 3 4` removed 3 alone.
    const arity: Record<string, number> = { list: 0, add: 2, remove: 1, promote: 1, replace: 3, change: 0 };
    if (verb !== undefined && rest.length > (arity[verb] ?? Infinity)) throw new UsageError(`unexpected argument '${rest[arity[verb]!]}'`);
    /** Applies the changes on the leader; returns the new configuration and how to start each node they add. */
    const changeOnLeader = async (changes: MembershipChange[]): Promise<{ conf: { voters: number[]; learners: number[] }; start: Start | undefined }> => {
      const { endpoint, status } = await leaderEndpoint(target);
      const r = await call<{ voters?: unknown; learners?: unknown }>(endpoint, target.token, 'POST', '/members/change', { changes });
      if (!isConf(r)) throw badReply(endpoint, 'answered POST /members/change without the voters and learners');
      return { conf: { voters: r.voters, learners: r.learners }, start: startAdded(status.members, changes) };
    };
    const target = adminTarget(opts);
    const json = opts.has('json');
    const done = (what: string, extra: Record<string, unknown> = {}): number => {
      console.log(json ? JSON.stringify({ ok: true, ...extra }) : what);
      return EXIT.ok;
    };
    switch (verb) {
      case 'list': {
        const seen = await statuses(target);
        const view = clusterView(seen);
        if (view === undefined) throw seen[0]!.error ?? new CliError('ADMIN_UNREACHABLE', 'no endpoint answered', EXIT.unreachable);
        // A removed node's members are those it knew before: listed, they read as the cluster's.
        if (view.removed)
          throw new CliError(
            'NOT_MEMBER',
            `${seen.find((x) => x.status === view.status)!.endpoint} is node ${view.status.id}, no longer a member: give a member's admin endpoint`,
          );
        const members = membersOf(view.status);
        if (json) console.log(JSON.stringify(members));
        else
          console.log(
            table(
              ['ID', 'ADDRESS', 'ROLE'],
              members.map((m) => [m.id, m.address, m.role]),
            ),
          );
        return EXIT.ok;
      }
      case 'add': {
        const id = nodeIdArg(rest[0]);
        const address = peerAddress(rest[1], "member add needs ID HOST:PORT (the new node's peer address)");
        const { endpoint, status } = await leaderEndpoint(target);
        await call(endpoint, target.token, 'POST', '/members/add', { id, address, learner: opts.has('learner') });
        const start = startAdded(status.members, [{ add: id, address }])!;
        return done(`node ${id} (${address}) added as a ${opts.has('learner') ? 'learner' : 'voter'}; ${start.text}`, { id, address, peers: start.peers });
      }
      case 'remove':
      case 'promote': {
        const id = nodeIdArg(rest[0]);
        const { endpoint } = await leaderEndpoint(target);
        await call(endpoint, target.token, 'POST', `/members/${verb}`, { id });
        return done(verb === 'remove' ? `node ${id} removed` : `node ${id} promoted to voter`, { id });
      }
      case 'replace': {
        const old = nodeIdArg(rest[0], 'OLD');
        const id = nodeIdArg(rest[1], 'NEW');
        const address = peerAddress(rest[2], "member replace needs OLD NEW HOST:PORT (the new node's peer address)");
        if (old === id) throw new UsageError('member replace needs two different nodes');
        const { conf, start } = await changeOnLeader([{ add: id, address }, { remove: old }]);
        return done(`node ${old} replaced by node ${id} (${address}); ${start!.text}`, { ...conf, peers: start!.peers });
      }
      case 'change': {
        const { conf, start } = await changeOnLeader(changesOf(opts));
        const now = `voters ${conf.voters.join(',')}${conf.learners.length > 0 ? `, learners ${conf.learners.join(',')}` : ''}`;
        return done(start === undefined ? now : `${now}; ${start.text}`, start === undefined ? conf : { ...conf, peers: start.peers });
      }
      default:
        throw new UsageError(verb === undefined ? 'which action? list, add, remove, promote, replace or change' : `unknown action '${verb}'`);
    }
  });
}

/**
 * How to start the nodes the changes add: the `raftlog serve --join` line of each, its --peers
 * the members the leader knew before, with those added and without those removed (the
 * addresses a joining node first dials; it takes the configuration from the leader). The
 * operator fills in the directory and the cluster's credentials. Undefined if they add no one.
 */
function startAdded(members: Record<number, string>, changes: readonly MembershipChange[]): Start | undefined {
  const added = changes.flatMap((c) =>
    'add' in c ? [{ id: c.add, address: c.address }] : 'addLearner' in c ? [{ id: c.addLearner, address: c.address }] : [],
  );
  if (added.length === 0) return undefined;
  const peers = new Map(Object.entries(members).map(([id, a]) => [Number(id), a]));
  for (const a of added) peers.set(a.id, a.address);
  for (const c of changes) if ('remove' in c) peers.delete(c.remove);
  const list = [...peers.entries()]
    .sort(([a], [b]) => a - b)
    .map(([id, a]) => `${id}=${printable(a)}`)
    .join(',');
  const lines = added.map((a) => `  raftlog serve --id ${a.id} --data DIR --peers ${list} --join`);
  const text = `start ${added.length === 1 ? 'it' : 'each'} with\n${lines.join('\n')}\nand the cluster's --cluster-secret-file, TLS flags or --insecure, as on the other members`;
  return { peers: list, text };
}

/** The --peers of the nodes a change adds, and the lines that start them. */
interface Start {
  peers: string;
  text: string;
}

/** Sent, the leader refused it after the round trip, as INVALID_ARGUMENT. */
const PORT_0 = 'port 0 is no port a peer can dial: give the port the node will listen on';

function peerAddress(v: string | undefined, usage: string): string {
  if (v === undefined || !isHostPort(v)) throw new UsageError(usage);
  if (!isPeerAddress(v)) throw new UsageError(`${v}: ${PORT_0}`);
  return v;
}

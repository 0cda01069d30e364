// `raftlog member list|add|remove|promote`: membership, driven on the leader.
import { UsageError, nodeIdArg, parseCommand } from './args.js';
import { ADMIN_FLAGS, adminTarget, call, leaderEndpoint, statuses, table } from './admin-client.js';
import { CliError, EXIT, runCommand } from './failure.js';
import { membersOf } from './status.js';

const USAGE = `usage: raftlog member list --admin HOST:PORT[,...] [--admin-token-file FILE] [--json]
       raftlog member add ID HOST:PORT [--learner] --admin ...
       raftlog member remove ID --admin ...
       raftlog member promote ID --admin ...
Changes go to the leader: give its admin endpoint, or every node's (--admin A,B,C).
'add' makes the node a member (with --learner, a non-voting learner); then start it with
\`raftlog serve --join\`. 'promote' makes a learner a voter once it is within 1000 entries
of the leader (NOT_CAUGHT_UP otherwise). One change at a time.`;

export async function main(args: string[]): Promise<number> {
  return runCommand('member', USAGE, args, async (a) => {
    const { opts, positionals } = parseCommand(a, { ...ADMIN_FLAGS, learner: 'boolean' });
    const [verb, ...rest] = positionals;
    const target = adminTarget(opts);
    const json = opts.has('json');
    const done = (what: string, extra: Record<string, unknown> = {}): number => {
      console.log(json ? JSON.stringify({ ok: true, ...extra }) : what);
      return EXIT.ok;
    };
    switch (verb) {
      case 'list': {
        if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
        const seen = await statuses(target);
        const s = seen.find((x) => x.status?.role === 'leader')?.status ?? seen.find((x) => x.status !== undefined)?.status;
        if (s === undefined) throw seen[0]!.error ?? new CliError('ADMIN_UNREACHABLE', 'no endpoint answered', EXIT.unreachable);
        const members = membersOf(s);
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
        const address = rest[1];
        if (address === undefined || !/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(address))
          throw new UsageError("member add needs ID HOST:PORT (the new node's peer address)");
        const { endpoint } = await leaderEndpoint(target);
        await call(endpoint, target.token, 'POST', '/members/add', { id, address, learner: opts.has('learner') });
        return done(`node ${id} (${address}) added as a ${opts.has('learner') ? 'learner' : 'voter'}; start it with raftlog serve --join`, { id, address });
      }
      case 'remove':
      case 'promote': {
        const id = nodeIdArg(rest[0]);
        const { endpoint } = await leaderEndpoint(target);
        await call(endpoint, target.token, 'POST', `/members/${verb}`, { id });
        return done(verb === 'remove' ? `node ${id} removed` : `node ${id} promoted to voter`, { id });
      }
      default:
        throw new UsageError(verb === undefined ? 'which action? list, add, remove or promote' : `unknown action '${verb}'`);
    }
  });
}

// `raftlog leader transfer ID`: hands leadership to another voter.
import { UsageError, nodeIdArg, parseCommand } from './args.js';
import { ADMIN_FLAGS, adminTarget, call, leaderEndpoint } from './admin-client.js';
import { EXIT, runCommand } from './failure.js';

const USAGE = `usage: raftlog leader transfer ID --admin HOST:PORT[,...] [--admin-token-file FILE] [--json]
Asks the leader to hand leadership to voter ID; returns once ID leads. Give the
leader's admin endpoint, or every node's (--admin A,B,C).`;

export async function main(args: string[]): Promise<number> {
  return runCommand('leader', USAGE, args, async (a) => {
    const { opts, positionals } = parseCommand(a, ADMIN_FLAGS);
    if (positionals[0] !== 'transfer') throw new UsageError(positionals[0] === undefined ? 'which action? transfer' : `unknown action '${positionals[0]}'`);
    const id = nodeIdArg(positionals[1]);
    if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
    const target = adminTarget(opts);
    const { endpoint, status } = await leaderEndpoint(target);
    if (status.id === id) {
      console.log(opts.has('json') ? JSON.stringify({ ok: true, leader: id }) : `node ${id} already leads`);
      return EXIT.ok;
    }
    await call(endpoint, target.token, 'POST', '/leader/transfer', { id });
    console.log(opts.has('json') ? JSON.stringify({ ok: true, leader: id }) : `node ${id} now leads`);
    return EXIT.ok;
  });
}

#!/usr/bin/env node
// The `raftlog` command. Each subcommand lives in its own file and is loaded
// only when asked for, so `raftlog inspect` does not pay for the network stack.
//
// Exit status, for every command: 0 success; 1 the operation failed (one line on
// stderr: the error's code and what to do); 2 a usage error; 3 the admin endpoint
// could not be reached. --debug adds the stack of a failure; --version prints the
// version; -h or --help the usage of any command.
import { readFileSync } from 'node:fs';

const commands: Record<string, { summary: string; load: () => Promise<{ main(args: string[]): Promise<number> }> }> = {
  // name: { summary: 'name <args>: what it does', load: () => import('./name.js') },
  serve: {
    summary: 'serve --id N --data DIR [--listen HOST:PORT] [--peers 1=HOST:PORT,...] [--resp HOST:PORT] [--admin HOST:PORT] [--join]: run one node',
    load: () => import('./serve.js'),
  },
  cluster: { summary: 'cluster [--nodes 3]: a local cluster of processes on loopback; Ctrl-C stops it', load: () => import('./cluster.js') },
  status: { summary: "status --admin HOST:PORT[,...]: every member as the leader sees it, and each endpoint's health", load: () => import('./status.js') },
  member: {
    summary: 'member list|add ID HOST:PORT [--learner]|remove ID|promote ID|replace OLD NEW HOST:PORT|change ... --admin ...: membership',
    load: () => import('./member.js'),
  },
  leader: { summary: 'leader transfer ID --admin ...: hand leadership to another voter', load: () => import('./leader.js') },
  snapshot: { summary: 'snapshot save FILE --admin HOST:PORT | restore FILE --data DIR --id N [--peers ...]: backups', load: () => import('./snapshot.js') },
  recover: { summary: 'recover --force-new-cluster --data DIR --id N --yes: make one surviving node a one-member cluster', load: () => import('./recover.js') },
  bench: { summary: 'bench [--seconds 3]: cluster, embedded and better-sqlite3 throughput and latency', load: () => import('./bench.js') },
  inspect: {
    summary: 'inspect <data dir | wal dir> [--records]: list segments and records, verify every CRC and snapshot; exit 1 on damage',
    load: () => import('./inspect.js'),
  },
};

function version(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two levels below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  return [
    'usage: raftlog <command> [options]      (raftlog <command> -h for its options)',
    '',
    ...Object.entries(commands).map(([, c]) => `  ${c.summary}`),
    '',
    'exit status: 0 ok, 1 the operation failed, 2 usage error, 3 admin endpoint unreachable; --debug shows stacks',
  ].join('\n');
}

const [name, ...args] = process.argv.slice(2);
if (name === '--version' || name === '-v' || args.includes('--version')) {
  console.log(`raftlog ${version()}`);
  process.exit(0);
}
if (name === undefined || name === '--help' || name === '-h') {
  console.log(usage());
  process.exit(name === undefined ? 2 : 0);
}
const command = commands[name];
if (command === undefined) {
  console.error(`raftlog: unknown command '${name}'\n${usage()}`);
  process.exit(2);
}
process.exitCode = await (await command.load()).main(args.map((a) => (a === '-h' ? '--help' : a)));

#!/usr/bin/env node
// The `raftlog` command. Each subcommand lives in its own file and is loaded
// only when asked for, so `raftlog inspect` does not pay for the network stack.
const commands: Record<string, { summary: string; load: () => Promise<{ main(args: string[]): Promise<number> }> }> = {
  // name: { summary: 'name <args>: what it does', load: () => import('./name.js') },
  serve: { summary: 'serve --id N --data DIR [--listen HOST:PORT] [--peers 1=HOST:PORT,...] [--resp HOST:PORT]: run one node', load: () => import('./serve.js') },
  cluster: { summary: 'cluster [--nodes 3]: a local cluster of processes on loopback; Ctrl-C stops it', load: () => import('./cluster.js') },
  bench: { summary: 'bench [--seconds 3]: cluster, embedded and better-sqlite3 throughput and latency', load: () => import('./bench.js') },
  inspect: { summary: 'inspect <wal dir> [--records]: list segments and records, verify every CRC; exit 1 on corruption', load: () => import('./inspect.js') },
};

function usage(): string {
  return ['usage: raftlog <command> [options]', '', ...Object.entries(commands).map(([, c]) => `  ${c.summary}`)].join('\n');
}

const [name, ...args] = process.argv.slice(2);
if (name === undefined || name === '--help' || name === '-h') {
  console.log(usage());
  process.exit(name === undefined ? 2 : 0);
}
const command = commands[name];
if (command === undefined) {
  console.error(`raftlog: unknown command '${name}'\n${usage()}`);
  process.exit(2);
}
process.exitCode = await (await command.load()).main(args);

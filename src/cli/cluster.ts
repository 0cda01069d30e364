// `raftlog cluster`: N `raftlog serve` processes on loopback, one command to
// start them, see where they listen and who leads, and stop them all (Ctrl-C).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { isLoopback } from '../admin/server.js';
import { makeDurableDir, writeFileDurably } from '../storage/durable-dir.js';
import { formatAddress, isHostPort } from '../transport/address.js';
import { UsageError, intArg, parseArgs, strArg } from './args.js';
import { runCommand } from './failure.js';
import { badPortReason, fetchRefusesPort } from './admin-client.js';

const USAGE = `usage: raftlog cluster [--nodes 3] [--data DIR] [--host 127.0.0.1] [--raft-port 7101] [--resp-port 7381] [--admin-port 7481] [--sync always|none]
Starts a local cluster of --nodes processes (1 to 9), their data under DIR (default
./raftlog-cluster); node i listens for peers on raft-port+i-1,
for Redis clients on resp-port+i-1 and for raftlog status, member, leader and snapshot
(its admin endpoint) on admin-port+i-1 (by default 7481, or past the other two ranges
when they reach it). The nodes authenticate each other with a secret made on first start
(DIR/cluster-secret); off loopback, the admin endpoints take a token made the same way
(DIR/admin-token). Ctrl-C stops them all (a second one kills those still running); if
this process dies any other way, the nodes stop too. A node that stops before it is up (its port in use, say) stops the others,
and the command exits 1; one that stops later leaves the others running.`;

export const CLUSTER_FLAGS = {
  nodes: 'string',
  data: 'string',
  host: 'string',
  'raft-port': 'string',
  'resp-port': 'string',
  'admin-port': 'string',
  sync: 'string',
} as const;

/** The first port of each of the three ranges of `n` ports; a range that cannot be bound is a usage error. */
export function clusterPorts(opts: Map<string, string | true>, n: number): { raft: number; resp: number; admin: number } {
  const raftPort = intArg(opts, 'raft-port', 7101);
  const respPort = intArg(opts, 'resp-port', 7381);
  // Unless given, the admin range moves past a peer or client range that reaches it: those flags
  // predate the admin endpoints, and a value that worked then still does.
  let adminPort = intArg(opts, 'admin-port', 7481);
  if (!opts.has('admin-port')) for (const p of [raftPort, respPort].sort((a, b) => a - b)) if (Math.abs(p - adminPort) < n) adminPort = p + n;
  const bases = [
    ['raft-port', raftPort],
    ['resp-port', respPort],
    ['admin-port', adminPort],
  ] as const;
  for (const [flag, first] of bases) {
    if (first < 1 || first + n - 1 > 65535) throw new UsageError(`--${flag}: the ${n} ports from ${first} must lie in 1..65535`);
  }
  // Each node would refuse it only once started, after the secret and the data directory were made.
  for (let port = adminPort; port < adminPort + n; port++)
    if (fetchRefusesPort(port))
      throw new UsageError(`--admin-port: the ${n} ports from ${adminPort} include ${port}: ${badPortReason(port)}: the operator commands could not reach it`);
  for (const [i, [a, first]] of bases.entries())
    for (const [b, other] of bases.slice(i + 1)) if (Math.abs(first - other) < n) throw new UsageError(`--${a} and --${b}: their ranges of ${n} ports overlap`);
  return { raft: raftPort, resp: respPort, admin: adminPort };
}

export async function main(args: string[]): Promise<number> {
  return runCommand('cluster', USAGE, args, run);
}

async function run(args: string[]): Promise<number> {
  const opts = parseArgs(args, CLUSTER_FLAGS);
  const n = intArg(opts, 'nodes', 3);
  if (n < 1 || n > 9) throw new UsageError('--nodes must be between 1 and 9');
  const dataDir = resolve(strArg(opts, 'data', 'raftlog-cluster'));
  const host = strArg(opts, 'host', '127.0.0.1').replace(/^\[(.*)\]$/, '$1'); // [::1] as ::1: addresses are formatted below
  const sync = strArg(opts, 'sync', 'always');
  // Refused here, before the secret and the data directory are made: each node would refuse them
  // only once started, and leave both behind.
  if (sync !== 'always' && sync !== 'none') throw new UsageError(`--sync must be 'always' or 'none'`);
  const { raft: raftPort, resp: respPort, admin: adminPort } = clusterPorts(opts, n);
  if (!isHostPort(formatAddress(host, raftPort))) throw new UsageError(`--host: '${host}' is not a host name or an IP address`);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const at = (base: number, id: number): string => formatAddress(host, base + id - 1);
  const peers = ids.map((id) => `${id}=${at(raftPort, id)}`).join(',');
  // One secret for this cluster's nodes, kept beside their data so a restart reuses it. Written
  // whole or not at all: a crash must not leave an empty secret that every later start reuses.
  const secret = async (name: string): Promise<string> => {
    const file = `${dataDir}/${name}`;
    if (existsSync(file)) return file;
    await makeDurableDir(dataDir);
    await writeFileDurably(dataDir, name, `${randomBytes(32).toString('base64url')}\n`);
    return file;
  };
  const secretFile = await secret('cluster-secret');
  // Off loopback anyone who reaches an admin endpoint could remove members: it takes a token there.
  const tokenFile = isLoopback(host) ? undefined : await secret('admin-token');

  console.log(`raftlog cluster: ${n} node${n > 1 ? 's' : ''}, data in ${dataDir}`);
  for (const id of ids) {
    console.log(`  node ${id}  raft ${at(raftPort, id)}  resp ${at(respPort, id)}  admin ${at(adminPort, id)}   (redis-cli -p ${respPort + id - 1})`);
  }
  const token = tokenFile === undefined ? '' : ` --admin-token-file ${tokenFile}`;
  console.log(`Operate it with: raftlog status --admin ${ids.map((id) => at(adminPort, id)).join(',')}${token}`);
  console.log(`Ctrl-C stops the cluster; the data stays in ${dataDir} (remove it with: rm -rf ${dataDir}).`);

  const children = new Map<number, ChildProcess>();
  let stopping = false;
  let leader = 0;
  const up = new Set<number>();
  /** The node that stopped before it was up, and how; the others were stopped for it. */
  let failed: { id: number; how: string } | undefined;
  /** The code of the failure each node reported, if it did (`raftlog serve: CODE: ...`). */
  const reported = new Map<number, string>();
  const exited = ids.map(
    (id) =>
      new Promise<string>((done) => {
        const child = spawn(
          process.execPath,
          [
            ...process.execArgv,
            process.argv[1]!,
            'serve',
            '--id',
            String(id),
            '--data',
            `${dataDir}/node${id}`,
            '--listen',
            at(raftPort, id),
            '--peers',
            peers,
            '--resp',
            at(respPort, id),
            '--admin',
            at(adminPort, id),
            ...(tokenFile === undefined ? [] : ['--admin-token-file', tokenFile]),
            '--sync',
            sync,
            '--cluster-secret-file',
            secretFile,
          ],
          // The IPC channel is the children's lifeline: it closes when this process dies, even by SIGKILL.
          { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
        );
        children.set(id, child);
        const relay = (line: string): void => {
          // serve reports `leader N term T` when its view changes; the cluster shows it once per change.
          const m = /^leader (\d+) term (\d+)$/.exec(line);
          if (m !== null) {
            const l = Number(m[1]);
            if (l !== 0 && l !== leader) {
              leader = l;
              console.log(`leader: node ${l} (term ${m[2]})`);
            }
            return;
          }
          console.log(`[node ${id}] ${line}`);
          // A leader can be elected before the last node listens for clients: say when all of them do.
          if (line.startsWith(`node ${id} up:`) && !up.has(id)) {
            up.add(id);
            if (up.size === n) console.log(`all ${n} nodes up`);
          }
        };
        createInterface({ input: child.stdout! }).on('line', relay);
        createInterface({ input: child.stderr! }).on('line', (l) => {
          const m = /^raftlog serve: ([A-Z][A-Z0-9_]*): /.exec(l);
          if (m !== null && !reported.has(id)) reported.set(id, m[1]!);
          console.error(`[node ${id}] ${l}`);
        });
        child.on('exit', (code, signal) => {
          children.delete(id);
          if (!stopping) console.error(`[node ${id}] exited (${signal ?? code})`);
          // One that never came up (its port taken, say) would leave the cluster short for good,
          // waiting on a Ctrl-C to report it; one that was up may be stopped on purpose, to try a failover.
          if (!stopping && !up.has(id)) {
            failed = { id, how: String(signal ?? code) };
            stop();
          }
          done(String(signal ?? code));
        });
      }),
  );

  const stop = (): void => {
    if (stopping) {
      // A second Ctrl-C: a node that does not stop (paused, or stuck closing) would otherwise be
      // left to find and kill by hand, and this command to wait on it.
      if (children.size > 0) console.log(`killing node ${[...children.keys()].join(', ')}`);
      for (const child of children.values()) child.kill('SIGKILL');
      return;
    }
    stopping = true;
    // After a Ctrl-C the terminal's ^C ends the line; after a node's failure no blank line is due.
    console.log(`${failed === undefined ? '\n' : ''}stopping the cluster...`);
    for (const child of children.values()) child.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const ends = await Promise.all(exited);
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  // The last line says how the cluster ended: "stopped" only when every node stopped cleanly.
  console.log(endLine(ids, ends, stopping, failed, reported));
  return stopping && failed === undefined && ends.every((e) => e === '0') ? 0 : 1;
}

/**
 * The cluster's last line, from how each node (by id) ended: its exit code, or the signal that
 * killed it; and the code of the failure each node reported, if it did.
 */
export function endLine(
  ids: number[],
  ends: string[],
  stopping: boolean,
  failed: { id: number; how: string } | undefined,
  reported: ReadonlyMap<number, string> = new Map(),
): string {
  if (failed !== undefined) {
    // The others were sent SIGTERM: one that failed on its own too (its error printed above, the
    // SIGTERM perhaps ending it as it exited), or was killed at a second Ctrl-C, was not stopped,
    // and is not called so. One still starting has no handler yet: SIGTERM ends it as meant.
    const others = ids.flatMap((id, i) => (id === failed.id ? [] : [{ id, end: reported.get(id) ?? ends[i]! }]));
    const isStopped = (o: { id: number; end: string }): boolean => !reported.has(o.id) && (o.end === '0' || o.end === 'SIGTERM');
    const stopped = others.filter(isStopped).map((o) => o.id);
    const ended = others.filter((o) => !isStopped(o));
    const parts = [`cluster not started: node ${failed.id} exited (${failed.how}) before it was up`];
    if (ended.length === 1) parts.push(`node ${ended[0]!.id} failed too (${ended[0]!.end})`);
    if (ended.length > 1) parts.push(`nodes ${ended.map((o) => `${o.id} (${o.end})`).join(', ')} failed too`);
    if (stopped.length > 0) parts.push(`stopped node${stopped.length > 1 ? 's' : ''} ${stopped.join(', ')}`);
    return `${parts.join('; ')}.`;
  }
  if (!stopping) return 'cluster ended: every node exited.';
  const unclean = ids.flatMap((id, i) => (ends[i] === '0' ? [] : [`node ${id} (${ends[i]})`]));
  return unclean.length === 0 ? 'cluster stopped.' : `cluster stopped, not cleanly: ${unclean.join(', ')}.`;
}

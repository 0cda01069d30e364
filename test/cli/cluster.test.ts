// `raftlog cluster` owns its nodes: they stop when it dies, however it dies; bad flags are refused before anything starts.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, expect, it, onTestFailed } from 'vitest';
import { freePortRun, tempDir, waitFor } from '../log/helpers.js';
import { parseArgs } from '../../src/cli/args.js';
import { CLUSTER_FLAGS, clusterPorts, endLine } from '../../src/cli/cluster.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    // A zombie is dead too: it only waits for its parent to collect it.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A process a test started: all it printed (both streams), its standard output alone, and how it ended. */
interface Started {
  name: string;
  proc: ChildProcess;
  out: string;
  stdout: string;
  /** Its exit code or signal; undefined while it runs. */
  ended?: string;
  /** For `raftlog cluster`: every node process it started, as seen while it ran. */
  nodes: Set<number>;
}

/** Every process the running test started: shown when it fails, killed after it. */
let started: Started[] = [];
const at = { step: '' };

/**
 * On a failure, a vitest timeout too, the error names the step the test was at and carries
 * the output of every process it started (a cluster's relays its nodes' lines).
 */
function explainFailure(first: string): void {
  at.step = first;
  // This test's: afterEach, which kills them, runs before this hook and starts a new list.
  const mine = started;
  onTestFailed(({ task }) => {
    const outputs = mine.map((p) => `\n--- ${p.name}${p.ended !== undefined ? `, ended (${p.ended})` : ''} ---\n${p.out}`).join('');
    for (const e of task.result?.errors ?? []) e.message = `${at.step}: ${e.message}${outputs}`;
  });
}

function track(name: string, proc: ChildProcess): Started {
  const p: Started = { name, proc, out: '', stdout: '', nodes: new Set() };
  started.push(p);
  proc.stdout!.on('data', (d: Buffer) => {
    p.out += d.toString();
    p.stdout += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => (p.out += d.toString()));
  proc.on('exit', (code, signal) => (p.ended = String(signal ?? code)));
  return p;
}

afterEach(() => {
  // Whatever the test left running, the nodes of a cluster killed or timed out included.
  for (const p of started) for (const pid of [p.proc.pid!, ...p.nodes]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  started = [];
});

/** Waits for `said` in what `p` printed; fails at once, saying so, if `p` ended first. */
async function untilSaid(p: Started, what: string, said: RegExp, ms = 60_000): Promise<void> {
  await waitFor(what, () => said.test(p.out) || p.ended !== undefined, ms);
  if (!said.test(p.out)) throw new Error(`${p.name} ended (${p.ended}) before ${what}`);
}

/** The last line `raftlog cluster` wrote to its standard output. */
const lastLine = (p: Started): string => p.stdout.trimEnd().split('\n').at(-1) ?? '';

/**
 * `raftlog cluster` of two nodes (sync none) in a new directory, on one run of six free ports (node
 * i listens on raft + i - 1, resp + i - 1 and admin + i - 1, so the ranges cannot meet). Its node
 * processes are collected in `nodes` from the start, so that none outlives a failed test.
 */
async function startCluster(ports?: number): Promise<Started> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const raft = ports ?? (await freePortRun(6));
  const args = ['cluster', '--nodes', '2', '--data', t.dir, '--raft-port', String(raft), '--resp-port', String(raft + 2), '--admin-port', String(raft + 4)];
  const parent = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args, '--sync', 'none'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const c = track(`raftlog ${args.join(' ')}`, parent);
  const watch = setInterval(() => childrenOf(parent.pid!).forEach((pid) => c.nodes.add(pid)), 20);
  parent.on('exit', () => clearInterval(watch));
  cleanups.push(() => clearInterval(watch));
  return c;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

it('a SIGKILLed cluster leaves no node running', async () => {
  explainFailure('start the cluster');
  const c = await startCluster();
  await untilSaid(c, 'both nodes up', /all 2 nodes up/);
  const nodes = childrenOf(c.proc.pid!);
  expect(nodes).toHaveLength(2);
  expect(c.out).toMatch(/remove it with: rm -rf /);
  at.step = 'SIGKILL the cluster';
  c.proc.kill('SIGKILL');
  await waitFor('every node to stop', () => nodes.every((pid) => !alive(pid)), 20_000);
}, 120_000);

it('a cluster stopped by Ctrl-C with every node stopping cleanly exits 0, its last line "cluster stopped."', async () => {
  explainFailure('start the cluster');
  const c = await startCluster();
  await untilSaid(c, 'both nodes up', /all 2 nodes up/);
  at.step = 'stop the cluster with SIGINT';
  c.proc.kill('SIGINT');
  await waitFor('the cluster to exit', () => c.ended !== undefined, 30_000);
  expect(c.ended).toBe('0');
  expect(lastLine(c)).toBe('cluster stopped.');
}, 120_000);

it("a node that cannot start stops the cluster, which exits 1 with the node's coded error and a last line naming it", async () => {
  explainFailure("take node 2's client port");
  const raft = await freePortRun(6);
  const held = createServer();
  await new Promise<void>((resolve, reject) => {
    held.once('error', reject);
    held.listen(raft + 3, '127.0.0.1', () => resolve());
  });
  cleanups.push(() => held.close());
  at.step = 'start the cluster';
  const c = await startCluster(raft);
  await waitFor('the cluster to exit on its own', () => c.ended !== undefined, 90_000);
  expect(c.ended).toBe('1');
  expect(c.out).toMatch(/\[node 2\] raftlog serve: EADDRINUSE: /);
  expect(c.nodes.size).toBeGreaterThan(0);
  // Not "cluster stopped.": the cluster never ran.
  expect(lastLine(c)).toBe('cluster not started: node 2 exited (1) before it was up; stopped node 1.');
  expect(c.stdout).not.toMatch(/cluster stopped/);
  // No blank line before it: that is for the ^C a terminal echoes at a Ctrl-C.
  expect(c.stdout).toContain('stopping the cluster...');
  expect(c.stdout).not.toContain('\n\nstopping the cluster');
  at.step = 'wait for every node to stop';
  await waitFor('every node to stop', () => [...c.nodes].every((pid) => !alive(pid)), 20_000);
}, 120_000);

it('a second Ctrl-C kills the nodes that did not stop at the first, and the cluster exits 1, saying which', async () => {
  explainFailure('start the cluster');
  const c = await startCluster();
  await untilSaid(c, 'both nodes up', /all 2 nodes up/);
  const [paused, other] = childrenOf(c.proc.pid!);
  expect([paused, other].every((pid) => pid !== undefined)).toBe(true);
  // A stopped process does not act on SIGTERM: this node cannot stop at the first Ctrl-C.
  at.step = 'SIGSTOP a node, then SIGINT the cluster';
  process.kill(paused!, 'SIGSTOP');
  c.proc.kill('SIGINT');
  await untilSaid(c, 'the first stop', /stopping the cluster/, 30_000);
  await waitFor('the other node to stop', () => !alive(other!), 30_000);
  expect(c.ended).toBeUndefined();
  at.step = 'SIGINT the cluster again';
  c.proc.kill('SIGINT');
  await waitFor('the cluster to exit', () => c.ended !== undefined, 30_000);
  expect(c.ended).toBe('1');
  const killed = /killing node (\d)/.exec(c.out)?.[1];
  expect(killed).toBeDefined();
  expect(lastLine(c)).toBe(`cluster stopped, not cleanly: node ${killed} (SIGKILL).`);
  expect(alive(paused!)).toBe(false);
}, 120_000);

it('a node whose parent went away while it started stops once it is up, not running on as an orphan', async () => {
  explainFailure('start a node and close its IPC channel');
  const t = tempDir();
  cleanups.push(t.cleanup);
  const node = track(
    'raftlog serve --id 1',
    spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--id', '1', '--data', join(t.dir, 'node1'), '--sync', 'none'], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    }),
  );
  // Closed at once: the node has not even loaded its code yet.
  node.proc.disconnect();
  await untilSaid(node, 'the node to come up', /node 1 up/);
  at.step = 'wait for the node to stop on its own';
  await waitFor('the node to stop on its own', () => node.ended !== undefined, 30_000);
  expect(node.out).toMatch(/node 1 stopped/);
}, 120_000);

function cluster(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, 'cluster', ...args], { encoding: 'utf8', timeout: 60_000 }, (err, _out, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stderr });
    });
  });
}

it('a bad flag is one line with the usage and exit 2, not a stack trace', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const data = join(t.dir, 'c');
  for (const [args, message] of [
    [['--nodes', '0'], '--nodes must be between 1 and 9'],
    [['--nodes', 'x'], "--nodes must be a non-negative integer, got 'x'"],
  ] as const) {
    const r = await cluster([...args, '--data', data]);
    expect(r.code, args.join(' ')).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`raftlog cluster: ${message}`);
    expect(r.stderr).toMatch(/^usage: raftlog cluster /m);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(data)).toBe(false);
  }
}, 120_000);

it('a flag its nodes would refuse is refused before the data directory and the secret are made', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const data = join(t.dir, 'c');
  for (const [args, message] of [
    [['--sync', 'sometimes'], "--sync must be 'always' or 'none'"],
    [['--raft-port', '65534'], '--raft-port: the 3 ports from 65534 must lie in 1..65535'],
    [['--resp-port', '0'], '--resp-port: the 3 ports from 0 must lie in 1..65535'],
    [['--raft-port', '7101', '--resp-port', '7103'], '--raft-port and --resp-port: their ranges of 3 ports overlap'],
    [['--resp-port', '7381', '--admin-port', '7379'], '--resp-port and --admin-port: their ranges of 3 ports overlap'],
    [['--host', 'bad host'], "--host: 'bad host' is not a host name or an IP address"],
    [['--host', 'h:7000'], "--host: 'h:7000' is not a host name or an IP address"],
  ] as const) {
    const r = await cluster([...args, '--data', data]);
    expect(r.code, args.join(' ')).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(`raftlog cluster: ${message}`);
    expect(existsSync(data), args.join(' ')).toBe(false);
  }
}, 300_000);

it("the default admin range moves past a --raft-port or --resp-port range that reaches it, which worked before the cluster's nodes had admin endpoints", () => {
  const ports = (...args: string[]): ReturnType<typeof clusterPorts> => clusterPorts(parseArgs(args, CLUSTER_FLAGS), 3);
  expect(ports()).toEqual({ raft: 7101, resp: 7381, admin: 7481 });
  expect(ports('--raft-port', '7481')).toEqual({ raft: 7481, resp: 7381, admin: 7484 });
  expect(ports('--resp-port', '7480')).toEqual({ raft: 7101, resp: 7480, admin: 7483 });
  // Past both, when moving past the first reaches the second.
  expect(ports('--raft-port', '7479', '--resp-port', '7482')).toEqual({ raft: 7479, resp: 7482, admin: 7485 });
  // A port is decimal digits: hex or a fraction was read as some other port.
  for (const v of ['0x1d', '7101.0', '7e3', ' 7101'])
    expect(() => ports('--raft-port', v), v).toThrow(`--raft-port must be a non-negative integer, got '${v}'`);
  // A range holding a port Node's fetch refuses: each node would refuse it once started.
  expect(() => ports('--admin-port', '5998')).toThrow(
    "--admin-port: the 3 ports from 5998 include 6000: port 6000 is one Node's fetch refuses to connect to (the Fetch standard's bad ports): the operator commands could not reach it",
  );
  expect(ports('--admin-port', '6001').admin).toBe(6001);
  // One that is given is the operator's choice: an overlap is theirs to fix.
  expect(() => ports('--raft-port', '7481', '--admin-port', '7481')).toThrow('--raft-port and --admin-port: their ranges of 3 ports overlap');
});

it('the last line after a node failed to start calls stopped only the nodes that stopped: one that failed too, or was killed, is named with how it ended', () => {
  // Node 2 failed first; node 1 failed on its own too, node 3 was stopped.
  expect(endLine([1, 2, 3], ['1', '1', '0'], true, { id: 2, how: '1' })).toBe(
    'cluster not started: node 2 exited (1) before it was up; node 1 failed too (1); stopped node 3.',
  );
  // Node 1 reported its failure and the SIGTERM ended it as it exited: its code names it.
  expect(endLine([1, 2], ['SIGTERM', '1'], true, { id: 2, how: '1' }, new Map([[1, 'EADDRINUSE']]))).toBe(
    'cluster not started: node 2 exited (1) before it was up; node 1 failed too (EADDRINUSE).',
  );
  // Still starting, node 3 had no handler: the SIGTERM sent to stop it ended it.
  expect(endLine([1, 2, 3], ['0', '1', 'SIGTERM'], true, { id: 2, how: '1' })).toBe(
    'cluster not started: node 2 exited (1) before it was up; stopped nodes 1, 3.',
  );
  expect(endLine([1, 2, 3, 4], ['SIGKILL', '1', '1', '0'], true, { id: 2, how: '1' })).toBe(
    'cluster not started: node 2 exited (1) before it was up; nodes 1 (SIGKILL), 3 (1) failed too; stopped node 4.',
  );
  expect(endLine([1], ['1'], true, { id: 1, how: '1' })).toBe('cluster not started: node 1 exited (1) before it was up.');
});

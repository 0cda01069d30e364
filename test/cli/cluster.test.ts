// `raftlog cluster` owns its nodes: they stop when it dies, however it dies; bad flags are refused before anything starts.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { freePortRun, tempDir, waitFor } from '../log/helpers.js';
import { parseArgs } from '../../src/cli/args.js';
import { CLUSTER_FLAGS, clusterPorts } from '../../src/cli/cluster.js';

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

/**
 * `raftlog cluster` of two nodes (sync none) in a new directory, on one run of six free ports (node
 * i listens on raft + i - 1, resp + i - 1 and admin + i - 1, so the ranges cannot meet). Its output,
 * both streams, is `out()`; `code()` is its exit code, undefined while it runs. Whatever it left
 * running, `nodes` included, is killed after the test.
 */
async function startCluster(ports?: number): Promise<{ parent: ChildProcess; out: () => string; code: () => number | null | undefined; nodes: Set<number> }> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const raft = ports ?? (await freePortRun(6));
  const args = ['cluster', '--nodes', '2', '--data', t.dir, '--raft-port', String(raft), '--resp-port', String(raft + 2), '--admin-port', String(raft + 4)];
  const parent = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args, '--sync', 'none'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let code: number | null | undefined;
  parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  parent.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  parent.on('exit', (c) => (code = c));
  const nodes = new Set<number>();
  cleanups.push(() => {
    for (const pid of [parent.pid!, ...nodes]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  return { parent, out: () => out, code: () => code, nodes };
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

it('a SIGKILLed cluster leaves no node running', async () => {
  const { parent, out, nodes } = await startCluster();
  await waitFor('a leader', () => /leader: node \d/.test(out()), 30_000);
  for (const pid of childrenOf(parent.pid!)) nodes.add(pid);
  expect(nodes.size).toBe(2);
  expect(out()).toMatch(/remove it with: rm -rf /);
  parent.kill('SIGKILL');
  await waitFor('every node to stop', () => [...nodes].every((pid) => !alive(pid)), 20_000);
});

it("a node that cannot start stops the cluster, which exits 1 with the node's coded error", async () => {
  const raft = await freePortRun(6);
  // Node 2's client port is taken.
  const held = createServer();
  await new Promise<void>((resolve, reject) => {
    held.once('error', reject);
    held.listen(raft + 3, '127.0.0.1', () => resolve());
  });
  cleanups.push(() => held.close());
  const { parent, out, code, nodes } = await startCluster(raft);
  const watch = setInterval(() => childrenOf(parent.pid!).forEach((pid) => nodes.add(pid)), 20);
  cleanups.push(() => clearInterval(watch));
  await waitFor('the cluster to exit on its own', () => code() !== undefined, 90_000);
  clearInterval(watch);
  expect(code(), out()).toBe(1);
  expect(out()).toMatch(/\[node 2\] raftlog serve: EADDRINUSE: /);
  expect(nodes.size).toBeGreaterThan(0);
  await waitFor('every node to stop', () => [...nodes].every((pid) => !alive(pid)), 20_000);
}, 120_000);

it('a second Ctrl-C kills the nodes that did not stop at the first, and the cluster exits 1', async () => {
  const { parent, out, code, nodes } = await startCluster();
  await waitFor('both nodes up', () => /all 2 nodes up/.test(out()), 60_000);
  const [paused, other] = childrenOf(parent.pid!);
  for (const pid of [paused!, other!]) nodes.add(pid);
  expect(nodes.size).toBe(2);
  // A stopped process does not act on SIGTERM: this node cannot stop at the first Ctrl-C.
  process.kill(paused!, 'SIGSTOP');
  parent.kill('SIGINT');
  await waitFor('the first stop', () => /stopping the cluster/.test(out()) && !alive(other!), 30_000);
  expect(code()).toBeUndefined();
  parent.kill('SIGINT');
  await waitFor('the cluster to exit', () => code() !== undefined, 30_000);
  expect(code(), out()).toBe(1);
  expect(out()).toMatch(/killing node \d/);
  expect(alive(paused!)).toBe(false);
}, 120_000);

it('a node whose parent went away while it started stops once it is up, not running on as an orphan', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const node = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--id', '1', '--data', join(t.dir, 'node1'), '--sync', 'none'], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let out = '';
  node.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  node.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  node.on('exit', () => (exited = true));
  cleanups.push(() => {
    if (!exited) node.kill('SIGKILL');
  });
  // Closed at once: the node has not even loaded its code yet.
  node.disconnect();
  await waitFor('the node to come up', () => /node 1 up/.test(out), 60_000);
  await waitFor('the node to stop on its own', () => exited, 30_000);
  expect(out).toMatch(/node 1 stopped/);
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

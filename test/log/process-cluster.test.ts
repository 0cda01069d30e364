// Real processes: three `raftlog serve` nodes on loopback, spoken to over RESP.
// The leader dies by SIGKILL; nothing it acknowledged may be lost.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { RespClient } from '../kv/resp-client.js';
import { freePortRun, freePorts, tempDir, waitFor } from './helpers.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

/** A process started by a test: what it printed, on stdout and stderr alike, and whether it has ended. */
interface Child {
  proc: ChildProcess;
  output: string[];
  closed: boolean;
}

function spawnCli(args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = { proc, output: [], closed: false };
  proc.stdout!.on('data', (d: Buffer) => child.output.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => child.output.push(d.toString()));
  // 'close', not 'exit': by then the last of its output has been read.
  proc.once('close', () => (child.closed = true));
  return child;
}

const said = (c: Child): string => c.output.join('');
const ended = (c: Child): string => `${c.proc.signalCode ?? c.proc.exitCode}`;

/**
 * A port chosen free is only free when it was probed: another process (a listener on port 0, an
 * outgoing connection's local port) may take it before the child listens. The child then stops
 * before it is up, saying EADDRINUSE, and the test starts it again: on other ports, or, a node
 * restarted on the peer port its peers know, on that port after a pause.
 */
const portTaken = (c: Child): boolean => c.closed && said(c).includes('EADDRINUSE');
const BOOT_ATTEMPTS = 3;

/**
 * On a failure, a vitest timeout too, the error names the step the test was at and carries the
 * output of every process it started, under a header naming it.
 */
function explainFailure(at: { step: string }, started: ReadonlyArray<readonly [name: string, child: Child]>): void {
  onTestFailed(({ task }) => {
    const outputs = started.map(([name, c]) => `\n--- ${name}${c.closed ? `, ended (${ended(c)})` : ''} ---\n${said(c)}`).join('');
    for (const e of task.result?.errors ?? []) e.message = `${at.step}: ${e.message}${outputs}`;
  });
}

async function killAll(children: Iterable<Child | null>): Promise<void> {
  await Promise.all(
    [...children].map((c) =>
      c === null || c.closed
        ? null
        : new Promise((r) => {
            c.proc.once('close', r);
            c.proc.kill('SIGKILL');
          }),
    ),
  );
}

const execFileAsync = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A node that stops answering must fail the test with a reason, not hang it until the test timeout. */
async function within<T>(what: string, p: Promise<T>, ms = 15_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

async function role(port: number): Promise<string | null> {
  try {
    const c = await within(`connect to ${port}`, RespClient.connect(port), 5_000);
    const info = (await within(`INFO on ${port}`, c.call('INFO'), 5_000).finally(() => c.close())) as string;
    return /role:(\w+)/.exec(info)?.[1] ?? null;
  } catch {
    return null;
  }
}

interface Node {
  id: number;
  /** Its peer port: its peers know it there for good. */
  raft: number;
  dir: string;
  /** The RESP port its latest start got (it listens on port 0), from its `up:` line. */
  resp: number;
  /** Its latest start. */
  child: Child | null;
}

// In afterEach, which a vitest timeout runs too: a `raftlog cluster` left running outlives the worker.
const children: Array<Child | null> = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  await killAll(children.splice(0));
  for (const c of cleanups.splice(0)) c();
});

describe('a cluster of three processes', () => {
  it('loses nothing acknowledged when the leader is killed with SIGKILL, and the killed node catches up', async () => {
    const secret = tempDir();
    cleanups.push(secret.cleanup);
    const secretFile = join(secret.dir, 'cluster-secret');
    writeFileSync(secretFile, 'the secret of the process-cluster test\n', { mode: 0o600 });
    let nodes: Node[] = [];
    let peers = '';
    // Every start of every node, shown on a failure: a boot started again on other ports too.
    const started: Array<readonly [string, Child]> = [];
    const start = (n: Node): void => {
      const args = ['serve', '--id', String(n.id), '--data', n.dir, '--listen', `127.0.0.1:${n.raft}`, '--peers', peers];
      n.child = spawnCli([...args, '--cluster-secret-file', secretFile, '--resp', '127.0.0.1:0', '--cluster-id', 'proc-test']);
      children.push(n.child);
      started.push([`node ${n.id} (peer port ${n.raft})`, n.child]);
    };
    // `up:` is printed once the node listens for peers and for clients: its RESP port is read there.
    const up = async (n: Node): Promise<void> => {
      const c = n.child!;
      const line = (): RegExpExecArray | null => new RegExp(`^node ${n.id} up: .*, resp 127\\.0\\.0\\.1:(\\d+)`, 'm').exec(said(c));
      await waitFor(`node ${n.id} to be up`, () => line() !== null || c.closed, 60_000);
      const m = line();
      if (m === null) throw new Error(`node ${n.id} ended (${ended(c)}) before it was up`);
      n.resp = Number(m[1]);
    };
    const findLeader = async (among: Node[]): Promise<Node> => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        for (const n of among) if ((await role(n.resp)) === 'leader') return n;
        if (Date.now() > deadline) throw new Error(`no leader among nodes ${among.map((n) => n.id).join(', ')} within 20 s`);
        await sleep(100);
      }
    };
    const at = { step: 'start the three nodes' };
    explainFailure(at, started);
    for (let attempt = 1; ; attempt++) {
      const ports = await freePorts(3);
      nodes = ports.map((raft, i) => {
        const d = tempDir();
        cleanups.push(d.cleanup);
        return { id: i + 1, raft, dir: d.dir, resp: 0, child: null };
      });
      peers = nodes.map((n) => `${n.id}=127.0.0.1:${n.raft}`).join(',');
      nodes.forEach(start);
      // Every node, not only a majority: two can elect a leader while the third does not listen yet.
      const ups = await Promise.allSettled(nodes.map(up));
      const failed = ups.find((u) => u.status === 'rejected');
      if (failed === undefined) break;
      if (attempt === BOOT_ATTEMPTS || !nodes.some((n) => portTaken(n.child!))) throw failed.reason;
      await killAll(nodes.map((n) => n.child));
    }

    at.step = 'find the leader';
    const leader = await findLeader(nodes);
    const follower = nodes.find((n) => n !== leader)!;
    const acked = new Map<string, string>();
    at.step = 'write through the leader and a follower, and kill the leader';
    const writers = await Promise.all([leader, follower].map((n) => within(`connect to node ${n.id}`, RespClient.connect(n.resp))));
    // Writes flow from two clients, one on a follower; the leader is killed in the middle of them.
    let killed = false;
    const writes = writers.map(async (c, w) => {
      for (let i = 0; i < 400; i++) {
        const key = `w${w}-${i}`;
        const reply = await within(`SET ${key}`, c.call('SET', key, `v${i}`)).catch((e: Error) => e);
        if (reply === 'OK') acked.set(key, `v${i}`);
        if (w === 0 && i === 150) {
          leader.child!.proc.kill('SIGKILL');
          killed = true;
        }
        if (killed && w === 0) break; // that client's node is gone
      }
    });
    await Promise.all(writes);
    for (const c of writers) c.close();
    expect(acked.size).toBeGreaterThan(150);

    at.step = 'read every acknowledged write from the new leader';
    const survivors = nodes.filter((n) => n !== leader);
    const next = await findLeader(survivors);
    const reader = await within('connect to the new leader', RespClient.connect(next.resp));
    for (const [k, v] of acked) expect(await within(`GET ${k}`, reader.call('GET', k)), k).toBe(v);
    expect(await within('SET after', reader.call('SET', 'after', 'kill'))).toBe('OK');
    reader.close();

    // The killed node restarts from its WAL and catches up. Its peer port is its own for good,
    // and was free to take while it was down: it starts again once the taker lets go.
    at.step = 'restart the killed node';
    await killAll([leader.child]);
    for (let attempt = 1; ; attempt++) {
      start(leader);
      try {
        await up(leader);
        break;
      } catch (err) {
        if (attempt === BOOT_ATTEMPTS || !portTaken(leader.child!)) throw err;
        await sleep(1_000);
      }
    }
    at.step = 'read from the restarted node';
    const back = await within('connect to the restarted node', RespClient.connect(leader.resp));
    expect(await within('GET after', back.call('GET', 'after'))).toBe('kill');
    const sample = [...acked].slice(-20);
    for (const [k, v] of sample) expect(await within(`GET ${k}`, back.call('GET', k))).toBe(v);
    back.close();
    // Its own waits (two elections, 550 fsynced SETs, a restart) can add up to more than the
    // default minute on a loaded machine.
  }, 240_000);
});

function hasRedisCli(): boolean {
  try {
    execFileSync('redis-cli', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// .ci/run installs redis-tools, so CI always runs this; elsewhere it needs redis-cli on PATH.
describe.runIf(hasRedisCli())('redis-cli against `raftlog cluster`', () => {
  it('sets on one node and reads on another, INFO shows the raft status, and raftlog status reads every admin endpoint', async () => {
    const d = tempDir();
    cleanups.push(d.cleanup);
    const started: Array<readonly [string, Child]> = [];
    let cluster: Child | null = null;
    const at = { step: 'start the cluster' };
    explainFailure(at, started);
    // `raftlog cluster` takes a port per node counting up from each base: runs of three free ones.
    // A node whose port was taken meanwhile stops the cluster before it is up: started again elsewhere.
    let respPort = 0;
    let adminPort = 0;
    for (let attempt = 1; ; attempt++) {
      const raftPort = await freePortRun(3);
      respPort = await freePortRun(3);
      adminPort = await freePortRun(3);
      const data = join(d.dir, `attempt-${attempt}`);
      const ports = ['--raft-port', String(raftPort), '--resp-port', String(respPort), '--admin-port', String(adminPort)];
      cluster = spawnCli(['cluster', '--nodes', '3', '--data', data, ...ports]);
      children.push(cluster);
      started.push([`raftlog cluster ${ports.join(' ')}`, cluster]);
      const c = cluster;
      // A leader can be elected by two nodes while the third still starts: wait for both.
      await waitFor(
        'the cluster to elect a leader with every node up',
        () => c.closed || (/leader: node \d/.test(said(c)) && said(c).includes('all 3 nodes up')),
        60_000,
      );
      if (!c.closed) break;
      if (attempt === BOOT_ATTEMPTS || !portTaken(c)) throw new Error(`raftlog cluster ended (${ended(c)}) before its nodes were up`);
    }
    const out = said(cluster);
    at.step = 'use the cluster';
    // Asynchronous and bounded: a synchronous call would block the worker's event loop for as long as redis-cli waits.
    const cli = async (port: number, ...args: string[]): Promise<string> =>
      (await execFileAsync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 15_000 })).stdout.trim();
    expect(await cli(respPort, 'set', 'greeting', 'hello')).toBe('OK');
    expect(await cli(respPort, 'get', 'greeting')).toBe('hello');
    expect(await cli(respPort, 'incr', 'counter')).toBe('1');
    expect(await cli(respPort + 1, 'get', 'greeting')).toBe('hello');
    expect(await cli(respPort + 2, 'incr', 'counter')).toBe('2');
    expect(await cli(respPort, 'info')).toMatch(/role:(leader|follower)/);
    expect((await cli(respPort, 'raft.members')).split('\n')).toHaveLength(3);
    // The command the cluster prints to operate it works as printed.
    const admins = [0, 1, 2].map((i) => `127.0.0.1:${adminPort + i}`).join(',');
    expect(out).toContain(`Operate it with: raftlog status --admin ${admins}\n`);
    const status = JSON.parse(
      (await execFileAsync(process.execPath, ['--import', 'tsx', MAIN, 'status', '--admin', admins, '--json'], { encoding: 'utf8', timeout: 30_000 })).stdout,
    ) as { leader: number | null; members: unknown[]; endpoints: Array<{ healthy: boolean }> };
    expect(status.leader).not.toBeNull();
    expect(status.members).toHaveLength(3);
    expect(status.endpoints.map((e) => e.healthy)).toEqual([true, true, true]);

    at.step = 'stop the cluster with SIGINT';
    const c = cluster;
    c.proc.kill('SIGINT');
    await waitFor('the cluster to stop on SIGINT', () => c.closed, 15_000);
    expect(said(c)).toMatch(/cluster stopped/);
    // A start again on other ports waits for the cluster once more.
  }, 240_000);
});

// Real processes: three `raftlog serve` nodes on loopback, spoken to over RESP.
// The leader dies by SIGKILL; nothing it acknowledged may be lost.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { RespClient } from '../kv/resp-client.js';
import { freePortRun, freePorts, tempDir, waitFor } from './helpers.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Node {
  id: number;
  resp: number;
  proc: ChildProcess | null;
  output: string[];
}

function start(node: Node, dataDir: string, peers: string, listen: string, secretFile: string): void {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'serve',
      '--id',
      String(node.id),
      '--data',
      dataDir,
      '--listen',
      listen,
      '--peers',
      peers,
      '--cluster-secret-file',
      secretFile,
      '--resp',
      `127.0.0.1:${node.resp}`,
      '--cluster-id',
      'proc-test',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  proc.stdout!.on('data', (d: Buffer) => node.output.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => node.output.push(d.toString()));
  node.proc = proc;
}

const execFileAsync = promisify(execFile);

/** A node that stops answering must fail the test with a reason, not hang it until the test timeout. */
async function within<T>(what: string, p: Promise<T>, ms = 15_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
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

describe('a cluster of three processes', () => {
  const procs: ChildProcess[] = [];
  const cleanups: Array<() => void> = [];
  afterEach(async () => {
    await Promise.all(
      procs.splice(0).map((p) =>
        p.exitCode !== null || p.signalCode !== null
          ? null
          : new Promise((r) => {
              p.once('exit', r);
              p.kill('SIGKILL');
            }),
      ),
    );
    for (const c of cleanups.splice(0)) c();
  });

  it('loses nothing acknowledged when the leader is killed with SIGKILL, and the killed node catches up', async () => {
    const ports = await freePorts(6);
    const nodes: Node[] = [1, 2, 3].map((id) => ({ id, resp: ports[id + 2]!, proc: null, output: [] }));
    const peers = nodes.map((n) => `${n.id}=127.0.0.1:${ports[n.id - 1]}`).join(',');
    const dirs = nodes.map(() => tempDir());
    for (const d of dirs) cleanups.push(d.cleanup);
    const secretFile = join(dirs[0]!.dir, '..', `${basename(dirs[0]!.dir)}.secret`);
    writeFileSync(secretFile, 'the secret of the process-cluster test\n', { mode: 0o600 });
    cleanups.push(() => rmSync(secretFile, { force: true }));
    const boot = (n: Node): void => {
      start(n, dirs[n.id - 1]!.dir, peers, `127.0.0.1:${ports[n.id - 1]}`, secretFile);
      procs.push(n.proc!);
    };
    nodes.forEach(boot);

    const findLeader = async (among: Node[]): Promise<Node> => {
      let leader: Node | undefined;
      const deadline = Date.now() + 20_000;
      while (leader === undefined) {
        if (Date.now() > deadline) throw new Error(`no leader; output:\n${among.map((n) => n.output.join('')).join('\n')}`);
        for (const n of among) if ((await role(n.resp)) === 'leader') leader = n;
        await new Promise((r) => setTimeout(r, 100));
      }
      return leader;
    };

    const leader = await findLeader(nodes);
    const follower = nodes.find((n) => n !== leader)!;
    const acked = new Map<string, string>();
    const writers = await Promise.all([leader, follower].map((n) => within(`connect to node ${n.id}`, RespClient.connect(n.resp))));
    // Writes flow from two clients, one on a follower; the leader is killed in the middle of them.
    let killed = false;
    const writes = writers.map(async (c, w) => {
      for (let i = 0; i < 400; i++) {
        const key = `w${w}-${i}`;
        const reply = await within(`SET ${key}`, c.call('SET', key, `v${i}`)).catch((e: Error) => e);
        if (reply === 'OK') acked.set(key, `v${i}`);
        if (w === 0 && i === 150) {
          leader.proc!.kill('SIGKILL');
          killed = true;
        }
        if (killed && w === 0) break; // that client's node is gone
      }
    });
    await Promise.all(writes);
    for (const c of writers) c.close();
    expect(acked.size).toBeGreaterThan(150);

    const survivors = nodes.filter((n) => n !== leader);
    const next = await findLeader(survivors);
    const reader = await within('connect to the new leader', RespClient.connect(next.resp));
    for (const [k, v] of acked) expect(await within(`GET ${k}`, reader.call('GET', k)), k).toBe(v);
    expect(await within('SET after', reader.call('SET', 'after', 'kill'))).toBe('OK');
    reader.close();

    // The killed node restarts from its WAL and catches up.
    leader.output = [];
    boot(leader);
    await waitFor('the restarted node to answer', () => leader.output.join('').includes('up:'), 20_000);
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
    // `raftlog cluster` takes a port per node counting up from each base: find runs of three free ones.
    const raftPort = await freePortRun(3);
    const respPort = await freePortRun(3);
    const adminPort = await freePortRun(3);
    const d = tempDir();
    const cluster = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        MAIN,
        'cluster',
        '--nodes',
        '3',
        '--data',
        d.dir,
        '--raft-port',
        String(raftPort),
        '--resp-port',
        String(respPort),
        '--admin-port',
        String(adminPort),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    cluster.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    try {
      // A leader can be elected by two nodes while the third still starts: wait for both.
      await waitFor('the cluster to elect a leader with every node up', () => /leader: node \d/.test(out) && out.includes('all 3 nodes up'), 30_000);
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
    } finally {
      const exited = new Promise((r) => cluster.once('exit', r));
      cluster.kill('SIGINT');
      await within('the cluster to stop on SIGINT', exited).catch((err: unknown) => {
        cluster.kill('SIGKILL');
        throw err;
      });
      d.cleanup();
    }
    expect(out).toMatch(/cluster stopped/);
  });
});

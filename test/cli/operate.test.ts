// An operator's day on a cluster of real processes: `raftlog serve --admin` nodes
// driven by `raftlog status|member|leader|snapshot`, while a client keeps writing.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RespClient } from '../kv/resp-client.js';
import { freePorts, tempDir, waitFor } from '../log/helpers.js';
import { parsePrometheus } from '../admin/prometheus-text.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function raftlog(args: string[], timeout = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

interface Node {
  id: number;
  raft: number;
  resp: number;
  admin: number;
  proc: ChildProcess | null;
  out: string;
  err: string;
}

describe('operating a cluster of processes', () => {
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

  it('status, member add + join under writes, member replace, member remove, leader transfer, metrics, snapshot save and restore', async () => {
    const t = tempDir('raftlog-operate-');
    cleanups.push(t.cleanup);
    const secret = join(t.dir, 'secret');
    writeFileSync(secret, 'a cluster secret for the operate test\n');
    const tokenFile = join(t.dir, 'token');
    writeFileSync(tokenFile, 'an admin token\n');
    const ports = await freePorts(18);
    const nodes: Node[] = [1, 2, 3, 4].map((id) => ({
      id,
      raft: ports[id - 1]!,
      resp: ports[4 + id - 1]!,
      admin: ports[8 + id - 1]!,
      proc: null,
      out: '',
      err: '',
    }));
    nodes.push({ id: 5, raft: ports[15]!, resp: ports[16]!, admin: ports[17]!, proc: null, out: '', err: '' });
    const peersOf = (ids: number[]): string => ids.map((id) => `${id}=127.0.0.1:${nodes[id - 1]!.raft}`).join(',');
    const start = (n: Node, extra: string[]): void => {
      const args = [
        'serve',
        '--id',
        String(n.id),
        '--data',
        join(t.dir, `node${n.id}`),
        '--cluster-secret-file',
        secret,
        '--resp',
        `127.0.0.1:${n.resp}`,
        '--admin',
        `127.0.0.1:${n.admin}`,
        '--admin-token-file',
        tokenFile,
        '--sync',
        'none',
        '--log-format',
        'json',
        ...extra,
      ];
      const p = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout!.on('data', (d: Buffer) => (n.out += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (n.err += d.toString()));
      n.proc = p;
      procs.push(p);
    };
    // A node that joined serves a key written after it joined (reads there may lag: retried).
    const readsBack = async (n: Node, key: string): Promise<void> => {
      const c = await RespClient.connect(n.resp);
      try {
        let got: unknown = null;
        for (let i = 0; i < 60 && got !== `v${key.slice(1)}`; i++) {
          got = await c.call('GET', key).catch(() => null);
          if (got !== `v${key.slice(1)}`) await new Promise((res) => setTimeout(res, 250));
        }
        expect(got, `node ${n.id} reading ${key}`).toBe(`v${key.slice(1)}`);
      } finally {
        c.close();
      }
    };
    const admins = (ids: number[]): string => ids.map((id) => `127.0.0.1:${nodes[id - 1]!.admin}`).join(',');
    const ctl = (args: string[]): Promise<Run> => raftlog([...args, '--admin-token-file', tokenFile]);
    const ctlJson = async <T>(args: string[]): Promise<T> => {
      const r = await ctl([...args, '--json']);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout) as T;
    };
    type Status = {
      leader: number | null;
      members: Array<{ id: number; role: string; lag: number | null }>;
      endpoints: Array<{ healthy: boolean; node: number }>;
    };

    for (const n of nodes.slice(0, 3)) start(n, ['--peers', peersOf([1, 2, 3])]);
    await waitFor('three nodes up', () => nodes.slice(0, 3).every((n) => n.out.includes('up: data')), 60_000);
    // serve hands its logger to the admin endpoint: a refused request is logged, with its reason.
    expect((await fetch(`http://127.0.0.1:${nodes[0]!.admin}/status`)).status).toBe(401);
    await waitFor('the refused admin request logged', () => /"msg":"admin: refused GET \/status from 127\.0\.0\.1:\d+: 401 UNAUTHORIZED/.test(nodes[0]!.out));

    // raftlog status: three members, every endpoint healthy, a leader (the nodes may still be electing one).
    let status!: Status;
    for (let i = 0; i < 60; i++) {
      const r = await ctl(['status', '--admin', admins([1, 2, 3]), '--json']);
      const s = r.code === 0 ? (JSON.parse(r.stdout) as Status) : undefined;
      if (s?.leader) {
        status = s;
        break;
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    expect(status, 'raftlog status never reported a healthy cluster with a leader').toBeDefined();
    expect(status.members.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(status.endpoints.every((e) => e.healthy)).toBe(true);
    expect(status.members.filter((m) => m.role === 'leader').map((m) => m.id)).toEqual([status.leader]);
    const table = await ctl(['status', '--admin', admins([1, 2, 3])]);
    expect(table.stdout).toMatch(/ENDPOINT\s+HEALTH/);
    expect(table.stdout.match(/healthy/g)).toHaveLength(3);

    // A client writes all along, through one node; every acknowledged key is remembered.
    const acked: string[] = [];
    let writing = true;
    const writer = (async () => {
      const c = await RespClient.connect(nodes[0]!.resp);
      try {
        for (let i = 0; writing; i++) {
          const reply = await c.call('SET', `k${i}`, `v${i}`).catch((e: unknown) => e);
          if (reply === 'OK') acked.push(`k${i}`);
        }
      } finally {
        c.close();
      }
    })();
    await waitFor('writes', () => acked.length >= 20, 30_000);

    // /metrics parses, and the commit index grows under writes. (The leader asked again: on a
    // loaded machine it may have changed since the first status.)
    const { leader } = await ctlJson<Status>(['status', '--admin', admins([1, 2, 3])]);
    const leaderAdmin = `http://127.0.0.1:${nodes[leader! - 1]!.admin}`;
    const scrape = async (): Promise<Map<string, number>> =>
      parsePrometheus(await (await fetch(`${leaderAdmin}/metrics`, { headers: { authorization: 'Bearer an admin token' } })).text());
    const m1 = await scrape();
    const before = acked.length;
    await waitFor('more writes', () => acked.length >= before + 20, 30_000);
    const m2 = await scrape();
    expect(m2.get('raftlog_commit_index')!).toBeGreaterThan(m1.get('raftlog_commit_index')!);
    expect(m2.get('raftlog_is_leader')).toBe(1);
    expect([...m2.keys()].some((k) => k.startsWith('raftlog_peer_lag_entries{peer='))).toBe(true);

    // member add + serve --join: a fourth node comes in while writes continue.
    const add = await ctl(['member', 'add', '4', `127.0.0.1:${nodes[3]!.raft}`, '--admin', admins([1, 2, 3])]);
    expect(add.code, add.stderr).toBe(0);
    // It prints the line that starts the node, --peers filled in.
    expect(add.stdout).toContain(`raftlog serve --id 4 --data DIR --peers ${peersOf([1, 2, 3, 4])} --join`);
    start(nodes[3]!, ['--peers', peersOf([1, 2, 3, 4]), '--join']);
    await waitFor('the fourth node up', () => nodes[3]!.out.includes('up: data'), 60_000);
    const atJoin = acked.length;
    await waitFor('writes after the join', () => acked.length >= atJoin + 20, 30_000);
    await readsBack(nodes[3]!, acked[atJoin + 10]!);
    const withFour = await ctlJson<Array<{ id: number }>>(['member', 'list', '--admin', admins([1, 2, 3])]);
    expect(withFour.map((m) => m.id)).toEqual([1, 2, 3, 4]);

    // member replace: node 5 takes node 4's place in one joint change, while writes continue.
    const replace = await ctl(['member', 'replace', '4', '5', `127.0.0.1:${nodes[4]!.raft}`, '--admin', admins([1, 2, 3])]);
    expect(replace.code, replace.stderr).toBe(0);
    expect(replace.stdout).toContain(`raftlog serve --id 5 --data DIR --peers ${peersOf([1, 2, 3, 5])} --join`);
    start(nodes[4]!, ['--peers', peersOf([1, 2, 3, 5]), '--join']);
    await waitFor('the fifth node up', () => nodes[4]!.out.includes('up: data'), 60_000);
    const withFive = await ctlJson<Array<{ id: number }>>(['member', 'list', '--admin', admins([1, 2, 3])]);
    expect(withFive.map((m) => m.id)).toEqual([1, 2, 3, 5]);
    const atReplace = acked.length;
    await waitFor('writes after the replacement', () => acked.length >= atReplace + 20, 30_000);
    await readsBack(nodes[4]!, acked[atReplace + 10]!);

    // member remove: back to three.
    const remove = await ctl(['member', 'remove', '5', '--admin', admins([1, 2, 3])]);
    expect(remove.code, remove.stderr).toBe(0);
    const afterRemove = await ctlJson<Array<{ id: number }>>(['member', 'list', '--admin', admins([1, 2, 3])]);
    expect(afterRemove.map((m) => m.id)).toEqual([1, 2, 3]);

    // leader transfer to a follower.
    const current = await ctlJson<Status>(['status', '--admin', admins([1, 2, 3])]);
    const target = [1, 2, 3].find((id) => id !== current.leader)!;
    const transfer = await ctl(['leader', 'transfer', String(target), '--admin', admins([1, 2, 3])]);
    expect(transfer.code, transfer.stderr).toBe(0);
    const moved = await ctlJson<Status>(['status', '--admin', admins([1, 2, 3])]);
    expect(moved.leader).toBe(target);

    // snapshot save on a follower, restore into a fresh directory, one node serves the same keys.
    writing = false;
    await writer;
    const follower = [1, 2, 3].find((id) => id !== target)!;
    const file = join(t.dir, 'backup.snap');
    const save = await ctl(['snapshot', 'save', file, '--admin', admins([follower])]);
    expect(save.code, save.stderr).toBe(0);
    const restored = join(t.dir, 'restored');
    const restore = await raftlog(['snapshot', 'restore', file, '--data', restored, '--id', '1']);
    expect(restore.code, restore.stderr).toBe(0);
    const single: Node = { id: 1, raft: 0, resp: ports[12]!, admin: ports[13]!, proc: null, out: '', err: '' };
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, 'serve', '--id', '1', '--data', restored, '--resp', `127.0.0.1:${single.resp}`, '--sync', 'none'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    procs.push(p);
    p.stdout!.on('data', (d: Buffer) => (single.out += d.toString()));
    await waitFor('the restored node', () => single.out.includes('up: data'), 60_000);
    const c = await RespClient.connect(single.resp);
    try {
      for (const key of [acked[0]!, acked[Math.floor(acked.length / 2)]!, acked.at(-1)!]) expect(await c.call('GET', key)).toBe(`v${key.slice(1)}`);
    } finally {
      c.close();
    }

    // --log-format json: every line a node printed is a JSON object with time, level and node.
    const lines = nodes[0]!.out.split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) {
      const rec = JSON.parse(line) as Record<string, unknown>;
      expect(typeof rec.time).toBe('string');
      expect(typeof rec.level).toBe('number');
      expect(rec.node).toBe(1);
    }
  }, 300_000);

  it('a damaged backup is refused with SNAPSHOT_CORRUPT, a directory without a WAL by inspect and recover', async () => {
    const t = tempDir('raftlog-operate-');
    cleanups.push(t.cleanup);
    const bad = join(t.dir, 'bad.snap');
    writeFileSync(bad, Buffer.concat([Buffer.from('RLSNAP02'), Buffer.alloc(64, 7)]));
    const r = await raftlog(['snapshot', 'restore', bad, '--data', join(t.dir, 'x'), '--id', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/SNAPSHOT_CORRUPT/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const inspect = await raftlog(['inspect', t.dir]);
    expect(inspect.code).toBe(1);
    expect(inspect.stderr).toMatch(/no WAL/);
    const refused = await raftlog(['recover', '--force-new-cluster', '--data', t.dir, '--id', '1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/NOT_CONFIRMED/);
    const none = await raftlog(['recover', '--force-new-cluster', '--data', t.dir, '--id', '1', '--yes']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/NO_WAL/);
    const usage = await raftlog(['member', 'add', 'x', '--admin', '127.0.0.1:1']);
    expect(usage.code).toBe(2);
    const unreachable = await raftlog(['status', '--admin', '127.0.0.1:1']);
    expect(unreachable.code).toBe(3);
    const version = await raftlog(['--version']);
    expect(version.stdout).toMatch(/^raftlog \d+\.\d+\.\d+/);
  }, 120_000);
});

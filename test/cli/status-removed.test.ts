// A node removed from the cluster that still runs, as `raftlog status` and `member list` show it:
// named as removed with what to do, and its stale view never taken for the cluster's.
import { createServer } from 'node:http';
import { afterEach, expect, it, vi } from 'vitest';
import { serveAdmin } from '../../src/admin/index.js';
import { main as member } from '../../src/cli/member.js';
import { main as status } from '../../src/cli/status.js';
import type { LogStatus } from '../../src/log/index.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { tempDir } from '../log/helpers.js';
import { listening } from './listening.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MEMBERS = { 1: '127.0.0.1:7101', 2: '127.0.0.1:7102', 3: '127.0.0.1:7103' };

/**
 * The admin endpoint of node 1, served by the real handler over a status that reads as `s` says:
 * its /status and /health are what a removed node's endpoint answers.
 */
async function nodeOne(s: Partial<LogStatus>): Promise<string> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open({ dataDir: t.dir });
  cleanups.push(() => log.close());
  const view = {
    status: () => ({ ...log.status(), progress: undefined, members: MEMBERS, ...s }),
    metrics: () => log.metrics(),
    barrier: () => new Promise<void>(() => undefined),
  } as unknown as ReplicatedLog;
  const admin = await serveAdmin({ log: view, address: '127.0.0.1:0' });
  cleanups.push(() => admin.close());
  return admin.address;
}

/** Node 2, leading nodes 2 and 3: a fake endpoint answering its /status and /health. */
async function leaderTwo(): Promise<string> {
  const p = { next: 13, lag: 0, state: 'replicate', recentActive: true, isLearner: false, inflight: 0, paused: false };
  const s = {
    ...{ id: 2, term: 3, vote: 2, commit: 12, applied: 12, lead: 2, leadTransferee: 0, role: 'leader', lastIndex: 12, firstIndex: 1, snapshotIndex: 0 },
    conf: { voters: [2, 3], learners: [] },
    members: { 2: MEMBERS[2], 3: MEMBERS[3] },
    progress: { 2: { ...p, match: 12 }, 3: { ...p, match: 12 } },
  };
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/health' ? { health: true, leader: 2, id: 2 } : s));
  });
  return await listening(server, cleanups);
}

function output(): { out: () => string; err: () => string } {
  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  return { out: () => out.mock.calls.map((c) => String(c[0])).join('\n'), err: () => err.mock.calls.map((c) => String(c[0])).join('\n') };
}

// Cut off when its removal committed: it never applied it, and node 2, which did, refuses it.
const UNHEARD: Partial<LogStatus> = { id: 1, role: 'follower', lead: 2, term: 2, conf: { voters: [1, 2, 3], learners: [] }, removedBy: 2 };
// It applied a configuration without itself, and names the leader it last heard.
const APPLIED: Partial<LogStatus> = { id: 1, role: 'follower', lead: 2, term: 2, conf: { voters: [2, 3], learners: [] } };

it('/status of a node a member refuses as removed carries removedBy', async () => {
  const ep = await nodeOne(UNHEARD);
  const res = await fetch(`http://${ep}/status`);
  expect(await res.json()).toMatchObject({ id: 1, removedBy: 2 });
});

it('status names a removed node as removed, with what to do, and not the leader it last heard', async () => {
  for (const [name, s, why] of [
    ['unheard', UNHEARD, 'node 2 refuses it as removed'],
    ['applied', APPLIED, 'its configuration no longer holds it (voters 2, 3)'],
  ] as const) {
    const removed = await nodeOne(s);
    const leader = await leaderTwo();
    const o = output();
    expect(await status(['--admin', `${removed},${leader}`]), name).toBe(1);
    const text = o.out();
    // The members as the leader sees them, not as the removed node last knew them.
    expect(text, name).toMatch(/^members \(as node 2, the leader, sees them/);
    const row = text.split('\n').find((l) => l.startsWith(`${removed} `));
    expect(row, name).toMatch(/unhealthy \(NOT_MEMBER\) +1 +removed +- +2 /);
    expect(text, name).toContain(
      `${removed}: node 1 was removed from the cluster (${why}) and still runs: stop it, or add it back (raftlog member add 1 127.0.0.1:7101 --admin <a member's endpoint>)`,
    );
    vi.restoreAllMocks();
    const j = output();
    expect(await status(['--admin', `${removed},${leader}`, '--json']), name).toBe(1);
    const json = JSON.parse(j.out()) as { leader: number | null; endpoints: Array<Record<string, unknown>> };
    expect(json.leader, name).toBe(2);
    expect(json.endpoints[0], name).toMatchObject({ node: 1, healthy: false, error: 'NOT_MEMBER', removed: true, removedBy: s.removedBy ?? null });
    expect(json.endpoints[1], name).toMatchObject({ node: 2, healthy: true, removed: false, removedBy: null });
    vi.restoreAllMocks();
  }
});

it('status given only a removed node says its members are its stale view, and claims no leader; member list refuses it', async () => {
  const removed = await nodeOne(UNHEARD);
  const o = output();
  expect(await status(['--admin', removed])).toBe(1);
  expect(o.out()).toMatch(/^members \(as node 1, removed from the cluster, last knew them: give a member's admin endpoint/);
  vi.restoreAllMocks();
  const j = output();
  expect(await status(['--admin', removed, '--json'])).toBe(1);
  expect(JSON.parse(j.out())).toMatchObject({ leader: null });
  vi.restoreAllMocks();
  // Listed, its members read as the cluster's: exit 0 on a view that may be long gone.
  const m = output();
  expect(await member(['list', '--admin', removed])).toBe(1);
  expect(m.out()).toBe('');
  // Its hint sends the operator to a member, not back to member list on the same endpoint.
  expect(m.err()).toBe(
    `raftlog member: NOT_MEMBER: ${removed} is node 1, no longer a member: give a member's admin endpoint (check the ids against \`raftlog member list\` given a member's admin endpoint (a change retried after a TIMEOUT may have taken effect already))`,
  );
});

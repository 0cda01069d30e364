// `raftlog recover --force-new-cluster`: a survivor of a three-node cluster whose
// other members are gone becomes a one-member cluster with every record it held.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main as recover } from '../../src/cli/recover.js';
import { KvStateMachine, encodeCommand } from '../../src/kv/index.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { freePorts, tempDir, waitFor } from '../log/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const set = (k: string, v: string): Uint8Array => encodeCommand(['SET', Buffer.from(k), Buffer.from(v)]);

it('turns one survivor into a one-member cluster that serves what it held and takes writes', async () => {
  const ports = await freePorts(3);
  const peers = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
  const dirs = [1, 2, 3].map(() => tempDir());
  for (const d of dirs) cleanups.push(d.cleanup);
  const opts = { clusterSecret: 'a secret for the recover test', tickMs: 10, electionTicks: 40, heartbeatTicks: 2, snapshotEvery: 30 } as const;
  const logs = await Promise.all(
    [1, 2, 3].map((id) => ReplicatedLog.open<unknown>({ dataDir: dirs[id - 1]!.dir, id, peers, stateMachine: new KvStateMachine() as never, ...opts })),
  );
  let leader: ReplicatedLog<unknown> | undefined;
  await waitFor('a leader', () => (leader = logs.find((l) => l.status().role === 'leader')) !== undefined);
  // More than snapshotEvery: the survivor holds a snapshot and log entries after it.
  for (let i = 0; i < 50; i++) await leader!.append(set(`k${i}`, `v${i}`));
  const survivor = logs.find((l) => l !== leader)!;
  await waitFor('the survivor to apply everything', () => survivor.status().applied >= leader!.status().commit);
  const dir = dirs[survivor.id - 1]!.dir;
  for (const l of logs) await l.close();
  const peerInstances = (): string => readFileSync(join(dir, 'peer-instances'), 'utf8');
  expect(peerInstances().split('\n')).toHaveLength(3); // two peers, each on its line

  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await recover(['--force-new-cluster', '--data', dir, '--id', String(survivor.id)])).toBe(1);
  expect(String(err.mock.calls[0]?.[0])).toMatch(/NOT_CONFIRMED/);
  expect(await recover(['--force-new-cluster', '--data', dir, '--id', String(survivor.id), '--yes', '--json'])).toBe(0);
  const report = JSON.parse(String(out.mock.calls.at(-1)?.[0])) as { index: number };
  expect(report.index).toBeGreaterThanOrEqual(50);
  vi.restoreAllMocks();
  // Its old peers are to be wiped and added back: their instances are forgotten.
  expect(peerInstances()).toBe('');

  const kv = new KvStateMachine();
  const alone = await ReplicatedLog.open<unknown>({ dataDir: dir, id: survivor.id, stateMachine: kv as never });
  cleanups.push(() => alone.close());
  expect(alone.status().role).toBe('leader');
  expect(alone.status().conf.voters).toEqual([survivor.id]);
  for (const i of [0, 25, 49]) expect(kv.get(Buffer.from(`k${i}`))?.toString()).toBe(`v${i}`);
  await alone.append(set('after', 'recovery'));
  expect(kv.get(Buffer.from('after'))?.toString()).toBe('recovery');
});

it('recovers a log that holds a change of several members at once (a conf change of format 2)', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  // A peer port, so that members can be added (they are never there: learners need no answer).
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: new KvStateMachine() as never, listen: '127.0.0.1:0', insecure: true });
  await log.append(set('before', '1'));
  await log.changeMembership([
    { addLearner: 2, address: '127.0.0.1:1' },
    { addLearner: 3, address: '127.0.0.1:2' },
  ]);
  await log.append(set('after', '2'));
  await log.close();

  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await recover(['--force-new-cluster', '--data', t.dir, '--id', '1', '--yes']), String(err.mock.calls[0]?.[0])).toBe(0);
  vi.restoreAllMocks();

  const kv = new KvStateMachine();
  const alone = await ReplicatedLog.open<unknown>({ dataDir: t.dir, id: 1, stateMachine: kv as never });
  cleanups.push(() => alone.close());
  expect(alone.status().conf).toMatchObject({ voters: [1], learners: [] });
  expect(kv.get(Buffer.from('before'))?.toString()).toBe('1');
  expect(kv.get(Buffer.from('after'))?.toString()).toBe('2');
});

it('refuses a data directory whose wal/ holds no segments, and leaves it as it found it', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  mkdirSync(join(t.dir, 'wal'));
  const before = listing(t.dir);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await recover(['--force-new-cluster', '--data', t.dir, '--id', '1', '--yes'])).toBe(1);
  expect(String(err.mock.calls[0]?.[0])).toMatch(/NO_WAL: .* holds no log to recover/);
  expect(listing(t.dir)).toEqual(before);
});

/** A node's directory (its snapshot and log entries after it), damaged by `damage`: recover exits 1 with `said` first on stderr and leaves it as it was. */
async function refusesDamaged(damage: (dir: string) => void, said: RegExp): Promise<void> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: new KvStateMachine() as never, snapshotEvery: 5 });
  for (let i = 0; i < 12; i++) await log.append(set(`k${i}`, 'v'));
  await log.close();
  damage(t.dir);
  const before = listing(t.dir);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await recover(['--force-new-cluster', '--data', t.dir, '--id', '1', '--yes'])).toBe(1);
  expect(String(err.mock.calls[0]?.[0])).toMatch(said);
  expect(listing(t.dir)).toEqual(before);
}

it('refuses a directory a restore did not finish, as the log does, and changes nothing there', async () => {
  // Made into a new cluster, it would keep the marker: the node would not open, and the restore, run again, would find the WAL in use.
  await refusesDamaged((dir) => writeFileSync(join(dir, 'restore-incomplete'), ''), /^raftlog recover: RESTORE_INCOMPLETE: a restore did not finish/);
});

it('refuses a node whose snapshot is missing without creating its snapshots/ directory', async () => {
  // The WAL's snapshot marker names a snapshot file that is gone, with its directory.
  await refusesDamaged((dir) => rmSync(join(dir, 'snapshots'), { recursive: true }), /SNAPSHOT_MISSING/);
});

/** A node's directory given to `recover` with `args`: exit 2, the first line of stderr matching `said`, and nothing rewritten. */
async function refusesWithoutRewriting(args: string[], said: RegExp): Promise<void> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: new KvStateMachine() as never });
  await log.append(set('k', 'v'));
  await log.close();
  const before = listing(t.dir);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await recover(['--force-new-cluster', '--data', t.dir, '--id', '1', ...args])).toBe(2);
  expect(String(err.mock.calls[0]?.[0])).toMatch(said);
  expect(listing(t.dir)).toEqual(before);
}

it('refuses a --listen that is not HOST:PORT before it rewrites anything', async () => {
  await refusesWithoutRewriting(['--listen', '127.0.0.1:99999', '--yes'], /--listen: '127.0.0.1:99999' is not HOST:PORT/);
});

it('refuses a --listen on port 0, which the members it is to be given could not find, before it rewrites anything', async () => {
  await refusesWithoutRewriting(['--listen', '127.0.0.1:0', '--yes'], /^raftlog recover: --listen: 127\.0\.0\.1:0 is a new free port at every start/);
});

it('refuses --yes=no (a switch given a value) rather than taking it for --yes, and rewrites nothing', async () => {
  await refusesWithoutRewriting(['--yes=no'], /^raftlog recover: --yes takes no value, got '--yes=no'/);
});

/**
 * What `dir` holds, but the WAL's prepared segment: every open of a WAL removes the one an earlier
 * run left and prepares another on its own thread, which a refused recover's close may come before.
 */
function listing(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((n) => n !== join('wal', 'next.prealloc')).sort();
}

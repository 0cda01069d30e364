// `raftlog recover --force-new-cluster`: a survivor of a three-node cluster whose
// other members are gone becomes a one-member cluster with every record it held.
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main as recover } from '../../src/cli/recover.js';
import { KvStateMachine, encodeCommand } from '../../src/kv/index.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { encodeSnapshotData } from '../../src/log/snapshot-data.js';
import { snapshotChunks } from '../../src/log/state-machine.js';
import { FileSnapshotStore, readSnapshotFile } from '../../src/storage/snapshot-store.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { Wal } from '../../src/wal/index.js';
import { readOwner } from '../../src/wal/owner.js';
import { runWithFaults } from '../fault/run-with-faults.js';
import { killBefore, killSteps, reached } from '../fault/kill-steps.js';
import { digests, freePorts, tempDir, tornTail, waitFor } from '../log/helpers.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

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
  // Another member's id, or one the cluster never had: the node would lead nothing under its own.
  const files = listing(dir);
  expect(await recover(['--force-new-cluster', '--data', dir, '--id', String(leader!.id), '--yes'])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`NOT_MEMBER: node ${leader!.id} is one of this node's peers`));
  expect(await recover(['--force-new-cluster', '--data', dir, '--id', '7', '--yes'])).toBe(1);
  expect(String(err.mock.calls.at(-1)?.[0])).toMatch(/NOT_MEMBER: node 7 is not a member of the configuration this log ends in \(1, 2, 3\)/);
  expect(listing(dir)).toEqual(files);
  expect(peerInstances().split('\n')).toHaveLength(3);
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
  // The rewritten WAL is still the directory's own.
  expect(await readOwner(join(dir, 'wal'))).toBe(readFileSync(join(dir, 'instance'), 'utf8').trim());
});

it("refuses another directory's wal/ with WAL_FOREIGN naming both ids, and changes nothing, as the node's open would", async () => {
  const dirs = [tempDir(), tempDir()];
  for (const d of dirs) cleanups.push(d.cleanup);
  for (const d of dirs) {
    const log = await ReplicatedLog.open<unknown>({ dataDir: d.dir, stateMachine: new KvStateMachine() as never });
    await log.append(set('k', d.dir));
    await log.close();
  }
  const [mine, theirs] = dirs.map((d) => d.dir) as [string, string];
  const id = (dir: string): string => readFileSync(join(dir, 'instance'), 'utf8').trim();
  rmSync(join(mine, 'wal'), { recursive: true });
  cpSync(join(theirs, 'wal'), join(mine, 'wal'), { recursive: true });
  const before = digests(mine);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await recover(['--force-new-cluster', '--data', mine, '--id', '1', '--yes'])).toBe(1);
  expect(String(err.mock.calls[0]?.[0])).toMatch(new RegExp(`WAL_FOREIGN: .*belongs to instance ${id(theirs)} .* whose instance is ${id(mine)}`));
  expect(digests(mine)).toEqual(before);
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

it('keeps a snapshot received past the end of the log, whose install a crash cut short before the WAL recorded it: the node held it, and no leader is left to send it again', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: new KvStateMachine() as never, snapshotEvery: 5 });
  for (let i = 0; i < 12; i++) await log.append(set(`k${i}`, 'v'));
  const last = log.status().lastIndex;
  await log.close();
  // The leader's state at 99, spooled and installed as a follower does; the crash came before the WAL's marker.
  const leader = new KvStateMachine();
  for (let i = 0; i < 12; i++) leader.apply({ index: i + 2, term: 1, offset: 0, data: set(`k${i}`, 'v') });
  leader.apply({ index: 99, term: 1, offset: 0, data: set('late', 'yes') });
  const meta = { index: 99, term: 1, conf: { voters: [1, 2, 3], learners: [] } };
  const elsewhere = tempDir();
  cleanups.push(elsewhere.cleanup);
  await (await FileSnapshotStore.open(elsewhere.dir)).save({ meta, data: encodeSnapshotData([], snapshotChunks(leader.snapshot())) });
  const bytes = readFileSync(join(elsewhere.dir, readdirSync(elsewhere.dir)[0]!));
  const store = await FileSnapshotStore.open(join(t.dir, 'snapshots'));
  const spool = await store.spool(meta, bytes.length);
  await spool.write(bytes);
  await store.install({ meta, data: await spool.finish() });

  const out = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await recover(['--force-new-cluster', '--data', t.dir, '--id', '1', '--yes', '--json']), String(err.mock.calls[0]?.[0])).toBe(0);
  const report = JSON.parse(String(out.mock.calls.at(-1)?.[0])) as { index: number };
  vi.restoreAllMocks();
  expect({ last, index: report.index }).toEqual({ last, index: 99 });
  const kv = new KvStateMachine();
  const alone = await ReplicatedLog.open<unknown>({ dataDir: t.dir, id: 1, stateMachine: kv as never });
  cleanups.push(() => alone.close());
  expect(alone.status()).toMatchObject({ applied: 99, conf: { voters: [1] } });
  expect(kv.get(Buffer.from('late'))?.toString()).toBe('yes');
  expect(kv.get(Buffer.from('k11'))?.toString()).toBe('v');
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

it('refuses a data directory that does not exist as NO_WAL, saying so, and makes nothing there', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const missing = join(t.dir, 'missing');
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await recover(['--force-new-cluster', '--data', missing, '--id', '1', '--yes'])).toBe(1);
  // It said the directory "has no wal/ directory", which sent the operator looking inside one.
  expect(String(err.mock.calls[0]?.[0])).toMatch(new RegExp(`^raftlog recover: NO_WAL: ${missing} does not exist \\(`));
  expect(existsSync(missing)).toBe(false);
});

/** A node's directory (its snapshot and log entries after it), damaged by `damage`: recover exits 1 with `said` first on stderr and leaves it as it was. */
async function refusesDamaged(damage: (dir: string) => void | Promise<void>, said: RegExp): Promise<void> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open<unknown>({ dataDir: t.dir, stateMachine: new KvStateMachine() as never, snapshotEvery: 5 });
  for (let i = 0; i < 12; i++) await log.append(set(`k${i}`, 'v'));
  await log.close();
  await damage(t.dir);
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

it('refuses a log holding a membership change of an unknown format with LOG_CORRUPT naming the entry, and changes nothing there', async () => {
  let index = 0;
  await refusesDamaged(async (dir) => {
    const wal = await Wal.open(join(dir, 'wal'));
    index = wal.lastIndex + 1;
    await wal.append([{ index, term: wal.hardState.term, type: 1, data: Uint8Array.of(3, 0, 1, 0) }], { ...wal.hardState, commit: index });
    await wal.close();
  }, /^raftlog recover: LOG_CORRUPT: entry \d+ cannot be decoded: invalid conf change: unknown encoding 3/);
  expect(index).toBeGreaterThan(0);
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

/** Node 1's directory, in a cluster of three that took a snapshot and wrote past it, with a record of its two peers' instances. */
async function survivorOfThree(dir: string): Promise<string> {
  const net = new MemoryNetwork();
  const peers = { 1: '127.0.0.1:1', 2: '127.0.0.1:2', 3: '127.0.0.1:3' };
  const dirs = [dir, join(dir, '..', 'peer-2'), join(dir, '..', 'peer-3')];
  const logs: ReplicatedLog<unknown>[] = [];
  cleanups.push(async () => {
    for (const l of logs) await l.close();
  });
  for (const id of [1, 2, 3]) {
    const opts = {
      dataDir: dirs[id - 1]!,
      id,
      peers,
      stateMachine: new KvStateMachine() as never,
      tickMs: 10,
      electionTicks: 20,
      heartbeatTicks: 2,
      snapshotEvery: 5,
    };
    logs.push(await ReplicatedLog.open<unknown>(opts, { transport: net.endpoint(id) }));
  }
  let leader: ReplicatedLog<unknown> | undefined;
  await waitFor('a leader', () => (leader = logs.find((l) => l.status().role === 'leader')) !== undefined, 30_000);
  for (let i = 0; i < 12; i++) await leader!.append(set(`k${i}`, `v${i}`));
  await waitFor('node 1 to apply everything', () => logs[0]!.status().applied >= leader!.status().commit, 30_000);
  for (const l of logs) await l.close();
  // As the TCP transport records them once met (the memory network has no instances).
  const records = `2 ${'b'.repeat(32)} 3\n3 ${'c'.repeat(32)} 3\n`;
  writeFileSync(join(dir, 'peer-instances'), records);
  return records;
}

it('a recover killed at any step leaves the old node with its record of its peers, the recovered node without it, or a directory open refuses with RECOVER_INCOMPLETE; running it again completes it', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const template = join(t.dir, 'template');
  const records = await survivorOfThree(template);
  const copyOf = (to: string): void => {
    for (const n of readdirSync(template, { recursive: true }) as string[]) {
      const from = join(template, n);
      if (statSync(from).isDirectory()) mkdirSync(join(to, n), { recursive: true });
      else {
        mkdirSync(join(to, n, '..'), { recursive: true });
        copyFileSync(from, join(to, n));
      }
    }
  };
  const args = ['--force-new-cluster', '--data', '', '--id', '1', '--yes'];
  const recoverIn = (data: string, log: string, rules: Parameters<typeof runWithFaults>[2]['rules'] = []) =>
    runWithFaults(MAIN, ['recover', ...args.map((a) => (a === '' ? data : a))], { root: data, rules, log });
  const ref = join(t.dir, 'ref');
  copyOf(ref);
  const reference = await recoverIn(ref, join(t.dir, 'ref.log'));
  expect(reference.code, reference.stderr).toBe(0);
  const steps = killSteps(reference.ops, ref);
  expect(steps.length).toBeGreaterThan(5);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  /** Node 1 opened on `data`: its voters and whether it holds every record, or the code its open was refused with. */
  const open = async (data: string): Promise<{ voters: number[]; whole: boolean } | { refused: string }> => {
    const kv = new KvStateMachine();
    const opened = await ReplicatedLog.open<unknown>({ dataDir: data, id: 1, stateMachine: kv as never }).then(
      (log) => log,
      (e: unknown) => e as Error & { code: string },
    );
    if (!(opened instanceof ReplicatedLog)) return { refused: `${opened.code}: ${opened.message}` };
    const voters = opened.status().conf.voters;
    await opened.close();
    return { voters, whole: [0, 5, 11].every((i) => kv.get(Buffer.from(`k${i}`))?.toString() === `v${i}`) };
  };
  const peerInstances = (data: string): string => readFileSync(join(data, 'peer-instances'), 'utf8');
  const outcomes = new Set<string>();
  for (const [k, step] of steps.entries()) {
    const data = join(t.dir, `data-${k}`);
    copyOf(data);
    const killed = await recoverIn(data, join(t.dir, `ops-${k}.log`), [killBefore(step, data)]);
    if (killed.signal !== 'SIGKILL') {
      expect({ code: killed.code, reached: reached(step, killed.ops, data) }, `not killed before ${step.what}: ${killed.stderr}`).toEqual({
        code: 0,
        reached: false,
      });
    }
    // Read before the open: a node opened on it records the peers it meets.
    const held = existsSync(join(data, 'peer-instances')) ? peerInstances(data) : undefined;
    const found = await open(data);
    let outcome: string;
    if ('refused' in found) {
      outcome = 'refused';
      expect(found.refused, `killed before ${step.what}`).toMatch(/^RECOVER_INCOMPLETE: .*run it again/);
    } else if (found.voters.length === 3) {
      outcome = 'old node';
      // Its records past the commit it last knew are applied once a leader of the old cluster tells it more.
      expect({ voters: found.voters, held }, `the old node, killed before ${step.what}`).toEqual({ voters: [1, 2, 3], held: records });
    } else {
      outcome = 'recovered';
      expect({ ...found, held }, `the recovered node, killed before ${step.what}`).toEqual({ voters: [1], whole: true, held: '' });
    }
    outcomes.add(outcome);
    expect(await recover(args.map((a) => (a === '' ? data : a))), `after a kill before ${step.what}: ${String(err.mock.calls.at(-1)?.[0])}`).toBe(0);
    expect({ ...(await open(data)), held: peerInstances(data) }, `recovered again after a kill before ${step.what}`).toEqual({
      voters: [1],
      whole: true,
      held: '',
    });
  }
  expect([...outcomes].sort()).toEqual(['old node', 'recovered', 'refused']);
}, 300_000);

/**
 * What `dir` holds, but the WAL's prepared segment: every open of a WAL removes the one an earlier
 * run left and prepares another on its own thread, which a refused recover's close may come before.
 */
function listing(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((n) => n !== join('wal', 'next.prealloc')).sort();
}

const damagedDirs: Array<{ what: string; damage(dir: string): void | Promise<void>; code: string; says?: RegExp }> = [
  { what: 'wal/ lost beside the snapshots', damage: (d) => rmSync(join(d, 'wal'), { recursive: true }), code: 'STATE_CORRUPT' },
  {
    what: 'wal/ holding only TAIL (every segment lost)',
    damage: (d) => {
      for (const n of readdirSync(join(d, 'wal'))) if (n !== 'TAIL') rmSync(join(d, 'wal', n));
    },
    code: 'WAL_CORRUPT',
    says: /segment \S+\.wal is missing \(the directory holds no segment\)/,
  },
  {
    what: 'snapshot data that is not the log’s, and a torn tail',
    damage: async (d) => {
      const snaps = join(d, 'snapshots');
      const newest = readdirSync(snaps)
        .filter((n) => n.endsWith('.snap'))
        .sort()
        .at(-1)!;
      const { meta } = await readSnapshotFile(join(snaps, newest), false);
      await (await FileSnapshotStore.open(snaps)).save({ meta, data: Buffer.from('bytes that are no snapshot data of the log') });
      tornTail(d);
    },
    code: 'SNAPSHOT_CORRUPT',
  },
  {
    what: 'the last segment lost',
    damage: (d) =>
      rmSync(
        join(
          d,
          'wal',
          readdirSync(join(d, 'wal'))
            .filter((n) => n.endsWith('.wal'))
            .sort()
            .at(-1)!,
        ),
      ),
    code: 'WAL_CORRUPT',
  },
];

it.each(damagedDirs)('refuses a directory with $what as the log’s open does ($code), and changes no byte of it', async ({ damage, code, says }) => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const dir = join(t.dir, 'node');
  // Small segments: the log spans several, and TAIL names the last.
  const log = await ReplicatedLog.open<unknown>({ dataDir: dir, stateMachine: new KvStateMachine() as never, snapshotEvery: 40, segmentBytes: 64 * 1024 });
  for (let i = 0; i < 60; i++) await log.append(set(`k${i}`, 'v'.repeat(3000)));
  await log.close();
  await damage(dir);
  const copy = join(t.dir, 'copy');
  cpSync(dir, copy, { recursive: true });
  const opened = await ReplicatedLog.open<unknown>({ dataDir: copy, stateMachine: new KvStateMachine() as never }).then(
    async (l) => {
      await l.close();
      return 'opened';
    },
    (e: unknown) => e as { code?: string; message: string },
  );
  expect(opened).toMatchObject({ code, message: expect.stringMatching(says ?? /./) });
  const before = digests(dir);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(await recover(['--force-new-cluster', '--data', dir, '--id', '1', '--yes'])).toBe(1);
  expect(String(err.mock.calls[0]?.[0])).toMatch(new RegExp(`^raftlog recover: ${code}: `));
  expect(String(err.mock.calls[0]?.[0])).toMatch(says ?? /./);
  expect(digests(dir)).toEqual(before);
});

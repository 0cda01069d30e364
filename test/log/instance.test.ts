// A node whose data directory was wiped or replaced comes back as a new instance: its peers
// refuse it, so it cannot vote as if it still held what it acknowledged.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { Wal } from '../../src/wal/index.js';
import { RecordingLogger } from '../recording-logger.js';
import { RecordingMachine, appendInTurns, enc, freePorts, leaderAmong, tempDir, waitFor } from './helpers.js';

const SECRET = 'a secret for the instance id tests';
const timing = { tickMs: 10, electionTicks: 40, heartbeatTicks: 4 };

const member = (id: number, dir: string) => ({ id, dir, log: null as ReplicatedLog<number> | null, logger: new RecordingLogger() });
type Member = ReturnType<typeof member>;

describe('instance ids: a node that lost its data directory', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function cluster(n = 3, options: { snapshotEvery?: number; snapshotCatchUpEntries?: number } = {}) {
    const ports = await freePorts(n);
    const peers: Record<number, string> = {};
    for (let id = 1; id <= n; id++) peers[id] = `127.0.0.1:${ports[id - 1]}`;
    const members = new Map<number, Member>();
    for (let id = 1; id <= n; id++) {
      const t = tempDir();
      cleanups.push(t.cleanup);
      members.set(id, member(id, t.dir));
    }
    const open = async (m: Member, extra: { join?: boolean } = {}): Promise<void> => {
      m.logger = new RecordingLogger();
      m.log = await ReplicatedLog.open({
        dataDir: m.dir,
        id: m.id,
        peers,
        stateMachine: new RecordingMachine(),
        clusterSecret: SECRET,
        logger: m.logger,
        ...timing,
        ...options,
        ...extra,
      });
    };
    const close = async (m: Member): Promise<void> => {
      await m.log?.close();
      m.log = null;
    };
    await Promise.all([...members.values()].map((m) => open(m)));
    cleanups.push(async () => {
      for (const m of members.values()) await close(m);
    });
    const leader = (): Promise<Member> => leaderAmong(members.values());
    const settled = async (): Promise<{ leader: Member; followers: Member[] }> => {
      const l = await leader();
      await Promise.all(Array.from({ length: 20 }, (_, i) => l.log!.append(enc(`e${i}`))));
      const commit = l.log!.status().commit;
      await waitFor('every node to apply', () => [...members.values()].every((m) => m.log!.status().applied >= commit));
      return { leader: l, followers: [...members.values()].filter((m) => m !== l) };
    };
    return { members, peers, open, close, leader, settled };
  }

  /** The instance `m`'s data directory records for `peer`, if any. */
  const recordOf = (m: Member, peer: number): string | undefined =>
    readFileSync(join(m.dir, 'peer-instances'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${peer} `))
      ?.split(' ')[1];

  it('is refused by its peers, so it and one survivor cannot elect a leader without the entries it acknowledged', async () => {
    const c = await cluster();
    const { leader, followers } = await c.settled();
    const [survivor, wiped] = followers as [Member, Member];
    await c.close(wiped);
    await c.close(leader);
    rmSync(wiped.dir, { recursive: true });
    await c.open(wiped);
    // Before instance ids, the wiped node's empty log granted the survivor its vote at once.
    // Five election timeouts: time for several campaigns, none of which may win.
    await new Promise((r) => setTimeout(r, 5 * timing.tickMs * timing.electionTicks));
    expect(survivor.log!.status().role).not.toBe('leader');
    expect(wiped.log!.status().role).not.toBe('leader');
    expect(survivor.log!.metrics().transportRefused['TRANSPORT_PEER_REPLACED']).toBeGreaterThan(0);
    expect(wiped.log!.metrics().transportRefusedByPeers['TRANSPORT_PEER_REPLACED']).toBeGreaterThan(0);
    expect(survivor.logger.lines.some((l) => l.level === 'error' && /node \d came back as a new instance .*raftlog member remove/.test(l.message))).toBe(true);
    expect(wiped.logger.lines.some((l) => l.level === 'error' && /refuses this node as a new instance of node \d/.test(l.message))).toBe(true);
    // The leader, back, refuses it too; with the survivor it is a quorum again.
    await c.open(leader);
    const next = await c.leader();
    expect(next).not.toBe(wiped);
    await waitFor('the leader to refuse the wiped node', () => (leader.log!.metrics().transportRefused['TRANSPORT_PEER_REPLACED'] ?? 0) > 0);
    expect(wiped.log!.status().applied).toBe(0);
  });

  it('restarted on the same directory, it is the same instance and goes on', async () => {
    const c = await cluster();
    const { leader, followers } = await c.settled();
    const f = followers[0]!;
    const instance = readFileSync(join(f.dir, 'instance'), 'utf8');
    await c.close(f);
    await c.open(f);
    expect(readFileSync(join(f.dir, 'instance'), 'utf8')).toBe(instance);
    const after = await leader.log!.append(enc('after'));
    await waitFor('the restarted node to apply', () => f.log!.status().applied >= after.index);
    for (const m of c.members.values()) expect(m.log!.metrics().transportRefused['TRANSPORT_PEER_REPLACED']).toBeUndefined();
  });

  it('removed and added back on an empty directory, it is met as a new peer', async () => {
    const c = await cluster();
    const { leader, followers } = await c.settled();
    const gone = followers[1]!;
    await leader.log!.removeMember(gone.id);
    await waitFor('the others to apply the removal', () => followers[0]!.log!.status().conf.voters.length === 2);
    // The removed node keeps dialing until it is stopped: that must not record it again.
    await new Promise((r) => setTimeout(r, 200));
    await c.close(gone);
    rmSync(gone.dir, { recursive: true });
    await leader.log!.addMember(gone.id, c.peers[gone.id]!);
    await c.open(gone, { join: true });
    const after = await leader.log!.append(enc('after'));
    await waitFor('the node added back to apply', () => (gone.log?.status().applied ?? 0) >= after.index);
    for (const m of c.members.values()) expect(m.log!.metrics().transportRefused['TRANSPORT_PEER_REPLACED']).toBeUndefined();
  });

  it('removed and added back, it stays recorded by a peer that restarts and applies the removal again', async () => {
    const c = await cluster();
    const { leader, followers } = await c.settled();
    const [keeper, gone] = followers as [Member, Member];
    await leader.log!.removeMember(gone.id);
    await waitFor('the keeper to apply the removal', () => keeper.log!.status().conf.voters.length === 2);
    await c.close(gone);
    rmSync(gone.dir, { recursive: true });
    await leader.log!.addMember(gone.id, c.peers[gone.id]!);
    await c.open(gone, { join: true });
    const added = readFileSync(join(gone.dir, 'instance'), 'utf8').trim();
    await waitFor('the keeper to record the node added back', () => recordOf(keeper, gone.id) === added);
    await c.close(gone);
    // No snapshot: the keeper's restart applies its whole log again, the removal and the addition.
    const applied = keeper.log!.status().applied;
    await c.close(keeper);
    await c.open(keeper);
    await waitFor('the keeper to apply its log again', () => keeper.log!.status().applied >= applied);
    expect(keeper.logger.lines.some((l) => /membership: removed \d/.test(l.message))).toBe(true);
    await c.close(keeper); // its file's writes are over once it is closed
    expect(recordOf(keeper, gone.id)).toBe(added);
    // Restarted again, the member down meanwhile: a copy of it on a wiped directory is refused.
    await c.open(keeper);
    rmSync(gone.dir, { recursive: true });
    await c.open(gone, { join: true });
    await waitFor('the keeper to refuse the wiped copy', () => (keeper.log!.metrics().transportRefused['TRANSPORT_PEER_REPLACED'] ?? 0) > 0);
    expect(recordOf(keeper, gone.id)).toBe(added);
  });

  it('removed, it is forgotten by a peer whose forgetting a crash lost, once that peer applies the removal again', async () => {
    const c = await cluster();
    const { leader, followers } = await c.settled();
    const [keeper, gone] = followers as [Member, Member];
    await waitFor('the keeper to record the one to go', () => recordOf(keeper, gone.id) !== undefined);
    const recordedBefore = readFileSync(join(keeper.dir, 'peer-instances'), 'utf8');
    await leader.log!.removeMember(gone.id);
    await waitFor('the keeper to apply the removal', () => keeper.log!.status().conf.voters.length === 2);
    await c.close(gone);
    const applied = keeper.log!.status().applied;
    await c.close(keeper);
    expect(recordOf(keeper, gone.id)).toBeUndefined();
    // As if the keeper had crashed after applying the removal, before its forgetting was durable.
    writeFileSync(join(keeper.dir, 'peer-instances'), recordedBefore);
    await c.open(keeper);
    await waitFor('the keeper to apply its log again', () => keeper.log!.status().applied >= applied);
    await c.close(keeper);
    expect(recordOf(keeper, gone.id)).toBeUndefined();
    expect(recordOf(keeper, leader.id)).toBe(readFileSync(join(leader.dir, 'instance'), 'utf8').trim());
  });

  it('removed and added back while a peer was down, it is met as a new peer by that peer after a snapshot', async () => {
    const c = await cluster(4, { snapshotEvery: 10, snapshotCatchUpEntries: 0 });
    const { leader, followers } = await c.settled();
    const [late, gone] = followers as [Member, Member, Member];
    await waitFor('the late node to record the one to go', () => recordOf(late, gone.id) !== undefined);
    await c.close(late);
    await leader.log!.removeMember(gone.id);
    await c.close(gone);
    rmSync(gone.dir, { recursive: true });
    await leader.log!.addMember(gone.id, c.peers[gone.id]!);
    await c.open(gone, { join: true });
    // Past the leader's snapshot: the late node catches up from one, never applying the removal.
    await Promise.all(Array.from({ length: 30 }, (_, i) => leader.log!.append(enc(`x${i}`))));
    const after = await leader.log!.append(enc('after'));
    await c.open(late);
    await waitFor('the late node to apply', () => late.log!.status().applied >= after.index);
    expect(late.logger.lines.some((l) => /restored from the snapshot/.test(l.message))).toBe(true);
    const added = readFileSync(join(gone.dir, 'instance'), 'utf8').trim();
    await waitFor('the late node to record the node added back', () => recordOf(late, gone.id) === added);
    // The leader, whose connection brought the snapshot, kept its record throughout: it proved it.
    expect(recordOf(late, leader.id)).toBe(readFileSync(join(leader.dir, 'instance'), 'utf8').trim());
  });
});

describe("a removal's forgetting and the snapshots past it", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /**
   * A node alone with a learner (never there) that it then removes, its forgetting held until
   * the test settles it, and appends enough for a snapshot past the removal. Resolves once that
   * snapshot's file is saved: the WAL's marker would be written next.
   */
  async function removedThenSnapshotSaved() {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const wal = await Wal.open(join(t.dir, 'wal'), { sync: 'none', preallocate: 'none' });
    const markers: number[] = [];
    const saveMarker = wal.saveSnapshot.bind(wal);
    wal.saveSnapshot = (marker, options) => {
      markers.push(marker.index);
      return saveMarker(marker, options);
    };
    const snapshots = await FileSnapshotStore.open(join(t.dir, 'snapshots'), { create: true });
    const saved: number[] = [];
    const saveFile = snapshots.save.bind(snapshots);
    snapshots.save = async (snapshot) => {
      const s = await saveFile(snapshot);
      saved.push(s.meta.index);
      return s;
    };
    let settle!: (err?: Error) => void;
    const forgetting = new Promise<void>((resolve, reject) => (settle = (err) => (err === undefined ? resolve() : reject(err))));
    forgetting.catch(() => undefined);
    const forgets: number[] = [];
    const peerInstances = {
      forget: async (_peers: Iterable<number>, index: number): Promise<void> => {
        forgets.push(index);
        await forgetting;
      },
      settled: () => forgetting.catch(() => undefined),
    };
    const logger = new RecordingLogger();
    // A peer port, or the log could add no member.
    const log = await ReplicatedLog.open(
      {
        dataDir: t.dir,
        listen: '127.0.0.1:0',
        insecure: true,
        stateMachine: new RecordingMachine(),
        snapshotEvery: 5,
        sync: 'none',
        preallocate: 'none',
        logger,
      },
      { wal, snapshots, peerInstances },
    );
    cleanups.push(() => log.close());
    cleanups.push(() => settle()); // before the close, which waits for the forgetting
    await log.addLearner(2, '127.0.0.1:1');
    await log.removeMember(2);
    expect(forgets).toHaveLength(1);
    const removal = forgets[0]!;
    const appended = appendInTurns(log, 'r', 10);
    appended.catch(() => undefined);
    await appended;
    await waitFor('a snapshot past the removal to be saved', () => saved.some((i) => i > removal));
    return { log, logger, markers, removal, settle };
  }

  it('is made the restart point only once the forgetting is durable', async () => {
    const { log, markers, removal, settle } = await removedThenSnapshotSaved();
    // Its file is saved, the marker not written: a crash now restarts below the removal, which
    // the node applies again, forgetting the removed member then.
    expect(markers.filter((i) => i >= removal)).toEqual([]);
    settle();
    await waitFor('the snapshot to be recorded', () => markers.some((i) => i > removal));
    expect(log.status().role).not.toBe('fatal');
  });

  it('is never made the restart point when the forgetting fails, which stops the node', async () => {
    const { log, logger, markers, removal, settle } = await removedThenSnapshotSaved();
    settle(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
    await waitFor('the node to stop', () => log.status().role === 'fatal');
    expect(logger.lines.some((l) => l.level === 'error' && /forgetting the instance of removed node 2/.test(l.message))).toBe(true);
    await log.close(); // waits for the snapshot being written
    expect(markers.filter((i) => i >= removal)).toEqual([]);
  });
});

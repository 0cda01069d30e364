// The log's metrics after known operations, its events, join, and the logger
// contract: the library writes nothing to the console, whatever it goes through.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { logRegistry } from '../../src/admin/prometheus.js';
import { RecordingLogger } from '../recording-logger.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import { OTHER_CODE, REFUSAL_CODES, UNPROVEN_CODE } from '../../src/transport/errors.js';
import { FORWARDED_PROPOSAL_FAULTS } from '../../src/log/forwarded-proposal.js';
import { Recorder } from '../transport/helpers.js';
import { rawPeer } from '../transport/raw-peer.js';
import { parsePrometheus } from './prometheus-text.js';
import { RecordingMachine, appendInTurns, enc, freePorts, tempDir, waitFor } from '../log/helpers.js';

const SECRET = 'a secret for the admin metric tests';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function single(extra: { snapshotEvery?: number } = {}): Promise<ReplicatedLog<number>> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open({ dataDir: t.dir, stateMachine: new RecordingMachine(), ...extra });
  cleanups.push(() => log.close());
  return log;
}

async function trio(logger?: RecordingLogger) {
  const ports = await freePorts(4);
  const peers: Record<number, string> = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
  const logs = new Map<number, ReplicatedLog<number>>();
  const opts = { clusterSecret: SECRET, tickMs: 10, electionTicks: 40, heartbeatTicks: 2 } as const;
  await Promise.all(
    [1, 2, 3].map(async (id) => {
      const t = tempDir();
      cleanups.push(t.cleanup);
      logs.set(id, await ReplicatedLog.open({ dataDir: t.dir, id, peers, stateMachine: new RecordingMachine(), ...opts, ...(logger ? { logger } : {}) }));
    }),
  );
  cleanups.push(async () => {
    for (const l of logs.values()) await l.close();
  });
  const leader = async (): Promise<ReplicatedLog<number>> => {
    let found: ReplicatedLog<number> | undefined;
    await waitFor('a leader', () => (found = [...logs.values()].find((l) => l.status().role === 'leader')) !== undefined);
    return found!;
  };
  return { logs, peers, ports, opts, leader };
}

describe('metrics()', () => {
  it('say a node stopped by a failure is stopped: fatal, and raftlog_fatal 1', async () => {
    const sm = new RecordingMachine();
    const apply = sm.apply.bind(sm);
    sm.apply = (e) => {
      if (Buffer.from(e.data).toString() === 'boom') throw new Error('the state machine broke');
      return apply(e);
    };
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t.dir, stateMachine: sm });
    cleanups.push(() => log.close());
    const scrape = async (): Promise<string | undefined> => (await logRegistry(log).metrics()).split('\n').find((l) => l.startsWith('raftlog_fatal '));
    expect(log.metrics().fatal).toBe(false);
    expect(await scrape()).toBe('raftlog_fatal 0');
    await expect(log.append(enc('boom'))).rejects.toMatchObject({ code: 'LOG_FATAL' });
    expect(log.metrics().fatal).toBe(true);
    expect(await scrape()).toBe('raftlog_fatal 1');
    await log.close();
    expect(log.metrics().fatal).toBe(true); // closed since, it still says why it stopped, as status() does
  });

  it('counts appends, their durations, fsyncs, WAL bytes and snapshots', async () => {
    const log = await single({ snapshotEvery: 10 });
    const before = log.metrics();
    expect(before.isLeader).toBe(true);
    expect(before.hasLeader).toBe(true);
    expect(before.leaderChanges).toBe(1);
    for (let i = 0; i < 25; i++) await log.append(enc(`r${i}`));
    await waitFor('two snapshots', () => log.metrics().snapshots >= 2);
    const m = log.metrics();
    expect(m.proposalsCommitted).toBe(25);
    expect(m.appendDuration.count).toBe(25);
    expect(m.appendDuration.counts.reduce((a, b) => a + b, 0)).toBe(25);
    expect(m.appendDuration.sum).toBeGreaterThan(0);
    expect(m.commitIndex).toBeGreaterThanOrEqual(25);
    expect(m.appliedIndex).toBe(m.commitIndex);
    expect(m.walBytesWritten).toBeGreaterThan(before.walBytesWritten);
    expect(m.walSegments).toBeGreaterThanOrEqual(1);
    // sync 'always': every append waited for at least one fdatasync, timed on the writer thread.
    expect(m.walFsyncDuration!.count).toBeGreaterThan(before.walFsyncDuration!.count);
    expect(m.walFsyncDuration!.counts).toHaveLength(m.walFsyncDuration!.bounds.length + 1);
    expect(m.snapshotDuration.count).toBe(m.snapshots);
    expect(m.peerLag).toEqual({});
    // An entry above every snapshot stays in the cache, which counts the 1 MiB slab it was packed
    // into. (The last snapshot may already cover all 25: one taken at 10 that ends after 25 applied.)
    await log.append(enc('after the snapshots'));
    const cached = log.metrics();
    expect(cached.walCachedBytes).toBeGreaterThan(1024 * 1024);
    expect(cached.walCachedBytes).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(cached.walSlabBytes).toBeGreaterThanOrEqual(1024 * 1024);
  });

  it('counts failed appends by code', async () => {
    // One member of three, alone: no leader can be elected, so the append fails.
    const ports = await freePorts(3);
    const t = tempDir();
    cleanups.push(t.cleanup);
    const peers = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
    const log = await ReplicatedLog.open({
      dataDir: t.dir,
      id: 1,
      peers,
      clusterSecret: SECRET,
      tickMs: 10,
      electionTicks: 10,
      heartbeatTicks: 2,
      timeoutMs: 2000,
    });
    cleanups.push(() => log.close());
    const err = (await log.append(enc('lost')).catch((e: unknown) => e)) as { code: string };
    expect(['NO_LEADER', 'APPEND_NOT_COMMITTED']).toContain(err.code);
    const m = log.metrics();
    expect(m.proposalsFailed).toEqual({ [err.code]: 1 });
    expect(m.proposalsCommitted).toBe(0);
    expect(m.appendDuration.count).toBe(1);
    expect(m.hasLeader).toBe(false);
  });

  it('exports every refusal counter at 0 before the first refusal, so that increase() sees the first one', async () => {
    const log = await single();
    const text = parsePrometheus(await logRegistry(log).metrics());
    const zero = (name: string, label: string, values: readonly string[]): void => {
      for (const v of values) expect(text.get(`${name}{${label}="${v}"}`), `${name} ${v}`).toBe(0);
    };
    zero('raftlog_transport_refused_total', 'code', REFUSAL_CODES);
    zero('raftlog_transport_refused_by_peer_total', 'code', [...REFUSAL_CODES, OTHER_CODE, UNPROVEN_CODE]);
    zero('raftlog_proposals_refused_total', 'reason', FORWARDED_PROPOSAL_FAULTS);
    expect([...text.keys()].filter((k) => k.startsWith('raftlog_proposals_refused_total{'))).toHaveLength(FORWARDED_PROPOSAL_FAULTS.length);
    zero('raftlog_reads_refused_total', 'reason', ['OVERLOADED']);
    expect(REFUSAL_CODES).toContain('TRANSPORT_AUTH_FAILED');
    expect([...text.keys()].filter((k) => k.startsWith('raftlog_transport_refused_total{'))).toHaveLength(REFUSAL_CODES.length);
  });

  it('counts what the transport refuses by its code, in metrics() and on /metrics', async () => {
    // One member of three: node 2's address is held by a node of another cluster, which node 1 dials and which dials it.
    const ports = await freePorts(3);
    const t = tempDir();
    cleanups.push(t.cleanup);
    const peers = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
    const log = await ReplicatedLog.open({ dataDir: t.dir, id: 1, peers, clusterSecret: SECRET, tickMs: 10, electionTicks: 10, heartbeatTicks: 2 });
    cleanups.push(() => log.close());
    expect(log.metrics()).toMatchObject({ transportRefused: {}, transportRefusedByPeers: {}, proposalsRefused: {}, readsRefused: {} });
    const foreign = new TcpTransport({
      id: 2,
      clusterId: 'another',
      listen: peers[2],
      peers: { 1: peers[1] },
      clusterSecret: SECRET,
      backoff: { initialMs: 10, maxMs: 50 },
    });
    cleanups.push(() => foreign.close());
    await foreign.start(new Recorder());
    const garbage = await rawPeer(peers[1], 'raftlog', 3, 1, SECRET);
    await garbage.send([Uint8Array.from([0xc1])]);
    await garbage.closed;
    await waitFor('refusals both ways', () => {
      const m = log.metrics();
      return (m.transportRefused.TRANSPORT_CLUSTER_MISMATCH ?? 0) >= 1 && (m.transportRefusedByPeers.UNPROVEN ?? 0) >= 1;
    });
    const m = log.metrics();
    expect(m.transportRefused.TRANSPORT_MALFORMED_FRAME).toBe(1);
    expect(Object.keys(m.transportRefused).sort()).toEqual(['TRANSPORT_CLUSTER_MISMATCH', 'TRANSPORT_MALFORMED_FRAME']);
    // The other cluster refuses at the hello, before it proved anything: whatever code it sends.
    expect(Object.keys(m.transportRefusedByPeers)).toEqual(['UNPROVEN']);
    const text = parsePrometheus(await logRegistry(log).metrics());
    expect(text.get('raftlog_transport_refused_total{code="TRANSPORT_MALFORMED_FRAME"}')).toBe(1);
    expect(text.get('raftlog_transport_refused_total{code="TRANSPORT_CLUSTER_MISMATCH"}')).toBeGreaterThanOrEqual(1);
    expect(text.get('raftlog_transport_refused_by_peer_total{code="UNPROVEN"}')).toBeGreaterThanOrEqual(1);
    expect(text.get('raftlog_transport_refused_by_peer_total{code="TRANSPORT_CLUSTER_MISMATCH"}')).toBe(0);
  });

  it('counts appends refused at once too: NO_LEADER once leaderless, OVERLOADED, RECORD_TOO_LARGE, LOG_CLOSED', async () => {
    const ports = await freePorts(3);
    const t = tempDir();
    cleanups.push(t.cleanup);
    const peers = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
    const opts = { clusterSecret: SECRET, tickMs: 10, electionTicks: 10, heartbeatTicks: 2, timeoutMs: 2000 } as const;
    const alone = await ReplicatedLog.open({ dataDir: t.dir, id: 1, peers, ...opts });
    cleanups.push(() => alone.close());
    // Once it has been leaderless for two election timeouts, an append fails before it is queued.
    await alone.append(enc('first')).catch(() => undefined);
    const failedBefore = Object.values(alone.metrics().proposalsFailed).reduce((a, b) => a + b, 0);
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) codes.push(((await alone.append(enc('lost')).catch((e: unknown) => e)) as { code: string }).code);
    expect(codes).toEqual(Array(5).fill('NO_LEADER'));
    const m = alone.metrics();
    expect(Object.values(m.proposalsFailed).reduce((a, b) => a + b, 0)).toBe(failedBefore + 5);
    expect(m.appendDuration.count).toBe(failedBefore + 5);

    const t2 = tempDir();
    cleanups.push(t2.cleanup);
    const log = await ReplicatedLog.open({ dataDir: t2.dir, maxPendingAppends: 1, maxRecordBytes: 1024 });
    const both = await Promise.allSettled([log.append(enc('a')), log.append(enc('b'))]);
    expect(both.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'))).toEqual(['ok', 'OVERLOADED']);
    await expect(log.append(new Uint8Array(2048))).rejects.toMatchObject({ code: 'RECORD_TOO_LARGE' });
    await log.close();
    await expect(log.append(enc('c'))).rejects.toMatchObject({ code: 'LOG_CLOSED' });
    expect(log.metrics()).toMatchObject({ proposalsCommitted: 1, proposalsFailed: { OVERLOADED: 1, RECORD_TOO_LARGE: 1, LOG_CLOSED: 1 } });
  });

  it('snapshot index and peers connected agree with status() and the transport, and follow a peer that stops', async () => {
    const c = await trio();
    const leader = await c.leader();
    for (let i = 0; i < 5; i++) await leader.append(enc(`s${i}`));
    for (const l of c.logs.values()) await waitFor('every node to connect to both others', () => l.metrics().peersConnected === 2);
    const stopped = [...c.logs.keys()].find((id) => c.logs.get(id) !== leader)!;
    await c.logs.get(stopped)!.close();
    await waitFor("the leader to see the stopped peer's connection go", () => leader.metrics().peersConnected === 1);
    const alone = await single({ snapshotEvery: 10 });
    for (let i = 0; i < 25; i++) await alone.append(enc(`r${i}`));
    await waitFor('a snapshot', () => alone.status().snapshotIndex > 0);
    expect(alone.metrics()).toMatchObject({ snapshotIndex: alone.status().snapshotIndex, peersConnected: 0 });
  });

  it('on a three-node leader: peer lag, bytes per peer, leader events and changes', async () => {
    const c = await trio();
    const leader = await c.leader();
    for (let i = 0; i < 20; i++) await leader.append(enc(`x${i}`));
    const m = leader.metrics();
    const others = [1, 2, 3].filter((id) => id !== leader.id);
    expect(Object.keys(m.peerLag).map(Number).sort()).toEqual(others);
    for (const id of others) {
      expect(m.transportBytesSent[id]).toBeGreaterThan(0);
      expect(m.transportBytesReceived[id]).toBeGreaterThan(0);
    }
    const target = others[0]!;
    const seen: Array<{ id: number; term: number }> = [];
    const follower = c.logs.get(others[1]!)!;
    follower.on('leader', (e) => seen.push(e));
    const changesBefore = follower.metrics().leaderChanges;
    await leader.transferLeadership(target);
    await waitFor('the follower to hear of the new leader', () => seen.some((e) => e.id === target));
    expect(follower.metrics().leaderChanges).toBeGreaterThan(changesBefore);
    expect(seen.at(-1)!.term).toBeGreaterThan(0);
  });
});

describe('join', () => {
  it('a node started with join takes the configuration from the cluster and catches up', async () => {
    const logger = new RecordingLogger();
    const c = await trio(logger);
    const leader = await c.leader();
    await leader.append(enc('before'));
    const addr = `127.0.0.1:${c.ports[3]}`;
    await leader.addMember(4, addr);
    const t = tempDir();
    cleanups.push(t.cleanup);
    const sm = new RecordingMachine();
    const joined = await ReplicatedLog.open({ dataDir: t.dir, id: 4, peers: { ...c.peers, 4: addr }, join: true, stateMachine: sm, ...c.opts });
    cleanups.push(() => joined.close());
    await leader.append(enc('after'));
    await waitFor('the new node to apply both records', () =>
      sm.applied
        .map((a) => a.data)
        .join(',')
        .includes('before,after'),
    );
    expect(joined.status().conf.voters.sort()).toEqual([1, 2, 3, 4]);
    expect(joined.status().role).toBe('follower');
    const changes = (l: { fields: Record<string, unknown> }): Array<{ member: number }> => (l.fields.changes as Array<{ member: number }> | undefined) ?? [];
    expect(logger.lines.some((l) => l.message === 'membership: added voter 4' && changes(l).some((c) => c.member === 4))).toBe(true);
  });

  it('promote: a learner far behind is NOT_CAUGHT_UP; one caught up becomes a voter', async () => {
    const c = await trio();
    const leader = await c.leader();
    await leader.addLearner(5, '127.0.0.1:1'); // never started: it stays at match 0
    await appendInTurns(leader, 'p', 1100); // an entry each: the lag is counted in entries
    await expect(leader.promote(5)).rejects.toMatchObject({ code: 'NOT_CAUGHT_UP' });
    expect(leader.status().conf.learners).toContain(5);
    await leader.removeMember(5);

    const addr = `127.0.0.1:${c.ports[3]}`;
    await leader.addLearner(4, addr);
    const t = tempDir();
    cleanups.push(t.cleanup);
    const learner = await ReplicatedLog.open({ dataDir: t.dir, id: 4, peers: { ...c.peers, 4: addr }, join: true, ...c.opts });
    cleanups.push(() => learner.close());
    await waitFor('the learner to catch up', () => (leader.status().progress?.[4]?.match ?? 0) >= leader.status().lastIndex - 10, 30_000);
    await leader.promote(4);
    expect(leader.status().conf.voters).toContain(4);
    expect(leader.status().conf.learners).not.toContain(4);
  });

  it('join needs the existing members', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    await expect(ReplicatedLog.open({ dataDir: t.dir, join: true })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('the library and the console', () => {
  it('appends, an election and a close write nothing to the console; the logger hears of them, per node', async () => {
    const spies = [
      vi.spyOn(console, 'log'),
      vi.spyOn(console, 'info'),
      vi.spyOn(console, 'warn'),
      vi.spyOn(console, 'error'),
      vi.spyOn(console, 'debug'),
      vi.spyOn(process.stdout, 'write'),
      vi.spyOn(process.stderr, 'write'),
    ];
    const logger = new RecordingLogger();
    const c = await trio(logger);
    const leader = await c.leader();
    for (let i = 0; i < 10; i++) await leader.append(enc(`y${i}`));
    const old = leader.id;
    await leader.close();
    c.logs.delete(old);
    await waitFor('a new leader', () => [...c.logs.values()].some((l) => l.status().role === 'leader' && l.status().lead !== old), 20_000);
    for (const s of spies) expect(s).not.toHaveBeenCalled();
    vi.restoreAllMocks();
    const lines = logger.lines ?? [];
    expect(lines.some((l) => /leader is now/.test(l.message) && typeof l.fields.node === 'number')).toBe(true);
  });
});

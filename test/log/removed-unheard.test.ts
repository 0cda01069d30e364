// A node cut off while a change removed it never hears that the change committed: the leader
// forgets it once it applies the change, and the members ignore its vote requests. The members
// that applied its removal refuse what it sends them, and its log takes that as its removal.
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';
import type { Message } from '../../src/raft/types.js';
import { RecordingMachine, enc, freePorts, tempDir, waitFor } from './helpers.js';
import { memoryTrio } from './memory-trio.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// Far past the test's own timeout: a call held until the log's deadline fails the test.
const TIMING = { tickMs: 10, electionTicks: 20, heartbeatTicks: 2, timeoutMs: 600_000 };

it('a node cut off while it was removed answers NOT_MEMBER once a member refuses it, and follows a leader again once added back', async () => {
  const net = new MemoryNetwork();
  const { logs, leader } = await memoryTrio(net, cleanups, () => ({ options: TIMING }));
  const removed = logs.find((l) => l !== leader)!;
  await leader.append(enc('before'));
  net.isolate(removed.id);
  await leader.removeMember(removed.id);
  await leader.append(enc('after'));
  net.heal();
  // Its own log never applies the change: nothing tells it the change committed but a member.
  await waitFor('the removed node to learn of its removal', () => removed.status().removedBy !== undefined, 30_000);
  expect(removed.id in removed.status().members).toBe(true);
  await expect(removed.append(enc('lost'))).rejects.toMatchObject({ code: 'NOT_MEMBER' });
  await expect(removed.barrier()).rejects.toMatchObject({ code: 'NOT_MEMBER' });

  // Added back, it follows the leader: what it concluded from a refusal is undone.
  await leader.addMember(removed.id, `127.0.0.1:${removed.id}`);
  const readded = leader.status().commit;
  // It applies its removal on the way, then its return: an append waits for that.
  await waitFor(
    'the node added back to hear a leader and apply its return',
    () => removed.status().removedBy === undefined && removed.status().lead !== 0 && removed.status().applied >= readded,
    30_000,
  );
  await expect(removed.append(enc('back'))).resolves.toMatchObject({ index: expect.any(Number) });
}, 90_000);

it('a learner cut off while it was removed, which still names the leader that forgot it, answers NOT_MEMBER once that leader refuses what it forwards', async () => {
  const net = new MemoryNetwork();
  const { logs, leader } = await memoryTrio(net, cleanups, () => ({ options: TIMING }));
  const removed = logs.find((l) => l !== leader)!;
  await leader.changeMembership([{ demote: removed.id }]);
  await waitFor('the learner to apply its demotion', () => removed.status().conf.learners.includes(removed.id), 30_000);
  net.isolate(removed.id);
  await leader.removeMember(removed.id);
  await leader.append(enc('after'));
  net.heal();
  // A learner does not campaign: it names its leader, which sends it nothing more, for good.
  expect(removed.status().lead).toBe(leader.id);
  // What it forwards is refused: its outcome cannot be known (the refusal may come after the
  // leader took it, were it still a member), and the node learns its removal.
  await expect(removed.append(enc('forwarded'))).rejects.toMatchObject({ code: expect.stringMatching(/^(APPEND_OUTCOME_UNKNOWN|NOT_MEMBER)$/) });
  await waitFor('the learner to learn of its removal', () => removed.status().removedBy === leader.id, 30_000);
  await expect(removed.append(enc('lost'))).rejects.toMatchObject({ code: 'NOT_MEMBER' });
}, 90_000);

/** A transport whose raft messages, both ways, are lost while `cut` (its connections stay up). */
class Gate implements Transport {
  cut = false;
  constructor(private readonly inner: TcpTransport) {}
  start(h: TransportHandlers): Promise<void> {
    return this.inner.start({ ...h, onMessage: (m) => this.cut || h.onMessage(m) });
  }
  send(messages: Message[]): void {
    if (!this.cut) this.inner.send(messages);
  }
  flush(): void {
    this.inner.flush();
  }
  addPeer(id: number, address: string): void {
    this.inner.addPeer(id, address);
  }
  removePeer(id: number): void {
    this.inner.removePeer(id);
  }
  connectedPeers(): ReadonlySet<number> {
    return this.inner.connectedPeers();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

it('over TCP, a node cut off while it was removed is refused by a member that applied its removal, and answers NOT_MEMBER', async () => {
  const SECRET = 'a secret for the removal tests';
  const ports = await freePorts(3);
  const peers: Record<number, string> = { 1: `127.0.0.1:${ports[0]}`, 2: `127.0.0.1:${ports[1]}`, 3: `127.0.0.1:${ports[2]}` };
  const open = async (id: number, transport?: Transport): Promise<ReplicatedLog<number>> => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const log = await ReplicatedLog.open(
      { dataDir: t.dir, id, peers, stateMachine: new RecordingMachine(), clusterSecret: SECRET, sync: 'none', preallocate: 'none', ...TIMING },
      transport === undefined ? {} : { transport },
    );
    cleanups.push(() => log.close());
    return log;
  };
  const gate = new Gate(
    new TcpTransport({
      id: 3,
      clusterId: 'raftlog',
      listen: peers[3]!,
      peers: { 1: peers[1]!, 2: peers[2]! },
      clusterSecret: SECRET,
      instanceId: randomBytes(16).toString('hex'),
      electionTimeoutMs: TIMING.tickMs * TIMING.electionTicks,
      heartbeatIntervalMs: TIMING.tickMs * TIMING.heartbeatTicks,
    }),
  );
  const logs = [await open(1), await open(2), await open(3, gate)];
  const removed = logs[2]!;
  let leader: ReplicatedLog<number> | undefined;
  await waitFor('a leader', () => (leader = logs.find((l) => l.status().role === 'leader')) !== undefined, 30_000);
  if (leader === removed) {
    await removed.transferLeadership(1);
    await waitFor('node 1 to lead', () => logs[0]!.status().role === 'leader', 30_000);
    leader = logs[0]!;
  }
  await leader!.append(enc('before'));
  gate.cut = true;
  await leader!.removeMember(3);
  await leader!.append(enc('after'));
  gate.cut = false;
  await waitFor('the removed node to learn of its removal', () => removed.status().removedBy !== undefined, 30_000);
  expect(3 in removed.status().members).toBe(true);
  await expect(removed.append(enc('lost'))).rejects.toMatchObject({ code: 'NOT_MEMBER' });
}, 90_000);

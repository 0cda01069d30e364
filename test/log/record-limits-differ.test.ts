// Nodes whose maxRecordBytes differ. A follower's limit bounds what append() takes on it, and its
// peer frames (maxRecordBytes + 2 MiB): a record the leader took that fits them replicates to it;
// one that does not can never reach it, and both nodes say so, coded, without a line per retry.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { RecordingLogger } from '../recording-logger.js';
import { RecordingMachine, freePorts, tempDir, waitFor } from './helpers.js';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a follower with a smaller maxRecordBytes takes a 2 MiB record; one over its frame limit is refused, logged once by the leader, coded by the follower', async () => {
  const ports = await freePorts(3);
  const peers: Record<number, string> = {};
  for (let id = 1; id <= 3; id++) peers[id] = `127.0.0.1:${ports[id - 1]}`;
  const loggers = new Map<number, RecordingLogger>();
  const logs = new Map<number, ReplicatedLog<number>>();
  for (let id = 1; id <= 3; id++) {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const logger = new RecordingLogger();
    loggers.set(id, logger);
    const log = await ReplicatedLog.open(
      {
        dataDir: t.dir,
        id,
        peers,
        stateMachine: new RecordingMachine(),
        clusterSecret: 'a secret for the differing limits',
        sync: 'none',
        // Node 3 takes frames up to 3 MiB; the others take records up to 4 MiB.
        maxRecordBytes: id === 3 ? MiB : 4 * MiB,
      },
      { logger },
    );
    logs.set(id, log);
    cleanups.push(() => log.close());
  }
  const all = [...logs.values()];
  await waitFor('a leader', () => all.some((l) => l.status().role === 'leader'), 30_000);
  if (logs.get(3)!.status().role === 'leader') await logs.get(3)!.transferLeadership(1);
  await waitFor('a leader other than node 3', () => [1, 2].some((id) => logs.get(id)!.status().role === 'leader'), 30_000);
  const leaderId = [1, 2].find((id) => logs.get(id)!.status().role === 'leader')!;
  const leader = logs.get(leaderId)!;

  // Today's rule, kept: the follower's maxRecordBytes bounds append() on it, not what it replicates.
  const two = await leader.append(Buffer.alloc(2 * MiB, 2));
  await waitFor('the 2 MiB record applied on node 3', () => logs.get(3)!.status().applied >= two.index, 30_000);

  const four = await leader.append(Buffer.alloc(4 * MiB, 4));
  const refusedOn3 = (): number => logs.get(3)!.metrics().transportRefused.TRANSPORT_FRAME_TOO_LARGE ?? 0;
  // The leader sends it again at each reconnection: wait for several refusals.
  await waitFor('node 3 refusing the frame again and again', () => refusedOn3() >= 4, 60_000);
  expect(logs.get(3)!.status().applied).toBeLessThan(four.index);
  const leaderLines = loggers.get(leaderId)!.lines.filter((l) => l.fields.remoteCode === 'TRANSPORT_FRAME_TOO_LARGE');
  expect(leaderLines).toHaveLength(1);
  expect(leaderLines[0]!.level).toBe('warn');
  expect(leaderLines[0]!.fields).toMatchObject({ code: 'TRANSPORT_PEER_REFUSED', peer: 3, maxFrameBytes: 6 * MiB });
  expect(leaderLines[0]!.message).toContain('exceeds the limit of 3145728 bytes');
  expect(leaderLines[0]!.message).toContain('maxRecordBytes');
  const followerLines = loggers.get(3)!.lines.filter((l) => l.fields.code === 'TRANSPORT_FRAME_TOO_LARGE');
  expect(followerLines.length).toBeGreaterThan(0);
  expect(followerLines[0]!.message).toContain('exceeds the limit of 3145728 bytes');
}, 120_000);

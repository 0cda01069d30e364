// A node whose snapshot outgrows maxSnapshotBytes says so where it is taken: its peers, with the
// same limit, refuse it, and a follower that falls behind would otherwise never catch up unseen.
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { RecordingLogger } from '../recording-logger.js';
import { RecordingMachine, enc, tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a snapshot whose state is over maxSnapshotBytes is logged with SNAPSHOT_OVER_PEER_LIMIT; one under it is not', async () => {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const logger = new RecordingLogger();
  const log = await ReplicatedLog.open(
    { dataDir: t.dir, stateMachine: new RecordingMachine(), snapshotEvery: 1, maxSnapshotBytes: 2_000, sync: 'none' },
    { logger },
  );
  cleanups.push(() => log.close());
  const over = (): number => logger.lines.filter((l) => l.fields.code === 'SNAPSHOT_OVER_PEER_LIMIT').length;
  await log.append(enc('small'));
  await waitFor('a snapshot taken', () => logger.has('snapshot taken at'));
  expect(over()).toBe(0);
  await log.append(enc('x'.repeat(3_000)));
  await waitFor('the warning', () => over() > 0);
  const line = logger.lines.find((l) => l.fields.code === 'SNAPSHOT_OVER_PEER_LIMIT')!;
  expect(line.level).toBe('warn');
  expect(line.fields).toMatchObject({ maxSnapshotBytes: 2_000 });
  expect(line.message).toMatch(/more than maxSnapshotBytes \(2000\).*raise maxSnapshotBytes on every node/);
});

// A node whose snapshot outgrows maxSnapshotBytes says so where it is taken: its peers, with the
// same limit, refuse it, and a follower that falls behind would otherwise never catch up unseen.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { RecordingLogger } from '../recording-logger.js';
import { RecordingMachine, enc, tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('a snapshot over maxSnapshotBytes is logged with SNAPSHOT_OVER_PEER_LIMIT; one under it is not', async () => {
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

/** Opens a single node, appends `record` and waits for the snapshot taken after it: its file's size and the logger. */
async function snapshotOf(record: string, maxSnapshotBytes: number): Promise<{ fileBytes: number; logger: RecordingLogger }> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const logger = new RecordingLogger();
  const log = await ReplicatedLog.open({ dataDir: t.dir, stateMachine: new RecordingMachine(), snapshotEvery: 1, maxSnapshotBytes, sync: 'none' }, { logger });
  cleanups.push(() => log.close());
  await log.append(enc(record));
  await waitFor('a snapshot taken', () => logger.has('snapshot taken at'));
  const taken = logger.lines.find((l) => l.message.startsWith('snapshot taken at'))!;
  await log.close();
  const dir = join(t.dir, 'snapshots');
  const files = readdirSync(dir).filter((n) => n.endsWith('.snap'));
  expect(files).toHaveLength(1);
  expect(taken.fields.bytes).toBeLessThan(statSync(join(dir, files[0]!)).size);
  return { fileBytes: statSync(join(dir, files[0]!)).size, logger };
}

it('SNAPSHOT_OVER_PEER_LIMIT compares the size of the snapshot file, which a peer checks, not the bytes of its data', async () => {
  const record = 'y'.repeat(1_500);
  const first = await snapshotOf(record, 1024 * 1024);
  // The same snapshot on a node whose limit its data fits and its file does not: peers with that limit refuse the file.
  const dataBytes = first.logger.lines.find((l) => l.message.startsWith('snapshot taken at'))!.fields.bytes as number;
  const second = await snapshotOf(record, dataBytes);
  expect(second.fileBytes).toBe(first.fileBytes);
  await waitFor('the warning', () => second.logger.lines.some((l) => l.fields.code === 'SNAPSHOT_OVER_PEER_LIMIT'));
  const line = second.logger.lines.find((l) => l.fields.code === 'SNAPSHOT_OVER_PEER_LIMIT')!;
  expect(line.fields).toMatchObject({ fileBytes: first.fileBytes, maxSnapshotBytes: dataBytes });
  // At the file's size exactly, a peer takes it: no warning.
  const third = await snapshotOf(record, first.fileBytes);
  expect(third.logger.lines.some((l) => l.fields.code === 'SNAPSHOT_OVER_PEER_LIMIT')).toBe(false);
});

// A log whose last WAL segment is deleted refuses to open, rather than opening as an older
// log without the acknowledged records that segment held.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { RecordingMachine, enc, fdsUnder, tempDir } from './helpers.js';

const OPTIONS = { id: 1, snapshotEvery: 1000, snapshotCatchUpEntries: 0, segmentBytes: 64 * 1024 };
const made: Array<{ cleanup(): void }> = [];
afterEach(() => {
  for (const d of made.splice(0)) d.cleanup();
});

const segments = (dir: string): string[] =>
  readdirSync(join(dir, 'wal'))
    .filter((n) => n.endsWith('.wal'))
    .sort();

async function open(dataDir: string): Promise<unknown> {
  return ReplicatedLog.open({ ...OPTIONS, dataDir, stateMachine: new RecordingMachine() }).then(
    (log) => log.close().then(() => 'opened'),
    (err: unknown) => err,
  );
}

it('refuses to open when the last of 4 segments holding 80 acknowledged records is deleted', async () => {
  const d = tempDir('raftlog-lost-');
  made.push(d);
  const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: d.dir, stateMachine: new RecordingMachine() });
  for (let i = 0; i < 80; i++) await log.append(enc(`r${i}-${'x'.repeat(3000)}`));
  await log.close();
  const names = segments(d.dir);
  expect(names.length).toBe(4);
  const last = join(d.dir, 'wal', names.at(-1)!);
  rmSync(last);
  const err = await open(d.dir);
  expect(err).toMatchObject({ code: 'WAL_CORRUPT', file: last });
  expect(fdsUnder(d.dir)).toEqual([]);
  expect(await open(d.dir)).toMatchObject({ code: 'WAL_CORRUPT', file: last });
});
